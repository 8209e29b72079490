"""What the Dataset returns equals what the reader and the file's generator say, per window."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mef3lab
from mef3lab.readers import open_reader
from mef3lab.xr.backend import rate_label

SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _group_array(ds, info, fs):
    """(DataArray with plain dims, rate group) for rate fs."""
    return ds.mef3.groups[fs], next(g for g in info.rate_groups if g.fs == fs)


@st.composite
def windows(draw, info, seg_s=60.0):
    """A rate group, a channel subset in random order, a window, often at a gap or chunk edge."""
    group = draw(st.sampled_from(info.rate_groups))
    names = draw(
        st.lists(
            st.sampled_from(group.channels), min_size=1, max_size=len(group.channels), unique=True
        )
    )
    n = group.grid.n_samples
    edges = [0, n] + [group.grid.index_at(s.end_uutc) for c in group.channels for s in info.gaps(c)]
    edges += [group.grid.index_at(s.start_uutc) for c in group.channels for s in info.gaps(c)]
    edges += list(range(0, n, int(seg_s * group.fs)))
    anchor = draw(st.one_of(st.integers(0, n), st.sampled_from(edges)))
    k0 = min(n, max(0, anchor + draw(st.integers(-600, 600))))
    length = draw(st.one_of(st.integers(0, 2000), st.integers(0, int(3 * seg_s * group.fs))))
    return group, names, k0, k0 + length


def _check_isel(path, data, dtype="float32"):
    reader = open_reader(path)
    ds = mef3lab.open_recording(path, dtype=dtype)
    group, names, k0, k1 = data.draw(windows(reader.info))
    da = ds.mef3.groups[group.fs].sel(channel=names)
    got = da.isel(time=slice(k0, k1)).values
    ref = reader.read_index(names, k0, min(k1, group.grid.n_samples), dtype)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, ref)


@SETTINGS
@given(data=st.data())
def test_isel_windows_equal_reader_mixed_rates(mixed_rate_recording, data):
    _check_isel(mixed_rate_recording, data)


@SETTINGS
@given(data=st.data())
def test_isel_windows_equal_reader_across_gaps(recording, data):
    _check_isel(recording, data)


@SETTINGS
@given(data=st.data())
def test_sel_windows_equal_generator(mixed_rate_recording, mixed_rate_plan, expected_read, data):
    """``.sel(time=slice(a, b))`` picks exactly the grid samples in [a, b], with their values."""
    info = open_reader(mixed_rate_recording).info
    ds = mef3lab.open_recording(mixed_rate_recording)
    group = data.draw(st.sampled_from(info.rate_groups))
    names = data.draw(st.lists(st.sampled_from(group.channels), min_size=1, unique=True))
    dur = info.duration_s
    a = data.draw(st.floats(-3.0, dur + 3.0))
    b = a + data.draw(st.floats(0.0, 150.0))
    da = ds.mef3.groups[group.fs].sel(channel=names)
    sub = da.sel(time=slice(a, b))

    offset = (group.grid.start_uutc - info.start_uutc) / 1e6
    n = group.grid.n_samples
    i0 = min(n, max(0, math.ceil((a - offset) * group.fs - 1e-6)))
    i1 = max(i0, min(n, math.floor((b - offset) * group.fs + 1e-6) + 1))
    assert sub.sizes["time"] == i1 - i0
    if i1 > i0:
        t = sub.time.values
        assert t[0] >= a - 1e-9 and t[-1] <= b + 1e-9
        np.testing.assert_allclose(t, offset + np.arange(i0, i1) / group.fs, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(
        sub.values, expected_read(mixed_rate_plan, names, group.grid, i0, i1)
    )


@pytest.mark.parametrize("engine", ["pymef", "mef3io"])
def test_whole_recording_equals_generator_with_each_engine(
    engine, mixed_rate_recording, mixed_rate_plan, expected_read
):
    info = open_reader(mixed_rate_recording, engine=engine).info
    ds = mef3lab.open_recording(mixed_rate_recording, engine=engine)
    assert ds.attrs["mef3_engine"] == engine
    for g in info.rate_groups:
        got = ds[f"signal_{rate_label(g.fs)}"].values
        np.testing.assert_array_equal(
            got, expected_read(mixed_rate_plan, g.channels, g.grid, 0, g.grid.n_samples)
        )


def test_outer_indexing_channels_and_times(recording):
    reader = open_reader(recording)
    ds = mef3lab.open_recording(
        recording, chunks=None
    )  # the non-dask path handles fancy keys itself
    names = list(ds.channel.values)
    ks = np.array([5, 700, 3, 3, 15_000, 153_599])
    got = ds.signal.isel(channel=[4, 1, 1], time=ks).values
    for row, c in enumerate([4, 1, 1]):
        for col, k in enumerate(ks):
            ref = reader.read_index([names[c]], int(k), int(k) + 1)[0, 0]
            np.testing.assert_array_equal(got[row, col], ref)
    assert ds.signal.isel(channel=2, time=slice(10, 20, 3)).values.shape == (4,)
    np.testing.assert_array_equal(
        ds.signal.isel(channel=2, time=slice(10, 20, 3)).values,
        reader.read_index([names[2]], 10, 20)[0, ::3],
    )
    assert ds.signal.isel(time=7).values.shape == (8,)
    assert ds.signal.isel(channel=[], time=slice(0, 10)).values.shape == (0, 10)


def test_gaps_read_as_nan_on_the_grid(recording, recording_plan):
    ds = mef3lab.open_recording(recording)
    t0 = recording_plan.start_uutc
    for g0, g1 in recording_plan.gaps_uutc:
        a, b = (g0 - t0) / 1e6, (g1 - t0) / 1e6
        inside = ds.signal.sel(time=slice(a + 1 / 256, b - 1 / 256)).values
        assert np.isnan(inside).all()
        before = ds.signal.sel(time=slice(a - 1.0, a - 1 / 256)).values
        after = ds.signal.sel(time=slice(b + 1 / 256, b + 1.0)).values
        assert not np.isnan(before).any() and not np.isnan(after).any()
