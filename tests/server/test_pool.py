"""The reader pool: real spawned workers on real files, crashes, leaks and orphans."""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from concurrent.futures import wait
from pathlib import Path

import numpy as np
import psutil
import pytest

from mef3lab.errors import (
    CancelledError,
    CorruptDataError,
    RecordingNotFoundError,
    TimeRangeError,
    UnknownChannelError,
)
from mef3lab.readers import open_reader
from mef3lab.server.pool import ReaderPool, ReadRequest, SharedArray
from mef3lab.testing.synth import synthesize

try:
    from . import _pool_engines as misbehaving
except ImportError:
    import _pool_engines as misbehaving

ENGINES = ("mef3io", "pymef")
SHM_PREFIX = f"mef3lab_{os.getpid()}_"


def shm_blocks() -> list[str]:
    """This process's pool blocks still named in /dev/shm."""
    return sorted(n for n in os.listdir("/dev/shm") if n.startswith(SHM_PREFIX))


def gone(pids, timeout: float = 5.0) -> bool:
    """True once none of `pids` is a live process (zombies count as gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = []
        for pid in pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                pass
        if not alive:
            return True
        time.sleep(0.05)
    return False


def wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("timed out waiting")


def hang_pid(session: Path) -> int:
    """The pid of the worker hanging in a read of `session` (once it has written it into the marker)."""
    marker = session / "hang-on-read"
    text = wait_for(lambda: marker.exists() and marker.read_text())
    return int(text)


@pytest.fixture(scope="module")
def pool():
    with ReaderPool(2) as p:
        yield p
    assert not shm_blocks()


@pytest.fixture
def small(tmp_path) -> Path:
    """A small recording of its own (tests put marker files in it): 3 ch, 256 Hz, 60 s."""
    return synthesize(
        tmp_path / "small.mefd", channels=3, fs=256.0, seconds=60.0, gaps=[(20.0, 1.0)], seed=3
    )


@pytest.fixture
def engine_pool():
    """Two workers that also know the misbehaving test engine."""
    with ReaderPool(2, engines=misbehaving.SPEC) as p:
        yield p
    assert not shm_blocks()


def windows(info):
    n = info.rate_groups[0].grid.n_samples
    return [(0, n), (-500, 700), (n - 300, n + 250), (15_000, 15_001), (5, 5), (61 * 256, 62 * 256)]


# -- data ------------------------------------------------------------------------------
@pytest.mark.parametrize("engine", ENGINES)
def test_reads_equal_direct_reads(pool, recording, engine):
    with open_reader(recording, engine=engine) as direct:
        info = direct.info
        names = info.names
        for chans in (names, names[2:5], (names[6], names[1])):
            for k0, k1 in windows(info):
                for dtype in ("float32", "float64"):
                    got = pool.submit(
                        ReadRequest(recording, None, engine, chans, k0, k1, dtype)
                    ).result()
                    assert isinstance(got, SharedArray)
                    assert got.array.dtype == np.dtype(dtype) and not got.array.flags.writeable
                    np.testing.assert_array_equal(
                        got.array, direct.read_index(chans, k0, k1, dtype)
                    )
        raw = pool.submit(
            ReadRequest(recording, None, engine, names[:3], 100, 9000, "int32")
        ).result()
        np.testing.assert_array_equal(raw.array, direct.read_raw(names[:3], 100, 9000).counts)
    assert not shm_blocks()  # names go as soon as each read is done


@pytest.mark.parametrize("engine", ENGINES)
def test_metadata_and_calls_come_from_workers(pool, recording, engine):
    with open_reader(recording, engine=engine) as direct:
        assert pool.info(recording, None, engine) == direct.info
        env = pool.call(recording, None, engine, "block_envelope", "ch003", None, None)
        want = direct.block_envelope("ch003")
        assert env.keys() == want.keys()
        for k in want:
            np.testing.assert_array_equal(env[k], want[k])
    with pytest.raises(ValueError, match="method must be one of"):
        pool.call(recording, None, engine, "close")


def test_many_threads_submit_at_once(pool, recording):
    info = pool.info(recording, None, "mef3io")
    names = info.names
    with open_reader(recording, engine="mef3io") as direct:
        jobs = [(names[i % 8 : i % 8 + 3], 1000 * i, 1000 * i + 5000) for i in range(48)]
        expected = [direct.read_index(c, k0, k1) for c, k0, k1 in jobs]
    results: dict[int, np.ndarray] = {}
    errors = []
    barrier = threading.Barrier(8)

    def client(t):
        try:
            barrier.wait()
            futs = {
                i: pool.submit(
                    ReadRequest(recording, None, "mef3io", *jobs[i]), foreground=i % 2 == 0
                )
                for i in range(t, len(jobs), 8)
            }
            for i, f in futs.items():
                results[i] = f.result(timeout=60).array
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i, want in enumerate(expected):
        np.testing.assert_array_equal(results[i], want)
    s = pool.stats()
    assert (s["busy"], s["queued"], s["crashes"]) == (0, 0, 0)


# -- errors ----------------------------------------------------------------------------
@pytest.mark.parametrize("n_workers", [2, 0])
def test_errors_keep_their_class_and_message(request, recording, tmp_path, n_workers):
    p = request.getfixturevalue("pool") if n_workers else ReaderPool(0)
    with open_reader(recording, engine="mef3io") as direct:
        with pytest.raises(UnknownChannelError) as want:
            direct.read_index(["ch001", "nope"], 0, 10)
        with pytest.raises(TimeRangeError) as inverted:
            direct.read_index(["ch001"], 10, 5)
    with pytest.raises(UnknownChannelError) as got:
        p.submit(ReadRequest(recording, None, "mef3io", ("ch001", "nope"), 0, 10)).result()
    assert str(got.value) == str(want.value)
    with pytest.raises(TimeRangeError) as got:
        p.submit(ReadRequest(recording, None, "mef3io", ("ch001",), 10, 5)).result()
    assert str(got.value) == str(inverted.value)
    with pytest.raises(RecordingNotFoundError, match="missing.mefd"):
        p.submit(ReadRequest(tmp_path / "missing.mefd", None, "mef3io", ("ch001",), 0, 10)).result()
    with pytest.raises(RecordingNotFoundError, match="missing.mefd"):
        p.info(tmp_path / "missing.mefd", None, "pymef")
    with pytest.raises(ValueError, match="unknown engine"):
        p.info(recording, None, "no-such-engine")
    with pytest.raises(ValueError, match="dtype"):
        ReadRequest(recording, None, "mef3io", ("ch001",), 0, 10, "int16")
    assert not shm_blocks()
    if not n_workers:
        p.close()


def test_in_process_mode(recording):
    before = {c.pid for c in multiprocessing.active_children()}
    with ReaderPool(0) as p, open_reader(recording) as direct:
        got = p.submit(ReadRequest(recording, None, None, ("ch000", "ch005"), -10, 3000)).result()
        np.testing.assert_array_equal(got.array, direct.read_index(["ch000", "ch005"], -10, 3000))
        assert p.info(recording) == direct.info
        assert p.stats()["workers"] == 0
        assert {c.pid for c in multiprocessing.active_children()} == before
    with pytest.raises(RuntimeError, match="closed"):
        p.submit(ReadRequest(recording, None, None, ("ch000",), 0, 1))


# -- shared memory ---------------------------------------------------------------------
def test_results_outlive_release_and_free_their_memory(pool, recording):
    got = pool.submit(
        ReadRequest(recording, None, "mef3io", ("ch000", "ch001"), 0, 20_000)
    ).result()
    assert not shm_blocks()  # no name to leak, even while the result lives
    view = got.array[1, 100:200]
    keep = view.copy()
    mapping = weakref.ref(got.array.base)
    got.release()
    got.release()
    assert got.released
    with pytest.raises(ValueError, match="released"):
        got.array
    gc.collect()
    np.testing.assert_array_equal(view, keep)  # a caller's view stays valid after release
    assert mapping() is not None
    del view
    gc.collect()
    assert mapping() is None  # the last view gone: unmapped


def resident_bytes(address: int) -> int:
    """Resident bytes of this process's mapping that holds `address` (/proc/self/smaps)."""
    inside = False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()[0]
        if "-" in head and not head.endswith(":"):
            lo, hi = (int(x, 16) for x in head.split("-"))
            inside = lo <= address < hi
        elif inside and head == "Rss:":
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no mapping holds {address:#x}")


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="rows give their pages back on Linux"
)
@pytest.mark.parametrize("split", [False, True])
def test_rows_taken_one_by_one_give_their_memory_back_one_by_one(pool, recording, split):
    # What the segment store relies on: a read's rows cached as separate entries with no copy,
    # each row's pages returned when that row is evicted, the block unmapped with the last.
    names = ("ch000", "ch001", "ch002")
    req = ReadRequest(recording, None, "mef3io", names, 0, 50_000, "int32")
    got = (pool.submit_split(req, 2) if split else pool.submit(req)).result()
    mapping = weakref.ref(got._mapping)
    rows = list(got.take_rows())
    assert got.released and not shm_blocks()
    with open_reader(recording, engine="mef3io") as direct:
        want = direct.read_raw(list(names), 0, 50_000).counts
    for row, expected in zip(rows, want):
        np.testing.assert_array_equal(row, expected)
        assert not row.flags.writeable and row.flags.c_contiguous
    start = rows[0].__array_interface__["data"][0]
    assert resident_bytes(start) == 3 * req.row_bytes
    del row
    rows.pop(1)
    gc.collect()
    assert (
        resident_bytes(start) == 2 * req.row_bytes
    )  # the middle row's pages went, the others stay
    np.testing.assert_array_equal(rows[1], want[2])
    rows.clear()
    gc.collect()
    assert mapping() is None


