"""Opening recordings: entry point, layout, coordinates, where data comes from, bad input."""

from __future__ import annotations

from importlib.metadata import entry_points

import numpy as np
import pytest
import xarray as xr

import mef3lab
from mef3lab import sources as source
from mef3lab.errors import PasswordError, UnknownChannelError
from mef3lab.readers import open_reader
from mef3lab.sources import REGISTRY, registry
from mef3lab.xr.backend import Mef3BackendEntrypoint, rate_label
from mef3lab.xr.index import GridTimeIndex


def test_entry_point_is_registered(recording):
    eps = [ep for ep in entry_points(group="xarray.backends") if ep.name == "mef3"]
    assert [ep.value for ep in eps] == ["mef3lab.xr.backend:Mef3BackendEntrypoint"]
    assert "mef3" in xr.backends.list_engines()
    ds = xr.open_dataset(recording, engine="mef3")
    assert ds.signal.dims == ("channel", "time")


def test_guess_can_open():
    e = Mef3BackendEntrypoint()
    assert e.guess_can_open("/x/y.mefd") and e.guess_can_open("mef3://h:1/x/y.mefd")
    assert not e.guess_can_open("/x/y.nc") and not e.guess_can_open(b"/x/y.mefd")


def test_single_rate_layout(recording):
    ds = mef3lab.open_recording(recording)
    info = open_reader(recording).info
    (group,) = info.rate_groups
    assert list(ds.data_vars) == ["signal"]
    sig = ds.signal
    assert sig.dims == ("channel", "time") and sig.dtype == np.float32
    assert sig.shape == (8, group.grid.n_samples)
    assert list(ds.channel.values) == list(info.names)
    assert ds.fs.values.tolist() == [256.0] * 8 and ds.units.values.tolist() == ["µV"] * 8
    assert ds.units_text.values.tolist() == ["uV"] * 8  # as the file stores them
    assert ds.fs.chunks is None  # small per-channel coordinates are in memory
    assert ds.attrs["start_uutc"] == info.start_uutc == sig.attrs["start_uutc"]
    assert np.datetime64(ds.attrs["start_time"]) == np.datetime64(info.start_uutc, "us")
    assert sig.attrs["units"] == "µV" and sig.attrs["fs"] == 256.0
    assert ds.time.dtype == np.float64 and ds.time.attrs["units"] == "s"
    assert isinstance(ds.xindexes["time"], GridTimeIndex)
    assert ds.time.values[0] == 0.0 and ds.time.values[1] == pytest.approx(1 / 256)


def test_mixed_rates_one_variable_per_group(mixed_rate_recording):
    ds = mef3lab.open_recording(mixed_rate_recording)
    info = open_reader(mixed_rate_recording).info
    assert sorted(ds.data_vars) == ["signal_1024Hz", "signal_256Hz"]
    for g in info.rate_groups:
        lab = rate_label(g.fs)
        da = ds[f"signal_{lab}"]
        assert da.dims == (f"channel_{lab}", f"time_{lab}")
        assert tuple(da[f"channel_{lab}"].values) == g.channels
        assert da.sizes[f"time_{lab}"] == g.grid.n_samples
        assert (ds[f"fs_{lab}"].values == g.fs).all()
        # the time axis is anchored at the recording start, whatever the group's first sample
        offset = (g.grid.start_uutc - info.start_uutc) / 1e6
        assert da[f"time_{lab}"].values[0] == pytest.approx(offset)
    groups = ds.mef3.groups
    assert list(groups) == [1024.0, 256.0]
    assert groups[256.0].dims == ("channel", "time") and "fs" in groups[256.0].coords


def test_rate_label():
    assert (
        rate_label(256.0) == "256Hz"
        and rate_label(512.5) == "512p5Hz"
        and rate_label(32000) == "32000Hz"
    )


def test_channel_selection_keeps_order_and_one_rate_gives_signal(mixed_rate_recording):
    info = open_reader(mixed_rate_recording).info
    slow = [n for n in info.names if info.channel(n).fs == 256.0][::-1]
    ds = mef3lab.open_recording(mixed_rate_recording, channels=slow)
    assert list(ds.data_vars) == ["signal"] and list(ds.channel.values) == slow
    one = mef3lab.open_recording(mixed_rate_recording, channels=slow[0])
    assert list(one.channel.values) == [slow[0]]


