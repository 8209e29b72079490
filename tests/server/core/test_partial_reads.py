"""A cold read answers the blocks it asked for first; the rest of its segment fills behind it.

Real recordings (mef3io's writer), real reader processes; every value compared with a direct
read. `GatedPool` holds the background fill until a test lets it go, so what happens while a
segment is half loaded is decided, not raced.
"""

from __future__ import annotations

import itertools
import threading
import time
from concurrent.futures import Future

import numpy as np
import pytest

from mef3lab.errors import CorruptDataError
from mef3lab.readers import open_reader
from mef3lab.server import pool as pool_package
from mef3lab.server.config import ServerConfig
from mef3lab.server.core import segments
from mef3lab.server.core.engine import Engine, pool_for
from mef3lab.server.core.segments import _parts
from mef3lab.testing import damage
from mef3lab.testing.synth import synthesize

FS = 256.0
SEG = 300 * 256  # samples per segment
N_CH = 4


@pytest.fixture(scope="module")
def rec(tmp_path_factory):
    """4 channels × 10 min at 256 Hz in 10-s blocks, a 7.3-s gap at 130 s: two segments."""
    path = tmp_path_factory.mktemp("partial") / "partial.mefd"
    return synthesize(path, channels=N_CH, fs=FS, seconds=600, gaps=[(130.0, 7.3)], seed=3)


@pytest.fixture(scope="module")
def direct(rec):
    with open_reader(rec) as r:
        yield r


class GatedPool:
    """A reader pool whose background reads wait until `release`; all else passes through."""

    def __init__(self, pool) -> None:
        self._pool = pool
        self._held: list[tuple] = []
        self._lock = threading.Lock()
        self.open = False

    def __getattr__(self, name):
        return getattr(self._pool, name)

    def submit_split(self, req, ways, *, foreground=True):
        with self._lock:
            if foreground or self.open:
                return self._pool.submit_split(req, ways, foreground=foreground)
            held: Future = Future()
            self._held.append((req, ways, held))
            return held

    def release(self) -> None:
        with self._lock:
            self.open, held, self._held = True, self._held, []
        for req, ways, fut in held:
            if fut.set_running_or_notify_cancel():
                real = self._pool.submit_split(req, ways, foreground=False)
                real.add_done_callback(lambda r, f=fut: _chain(r, f))

    @property
    def held(self) -> int:
        with self._lock:
            return sum(not f.cancelled() for *_, f in self._held)


def _chain(real: Future, fut: Future) -> None:
    if real.cancelled() or real.exception() is not None:
        fut.set_exception(real.exception() if not real.cancelled() else RuntimeError("cancelled"))
    else:
        fut.set_result(real.result())


