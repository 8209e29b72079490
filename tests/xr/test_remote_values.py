"""Remote mode: the same Dataset through a real mef3lab server, equal to direct engine reads."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_xarray_values import windows

import mef3lab
from mef3lab import sources as source
from mef3lab.client import Mef3Client
from mef3lab.errors import PasswordError
from mef3lab.readers import open_reader
from mef3lab.sources import RemoteSource

SETTINGS = settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _uri(server, path):
    return f"mef3://{server.address}{path}"


def _server_segments(address, path):
    with Mef3Client(address) as c:
        c.open_file(str(path))
        return {g.fs: g.segment_samples for g in c.segment_grid(str(path)).groups}


def test_uri_opens_through_the_server_with_its_segments_as_chunks(shared_server, recording):
    ds = xr.open_dataset(_uri(shared_server, recording), engine="mef3", chunks={})
    assert ds.attrs["mef3_address"] == shared_server.address and ds.attrs["mef3_path"] == str(
        recording
    )
    assert ds.signal.chunks is not None  # dask-backed: nothing read yet
    assert isinstance(
        source.REGISTRY.acquire(source.resolve(_uri(shared_server, recording))), RemoteSource
    )

    seg = _server_segments(shared_server.address, recording)[256.0]
    assert seg == 60 * 256
    assert ds.signal.encoding["preferred_chunks"] == {"channel": 8, "time": seg}
    n = ds.sizes["time"]
    assert ds.signal.chunks == ((8,), (seg,) * (n // seg) + ((n % seg,) if n % seg else ()))
    ref = open_reader(recording).read_index(None, 0, n)
    np.testing.assert_array_equal(ds.signal.values, ref)


def test_address_keyword_and_default_address_read_through_the_server(shared_server, recording):
    reader = open_reader(recording)
    ref = reader.read_index(["ch001", "ch006"], 100 * 256, 110 * 256 + 1)
    by_address = mef3lab.open_recording(recording, address=shared_server.address)
    by_uri = mef3lab.open_recording(_uri(shared_server, recording))
    source.set_default_address(shared_server.address)
    by_default = mef3lab.open_recording(recording)
    for ds in (by_address, by_uri, by_default):
        assert ds.attrs["mef3_address"] == shared_server.address
        got = ds.signal.sel(channel=["ch001", "ch006"], time=slice(100, 110)).values
        np.testing.assert_array_equal(got, ref)
    # address=False still reads in this process while a default server is set
    local = mef3lab.open_recording(recording, address=False)
    assert local.attrs["mef3_address"] == ""
    # all three name one spec, so they share this process's one connection for the recording
    spec = source.resolve(recording, address=shared_server.address)
    assert spec == source.resolve(_uri(shared_server, recording)) and spec.remote


def _check_isel_remote(server, path, data, dtype="float32"):
    reader = open_reader(path)
    ds = mef3lab.open_recording(path, address=server.address, dtype=dtype)
    group, names, k0, k1 = data.draw(windows(reader.info, seg_s=60.0))
    got = ds.mef3.groups[group.fs].sel(channel=names).isel(time=slice(k0, k1)).values
    ref = reader.read_index(names, k0, min(k1, group.grid.n_samples), dtype)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, ref)


@SETTINGS
@given(data=st.data())
def test_remote_windows_equal_reader_across_gaps(shared_server, recording, data):
    _check_isel_remote(shared_server, recording, data)


@SETTINGS
@given(data=st.data())
def test_remote_windows_equal_reader_mixed_rates(shared_server, mixed_rate_recording, data):
    _check_isel_remote(
        shared_server,
        mixed_rate_recording,
        data,
        dtype=data.draw(st.sampled_from(["float32", "float64"])),
    )


@SETTINGS
@given(data=st.data())
def test_remote_time_windows_equal_reader_read(shared_server, mixed_rate_recording, data):
    """``.sel(time=slice(a, b))`` through the server equals the reader's own time-window read."""
    reader = open_reader(mixed_rate_recording)
    info = reader.info
    ds = mef3lab.open_recording(mixed_rate_recording, address=shared_server.address)
    group = data.draw(st.sampled_from(info.rate_groups))
    names = data.draw(st.lists(st.sampled_from(group.channels), min_size=1, unique=True))
    a = data.draw(st.floats(-3.0, info.duration_s + 3.0))
    b = a + data.draw(st.floats(0.0, 150.0))
    sub = ds.mef3.groups[group.fs].sel(channel=names, time=slice(a, b))

    offset = (group.grid.start_uutc - info.start_uutc) / 1e6
    n = group.grid.n_samples
    i0 = min(n, max(0, math.ceil((a - offset) * group.fs - 1e-6)))
    i1 = max(i0, min(n, math.floor((b - offset) * group.fs + 1e-6) + 1))
    assert sub.sizes["time"] == i1 - i0
    if i1 > i0:
        t0, t1 = group.grid.uutc_of(i0), group.grid.uutc_of(i1)
        np.testing.assert_array_equal(sub.values, reader.read(names, t0, t1))


def test_mixed_rates_have_one_variable_per_rate_with_server_chunks(
    shared_server, mixed_rate_recording
):
    ds = mef3lab.open_recording(_uri(shared_server, mixed_rate_recording))
    segs = _server_segments(shared_server.address, mixed_rate_recording)
    assert sorted(ds.data_vars) == ["signal_1024Hz", "signal_256Hz"]
    for fs, label in ((1024.0, "1024Hz"), (256.0, "256Hz")):
        da = ds[f"signal_{label}"]
        assert da.encoding["preferred_chunks"][f"time_{label}"] == segs[fs] == int(60 * fs)
        assert set(da.chunks[1][:-1]) == {segs[fs]}


def test_encrypted_recording_passes_its_password_through(
    shared_server, encrypted_recording, passwords
):
    reader = open_reader(encrypted_recording, passwords.level2)
    n = reader.info.rate_groups[0].grid.n_samples
    ds = xr.open_dataset(
        _uri(shared_server, encrypted_recording),
        engine="mef3",
        chunks={},
        password=passwords.level2,
    )
    np.testing.assert_array_equal(ds.signal.values, reader.read_index(None, 0, n))
    assert passwords.level2 not in repr(ds.attrs) and passwords.level2 not in repr(
        source.resolve(_uri(shared_server, encrypted_recording), passwords.level2)
    )

    with pytest.raises(PasswordError):
        mef3lab.open_recording(encrypted_recording, address=shared_server.address)
    with pytest.raises(PasswordError):
        mef3lab.open_recording(encrypted_recording, address=shared_server.address, password="wrong")