def test_open_recording_equals_open_dataset(recording):
    a = mef3lab.open_recording(recording)
    b = xr.open_dataset(recording, engine="mef3", chunks={})
    assert a.signal.chunks == b.signal.chunks
    xr.testing.assert_identical(a.load(), b.load())


def test_dtype_float64(recording):
    ds = mef3lab.open_recording(recording, dtype="float64")
    assert ds.signal.dtype == np.float64
    x = ds.signal.isel(time=slice(0, 500)).values
    ref = open_reader(recording).read_index(None, 0, 500, "float64")
    np.testing.assert_array_equal(x, ref)
    with pytest.raises(ValueError, match="dtype"):
        mef3lab.open_recording(recording, dtype="int16")


def test_preferred_chunks_are_source_segments(fake):
    f = fake(seconds=100.0, segment_s=7.0)
    ds = mef3lab.open_recording("/nowhere/fake.mefd")
    seg = f.segment_samples(256.0)
    assert ds.signal.encoding["preferred_chunks"] == {"channel": 2, "time": seg}
    assert ds.signal.chunks[1][:-1] == (seg,) * (len(ds.signal.chunks[1]) - 1)
    assert ds.signal.chunks[0] == (2,)


def test_embedded_segment_length(fake_source_class):
    class R:  # the part of a Reader EmbeddedSource looks at to size segments
        def __init__(self, channels):
            self.info = fake_source_class(channels=channels).info

    narrow = source.EmbeddedSource(R([("a", 256.0)]))
    assert narrow.segment_samples(256.0) == 60 * 256
    wide = source.EmbeddedSource(R([(f"c{i}", 32000.0) for i in range(100)]))
    n = wide.segment_samples(32000.0)
    assert n % 32000 == 0 and 1 <= n // 32000 < 60
    assert n * 100 * 4 <= source.EMBEDDED_CHUNK_BYTES


def test_chunks_none_is_lazy_not_dask(recording, counting):
    c = counting(recording)
    ds = xr.open_dataset(recording, engine="mef3")
    assert ds.signal.chunks is None and not ds.signal.variable._in_memory
    assert c.calls == []
    x = ds.signal.isel(channel=1, time=slice(100, 400)).values
    assert c.calls == [((ds.channel.values[1],), 100, 400)]
    np.testing.assert_array_equal(x, open_reader(recording).read_index(None, 100, 400)[1])


# -- bad input ----------------------------------------------------------------------------


def test_unknown_channel(recording):
    with pytest.raises(UnknownChannelError, match="nope"):
        mef3lab.open_recording(recording, channels=["ch000", "nope"])
    ds = mef3lab.open_recording(recording)
    with pytest.raises(KeyError):
        ds.signal.sel(channel="nope")


def test_duplicate_channel_refused(recording):
    with pytest.raises(ValueError, match="twice"):
        mef3lab.open_recording(recording, channels=["ch000", "ch000"])


def test_times_outside_the_recording_select_nothing(recording):
    ds = mef3lab.open_recording(recording)
    n = ds.sizes["time"]
    assert ds.signal.sel(time=slice(1e6, 2e6)).sizes["time"] == 0
    assert ds.signal.sel(time=slice(-20, -10)).sizes["time"] == 0
    assert ds.signal.sel(time=slice(50, 10)).sizes["time"] == 0
    assert ds.signal.sel(time=slice(-5, 1e6)).sizes["time"] == n  # clipped to the recording
    assert ds.signal.sel(time=slice(1e6, 2e6)).values.shape == (8, 0)
    with pytest.raises(KeyError, match="outside"):
        ds.signal.sel(time=1e6)
    with pytest.raises(KeyError, match="outside"):
        ds.signal.sel(time=-1.0, method="pad")


def test_scalar_time_selection(recording):
    ds = mef3lab.open_recording(recording)
    assert ds.signal.sel(time=10.0).shape == (8,)
    assert float(ds.signal.sel(time=10.0).time) == 10.0
    with pytest.raises(KeyError, match="not on the sample grid"):
        ds.signal.sel(time=10.001)
    near = ds.signal.sel(time=10.001, method="nearest")
    assert float(near.time) == pytest.approx(10.0)
    assert float(ds.signal.sel(time=10.001, method="backfill").time) == pytest.approx(10 + 1 / 256)
    assert float(ds.signal.sel(time=10.001, method="pad").time) == pytest.approx(10.0)
    with pytest.raises(KeyError, match="within"):
        ds.signal.sel(time=10.001, method="nearest", tolerance=1e-4)
    assert float(ds.signal.sel(time=-3.0, method="nearest").time) == 0.0
    picked = ds.signal.sel(time=[1.0, 2.0, 1.0])
    assert picked.time.values.tolist() == [1.0, 2.0, 1.0]
    with pytest.raises(TypeError, match="seconds"):
        ds.signal.sel(time=np.datetime64("2024-01-01"))


