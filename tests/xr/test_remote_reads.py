"""Remote mode: what the server decodes for a selection, prefetch, progress, Ctrl-C.

The server's statistics are the evidence: `misses`/`hits` count the segment lookups of
foreground reads, `prefetches` the background loads queued (the engine's hint asks for
the chunk after the one being read), `decoded_samples` what the reader processes decoded.
"""

from __future__ import annotations

import os
import signal
import time

import dask
import numpy as np
import pytest
from _remote import start_server
from dask.diagnostics import ProgressBar

import mef3lab
from mef3lab import sources as source
from mef3lab.readers import open_reader

FS = 256.0


def _delta(after, before, *keys):
    return {k: after[k] - before[k] for k in keys}


def _touched(sub, seg):
    """The segments a selection's samples lie in (from its grid positions, not its labels)."""
    k = np.rint(sub.time.values * FS).astype(np.int64)
    return sorted(set((k // seg).tolist()))


# (a, b) of .sel(time=slice(a, b)), then how many segments the server decodes for it, and
# how many of the touched segments were already in its cache (hits) or prefetched for it
# (prefetch_hits: the acceptable counts — a chunk read while the hint of its neighbour is
# being decoded joins that load, which counts as a prefetch hit when the decode had started).
CASES = {
    # inside one segment, far from its end: one segment decoded, nothing after it asked for
    "inside": [((125.0, 135.0), dict(decoded=1, hits=0, prefetch_hits={0}))],
    # the inclusive end 180 s is sample 0 of the next segment: that segment is touched too
    "inclusive end": [((170.0, 180.0), dict(decoded=2, hits=0, prefetch_hits={0, 1}))],
    # across a boundary; then inside a cached segment, near its end: the next one is prefetched
    "across, then cached": [
        ((295.0, 305.0), dict(decoded=2, hits=0, prefetch_hits={0, 1})),
        ((350.0, 359.0), dict(decoded=1, hits=1, prefetch_hits={0})),
    ],
    # near a segment's end the next segment is prefetched, and the next window finds it ready
    "prefetched next": [
        ((405.0, 415.0), dict(decoded=2, hits=0, prefetch_hits={0})),
        ((420.0, 430.0), dict(decoded=0, hits=1, prefetch_hits={1})),
    ],
}


@pytest.mark.parametrize("windows", list(CASES.values()), ids=list(CASES))
def test_sel_decodes_only_the_segments_it_touches_and_the_hinted_next(
    server, settled, recording, windows
):
    ds = mef3lab.open_recording(recording, address=server.address)
    seg = ds.signal.chunks[1][0]
    n_ch, n_seg = ds.sizes["channel"], len(ds.signal.chunks[1])
    assert seg == 60 * 256 and n_seg == 10 and ds.sizes["time"] == n_seg * seg
    ref = open_reader(recording)
    for (a, b), want in windows:
        before = settled(server.address)
        sub = ds.signal.sel(time=slice(a, b))
        values = sub.values
        after = settled(server.address)
        d = _delta(
            after, before, "hits", "misses", "prefetches", "prefetch_hits", "decoded_samples"
        )
        touched = _touched(sub, seg)
        # one cache lookup per touched segment (one dask chunk each)
        assert d["hits"] + d["misses"] == len(touched), d
        assert d["hits"] == want["hits"] and d["prefetch_hits"] in want["prefetch_hits"], d
        # each read hints at most once; only the last one can reach past the window's segments
        assert d["prefetches"] <= len(touched), d
        assert d["decoded_samples"] == want["decoded"] * n_ch * seg, d
        assert want["decoded"] <= d["misses"] + 1
        np.testing.assert_array_equal(values, ref.read_index(None, int(a * FS), int(b * FS) + 1))


def test_sequential_compute_overlaps_decoding_with_the_users_work(server, settled, recording):
    """Synchronous scheduler: reading chunk N asks for N+1, decoded while N is worked on."""
    ds = mef3lab.open_recording(recording, address=server.address)
    n_ch, n = ds.sizes["channel"], ds.sizes["time"]
    n_seg = len(ds.signal.chunks[1])

    def work(block):
        time.sleep(0.15)  # the user's computation on one chunk, longer than decoding the next
        return np.nanmean(block, axis=1, keepdims=True)

    before = settled(server.address)
    with dask.config.set(scheduler="synchronous"):
        got = ds.signal.data.map_blocks(
            work, chunks=(n_ch, (1,) * n_seg), dtype="float32"
        ).compute()
    after = settled(server.address)
    d = _delta(after, before, "hits", "misses", "prefetches", "prefetch_hits", "decoded_samples")
    assert d["decoded_samples"] == n_ch * n  # every segment decoded exactly once
    assert d["hits"] + d["misses"] == n_seg
    assert (
        d["prefetches"] == n_seg - 2
    )  # every chunk after the second was announced by its predecessor
    assert d["prefetch_hits"] > 0
    assert d["prefetch_hits"] >= n_seg // 2, d  # most chunks were ready before they were asked for
    ref = open_reader(recording).read_index(None, 0, n)
    seg = ds.signal.chunks[1][0]
    expected = np.stack(
        [np.nanmean(ref[:, i * seg : (i + 1) * seg], axis=1) for i in range(n_seg)], axis=1
    )
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_progress_bar_on_a_remote_load(shared_server, recording, capsys):
    ds = mef3lab.open_recording(recording, address=shared_server.address)
    with ProgressBar(dt=0.001):
        x = ds.signal.load()
    out = capsys.readouterr().out
    assert "100%" in out and "Completed" in out
    np.testing.assert_array_equal(
        x.values, open_reader(recording).read_index(None, 0, ds.sizes["time"])
    )


def test_keyboard_interrupt_leaves_the_server_idle_and_the_dataset_usable(
    counting, settled, recording
):
    """ "Not busy" after Ctrl-C: reads already running finish, no new ones start, and the
    hints sent so far (at most one per read) are all the background work left; a moment
    later nothing is decoded any more, far short of the whole recording."""
    server = start_server(
        segment_seconds=30.0
    )  # 20 chunks: an interrupted compute reads few of them
    try:
        _interrupt_then_compute(server, counting, settled, recording)
    finally:
        source.REGISTRY.close_all()
        server.stop()


def _interrupt_then_compute(server, counting, settled, recording):
    c = counting(recording, address=server.address)
    ds = mef3lab.open_recording(recording, address=server.address)
    n_ch, n, seg = ds.sizes["channel"], ds.sizes["time"], ds.signal.chunks[1][0]
    assert len(ds.signal.chunks[1]) == 20
    real_read, real_hint = c.read_index, c.hint
    fired, hints = [], []

    def read_then_interrupt(channels, k0, k1, dtype="float32"):
        out = real_read(channels, k0, k1, dtype)
        if not fired:
            fired.append(True)
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C arrives while dask is computing
        return out

    def hint(channels, k0, k1, dtype="float32"):
        hints.append((k0, k1))
        real_hint(channels, k0, k1, dtype)

    c.read_index, c.hint = read_then_interrupt, hint
    before = settled(server.address)
    with pytest.raises(KeyboardInterrupt):
        ds.signal.mean("time").compute(scheduler="threads", num_workers=2)
    assert fired
    after = settled(server.address, timeout=20.0)  # raises if the server keeps working
    d = _delta(after, before, "misses", "prefetches", "decoded_samples")
    reads = len(c.calls)
    assert 1 <= reads <= 4, c.calls  # the two running reads, and at most one more each
    assert len(hints) <= reads and d["prefetches"] <= len(hints), (d, hints)
    assert d["decoded_samples"] <= (reads + len(hints)) * n_ch * seg < n_ch * n // 2, (
        d,
        c.calls,
        hints,
    )
    time.sleep(1.0)
    assert settled(server.address)["decoded_samples"] == after["decoded_samples"]

    c.read_index, c.hint = real_read, real_hint  # the same dataset computes again, correctly
    got = ds.signal.mean("time").compute(scheduler="threads", num_workers=2).values
    ref = np.nanmean(open_reader(recording).read_index(None, 0, n, "float64"), axis=1)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)  # float32 sums of a near-zero mean
    assert (
        source.REGISTRY.acquire(source.resolve(recording, address=server.address)) is c
    )  # on the same connection
