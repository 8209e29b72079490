"""Clients of one server: each has its own segments and open files; many at once read correctly."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import numpy as np
import pytest

from mef3lab.errors import NotOpenError

from .conftest import assert_same, wait_for

US = 1_000_000
N = 153_600  # samples per channel of `recording`
NAMES = [f"ch{i:03d}" for i in range(8)]


@pytest.fixture(scope="module")
def small_cache_server(module_launch):
    """A server whose cache holds only a few segments: reads keep evicting each other."""
    return module_launch(cache_mb=4, n_prefetch=2, n_process_workers=2)


def run_threads(targets) -> None:
    """Run the callables at once (released together); re-raise the first failure."""
    errors: list[BaseException] = []
    start = threading.Barrier(len(targets))

    def wrap(fn):
        def run():
            try:
                start.wait()
                fn()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        return run

    threads = [threading.Thread(target=wrap(fn)) for fn in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a reading thread hung"
    if errors:
        raise errors[0]


def test_two_clients_each_get_their_own_segments(small_cache_server, connect, recording, reference):
    alice, bob = connect(small_cache_server, "alice"), connect(small_cache_server, "bob")
    for c in (alice, bob):
        c.open_file(recording)
    alice.set_signal_chunk_size(recording, 10.0)
    bob.set_signal_chunk_size(recording, 3.0)
    alice.set_active_channels(recording, ["ch001", "ch000"])
    bob.set_active_channels(recording, ["ch007"])
    assert alice.segment_grid(recording).groups[0].n_segments == 60
    assert bob.segment_grid(recording).groups[0].n_segments == 200
    got: dict[str, dict[int, object]] = {"alice": {}, "bob": {}}

    def reader(client, name, n_seg):
        def run():
            for i in range(n_seg):
                got[name][i] = client.get_signal_segment(recording, i)

        return run

    run_threads([reader(alice, "alice", 60), reader(bob, "bob", 200)])
    ref = reference(recording)
    for i, data in got["alice"].items():
        assert_same(data, ref.read_index(["ch001", "ch000"], i * 2560, (i + 1) * 2560))
    for i, data in got["bob"].items():
        assert_same(data, ref.read_index(["ch007"], i * 768, (i + 1) * 768))
    # Settings stayed each client's own through it all.
    assert (
        alice.segment_grid(recording).seconds == 10.0 and bob.segment_grid(recording).seconds == 3.0
    )


def test_closing_in_one_client_does_not_close_for_another(
    small_cache_server, connect, recording, mixed_rate_recording, reference
):
    alice, bob = connect(small_cache_server, "alice-2"), connect(small_cache_server, "bob-2")
    plain, mixed = str(Path(recording).resolve()), str(Path(mixed_rate_recording).resolve())
    alice.open_file(recording)
    alice.open_file(mixed_rate_recording)
    bob.open_file(recording)
    assert alice.list_open_files() == sorted([plain, mixed])
    assert bob.list_open_files() == [plain]
    assert alice.close_file(recording)
    assert alice.list_open_files() == [mixed]
    assert bob.list_open_files() == [plain]
    with pytest.raises(NotOpenError):
        alice.read_index(recording, 0, 10)
    assert_same(
        bob.read_index(recording, 1000, 3000), reference(recording).read_index(None, 1000, 3000)
    )
    assert not alice.close_file(recording)  # closing twice: nothing to close
    assert bob.close_file(recording) and alice.close_file(mixed_rate_recording)
    assert alice.list_open_files() == [] and bob.list_open_files() == []
    assert connect(small_cache_server, "carol").list_open_files() == []


def test_one_client_id_is_one_client_across_connections(small_cache_server, connect, recording):
    first, second = connect(small_cache_server, "dave"), connect(small_cache_server, "dave")
    first.open_file(recording)
    second.set_signal_chunk_size(recording, 20.0)  # works: the recording is open for "dave"
    assert first.segment_grid(recording).seconds == 20.0
    assert second.list_open_files() == [str(Path(recording).resolve())]
    assert second.close_file(recording) and first.list_open_files() == []


def random_reads(client, path, rng: random.Random, n: int, seconds: float):
    """`n` random reads of every kind; returns (what, args, result) for checking afterwards."""
    length = int(round(seconds * 256))
    n_seg = -(-N // length)
    start = client.info(path).start_uutc
    out = []
    for _ in range(n):
        kind = rng.choice(["segment", "index", "time", "raw", "segment64"])
        names = rng.sample(NAMES, rng.randint(1, 8)) if rng.random() < 0.6 else None
        if kind.startswith("segment"):
            i = rng.randrange(n_seg)
            dtype = "float64" if kind == "segment64" else "float32"
            data = client.get_signal_segment(path, i, channels=names, dtype=dtype)
            out.append(("index", (names, i * length, min((i + 1) * length, N), dtype), data))
        elif kind == "index":
            k0 = rng.randrange(-500, N)
            k1 = k0 + rng.randrange(0, 20 * 256)
            out.append(
                ("index", (names, k0, k1, "float32"), client.read_index(path, k0, k1, names))
            )
        elif kind == "time":
            t0 = start + rng.randrange(-2 * US, 600 * US)
            t1 = t0 + rng.randrange(1, 15 * US)
            out.append(
                (
                    "time",
                    (names, t0, t1, "float64"),
                    client.read_range(path, t0, t1, names, "float64"),
                )
            )
        else:
            k0 = rng.randrange(0, N - 10)
            k1 = min(N + 100, k0 + rng.randrange(1, 30 * 256))
            out.append(("raw", (names, k0, k1), client.read_raw(path, k0, k1, names)))
    return out


def check(results, ref) -> None:
    for kind, args, data in results:
        if kind == "index":
            assert_same(data, ref.read_index(*args))
        elif kind == "time":
            names, t0, t1, dtype = args
            assert_same(data, ref.read(names, t0, t1, dtype))
        else:
            want = ref.read_raw(*args)
            assert_same(data.counts, want.counts)
            assert_same(data.factors, want.factors)


def test_many_clients_random_reads_at_once(small_cache_server, connect, recording, reference):
    sizes = [5.0, 7.0, 13.0, 30.0]
    clients = [connect(small_cache_server, f"random-{i}") for i in range(len(sizes))]
    results: dict[int, list] = {}
    for c, s in zip(clients, sizes, strict=True):
        c.open_file(recording)
        c.set_signal_chunk_size(recording, s)

    def worker(i):
        def run():
            results[i] = random_reads(clients[i], recording, random.Random(1000 + i), 40, sizes[i])

        return run

    run_threads([worker(i) for i in range(len(clients))])
    ref = reference(recording)
    for i in range(len(clients)):
        check(results[i], ref)
    stats = clients[0].stats()
    assert stats["cache_budget_bytes"] == 4 * 2**20
    assert stats["cache_bytes"] <= stats["cache_budget_bytes"]
    assert stats["misses"] > 0 and stats["hits"] > 0
    for c in clients:
        assert c.close_file(recording)


def test_two_threads_of_one_client(small_cache_server, connect, recording, reference):
    c = connect(small_cache_server, "shared-by-threads")
    c.open_file(recording)
    c.set_signal_chunk_size(recording, 4.0)
    results: dict[int, list] = {}

    def worker(i):
        def run():
            results[i] = random_reads(c, recording, random.Random(2000 + i), 40, 4.0)

        return run

    run_threads([worker(0), worker(1)])
    ref = reference(recording)
    check(results[0], ref)
    check(results[1], ref)
    assert c.close_file(recording)


def test_raw_reads_racing_a_close_fail_only_as_not_open(launch, connect, recording):
    c = connect(launch(n_prefetch=0, cache_mb=64), "closes-while-reading")
    c.open_file(recording)
    stop = threading.Event()
    unexpected: list[BaseException] = []

    def read():
        while not stop.is_set():
            try:
                c.read_raw(recording, 0, 2000)
            except NotOpenError:
                pass
            except Exception as exc:  # noqa: BLE001 - what this test looks for
                unexpected.append(exc)
                stop.set()

    def toggle():
        deadline = threading.Event()
        # it takes well under a second when the bug is there
        timer = threading.Timer(5.0, deadline.set)
        timer.start()
        try:
            while not stop.is_set() and not deadline.is_set():
                c.close_file(recording)
                c.open_file(recording)
        finally:
            timer.cancel()
            stop.set()

    run_threads([read, read, read, toggle])
    assert not unexpected, f"{type(unexpected[0]).__name__}: {unexpected[0]}"


def test_an_idle_client_is_forgotten_and_an_active_one_is_not(
    module_launch, connect, recording, reference
):
    srv = module_launch(client_idle_s=1.0, n_prefetch=0)
    active, idle = connect(srv, "active"), connect(srv, "idle")
    for c in (active, idle):
        c.open_file(recording)
        c.set_signal_chunk_size(recording, 5.0)
    want = reference(recording).read_index(None, 0, 500)
    path = str(recording.resolve())
    # The active client keeps reading for longer than the idle limit; the idle one says nothing.
    wait_for(
        lambda: (
            assert_same(active.read_index(recording, 0, 500), want) or idle.list_open_files() == []
        ),
        timeout=10,
        interval=0.2,
        what="the idle client to be forgotten",
    )
    assert active.list_open_files() == [path]
    assert active.stats()["clients"] == 1
    # The idle client comes back: its client opens the recording again, with its segment size.
    assert_same(
        idle.get_signal_segment(recording, 2), reference(recording).read_index(None, 2560, 3840)
    )
    assert idle.list_open_files() == [path] and idle.segment_grid(recording).seconds == 5.0


def test_a_read_starts_no_thread_in_the_client(
    small_cache_server, connect, recording, reference, monkeypatch
):
    """A streamed reply is read on the calling thread: gRPC's own client started a thread for
    each call made while its channel had no other in progress (most of a small read's cost).
    """
    c = connect(small_cache_server, "one-thread")
    c.open_file(recording)
    started = []
    real_start = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", lambda t: started.append(t) or real_start(t))
    got = [c.read_index(recording, k0, k0 + 256, ["ch003"]) for k0 in range(0, 20 * 256, 256)]
    monkeypatch.undo()
    assert started == []
    assert_same(np.concatenate(got, axis=1), reference(recording).read_index(["ch003"], 0, 5120))
