"""One cache entry per channel-segment: every subset, order and dtype is served from the same
decodes, each channel-segment decoded once (again only after eviction or close), through a
real server process; every payload compared sample for sample with a direct read."""

from __future__ import annotations

import random
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import assert_same, wait_for

N = 153_600  # the recording: 8 ch x 10 min x 256 Hz
SEG = 2560  # 10 s segments
NAMES = [f"ch{i:03d}" for i in range(8)]


def expected(ref, names, k0, k1, dtype):
    if dtype == "int32":
        return ref.read_raw(names, k0, k1).counts
    return ref.read_index(names, k0, k1, dtype)


def decoded(client) -> int:
    return client.stats()["decoded_samples"]


@pytest.fixture(scope="module")
def shared(module_launch, recording):
    """A server without readahead whose cache holds the whole recording, and a client of it."""
    from mef3lab.client import Mef3Client

    srv = module_launch(n_prefetch=0, cache_mb=64)
    with Mef3Client(srv.address, client_id="property") as c:
        c.open_file(recording)
        c.set_signal_chunk_size(recording, SEG / 256)
        yield srv, c


subsets = st.lists(st.sampled_from(NAMES), min_size=1, max_size=8, unique=True)  # in random orders
windows = st.tuples(st.integers(-3000, N + 3000), st.integers(1, 4 * SEG))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(names=subsets, window=windows, dtype=st.sampled_from(["float32", "float64", "int32"]))
def test_any_subset_order_dtype_and_window_reads_as_a_direct_read(
    shared, recording, reference, names, window, dtype
):
    # Also the guard against the seed's swapped-rows bug: rows gathered from per-channel entries
    # loaded by earlier reads of other subsets, in other orders, must come back as asked.
    _, c = shared
    k0, k1 = window[0], window[0] + window[1]
    if k1 <= 0 or k0 >= N:
        return  # wholly outside the recording: refused, tested elsewhere
    with reference.lock:
        want = expected(reference(recording), names, k0, k1, dtype)
    got = (
        c.read_raw(recording, k0, k1, names).counts
        if dtype == "int32"
        else c.read_index(recording, k0, k1, names, dtype)
    )
    assert_same(got, want)
    # Each channel-segment was decoded once, whatever read came first: never more samples than
    # the distinct channel-segments cached (all fit; none was evicted).
    s = c.stats()
    assert s["decoded_samples"] == s["cache_entries"] * SEG, s
    assert s["cache_bytes"] == s["cache_entries"] * SEG * 4, s


def test_mixed_workload_decodes_each_channel_segment_once(launch, connect, recording, reference):
    srv = launch(n_prefetch=0, cache_mb=64)
    clients = [connect(srv, client_id=f"lab-{i}") for i in range(4)]
    for c in clients:
        c.open_file(recording)
        c.set_signal_chunk_size(recording, SEG / 256)
    rng = random.Random(3)
    touched: set[tuple[str, int]] = set()
    for step in range(80):
        c = clients[step % len(clients)]
        names = rng.sample(NAMES, rng.randint(1, 8))
        i = rng.randrange(8)  # segments 0..7 only, so most reads overlap earlier ones
        dtype = rng.choice(["float32", "float64", "int32"])
        got = (
            c.read_raw(recording, i * SEG, (i + 1) * SEG, names).counts
            if dtype == "int32"
            else c.get_signal_segment(recording, i, channels=names, dtype=dtype)
        )
        assert_same(got, expected(reference(recording), names, i * SEG, (i + 1) * SEG, dtype))
        touched.update((n, i) for n in names)
    s = clients[0].stats()
    assert s["decoded_samples"] == len(touched) * SEG, s
    assert (s["cache_entries"], s["cache_bytes"]) == (len(touched), len(touched) * SEG * 4), s
    assert s["hits"] > 0 and s["misses"] <= len(touched)
    # Closed by its last client, the entries go; opened again, reads decode again.
    for c in clients[1:]:
        c.close_file(recording)
    assert clients[0].stats()["cache_entries"] == len(touched)  # one client still has it open
    clients[0].close_file(recording)
    wait_for(lambda: clients[0].stats()["cache_bytes"] == 0, what="an empty cache")
    clients[0].open_file(recording)
    clients[0].set_signal_chunk_size(recording, SEG / 256)
    clients[0].get_signal_segment(recording, 0, channels=["ch001"])
    assert decoded(clients[0]) == (len(touched) + 1) * SEG