@pytest.fixture(scope="module")
def pool():
    """Two reader processes, their kernels loaded (so a damaged block's error names its channel)."""
    p = pool_for(ServerConfig(n_process_workers=2))
    deadline = time.monotonic() + 60
    while p.stats().get("warm", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    yield p
    p.close()


@pytest.fixture
def gated(pool):
    gate = GatedPool(pool)
    e = Engine(ServerConfig(n_process_workers=2, n_prefetch=0, segment_seconds=300.0), gate)
    yield e, gate
    e.open_recordings.stop()
    e.segments.close()


def settle(engine: Engine, entries: int) -> dict:
    """The engine's counters once `entries` rows are cached (the fill is done)."""
    deadline = time.monotonic() + 30
    while engine.stats()["cache_entries"] < entries and time.monotonic() < deadline:
        time.sleep(0.02)
    return engine.stats()


WINDOWS = {
    "first block": (0, 2560),
    "middle": (100 * 256, 101 * 256),
    "last block": (SEG - 2560, SEG),
    "two segments": (290 * 256, 310 * 256),
    "gap inside": (128 * 256, 140 * 256),
}


@pytest.mark.parametrize("where", WINDOWS)
def test_a_partial_cold_read_equals_a_direct_read_and_caches_whole_segments(
    gated, rec, direct, where
):
    engine, gate = gated
    k0, k1 = WINDOWS[where]
    engine.open("a", str(rec))
    got = engine.read_index("a", str(rec), None, k0, k1, "float64").data
    np.testing.assert_array_equal(got, direct.read_index(None, k0, k1, "float64"))
    touched = (k1 - 1) // SEG - k0 // SEG + 1
    assert engine.stats()["cache_entries"] == 0  # answered before the fill ran
    assert gate.held >= 1
    gate.release()
    stats = settle(engine, N_CH * touched)
    assert stats["decoded_samples"] == N_CH * SEG * touched  # no sample decoded twice
    for i in range(k0 // SEG, (k1 - 1) // SEG + 1):
        whole = engine.read_segment("a", str(rec), i, dtype="int32").data
        np.testing.assert_array_equal(whole, direct.read_raw(None, i * SEG, (i + 1) * SEG).counts)
    assert engine.stats()["decoded_samples"] == stats["decoded_samples"]  # hits


def test_a_read_of_a_whole_segment_answers_once_it_is_cached(gated, rec, direct, monkeypatch):
    """The counters and the cache a client sees after its reply include that read's segment.

    Caching is slowed down: were the reply sent before it, the cache would still be empty.
    """
    engine, _ = gated
    put = engine.segments.cache.put

    def slow_put(key, value):
        time.sleep(0.05)
        put(key, value)

    monkeypatch.setattr(engine.segments.cache, "put", slow_put)
    engine.open("a", str(rec))
    got = engine.read_segment("a", str(rec), 0, dtype="int32").data
    np.testing.assert_array_equal(got, direct.read_raw(None, 0, SEG).counts)
    stats = engine.stats()
    assert stats["cache_entries"] == N_CH and stats["decoded_samples"] == N_CH * SEG


def test_the_head_ends_where_the_window_does_the_other_parts_at_block_bounds(gated, rec):
    engine, _ = gated
    engine.open("a", str(rec))
    rec_ = engine.open_recordings.recording("a", str(rec))
    group = rec_.info.rate_groups[0]
    bounds = engine._bounds(rec_, group, group.channels, 0, SEG)
    # 10-s blocks; the gap: the block before it ends at 130 s, the one after starts at 137.3 s
    assert bounds[:16].tolist() == [i * 2560 for i in range(14)] + [35149, 35149 + 2560]
    step = segments.FILL_PART_SAMPLES // N_CH  # columns of a part after the head, about
    few = _parts(bounds, (3000, 3100), N_CH)
    # the head from its first block's start to the window's end, ..., what is before it
    assert few[0] == (2560, 3100) and few[-1] == (0, 2560)
    assert few[1][0] == 3100 and few[1][1] > 5120  # the rest of the head's last block, on
    assert all(a >= 3100 for a, _ in few[1:-1])
    assert all(b - a < step + 2 * 2560 for a, b in few[1:])  # a block more at most (the gap)
    assert _parts(bounds, (128 * 256, 140 * 256), N_CH)[0] == (120 * 256, 140 * 256)
    assert _parts(bounds, (2560, 5120), N_CH)[0] == (2560, 5120)  # a window on block bounds
    assert _parts(bounds, (0, SEG), N_CH) is None
    many = _parts(bounds, (3000, 3100), 64)  # 64 channels: one block of each (two at the gap)
    assert many[0] == (2560, 3100) and all(b - a < 2 * 2560 for a, b in many)
    for parts in (few, many):  # they tile the segment, each cut but the head's end on a bound
        tiles = sorted(parts)
        assert tiles[0][0] == 0 and tiles[-1][1] == SEG
        assert all(p[1] == q[0] for p, q in itertools.pairwise(tiles))
        assert all(p[1] in bounds for p in tiles if p[1] != 3100)


def _fill(engine: Engine, rec, want: tuple[int, int], i: int = 0) -> list[tuple[int, int]]:
    """The parts a cold read of `want` in segment `i` loads, its head first."""
    rec_ = engine.open_recordings.recording("a", str(rec))
    group = rec_.info.rate_groups[0]
    end = min((i + 1) * SEG, group.grid.n_samples)
    return _parts(engine._bounds(rec_, group, group.channels, i * SEG, end), want, N_CH)


def test_close_during_the_fill_leaves_nothing_half_cached(gated, rec, direct):
    engine, gate = gated
    engine.open("a", str(rec))
    engine.read_index("a", str(rec), None, 1000, 2000)
    # the parts after the head, queued (it starts the segment: none before it)
    assert gate.held == len(_fill(engine, rec, (1000, 2000))) - 1 >= 2
    engine.close("a", str(rec))
    assert gate.held == 0  # the fill was called off
    gate.release()
    time.sleep(0.2)
    assert engine.stats()["cache_entries"] == 0 and not engine.segments._inflight
    engine.open("b", str(rec))
    got = engine.read_segment("b", str(rec), 0, dtype="int32").data
    np.testing.assert_array_equal(got, direct.read_raw(None, 0, SEG).counts)


def test_a_jump_calls_off_the_fill_of_the_segment_it_left(gated, rec, direct):
    engine, gate = gated
    engine.open("a", str(rec))
    engine.read_index("a", str(rec), None, 1000, 2000)  # the head; the rest waits at the gate
    assert gate.held >= 2
    k0, k1 = SEG + 100 * 256, SEG + 101 * 256  # a jump into the second segment
    got = engine.read_index("a", str(rec), None, k0, k1).data
    np.testing.assert_array_equal(got, direct.read_index(None, k0, k1))
    parts = _fill(engine, rec, (k0, k1), 1)
    assert gate.held == len(parts) - 1  # only the new fill is queued
    gate.release()
    stats = settle(engine, N_CH)
    time.sleep(0.2)
    head = (parts[0][1] - parts[0][0]) * N_CH
    first = (_fill(engine, rec, (1000, 2000))[0][1] - 0) * N_CH  # the first head: 0..2560
    assert engine.stats()["cache_entries"] == N_CH  # the second segment alone
    assert stats["decoded_samples"] == first + (600 * 256 - SEG) * N_CH
    assert head > 0 and not engine.segments._inflight
    got = engine.read_segment("a", str(rec), 0, dtype="int32").data  # cold again, whole
    np.testing.assert_array_equal(got, direct.read_raw(None, 0, SEG).counts)


def test_another_clients_jump_calls_off_nothing_of_this_one(gated, rec, direct):
    engine, gate = gated
    engine.open("a", str(rec))
    engine.open("b", str(rec))
    engine.read_index("a", str(rec), None, 1000, 2000)  # the head; the rest waits at the gate
    mine = gate.held
    k0, k1 = SEG + 100 * 256, SEG + 101 * 256
    got = engine.read_index("b", str(rec), None, k0, k1).data  # b's jump elsewhere
    np.testing.assert_array_equal(got, direct.read_index(None, k0, k1))
    assert gate.held == mine + len(_fill(engine, rec, (k0, k1), 1)) - 1  # both fills queued
    gate.release()
    assert settle(engine, 2 * N_CH)["cache_entries"] == 2 * N_CH


def test_a_fill_a_read_waits_for_is_not_called_off(gated, rec, direct):
    engine, gate = gated
    engine.open("a", str(rec))
    engine.read_index("a", str(rec), None, 1000, 2000)  # the head; the rest waits at the gate
    store = engine.segments
    (flight,) = set(store._inflight.values())
    with store._lock:  # as a read waiting for one of its parts counts itself
        flight.waiters += 1
    try:
        engine.read_index("a", str(rec), None, SEG + 100 * 256, SEG + 101 * 256)  # a jump
        assert not any(p.load.cancelled() for p in flight.parts)
    finally:
        with store._lock:
            flight.waiters -= 1
    # a read joining a fill, and the reads within one segment, call nothing off either
    got = engine.read_index("a", str(rec), None, SEG - 10, SEG).data
    np.testing.assert_array_equal(got, direct.read_index(None, SEG - 10, SEG))
    assert not any(p.load.cancelled() for p in flight.parts)
    gate.release()
    assert settle(engine, 2 * N_CH)["cache_entries"] == 2 * N_CH  # both segments, whole
    got = engine.read_segment("a", str(rec), 0, dtype="int32").data
    np.testing.assert_array_equal(got, direct.read_raw(None, 0, SEG).counts)


def test_the_part_after_the_head_goes_on_where_the_head_stopped(gated, rec, direct):
    engine, gate = gated
    engine.open("a", str(rec))
    got = engine.read_index("a", str(rec), None, 1000, 2000, dtype="int32").data
    np.testing.assert_array_equal(got, direct.read_raw(None, 1000, 2000).counts)
    held = {req.k0: req for req, _, _ in gate._held}
    after = held[2000]  # the rest of the head's block, from where the window ended
    # the head decoded 2,000 samples of each channel's first block: the part goes on there
    assert sorted((s[0], s[1], s[4]) for s in after.resume) == [
        (name, 0, 2000) for name in sorted(after.channels)
    ]
    assert all(req.resume == () for k0, req in held.items() if k0 != 2000)
    gate.release()
    assert settle(engine, N_CH)["decoded_samples"] == N_CH * SEG  # no column decoded twice
    whole = engine.read_segment("a", str(rec), 0, dtype="int32").data
    np.testing.assert_array_equal(whole, direct.read_raw(None, 0, SEG).counts)


def test_a_read_beyond_the_head_hurries_the_part_it_needs(gated, rec, direct):
    engine, gate = gated
    engine.open("a", str(rec))
    engine.read_index("a", str(rec), None, 1000, 2000)  # the head; the rest waits at the gate
    queued = gate.held
    assert queued == len(_fill(engine, rec, (1000, 2000))) - 1 >= 2
    got = engine.read_index("a", str(rec), None, 60 * 256, 61 * 256).data  # gate still shut
    np.testing.assert_array_equal(got, direct.read_index(None, 60 * 256, 61 * 256))
    assert gate.held == queued - 1  # the part it needs was called off, decoded in the foreground
    gate.release()
    assert settle(engine, N_CH)["decoded_samples"] == N_CH * SEG


def test_a_fill_is_sent_a_few_parts_at_a_time(pool, rec, direct, monkeypatch):
    """One part per reader process and one queued: a fill called off leaves nothing queued
    behind, and nothing of it is sent in one go beside the head's reply."""
    monkeypatch.setattr(segments, "FILL_PART_SAMPLES", N_CH * 2560)  # a block each: 29 parts
    gate = GatedPool(pool)
    engine = Engine(ServerConfig(n_process_workers=2, n_prefetch=0, segment_seconds=300.0), gate)
    try:
        engine.open("a", str(rec))
        got = engine.read_index("a", str(rec), None, 1000, 2000).data
        np.testing.assert_array_equal(got, direct.read_index(None, 1000, 2000))
        assert len(_fill(engine, rec, (1000, 2000))) > 20
        assert gate.held == pool.n_workers + 1 == 3
        gate.release()  # each part that ends sends the next
        stats = settle(engine, N_CH)
        assert stats["decoded_samples"] == N_CH * SEG  # the whole segment, no sample twice
        got = engine.read_segment("a", str(rec), 0, dtype="int32").data
        np.testing.assert_array_equal(got, direct.read_raw(None, 0, SEG).counts)
    finally:
        engine.open_recordings.stop()
        engine.segments.close()


@pytest.fixture
def graced(pool, monkeypatch):
    """An engine whose deferred fills start 0.3 s after their reply (gated, as in `gated`)."""
    monkeypatch.setattr(segments, "FILL_GRACE_S", 0.3)
    gate = GatedPool(pool)
    e = Engine(ServerConfig(n_process_workers=2, n_prefetch=0, segment_seconds=300.0), gate)
    yield e, gate
    e.open_recordings.stop()
    e.segments.close()


def _deferred(engine: Engine, rec, k0: int, k1: int):
    """A read as a server makes it: its fills start when it says so (`start_prefetch`)."""
    return engine.read_index("a", str(rec), None, k0, k1, prefetch=False, defer_prefetch=True)


def test_a_deferred_fill_starts_a_grace_after_the_reply(graced, rec, direct):
    engine, gate = graced
    engine.open("a", str(rec))
    s = _deferred(engine, rec, 1000, 2000)
    np.testing.assert_array_equal(s.data, direct.read_index(None, 1000, 2000))
    assert gate.held == 0  # the head alone
    s.start_prefetch()  # the reply is sent
    time.sleep(0.1)
    assert gate.held == 0  # within the grace
    deadline = time.monotonic() + 10
    while gate.held < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert gate.held == 3  # a few parts at a time
    gate.release()
    assert settle(engine, N_CH)["decoded_samples"] == N_CH * SEG


def test_a_jump_within_the_grace_calls_the_fill_off_before_it_began(graced, rec, direct):
    engine, gate = graced
    engine.open("a", str(rec))
    _deferred(engine, rec, 1000, 2000).start_prefetch()
    k0, k1 = SEG + 100 * 256, SEG + 101 * 256
    s = _deferred(engine, rec, k0, k1)  # a jump into the second segment, at once
    np.testing.assert_array_equal(s.data, direct.read_index(None, k0, k1))
    s.start_prefetch()
    flights = set(engine.segments._inflight.values())
    assert len(flights) == 1 and next(iter(flights)).keys[0].k0 == SEG  # the first is over
    time.sleep(0.6)  # both graces are over: only the second fill was sent
    assert gate.held == min(3, len(_fill(engine, rec, (k0, k1), 1)) - 1)
    gate.release()
    stats = settle(engine, N_CH)
    time.sleep(0.2)
    head = _fill(engine, rec, (1000, 2000))[0]
    assert engine.stats()["cache_entries"] == N_CH  # the second segment alone
    assert stats["decoded_samples"] == (head[1] - head[0]) * N_CH + (600 * 256 - SEG) * N_CH
    got = engine.read_segment("a", str(rec), 0, dtype="int32").data  # cold again, whole
    np.testing.assert_array_equal(got, direct.read_raw(None, 0, SEG).counts)


def test_a_read_needing_a_part_not_sent_yet_sends_it_at_once(graced, rec, direct):
    engine, gate = graced
    engine.open("a", str(rec))
    first = _deferred(engine, rec, 1000, 2000)  # its fill not started
    got = engine.read_index("a", str(rec), None, 60 * 256, 61 * 256).data
    np.testing.assert_array_equal(got, direct.read_index(None, 60 * 256, 61 * 256))
    assert gate.held == 0  # the part it needed went in the foreground
    first.start_prefetch()
    gate.release()
    assert settle(engine, N_CH)["decoded_samples"] == N_CH * SEG  # no sample twice


@pytest.mark.parametrize("gate_open", [False, True])
def test_a_read_reaching_back_before_the_head_starts_where_it_asked(gated, rec, direct, gate_open):
    engine, gate = gated
    engine.open("a", str(rec))
    engine.read_index("a", str(rec), None, 30 * 256, 40 * 256)  # the head: blocks of 30-40 s
    if gate_open:
        gate.release()  # the parts before and after the head may load meanwhile
    k0, k1 = 1000, 117 * 256  # from before the head to well after it
    got = engine.read_index("a", str(rec), None, k0, k1).data
    np.testing.assert_array_equal(got, direct.read_index(None, k0, k1))
    gate.release()  # the parts it did not need
    assert settle(engine, N_CH)["decoded_samples"] == N_CH * SEG


def test_two_clients_reading_overlapping_windows_of_a_cold_segment_decode_it_once(
    pool, rec, direct
):
    engine = Engine(ServerConfig(n_process_workers=2, n_prefetch=0, segment_seconds=300.0), pool)
    try:
        engine.open("a", str(rec))
        engine.open("b", str(rec))
        windows = {"a": (100 * 256, 110 * 256), "b": (105 * 256, 200 * 256)}
        out = {}

        def read(client):
            out[client] = engine.read_index(client, str(rec), None, *windows[client]).data

        threads = [threading.Thread(target=read, args=(c,)) for c in windows]
        [t.start() for t in threads]
        [t.join() for t in threads]
        for c, (k0, k1) in windows.items():
            np.testing.assert_array_equal(out[c], direct.read_index(None, k0, k1))
        assert settle(engine, N_CH)["decoded_samples"] == N_CH * SEG
    finally:
        engine.open_recordings.stop()
        engine.segments.close()


def test_a_damaged_block_outside_the_window_does_not_fail_the_read(pool, tmp_path):
    path = synthesize(tmp_path / "damaged.mefd", channels=N_CH, fs=FS, seconds=300, gaps=0)
    damage.flip(".tdat", 0.9)(path / "ch001.timd")  # ch001's block at 260-270 s
    engine = Engine(ServerConfig(n_process_workers=2, n_prefetch=0, segment_seconds=300.0), pool)
    try:
        engine.open("a", str(path))
        with open_reader(path) as r:
            want = r.read_index(None, 0, 2560)
            with pytest.raises(CorruptDataError):
                r.read_index(None, 265 * 256, 266 * 256)
        for _ in range(2):  # the second time, the failed fill is not cached
            np.testing.assert_array_equal(
                engine.read_index("a", str(path), None, 0, 2560).data, want
            )
            with pytest.raises(CorruptDataError, match="ch001"):
                engine.read_index("a", str(path), None, 265 * 256, 266 * 256)
        assert engine.stats()["cache_entries"] == 0
    finally:
        engine.open_recordings.stop()
        engine.segments.close()


@pytest.mark.parametrize(("fs", "seconds"), [(2048.0, 128), (8192.0, 32), (32768.0, 8)])
def test_segments_of_fast_channels_are_sized_by_bytes(tmp_path, fs, seconds):
    path = synthesize(tmp_path / "fast.mefd", channels=2, fs=fs, seconds=10, gaps=0)
    e = Engine(ServerConfig(n_process_workers=0, n_prefetch=0))
    try:
        e.open("a", str(path))
        group = e.info("a", str(path)).rate_groups[0]
        length, _ = e.segment_grid("a", str(path), group)
        assert length == seconds * fs and length * 4 <= 2**20  # one channel: at most 1 MiB
    finally:
        e.shutdown()


@pytest.fixture
def reading_ahead(pool, rec):
    """An engine reading one segment ahead, `rec` open as client "a"."""
    engine = Engine(ServerConfig(n_process_workers=2, n_prefetch=1, segment_seconds=300.0), pool)
    engine.open("a", str(rec))
    yield engine
    engine.open_recordings.stop()
    engine.segments.close()


def _read_ahead_segment_is_right(engine: Engine, rec, direct) -> None:
    """Segment 1, read ahead, is served from the cache and equals a direct read."""
    got = engine.read_segment("a", str(rec), 1, dtype="int32", prefetch=False).data
    np.testing.assert_array_equal(got, direct.read_raw(None, SEG, 2 * SEG).counts)
    assert engine.stats()["prefetch_hits"] == 1


def test_a_large_prefetch_is_loaded_in_block_aligned_parts(
    pool, reading_ahead, rec, direct, monkeypatch
):
    monkeypatch.setattr(segments, "PREFETCH_PART_SAMPLES", 1 << 16)  # 4 ch: 5 parts a segment
    engine = reading_ahead
    submitted = []
    real = pool.submit_split
    monkeypatch.setattr(
        pool, "submit_split", lambda req, *a, **k: submitted.append(req) or real(req, *a, **k)
    )
    engine.read_segment("a", str(rec), 0)
    stats = settle(engine, 2 * N_CH)
    assert stats["decoded_samples"] == 2 * N_CH * SEG
    fill = sorted((r.k0, r.k1) for r in submitted if r.k0 >= SEG)
    assert len(fill) == 5 and fill[0][0] == SEG and fill[-1][1] == 2 * SEG
    rec_ = engine.open_recordings.recording("a", str(rec))
    group = rec_.info.rate_groups[0]
    cuts = engine._bounds(rec_, group, group.channels, SEG, 2 * SEG)
    assert all(a in cuts for a, _ in fill)  # cut between blocks
    _read_ahead_segment_is_right(engine, rec, direct)


def test_a_background_load_is_decoded_in_small_jobs(reading_ahead, rec, direct, monkeypatch):
    """A read that comes while every reader process decodes ahead waits for one small job,
    not for a whole prefetch."""
    monkeypatch.setattr(segments, "BACKGROUND_JOB_SAMPLES", SEG)  # one channel of a segment
    jobs = []
    real = pool_package.part_jobs

    def recorded(req, key, foreground, ways):
        group, made = real(req, key, foreground, ways)
        jobs.extend(made)
        return group, made

    monkeypatch.setattr(pool_package, "part_jobs", recorded)
    reading_ahead.read_segment("a", str(rec), 0)  # segment 1 is read ahead
    settle(reading_ahead, 2 * N_CH)
    ahead = [j.payload for j in jobs if not j.foreground]
    assert sorted(r.channels for r in ahead) == [(c,) for c in sorted(direct.info.names)]
    assert all((r.k0, r.k1) == (SEG, 2 * SEG) for r in ahead)
    _read_ahead_segment_is_right(reading_ahead, rec, direct)
