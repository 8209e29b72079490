"""The reader pool's workers: crashes, scheduling, and that none outlives the pool or its parent."""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import wait
from pathlib import Path

import numpy as np
import psutil
import pytest

from mef3lab.errors import CancelledError, CorruptDataError
from mef3lab.readers import open_reader
from mef3lab.server.pool import ReaderPool, ReadRequest

try:
    from .. import _pool_engines as misbehaving
    from .._pool_helpers import gone, hang_pid, shm_blocks, wait_for
except ImportError:
    import _pool_engines as misbehaving
    from _pool_helpers import gone, hang_pid, shm_blocks, wait_for


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
    # A kill from outside (operator, OOM killer) is said to be one, and does not blame the file.
    assert str(small) in msg and "ch000, ch002" in msg, msg
    assert "a reader process was killed (signal 9: SIGKILL)" in msg, msg
    assert "may be damaged" not in msg and err.value.exitcode == -signal.SIGKILL
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
    pids = wait_for(lambda: (s := p.stats())["ready"] == 2 and s["pids"])  # noqa: F821 - deleted below
    del p
    gc.collect()
    assert gone(pids)


@pytest.mark.parametrize("death", ["exit", "sigkill-mid-read"])
def test_workers_die_with_their_parent(small, death):
    """A server that dies abruptly (no close, no atexit) leaves no worker behind,
    even a busy one.
    """
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
                if s["ready"] == 2 and (
                    {death!r} == "exit" or os.path.getsize({str(small / "hang-on-read")!r})
                ):
                    break
                time.sleep(0.02)
            print(*s["pids"], flush=True)
            if {death!r} == "exit":
                os._exit(0)
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            [str(Path(__file__).parent.parent), os.environ.get("PYTHONPATH", "")]
        ),
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
