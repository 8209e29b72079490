"""Quarantine over a real pool: a recording whose reads keep crashing reader processes is refused
after `limit` crashes, without costing another process, while every other recording reads on."""

from __future__ import annotations

import pytest

from mef3lab.errors import (
    CancelledError,
    CorruptDataError,
    QuarantinedError,
    ReaderCrashedError,
    ReadTimeoutError,
)
from mef3lab.server.core.quarantine import Quarantine
from mef3lab.server.pool import ReaderPool, ReadRequest
from mef3lab.testing.synth import synthesize

try:
    from .. import _pool_engines as misbehaving
except ImportError:
    import _pool_engines as misbehaving


@pytest.fixture
def crasher(tmp_path):
    path = synthesize(tmp_path / "crasher.mefd", channels=2, fs=256.0, seconds=20.0, gaps=0, seed=4)
    (path / "segfault-on-read").touch()
    return path


def test_a_recording_that_crashes_readers_is_quarantined(crasher, recording):
    with ReaderPool(1, engines=misbehaving.SPEC) as raw:
        pool = Quarantine(raw, limit=2)
        read = ReadRequest(crasher, None, misbehaving.ENGINE, ("ch000",), 0, 100)
        for _ in range(2):
            with pytest.raises(ReaderCrashedError, match="SIGSEGV"):
                pool.submit(read).result(timeout=60)
        # Counted before the failure was delivered: refused at once, with no retry loop.
        with pytest.raises(QuarantinedError, match="crashed 2 reader processes") as err:
            pool.submit(read)
        assert isinstance(
            err.value, CorruptDataError
        )  # what a client catching damage already handles
        assert raw.stats()["crashes"] == 2  # no third process was spent
        good = pool.submit_split(
            ReadRequest(recording, None, "mef3io", ("ch000", "ch001"), 0, 50), 2
        )
        assert good.result(timeout=60).array.shape == (2, 50)
        assert pool.stats()["alive"] == 1  # the rest of the pool's API, passed through


def test_limit_zero_never_quarantines(crasher):
    with ReaderPool(1, engines=misbehaving.SPEC) as raw:
        pool = Quarantine(raw, limit=0)
        read = ReadRequest(crasher, None, misbehaving.ENGINE, ("ch001",), 0, 10)
        for _ in range(3):
            with pytest.raises(ReaderCrashedError):
                pool.submit(read).result(timeout=60)


def test_a_killed_reader_is_not_the_files_fault(recording):
    """SIGKILL (the OOM killer, an operator) never quarantines: only the signals decoders die of."""
    import signal

    pool = Quarantine(None, limit=1)
    pool._crashed(recording, ReaderCrashedError("killed", -signal.SIGKILL))
    pool._crashed(
        recording, CancelledError("stopped: nobody waits for it")
    )  # killed for its caller's sake
    pool._check(recording)  # not refused
    pool._crashed(recording, ReaderCrashedError("segfault", -signal.SIGSEGV))
    with pytest.raises(QuarantinedError):
        pool._check(recording)


def test_a_recording_that_hangs_readers_is_quarantined(hung):
    with ReaderPool(1, engines=misbehaving.SPEC, read_timeout_s=1.0) as raw:
        pool = Quarantine(raw, limit=1)
        read = ReadRequest(hung, None, misbehaving.ENGINE, ("ch000",), 0, 100)
        with pytest.raises(ReadTimeoutError):
            pool.submit(read).result(timeout=60)
        with pytest.raises(QuarantinedError, match="or hung one past the read timeout"):
            pool.submit(read)  # at once: the timeout was counted before it was delivered
        assert raw.stats()["timeouts"] == 1