# -- crashes ---------------------------------------------------------------------------
def test_killed_worker_fails_its_read_and_is_replaced(engine_pool, small, recording):
    (small / "hang-on-read").touch()
    doomed = engine_pool.submit(
        ReadRequest(small, None, misbehaving.ENGINE, ("ch000", "ch002"), 0, 5000)
    )
    pid = hang_pid(small)
    # The other worker keeps serving while one hangs.
    ok = engine_pool.submit(ReadRequest(recording, None, "mef3io", ("ch001",), 0, 100)).result(
        timeout=30
    )
    assert ok.array.shape == (1, 100)
    assert engine_pool.stats()["busy"] == 1
    os.kill(pid, signal.SIGINT)  # workers ignore Ctrl-C
    time.sleep(0.2)
    assert psutil.pid_exists(pid) and not doomed.done()
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(CorruptDataError) as err:
        doomed.result(timeout=10)
    msg = str(err.value)
    assert (
        str(small) in msg and "ch000, ch002" in msg and "SIGKILL" in msg and "may be damaged" in msg
    )
    (small / "hang-on-read").unlink()
    s = wait_for(lambda: (s := engine_pool.stats())["ready"] == 2 and s)
    assert pid not in s["pids"] and (s["restarts"], s["crashes"]) == (1, 1)
    with open_reader(small, engine="mef3io") as direct:
        want = direct.read_index(["ch000", "ch002"], 0, 5000)
    futs = [
        engine_pool.submit(
            ReadRequest(small, None, misbehaving.ENGINE, ("ch000", "ch002"), 0, 5000)
        )
        for _ in range(4)
    ]
    for f in futs:
        np.testing.assert_array_equal(f.result(timeout=30).array, want)
    assert not shm_blocks()


