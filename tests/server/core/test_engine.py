"""The engine in-process (reader pool of 0 workers): sharing, single-flight loads, expiry."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from _growing import NAMES, write

from mef3lab.errors import NotOpenError, ReadTooLargeError, SegmentIndexError
from mef3lab.readers import open_reader
from mef3lab.server.config import ServerConfig
from mef3lab.server.core.engine import Engine


@pytest.fixture
def engine():
    e = Engine(ServerConfig(n_process_workers=0, n_prefetch=0, segment_seconds=60.0))
    yield e
    e.shutdown()


def test_subset_in_any_order_shares_its_channels_entries(engine, recording):
    engine.open("a", str(recording))
    direct = open_reader(recording).read_index(["ch005", "ch002"], 15360, 30720)
    first = engine.read_segment("a", str(recording), 1, ["ch005", "ch002"]).data
    second = engine.read_segment("a", str(recording), 1, ["ch002", "ch005"]).data
    np.testing.assert_array_equal(first, direct)
    np.testing.assert_array_equal(second, direct[::-1])
    s = engine.stats()
    assert (s["misses"], s["hits"], s["cache_entries"]) == (
        1,
        1,
        2,
    )  # one entry per channel-segment


def test_concurrent_reads_of_one_segment_decode_it_once(engine, recording):
    engine.open("a", str(recording))
    engine.open("b", str(recording))
    out = []
    threads = [
        threading.Thread(
            target=lambda c=c: out.append(engine.read_segment(c, str(recording), 3).data)
        )
        for c in "abab"
    ]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(out) == 4 and all(np.array_equal(o, out[0], equal_nan=True) for o in out)
    assert engine.stats()["decoded_samples"] == out[0].size


def test_clients_reading_a_channel_each_keep_what_they_read_cached(tmp_path):
    """The budget counts a segment with all its channels, however few each load decodes.

    Counted by the loads (one channel each), it held 4 rows here: the 6 rows two clients
    read were decoded again on every pass.
    """
    path = str(write(tmp_path / "two.mefd", 0, 60))  # MefWriter: 2 channels, 6 segments of 10 s
    with open_reader(path, engine="pymef") as r:
        direct = r.read_index(list(NAMES), 0, 3 * 2560)
    e = Engine(ServerConfig(n_process_workers=0, n_prefetch=0, segment_seconds=10.0))
    try:
        for client in NAMES:
            e.open(client, path)
        for n_pass in range(2):
            for seg in range(3):
                for i, client in enumerate(NAMES):
                    got = e.read_segment(client, path, seg, [client]).data
                    np.testing.assert_array_equal(got[0], direct[i, seg * 2560 : seg * 2560 + 2560])
            if n_pass == 0:
                first_pass = e.stats()
        s = e.stats()
        assert s["decoded_samples"] == first_pass["decoded_samples"] == 6 * 2560
        assert (s["hits"], s["cache_entries"]) == (6, 6)
        assert s["cache_budget_bytes"] >= 8 * 2560 * 4  # (3 behind + 1) segments of 2 channels
    finally:
        e.shutdown()


def test_a_read_resolves_its_path_once(engine, recording):
    """Following the path's links (a served root's rules too) once per read, not per step."""
    engine.open("a", str(recording))
    resolved = []
    real = engine.open_recordings._resolve
    engine.open_recordings._resolve = lambda c, p: resolved.append(p) or real(c, p)
    got = engine.read_index("a", str(recording), ["ch002"], 100, 612).data
    np.testing.assert_array_equal(got, open_reader(recording).read_index(["ch002"], 100, 612))
    assert resolved == [str(recording)]


def test_views_are_per_client(engine, recording):
    engine.open("a", str(recording))
    engine.open("b", str(recording))
    engine.set_segment_seconds("a", str(recording), 10)
    assert engine.read_segment("a", str(recording), 0).data.shape[1] == 2560
    assert engine.read_segment("b", str(recording), 0).data.shape[1] == 15360
    with pytest.raises(SegmentIndexError, match="10 s"):
        engine.read_segment("a", str(recording), 60)
    engine.close("a", str(recording))
    with pytest.raises(NotOpenError):
        engine.read_segment("a", str(recording), 0)
    assert engine.read_segment("b", str(recording), 0).data.shape[1] == 15360


def test_last_close_frees_the_cache(engine, recording):
    engine.open("a", str(recording))
    engine.read_segment("a", str(recording), 0)
    assert engine.stats()["cache_bytes"] > 0
    engine.close("a", str(recording))
    assert engine.stats()["cache_bytes"] == 0 and engine.stats()["open_recordings"] == 0


def test_idle_clients_are_forgotten(engine, recording):
    engine.open("quiet", str(recording))
    engine.open("busy", str(recording))
    later = time.monotonic() + engine.config.client_idle_s + 1
    engine.open_recordings._last_seen["busy"] = later
    assert engine.open_recordings.expire_idle(now=later) == ["quiet"]
    assert engine.list_open("quiet") == [] and engine.list_open("busy") == [str(recording)]


def test_errors_are_not_cached(engine, recording):
    engine.open("a", str(recording))
    with pytest.raises(SegmentIndexError):
        engine.read_segment("a", str(recording), 10**6)
    assert engine.stats()["cache_entries"] == 0


@pytest.mark.parametrize("defer", [False, True])
def test_prefetch_starts_when_the_caller_says_so(recording, defer):
    # A server defers it until its reply is sent; direct users of the engine get it at once.
    e = Engine(ServerConfig(n_process_workers=0, n_prefetch=2, segment_seconds=60.0))
    try:
        e.open("a", str(recording))
        s = e.read_segment("a", str(recording), 0, defer_prefetch=defer)
        assert e.stats()["prefetches"] == (0 if defer else 2)
        s.start_prefetch()  # a no-op when nothing was deferred
        assert e.stats()["prefetches"] == 2
        assert e.read_segment("a", str(recording), 2, prefetch=False).data.shape == s.data.shape
        assert e.stats()["prefetch_hits"] >= 1
    finally:
        e.shutdown()


def test_default_segments_of_wide_fast_groups_are_shortened(recording):
    # 8 channels at 256 Hz: 0.5 MiB of float32 hold 64 s of them.
    e = Engine(
        ServerConfig(n_process_workers=0, n_prefetch=0, segment_seconds=300.0, segment_mb=0.5)
    )
    try:
        e.open("a", str(recording))
        group = e.info("a", str(recording)).rate_groups[0]
        assert e.segment_grid("a", str(recording), group)[0] == 64 * 256
        assert (
            e.segment_seconds("a", str(recording)) == 64.0
        )  # what the grid reports: the seconds used
        e.set_segment_seconds("a", str(recording), 100.0)  # a size the client chose is kept
        assert e.segment_grid("a", str(recording), group)[0] == 100 * 256
    finally:
        e.shutdown()


def test_segments_larger_than_the_read_limit_are_refused_before_decoding(recording):
    e = Engine(ServerConfig(n_process_workers=0, n_prefetch=0, max_read_mb=0.5))
    try:
        e.open("a", str(recording))
        e.set_segment_seconds(
            "a", str(recording), 120.0
        )  # 8 ch x 30720 samples: 0.94 MiB of float32
        for read in (
            lambda: e.read_index("a", str(recording), None, 0, 10),
            lambda: e.envelope("a", str(recording), None, 0, 100, 10),
            lambda: e.hint("a", str(recording), None, 0, 10),
        ):
            with pytest.raises(ReadTooLargeError, match="a segment .*set a shorter segment size"):
                read()
        assert e.stats()["misses"] == 0  # nothing was decoded
        e.set_segment_seconds("a", str(recording), 30.0)
        assert e.read_index("a", str(recording), ["ch000"], 0, 10).data.shape == (1, 10)
    finally:
        e.shutdown()


def test_the_block_bounds_are_asked_for_at_open_once(recording, monkeypatch):
    """An opening asks for its block bounds in the background; a first read finds them, and
    readers who ask at once share one question."""
    # 300-s segments of 8 channels: a read of a page decodes its blocks first (the bounds)
    e = Engine(ServerConfig(n_process_workers=0, n_prefetch=0, segment_seconds=300.0))
    asked = []
    call = e.pool.call

    def counted(path, password, decoder, method, *args, **kwargs):
        if method == "block_bounds":
            asked.append(args)
            time.sleep(0.2)  # a reader process's round trip, long
        return call(path, password, decoder, method, *args, **kwargs)

    monkeypatch.setattr(e.pool, "call", counted)
    try:
        e.open("a", str(recording))
        deadline = time.monotonic() + 10
        while not asked and time.monotonic() < deadline:  # no read yet
            time.sleep(0.01)
        assert len(asked) == 1
        reads = [
            threading.Thread(target=e.read_index, args=("a", str(recording), None, k, k + 2560))
            for k in (0, 30_000, 60_000)
        ]
        [t.start() for t in reads]
        [t.join() for t in reads]
        assert len(asked) == 1
        want = open_reader(recording).read_index(None, 100_000, 102_560)
        np.testing.assert_array_equal(
            e.read_index("a", str(recording), None, 100_000, 102_560).data, want
        )
        assert len(asked) == 1
    finally:
        e.shutdown()