def test_evicted_channel_segments_are_decoded_again_and_only_they(
    launch, connect, recording, reference
):
    # Budget for 3 segments of all 8 channels (int32, 10 KiB a channel-segment).
    srv = launch(n_prefetch=0, cache_mb=3 * 8 * SEG * 4 / 2**20)
    c = connect(srv)
    c.open_file(recording)
    c.set_signal_chunk_size(recording, SEG / 256)
    for i in range(4):  # segment 0 is evicted by the fourth
        c.get_signal_segment(recording, i)
    s = c.stats()
    assert s["decoded_samples"] == 4 * 8 * SEG and s["cache_entries"] == 3 * 8, s
    assert_same(
        c.get_signal_segment(recording, 3, channels=["ch007", "ch000"], dtype="float64"),
        reference(recording).read_index(["ch007", "ch000"], 3 * SEG, 4 * SEG, "float64"),
    )
    assert decoded(c) == 4 * 8 * SEG  # cached: nothing decoded
    assert_same(
        c.get_signal_segment(recording, 0, channels=["ch004"]),
        reference(recording).read_index(["ch004"], 0, SEG),
    )
    assert decoded(c) == (4 * 8 + 1) * SEG  # evicted: decoded again, that channel only


def test_concurrent_overlapping_subsets_decode_each_channel_once(
    launch, connect, big_recording, reference
):
    # 64 ch x 5 min: a cold segment decodes for long enough that every client asks meanwhile.
    srv = launch(n_prefetch=0, cache_mb=256)
    big = [f"ch{i:03d}" for i in range(64)]
    subsets = [big[:40], big[24:], big[::-1], big[10:50], big[5:60:2], big[30:34]]
    clients = [connect(srv, client_id=f"viewer-{i}") for i in range(len(subsets))]
    for c in clients:
        c.open_file(big_recording)
    seg = 300 * 256
    out: dict[int, np.ndarray] = {}
    start = threading.Barrier(len(clients))

    def read(i: int) -> None:
        start.wait()
        out[i] = clients[i].get_signal_segment(big_recording, 1, channels=subsets[i])

    threads = [threading.Thread(target=read, args=(i,)) for i in range(len(clients))]
    [t.start() for t in threads]
    [t.join() for t in threads]
    ref = reference(big_recording)
    for i, names in enumerate(subsets):
        assert_same(out[i], ref.read_index(names, seg, 2 * seg))
    s = clients[0].stats()
    assert s["misses"] >= 2, (
        s
    )  # at least two reads found channels still loading (else this proves nothing)
    assert s["decoded_samples"] == 64 * seg, s  # the union, each channel once
    assert s["cache_entries"] == 64


def test_closing_returns_the_cached_rows_memory_to_the_system(launch, connect, big_recording):
    # Not only the counter: the server process's resident memory drops by what the cache held.
    import psutil

    srv = launch(n_prefetch=0, cache_mb=256)
    c = connect(srv)
    c.open_file(big_recording)
    big = [f"ch{i:03d}" for i in range(64)]
    for i in range(3):  # 3 x 64 channel-segments of 5 min, loaded 48 and 16 channels at a time
        c.get_signal_segment(big_recording, i, channels=big[:48])
        c.get_signal_segment(big_recording, i, channels=big[48:][::-1])
    held = c.stats()["cache_bytes"]
    assert held == 3 * 64 * 300 * 256 * 4
    rss = psutil.Process(srv.pid).memory_info().rss
    c.close_file(big_recording)
    wait_for(
        lambda: rss - psutil.Process(srv.pid).memory_info().rss >= 0.8 * held,
        timeout=5,
        what=f"the server to give back the {held / 2**20:.0f} MiB its cache held",
    )