def test_segfault_fails_only_that_read_and_is_not_retried(engine_pool, small, recording):
    (small / "segfault-on-read").touch()
    with pytest.raises(
        CorruptDataError, match=r"crashed reading .*small\.mefd channels \[ch001\].*SIGSEGV"
    ):
        engine_pool.submit(ReadRequest(small, None, misbehaving.ENGINE, ("ch001",), 0, 10)).result(
            timeout=30
        )
    time.sleep(0.3)  # a retry, if there were one, would kill the second worker by now
    s = engine_pool.stats()
    assert (s["restarts"], s["crashes"]) == (1, 1)
    got = engine_pool.submit(ReadRequest(recording, None, "mef3io", ("ch001",), 0, 10)).result(
        timeout=30
    )
    assert got.array.shape == (1, 10)
    assert not shm_blocks()


def test_workers_that_cannot_start_fail_requests_with_the_reason(recording):
    with ReaderPool(2, mp_context=misbehaving.StillbornContext()) as p:
        fut = p.submit(ReadRequest(recording, None, "mef3io", ("ch000",), 0, 10))
        with pytest.raises(RuntimeError, match="die while starting .*exited with code 3"):
            fut.result(timeout=30)
        s = p.stats()
        assert s["crashes"] == 0 and s["restarts"] >= 3
        with pytest.raises(RuntimeError, match="die while starting"):
            p.submit(ReadRequest(recording, None, "mef3io", ("ch000",), 0, 10))
    assert not shm_blocks()


