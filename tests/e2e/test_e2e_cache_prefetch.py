"""The cache stays inside its byte budget and empties when a recording closes; readahead hits."""

from __future__ import annotations

import random

from .conftest import assert_same, wait_for

N = 153_600
SEG = 2560  # 10 s at 256 Hz
N_CH = 8  # the recording's channels: a segment of all of them is N_CH cache entries


def read_segment_checked(client, path, ref, i, length=SEG, names=None, dtype="float32"):
    data = client.get_signal_segment(path, i, channels=names, dtype=dtype)
    assert_same(data, ref.read_index(names, i * length, min((i + 1) * length, N), dtype))
    return data


# -- the byte budget ---------------------------------------------------------------------------
def test_cache_stays_within_its_budget(launch, connect, recording, reference):
    srv = launch(cache_mb=1, n_prefetch=2)
    c = connect(srv)
    ref = reference(recording)
    c.open_file(recording)
    c.set_signal_chunk_size(recording, 5.0)  # 40 KiB segments: ~25 fit
    rng = random.Random(7)
    for step in range(120):
        i = step if step < 60 else rng.randrange(120)
        read_segment_checked(
            c, recording, ref, i, 1280, dtype="float64" if step % 3 == 0 else "float32"
        )
        if step % 10 == 0:
            s = c.stats()
            assert s["cache_budget_bytes"] == 2**20
            assert 0 < s["cache_bytes"] <= s["cache_budget_bytes"], s
    # A segment larger than the whole budget is served, but not kept.
    c.set_signal_chunk_size(recording, 100.0)  # 8 ch x 25600 x 8 B = 1.6 MiB
    for _ in range(2):
        read_segment_checked(c, recording, ref, 1, 25600, dtype="float64")
    s = wait_for(
        lambda: (s := c.stats())["cache_bytes"] <= s["cache_budget_bytes"] and s, what="the budget"
    )
    assert s["cache_budget_bytes"] == 2**20


def test_closing_by_the_last_client_frees_the_cache(
    launch, connect, recording, mixed_rate_recording, reference
):
    srv = launch(cache_mb=8, n_prefetch=3)
    a, b = connect(srv), connect(srv)
    ref = reference(recording)
    for c in (a, b):
        c.open_file(recording)
        c.set_signal_chunk_size(recording, 10.0)
    b.open_file(mixed_rate_recording)
    for i in range(6):
        read_segment_checked(a, recording, ref, i)
        read_segment_checked(b, recording, ref, 20 + i, names=["ch002"])
    b.read_index(mixed_rate_recording, 0, 4096, channels=["ch001"])
    entries = wait_for(lambda: a.stats()["cache_entries"], what="cached segments")
    assert a.close_file(recording)
    assert a.stats()["cache_entries"] >= entries, (
        "one client's close dropped segments another still uses"
    )
    assert_same(b.get_signal_segment(recording, 2), ref.read_index(None, 2 * SEG, 3 * SEG))
    assert b.close_file(recording)  # the last client of `recording`: its segments go
    s = wait_for(lambda: (s := b.stats())["open_recordings"] == 1 and s, what="one open recording")
    mixed_bytes = s["cache_bytes"]
    assert 0 < mixed_bytes < 8 * 2**20
    assert b.close_file(mixed_rate_recording)
    s = wait_for(
        lambda: (s := b.stats())["cache_bytes"] == 0 and s["cache_entries"] == 0 and s,
        what="an empty cache",
        timeout=5,
    )
    assert s["open_recordings"] == 0 and s["clients"] == 0
    # ...and the recordings still open and read as before.
    b.open_file(recording)
    assert_same(b.read_index(recording, 100, 200), ref.read_index(None, 100, 200))


# -- readahead ---------------------------------------------------------------------------------
def cached(client, segments: int):
    """Stats once `segments` segments of every channel are cached (an entry per channel-segment)."""
    return wait_for(
        lambda: (s := client.stats())["cache_entries"] >= segments * N_CH and s,
        timeout=10,
        what=f"{segments} cached segments",
    )


def test_readahead_serves_the_next_segments(launch, connect, recording, reference):
    srv = launch(n_prefetch=2, cache_mb=16)
    c = connect(srv)
    ref = reference(recording)
    c.open_file(recording)
    c.set_signal_chunk_size(recording, 10.0)
    read_segment_checked(c, recording, ref, 0)
    s0 = cached(c, 3)  # segment 0 and the two after it
    assert (s0["misses"], s0["prefetches"], s0["prefetch_hits"]) == (1, 2, 0)
    read_segment_checked(c, recording, ref, 1)
    s1 = c.stats()
    assert s1["prefetch_hits"] == 1 and s1["misses"] == 1 and s1["hits"] == s0["hits"] + 1, s1
    cached(c, 4)
    read_segment_checked(c, recording, ref, 2)
    s2 = c.stats()
    assert s2["prefetch_hits"] == 2 and s2["misses"] == 1, s2


def test_readahead_follows_a_reader_moving_backwards(launch, connect, recording, reference):
    srv = launch(n_prefetch=2, cache_mb=16)
    c = connect(srv)
    ref = reference(recording)
    c.open_file(recording)
    c.set_signal_chunk_size(recording, 10.0)
    read_segment_checked(c, recording, ref, 40)
    cached(c, 3)  # 40, 41, 42
    read_segment_checked(c, recording, ref, 39)  # now moving backwards: 38 and 37 come next
    before = cached(c, 6)  # 40, 41, 42, 39, 38, 37
    assert before["misses"] == 2 and before["prefetches"] == 4, before
    for i, hits in ((38, 1), (37, 2)):
        read_segment_checked(c, recording, ref, i)
        s = c.stats()
        assert s["prefetch_hits"] == hits and s["misses"] == 2, s
        cached(c, 6 + hits)  # and the next one back


def test_no_readahead_when_n_prefetch_is_0(launch, connect, recording, reference):
    srv = launch(n_prefetch=0, cache_mb=16)
    c = connect(srv)
    ref = reference(recording)
    c.open_file(recording)
    c.set_signal_chunk_size(recording, 10.0)
    for i in range(5):
        read_segment_checked(c, recording, ref, i)
    s = c.stats()
    assert (s["prefetches"], s["prefetch_hits"], s["cache_entries"], s["misses"]) == (
        0,
        0,
        5 * N_CH,
        5,
    ), s
    # An explicit hint still decodes ahead, and the reads it covers are prefetch hits.
    assert c.prefetch(recording, 10 * SEG, 13 * SEG) == 3
    cached(c, 8)
    for i in (10, 11, 12):
        read_segment_checked(c, recording, ref, i)
    s = c.stats()
    assert (s["prefetches"], s["prefetch_hits"], s["misses"]) == (3, 3, 5), s


def test_a_read_that_asks_for_no_readahead_gets_none(launch, connect, recording, reference):
    srv = launch(n_prefetch=2, cache_mb=16)
    c = connect(srv)
    ref = reference(recording)
    c.open_file(recording)
    c.set_signal_chunk_size(recording, 10.0)
    for i in range(4):
        assert_same(
            c.read_index(recording, i * SEG, (i + 1) * SEG, prefetch=False),
            ref.read_index(None, i * SEG, (i + 1) * SEG),
        )
    s = c.stats()
    assert (s["prefetches"], s["cache_entries"], s["misses"]) == (0, 4 * N_CH, 4), s
    read_segment_checked(c, recording, ref, 4)  # a segment read does ask for it
    assert c.stats()["prefetches"] == 2
