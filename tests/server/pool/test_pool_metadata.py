"""A recording's files are parsed once per opening, however many reader processes read it.

The opens of every ``.tidx`` are counted by the kernel (inotify), whoever opens it: a pool,
or a real server right after it started, opens each exactly as often as one reader that
parses the session does; the others open it from that reader's metadata, and so does a
reader restarted after a SIGKILL. Every read is compared with a direct read.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import struct
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from mef3lab.client import Mef3Client
from mef3lab.readers import open_reader
from mef3lab.server.pool import ReaderPool, ReadRequest
from mef3lab.server.process import ServerProcess
from mef3lab.testing.synth import synthesize

try:
    from .._pool_helpers import wait_for
except ImportError:
    from _pool_helpers import wait_for

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="inotify: Linux")

IN_OPEN = 0x20
EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (then the name)


class IndexOpens:
    """Counts the opens of a session's ``.tidx`` files by any process (Linux inotify)."""

    def __init__(self, session: Path) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        deadline = time.monotonic() + 30
        while (fd := libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)) < 0:
            if ctypes.get_errno() != errno.EMFILE:
                raise OSError(ctypes.get_errno(), "inotify_init1")
            if time.monotonic() > deadline:
                pytest.skip("other processes of this user hold every inotify instance allowed")
            time.sleep(0.5)
        self._fd = fd
        for segment in session.glob("*.timd/*.segd"):
            if libc.inotify_add_watch(self._fd, str(segment).encode(), IN_OPEN) < 0:
                raise OSError(ctypes.get_errno(), f"inotify_add_watch {segment}")
        self.counts: Counter[str] = Counter()

    def poll(self) -> dict[str, int]:
        """Every ``.tidx`` opened so far, with how many times."""
        while True:
            try:
                buf = os.read(self._fd, 1 << 16)
            except BlockingIOError:
                return dict(self.counts)
            at = 0
            while at < len(buf):
                _, _, _, length = EVENT.unpack_from(buf, at)
                name = buf[at + EVENT.size : at + EVENT.size + length].rstrip(b"\0").decode()
                at += EVENT.size + length
                if name.endswith(".tidx"):
                    self.counts[name] += 1

    def take(self) -> dict[str, int]:
        """`poll`, then start counting afresh."""
        out = self.poll()
        self.counts.clear()
        return out

    def close(self) -> None:
        os.close(self._fd)


@pytest.fixture
def session(tmp_path) -> Path:
    """6 channels x 512 Hz x 60 s, with a gap."""
    return synthesize(
        tmp_path / "shared.mefd", channels=6, fs=512.0, seconds=60.0, gaps=[(30.0, 2.0)], seed=5
    )


@pytest.fixture
def opens(session):
    """The session's index opens, and how many of each one reader that parses it makes."""
    counter = IndexOpens(session)
    with open_reader(session, threads=1):
        pass
    once = counter.take()
    assert len(once) == 6 and min(once.values()) >= 1
    yield counter, once
    counter.close()


def _all_samples(pool, info, ways: int) -> tuple[np.ndarray, tuple[str, ...], int, int]:
    grid = info.group_of(info.names).grid
    req = ReadRequest(info.path, None, None, info.names, 0, grid.n_samples, "float32")
    shared = pool.submit_split(req, ways).result(120)
    try:
        return shared.array.copy(), info.names, grid.uutc_of(0), grid.uutc_of(grid.n_samples)
    finally:
        shared.release()


def _settled(pool, offers: int):
    """Wait until `offers` workers were sent metadata and none is busy; the stats."""
    return wait_for(
        lambda: (s := pool.stats())["offers"] == offers and s["busy"] == 0 and s, timeout=60
    )


def test_three_workers_parse_a_session_once_and_read_it_right(session, opens, direct_read):
    counter, once = opens
    with ReaderPool(3) as pool:
        wait_for(lambda: pool.stats()["ready"] == 3, timeout=60)
        info = pool.info(session)
        pool.preopen(session)
        stats = _settled(pool, offers=2)
        time.sleep(0.3)  # anything still opening would show now
        assert counter.take() == once
        assert stats["parses"] == 1
        got, names, t0, t1 = _all_samples(pool, info, ways=3)
    np.testing.assert_array_equal(got, direct_read(session, names, t0, t1))


def test_a_worker_restarted_after_sigkill_opens_from_the_metadata(session, direct_read):
    with ReaderPool(2) as pool:
        wait_for(lambda: pool.stats()["ready"] == 2, timeout=60)
        info = pool.info(session)
        pool.preopen(session)
        victim = _settled(pool, offers=1)["pids"][0]
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: (s := pool.stats())["restarts"] == 1 and s["ready"] == 2, timeout=60)
        got, names, t0, t1 = _all_samples(pool, info, ways=2)  # one part in each worker
        stats = pool.stats()
        assert victim not in stats["pids"]
        assert stats["parses"] == 1 and stats["offers"] == 2
    np.testing.assert_array_equal(got, direct_read(session, names, t0, t1))


def test_level_1_and_level_2_openings_never_share_metadata(encrypted_recording, passwords):
    with ReaderPool(2) as pool:
        level2 = pool.info(encrypted_recording, passwords.level2)
        pool.preopen(encrypted_recording, passwords.level2)
        level1 = pool.info(encrypted_recording, passwords.level1)
        pool.preopen(encrypted_recording, passwords.level1)
        stats = _settled(pool, offers=2)
        assert stats["parses"] == 2  # one per password
        assert level2.annotations and not level1.annotations
        for _ in range(4):  # every worker now holds both openings, each answering as its own
            assert pool.info(encrypted_recording, passwords.level1) == level1
            assert pool.info(encrypted_recording, passwords.level2) == level2


def test_a_server_right_after_start_parses_a_session_once(session, opens, direct_read):
    counter, once = opens
    with (
        ServerProcess(n_process_workers=3, log_level="WARNING") as srv,
        Mef3Client(srv.address, timeout=120) as client,
    ):
        info = client.open_file(str(session))  # the readers are still starting
        grid = info.group_of(info.names).grid
        got = client.read_index(str(session), 0, grid.n_samples, list(info.names))
        seen = _settled_opens(counter)
        t0, t1 = grid.uutc_of(0), grid.uutc_of(grid.n_samples)
    np.testing.assert_array_equal(got, direct_read(session, list(info.names), t0, t1))
    # One parse; a reader that reads before its kernels are loaded has mef3io read, whose
    # reader opens each index once more (in C++): never a second parse.
    assert seen.keys() == once.keys()
    assert all(once[f] <= seen[f] < 2 * once[f] for f in once), (seen, once)


def _settled_opens(counter: IndexOpens, quiet: float = 2.0) -> dict[str, int]:
    """The opens counted once none came for `quiet` seconds (within a minute)."""
    deadline, last, since = time.monotonic() + 60, None, time.monotonic()
    while time.monotonic() < deadline:
        now = counter.poll()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return now
        time.sleep(0.1)
    raise AssertionError(f"the index files were still being opened after a minute: {last}")