# -- scheduling ------------------------------------------------------------------------
def test_foreground_first_and_cancelled_never_run(small):
    log = small / "read-log"
    log.touch()
    (small / "hang-on-read").touch()
    with ReaderPool(1, engines=misbehaving.SPEC) as p:

        def req(k0):
            return ReadRequest(small, None, misbehaving.ENGINE, ("ch000",), k0, k0 + 10)

        blocker = p.submit(req(0))
        pid = hang_pid(small)
        done = []
        futs = {k0: p.submit(req(k0), foreground=False) for k0 in (100, 200, 300)}
        futs[400] = p.submit(req(400), foreground=True)
        assert futs[200].cancel()
        for k0, f in futs.items():
            f.add_done_callback(lambda f, k0=k0: done.append(k0))
        assert p.stats()["queued"] == 3
        (small / "hang-on-read").unlink()
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(CorruptDataError):
            blocker.result(timeout=10)
        wait([futs[k] for k in (100, 300, 400)], timeout=30)
        assert done == [200, 400, 100, 300]  # cancelled at once; then foreground before background
        assert futs[200].cancelled()
    grid = open_reader(small, engine="mef3io").info.rate_groups[0].grid
    reads = [line.split()[2] for line in log.read_text().splitlines() if line.startswith("read")]
    assert str(grid.uutc_of(200)) not in reads
    assert reads.count(str(grid.uutc_of(400))) == 1


def test_close_recording_reopens_afresh(small):
    log = small / "read-log"
    log.touch()
    with ReaderPool(1, engines=misbehaving.SPEC) as p:
        req = ReadRequest(small, None, misbehaving.ENGINE, ("ch000",), 0, 10)
        for _ in range(3):
            p.submit(req).result(timeout=30)
        p.close_recording(small)
        p.submit(req).result(timeout=30)
    opens = [line for line in log.read_text().splitlines() if line.startswith("open")]
    assert len(opens) == 2


# -- lifetime --------------------------------------------------------------------------
def test_close_fails_pending_work_and_leaves_nothing(small, recording):
    (small / "hang-on-read").touch()
    p = ReaderPool(2, engines=misbehaving.SPEC)
    running = p.submit(ReadRequest(small, None, misbehaving.ENGINE, ("ch000",), 0, 1000))
    hang_pid(small)
    pids = p.stats()["pids"]
    assert shm_blocks()  # the running read's block
    queued = [
        p.submit(ReadRequest(small, None, misbehaving.ENGINE, ("ch001",), 0, 1000))
        for _ in range(3)
    ]
    t = time.monotonic()
    p.close()
    assert time.monotonic() - t < 5
    for f in [running, *queued]:
        with pytest.raises(CancelledError, match="closed"):
            f.result(timeout=1)
    p.close()  # idempotent
    assert p.closed
    with pytest.raises(RuntimeError, match="closed"):
        p.submit(ReadRequest(recording, None, "mef3io", ("ch000",), 0, 1))
    assert gone(pids, timeout=0.5)
    assert not [c for c in multiprocessing.active_children() if c.pid in pids]
    assert not shm_blocks()


def test_forgotten_pool_stops_its_workers(recording):
    p = ReaderPool(2)
    p.info(recording, None, "mef3io")
    pids = wait_for(lambda: (s := p.stats())["ready"] == 2 and s["pids"])
    del p
    gc.collect()
    assert gone(pids)


