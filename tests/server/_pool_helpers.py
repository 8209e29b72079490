"""What the tests of reader processes check and wait for: shared-memory leaks, dead workers."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil

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
    """The pid of the worker hanging in a read of `session` (once it wrote it into the marker)."""
    marker = session / "hang-on-read"
    text = wait_for(lambda: marker.exists() and marker.read_text())
    return int(text)
