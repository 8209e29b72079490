"""A read of one chunk (a page, a jump) is computed on the caller's thread; larger reads on dask's
pool; the values are the file's either way."""

from __future__ import annotations

import threading

import dask
import numpy as np
import pytest

import mef3lab
from mef3lab.xr.scheduler import local_get


@pytest.fixture
def threads(recording, counting):
    """The recording opened through a source that records the thread of every read."""
    c = counting(recording)
    seen: list[int] = []
    read = c.read_index

    def on_thread(channels, k0, k1, dtype="float32"):
        seen.append(threading.get_ident())
        return read(channels, k0, k1, dtype)

    c.read_index = on_thread
    ds = mef3lab.open_recording(recording)
    yield ds, c, seen
    ds.close()


def _direct(direct_read, recording, ds, k0, k1):
    grid = ds.signal.time.values
    names = [str(n) for n in ds.channel.values]
    t0 = ds.attrs["start_uutc"] + int(round(grid[k0] * 1e6))
    return direct_read(recording, names, t0, t0 + int(round((k1 - k0) * 1e6 / 256.0)))


def test_one_chunk_is_read_on_the_calling_thread_sample_for_sample(threads, recording, direct_read):
    ds, c, seen = threads
    assert dask.config.get("scheduler") is local_get
    seg = c.segment_samples(256.0)
    n_time = ds.sizes["time"]
    # the first block of a chunk, one in its middle, the recording's last samples, and a window
    # over a gap (150 s - 153 s)
    for k0, k1 in ((0, 2560), (seg + seg // 2, seg + seg // 2 + 300), (n_time - 777, n_time)):
        seen.clear()
        got = ds.signal.isel(time=slice(k0, k1)).values
        assert seen == [threading.get_ident()]
        np.testing.assert_array_equal(got, _direct(direct_read, recording, ds, k0, k1))
    seen.clear()
    got = ds.signal.sel(time=slice(149.0, 154.0)).values
    assert seen == [threading.get_ident()] and np.isnan(got).any() and not np.isnan(got).all()


def test_a_window_over_two_chunks_is_read_on_the_pool_sample_for_sample(
    threads, recording, direct_read
):
    ds, c, seen = threads
    seg = c.segment_samples(256.0)
    k0, k1 = seg - 1000, seg + 1000
    got = ds.signal.isel(time=slice(k0, k1)).values
    assert len(seen) == 2 and threading.get_ident() not in seen
    np.testing.assert_array_equal(got, _direct(direct_read, recording, ds, k0, k1))


def test_a_chosen_scheduler_is_kept(threads):
    ds, _, seen = threads
    with dask.config.set(scheduler="threads"):
        _ = ds.signal.isel(time=slice(0, 2560)).values
    assert seen and threading.get_ident() not in seen


def test_a_page_of_a_closed_recording_opens_its_source_again(recording, direct_read):
    ds = mef3lab.open_recording(recording)
    page = ds.signal.isel(time=slice(0, 2560))
    want = _direct(direct_read, recording, ds, 0, 2560)
    ds.close()
    np.testing.assert_array_equal(page.values, want)  # as documented: the source is opened again