@pytest.mark.parametrize("death", ["exit", "sigkill-mid-read"])
def test_workers_die_with_their_parent(small, death):
    """A server that dies abruptly (no close, no atexit) leaves no worker behind, even a busy one."""
    if death == "sigkill-mid-read":
        (small / "hang-on-read").touch()
    script = textwrap.dedent(f"""
        import os, signal, sys, time
        import _pool_engines
        from mef3lab.server.pool import ReaderPool, ReadRequest
        if __name__ == "__main__":
            p = ReaderPool(2, engines=_pool_engines.SPEC)
            p.submit(ReadRequest({str(small)!r}, None, _pool_engines.ENGINE, ("ch000",), 0, 10))
            while True:
                s = p.stats()
                if s["ready"] == 2 and ({death!r} == "exit" or os.path.getsize({str(small / "hang-on-read")!r})):
                    break
                time.sleep(0.02)
            print(*s["pids"], flush=True)
            if {death!r} == "exit":
                os._exit(0)
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]),
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = proc.communicate(timeout=60)
    pids = [int(x) for x in out.split()]
    assert len(pids) == 2, err
    assert gone(pids, timeout=5), f"workers {pids} outlived their parent"
    # The block of the read in flight was the dead parent's: its resource tracker removes it.
    assert wait_for(
        lambda: not [n for n in os.listdir("/dev/shm") if n.startswith(f"mef3lab_{proc.pid}_")]
    )


# -- split reads ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32"])
def test_split_reads_equal_direct_reads(pool, recording, dtype):
    with open_reader(recording) as direct:
        names = direct.info.names
        for chans, ways in ((names, 2), (names[:3], 2), (names[::-1], 5), ((names[4],), 2)):
            got = pool.submit_split(
                ReadRequest(recording, None, None, chans, 5000, 90_000, dtype), ways
            ).result()
            assert isinstance(got, SharedArray) and not got.array.flags.writeable
            want = (
                direct.read_raw(chans, 5000, 90_000).counts
                if dtype == "int32"
                else direct.read_index(chans, 5000, 90_000, dtype)
            )
            np.testing.assert_array_equal(got.array, want)
    assert not shm_blocks()


def test_a_split_read_whose_part_dies_fails_whole_and_leaks_nothing(engine_pool, small):
    (small / "hang-on-read").touch()
    doomed = engine_pool.submit_split(
        ReadRequest(small, None, misbehaving.ENGINE, ("ch000", "ch001", "ch002"), 0, 5000), 2
    )
    os.kill(hang_pid(small), signal.SIGKILL)
    with pytest.raises(CorruptDataError, match="SIGKILL"):
        doomed.result(timeout=10)  # at once, though the other part still runs
    (small / "hang-on-read").unlink()
    for pid in engine_pool.stats()["pids"]:  # end the other part too (it hangs by design)
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: engine_pool.stats()["ready"] == 2)
    wait_for(lambda: not shm_blocks())


def test_a_split_read_cancelled_before_it_starts_never_runs(engine_pool, small, recording):
    wait_for(
        lambda: engine_pool.stats()["ready"] == 2
    )  # started workers: a kill below fails their reads
    (small / "hang-on-read").touch()
    blockers = [
        engine_pool.submit(ReadRequest(small, None, misbehaving.ENGINE, ("ch000",), 0, 100))
        for _ in range(2)
    ]
    wait_for(lambda: engine_pool.stats()["busy"] == 2)
    queued = engine_pool.submit_split(
        ReadRequest(recording, None, "mef3io", ("ch000", "ch001"), 0, 50_000), 2
    )
    assert queued.cancel() and queued.cancelled()
    for pid in engine_pool.stats()["pids"]:
        os.kill(pid, signal.SIGKILL)
    for f in blockers:
        with pytest.raises(CorruptDataError):
            f.result(timeout=10)
    (small / "hang-on-read").unlink()
    wait_for(lambda: engine_pool.stats()["ready"] == 2)
    assert engine_pool.stats()["queued"] == 0  # the cancelled parts were dropped, not run
    wait_for(lambda: not shm_blocks())


def test_preopen_opens_the_recording_in_every_worker(small):
    log = small / "read-log"
    log.touch()
    with ReaderPool(2, engines=misbehaving.SPEC) as p:
        p.info(small, None, misbehaving.ENGINE)  # one worker opens it
        p.preopen(small, None, misbehaving.ENGINE)

        def opened_by():
            return {
                line.split()[1] for line in log.read_text().splitlines() if line.startswith("open")
            }

        assert wait_for(lambda: len(opened_by()) == 2) and opened_by() == {
            str(pid) for pid in p.stats()["pids"]
        }
        p.submit_split(
            ReadRequest(small, None, misbehaving.ENGINE, ("ch000", "ch001"), 0, 100), 2
        ).result(timeout=30)
        assert (
            len([line for line in log.read_text().splitlines() if line.startswith("open")]) == 2
        )  # no more opens