def test_time_slice_is_inclusive_and_keeps_a_lazy_index(recording):
    ds = mef3lab.open_recording(recording)
    sub = ds.signal.sel(time=slice(10, 11))
    assert sub.sizes["time"] == 257  # 10 s .. 11 s inclusive at 256 Hz
    assert sub.time.values[0] == 10.0 and sub.time.values[-1] == 11.0
    assert isinstance(sub.xindexes["time"], GridTimeIndex)
    again = sub.sel(time=slice(10.5, None))  # selecting a selection still works with floats
    assert again.time.values[0] == 10.5 and again.sizes["time"] == 129
    strided = ds.signal.sel(time=slice(10, 11, 0.5))
    assert strided.time.values.tolist() == [10.0, 10.5, 11.0]
    assert ds.signal.isel(time=slice(None, None, -1)).time.values[0] == ds.time.values[-1]


# -- passwords ----------------------------------------------------------------------------


def test_password_passes_through(encrypted_recording, passwords):
    pw = passwords.level2
    ds = mef3lab.open_recording(encrypted_recording, password=pw)
    ref = open_reader(encrypted_recording, pw).read_index(None, 0, 1000)
    assert not np.isnan(ref).all()
    np.testing.assert_array_equal(ds.signal.isel(time=slice(0, 1000)).values, ref)
    xds = xr.open_dataset(encrypted_recording, engine="mef3", password=pw)
    np.testing.assert_array_equal(xds.signal.isel(time=slice(0, 1000)).values, ref)
    assert pw not in repr(ds) and pw not in repr(source.resolve(encrypted_recording, pw))
    assert pw not in str(ds.attrs) and pw not in str(ds.signal.attrs)


def test_missing_password(encrypted_recording):
    with pytest.raises(PasswordError):
        mef3lab.open_recording(encrypted_recording)


# -- where data comes from ----------------------------------------------------------------


def test_resolve_paths_uris_and_default_server(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = source.resolve("rec.mefd", "pw")
    assert s == source.SourceSpec(str(tmp_path / "rec.mefd"), "pw", None, None) and not s.remote
    u = source.resolve("mef3://srv:50051/data/rec.mefd")
    assert (u.address, u.path) == ("srv:50051", "/data/rec.mefd")
    assert source.resolve("/data/rec.mefd", address="srv:1").address == "srv:1"
    source.set_default_address("lab:50051")
    assert source.get_default_address() == "lab:50051"
    d = source.resolve("rel/rec.mefd")
    assert (d.address, d.path) == ("lab:50051", "rel/rec.mefd")  # a server resolves its own paths
    assert source.resolve("/data/rec.mefd", address=False).address is None
    with pytest.raises(ValueError, match="contradicts"):
        source.resolve("mef3://srv:1/data/rec.mefd", address="other:2")
    with pytest.raises(ValueError, match="host:port"):
        source.set_default_address("no-port")
    with pytest.raises(ValueError, match="names no recording"):
        source.parse_uri("mef3://srv:1")


def test_remote_source_plugs_in_at_open_source(monkeypatch):
    spec = source.resolve("mef3://srv:50051/data/rec.mefd")
    made = []
    monkeypatch.setattr("mef3lab.sources.remote.RemoteSource", lambda s: made.append(s) or object())
    source.open_source(spec)
    assert made == [spec]


def test_default_address_routes_plain_paths(monkeypatch, fake):
    f = fake()
    opened = []

    def fake_open(spec):
        opened.append(spec)
        return f

    monkeypatch.setattr(registry, "open_source", fake_open)
    source.set_default_address("lab:50051")
    ds = mef3lab.open_recording("/data/x.mefd")
    assert opened == [source.SourceSpec("/data/x.mefd", None, None, "lab:50051")]
    assert ds.signal.attrs["mef3_address"] == "lab:50051"


def test_close_releases_the_cached_reader(recording):
    ds = mef3lab.open_recording(recording)
    spec = source.resolve(recording)
    assert spec in REGISTRY._sources
    ds.close()
    assert spec not in REGISTRY._sources
    # a closed dataset still computes: the source is reopened on demand
    assert ds.signal.isel(time=slice(0, 10)).values.shape == (8, 10)
