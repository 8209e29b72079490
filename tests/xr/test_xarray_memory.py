"""A day at 2 kHz opens without materialising its time axis (8 bytes a sample would be 1.4 GB)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import mef3lab
from mef3lab.xr.index import GridTimeIndex

DAY_S = 24 * 3600.0
FS = 2000.0
N = int(DAY_S * FS)  # 172.8 M samples


@pytest.fixture
def day(fake):
    return fake(
        path="/nowhere/day.mefd",
        channels=[(f"c{i:02d}", FS) for i in range(32)],
        seconds=DAY_S,
        gaps_s=((3600.0, 3700.0),),
        segment_s=60.0,
    )


@pytest.mark.parametrize("chunks", [{}, None])
def test_a_day_at_2khz_opens_without_allocating_the_time_axis(day, chunks):
    tracemalloc.start()
    try:
        ds = mef3lab.open_recording("/nowhere/day.mefd", chunks=chunks)
        text = repr(ds)  # showing it in a notebook must not materialise it either
        sub = ds.signal.sel(channel=["c00", "c31"], time=slice(3599.5, 3600.5))
        values = sub.values
        times = sub.time.values
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 40 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    assert ds.sizes["time"] == N and isinstance(ds.xindexes["time"], GridTimeIndex)
    assert "GridTimeIndex" in text
    assert values.shape == (2, 2001) and times.shape == (2001,)
    k0 = int(3599.5 * FS)
    np.testing.assert_array_equal(values, day.expected(["c00", "c31"], k0, k0 + 2001))
    assert (
        np.isnan(values[:, 1000:]).all() and not np.isnan(values[:, :1000]).any()
    )  # the gap at 3600 s
    np.testing.assert_allclose(times, 3599.5 + np.arange(2001) / FS, rtol=0, atol=1e-9)


def test_the_time_coordinate_stays_lazy_through_selection(day):
    ds = mef3lab.open_recording("/nowhere/day.mefd")
    assert ds.time.variable._data.__class__.__name__ == "_GridCoordinateArray"
    assert ds.time.chunks is None  # not a dask array of 172.8 M floats either
    sub = ds.isel(time=slice(1000, None)).sel(time=slice(40_000.0, 40_000.01))
    assert isinstance(sub.xindexes["time"], GridTimeIndex)
    assert sub.time.values.tolist() == pytest.approx([40_000.0 + i / FS for i in range(21)])
    # times of a selection of a selection are bit-identical to the full axis's
    np.testing.assert_array_equal(
        sub.time.values, ds.time.sel(time=slice(40_000.0, 40_000.01)).values
    )
    np.testing.assert_array_equal(sub.time.values, np.arange(80_000_000, 80_000_021) / FS)
