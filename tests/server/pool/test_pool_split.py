"""Split reads: one result decoded by several workers at once, and opening ahead of them."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from mef3lab.errors import CorruptDataError
from mef3lab.readers import open_reader
from mef3lab.server.pool import ReaderPool, ReadRequest, SharedArray

try:
    from .. import _pool_engines as misbehaving
    from .._pool_helpers import hang_pid, shm_blocks, wait_for
except ImportError:
    import _pool_engines as misbehaving
    from _pool_helpers import hang_pid, shm_blocks, wait_for


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
