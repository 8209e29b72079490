"""What gets read when: only touched chunks, hints for what follows, progress bars, Ctrl-C."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
from dask.diagnostics import ProgressBar

import mef3lab
from mef3lab.readers import open_reader


def _segment_bounds(ds):
    edges = np.cumsum((0,) + ds.signal.chunks[1])
    return list(zip(edges[:-1], edges[1:], strict=True))


def test_sel_reads_only_the_chunks_it_touches(recording, counting):
    c = counting(recording)
    ds = mef3lab.open_recording(recording)
    seg = c.segment_samples(256.0)
    assert ds.signal.chunks[1][0] == seg and len(ds.signal.chunks[1]) > 5
    names = tuple(ds.channel.values)
    assert c.calls == []

    _ = ds.signal.sel(time=slice(125, 130)).values  # inside the third chunk
    assert c.calls == [(names, 125 * 256, 130 * 256 + 1)]

    c.calls.clear()
    a, b = seg / 256 - 10, seg / 256 + 10  # across the first chunk boundary
    ds.sel(time=slice(a, b)).signal.load()
    assert sorted(c.calls) == [(names, int(a * 256), seg), (names, seg, int(b * 256) + 1)]

    c.calls.clear()
    ds.signal.sel(channel="ch003", time=slice(300, 301)).mean().compute()
    assert c.calls == [(("ch003",), 300 * 256, 301 * 256 + 1)]


def test_each_chunk_is_read_once_and_hints_the_next_in_the_direction_of_travel(fake):
    f = fake(seconds=100.0, segment_s=10.0)
    ds = mef3lab.open_recording("/nowhere/fake.mefd")
    bounds = _segment_bounds(ds)
    assert len(bounds) == 10
    ds.signal.load(scheduler="sync")  # sequential (dask's local schedulers go from the last chunk)
    reads = [(k0, k1) for _, k0, k1 in f.calls]
    assert sorted(reads) == bounds
    assert all(ch == ("a", "b") for ch, _, _ in f.calls)
    # from the second read on (the first sets the direction) each read announced the next one
    assert [(k0, k1) for _, k0, k1 in f.hints] == reads[2:]
    np.testing.assert_array_equal(ds.signal.values, f.expected(["a", "b"], 0, ds.sizes["time"]))

    # a user stepping forwards through the chunks: each announces the one after it
    f = fake(seconds=100.0, segment_s=10.0)  # a new source: no history of reads
    ds = mef3lab.open_recording("/nowhere/fake.mefd", chunks=None)
    for k0, k1 in bounds:
        _ = ds.signal.isel(time=slice(k0, k1)).values
    assert [(k0, k1) for _, k0, k1 in f.hints] == bounds[1:]
    # then backwards (from the last chunk again, which announces nothing after it): each
    # following read announces the one before it
    f.hints.clear()
    for k0, k1 in bounds[::-1]:
        _ = ds.signal.isel(time=slice(k0, k1)).values
    assert [(k0, k1) for _, k0, k1 in f.hints] == bounds[-3::-1]


def test_a_short_window_hints_only_segments_it_does_not_read(fake):
    f = fake(seconds=100.0, segment_s=10.0)
    ds = mef3lab.open_recording("/nowhere/fake.mefd", chunks=None)
    _ = ds.signal.sel(time=slice(21.0, 23.0)).values  # the next 2 s lie in the segment just read
    assert f.hints == []
    _ = ds.signal.sel(time=slice(26.0, 28.0)).values  # the next 2 s reach the following segment
    k0, k1 = 26 * 256, 28 * 256 + 1
    assert [(k0, k1) for _, k0, k1 in f.hints] == [(30 * 256, k1 + (k1 - k0))]


def test_a_jump_announces_nothing_reading_on_from_there_does(fake):
    f = fake(seconds=100.0, segment_s=10.0)
    ds = mef3lab.open_recording("/nowhere/fake.mefd", chunks=None)
    _ = ds.signal.sel(time=slice(21.0, 23.0)).values
    _ = ds.signal.sel(time=slice(86.0, 88.0)).values  # a jump: its next 2 s reach 90 s, unasked
    assert f.hints == []
    _ = ds.signal.sel(time=slice(87.0, 89.0)).values  # reading on from there
    k0, k1 = 87 * 256, 89 * 256 + 1
    assert [(k0, k1) for _, k0, k1 in f.hints] == [(90 * 256, k1 + (k1 - k0))]


def test_progress_bar(recording, capsys):
    ds = mef3lab.open_recording(recording)
    with ProgressBar(dt=0.001):
        x = ds.signal.load()
    out = capsys.readouterr().out
    assert "100%" in out and "Completed" in out
    np.testing.assert_array_equal(
        x.values, open_reader(recording).read_index(None, 0, ds.sizes["time"])
    )


def test_keyboard_interrupt_leaves_the_dataset_usable(recording, counting):
    c = counting(recording)
    ds = mef3lab.open_recording(recording)
    real_read = c.read_index
    fired = []

    def read_then_interrupt(channels, k0, k1, dtype="float32"):
        out = real_read(channels, k0, k1, dtype)
        if not fired:
            fired.append(True)
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C arrives while dask is computing
        return out

    c.read_index = read_then_interrupt
    with pytest.raises(KeyboardInterrupt):
        ds.signal.mean("time").compute(scheduler="threads", num_workers=2)
    assert fired
    # the same dataset computes again, correctly, on the same cached reader
    got = ds.signal.mean("time").compute(scheduler="threads", num_workers=2).values
    ref = np.nanmean(
        open_reader(recording).read_index(None, 0, ds.sizes["time"], "float64"), axis=1
    )
    np.testing.assert_allclose(got, ref, rtol=1e-5)
