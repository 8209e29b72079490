"""Finding the processes a test (or a benchmark) started, on a machine where other mef3lab
processes run too.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import psutil


class ProcessTag:
    """Marks every process a test starts (an environment variable its children inherit), so the
    test can find what outlived it on a machine where other mef3lab processes run too."""

    VAR = "MEF3LAB_TEST_TAG"

    def __init__(self, value: str) -> None:
        self.value = value

    def tagged(self) -> list[psutil.Process]:
        found = []
        for p in psutil.process_iter(["pid", "cmdline"]):
            try:
                if p.environ().get(self.VAR) == self.value:
                    found.append(p)
            except (psutil.Error, OSError):
                continue  # gone meanwhile, or not ours to read
        return found

    def leftovers(self, within: float = 15.0) -> list[psutil.Process]:
        """Tagged processes still alive after up to `within` seconds (zombies count as gone)."""
        return _alive_after(lambda: [p for p in self.tagged() if p.pid != os.getpid()], within)


def still_alive(procs: list[psutil.Process], within: float = 15.0) -> list[psutil.Process]:
    """Those of `procs` still alive after up to `within` seconds (zombies count as gone)."""
    return _alive_after(lambda: procs, within)


def _alive_after(
    listing: Callable[[], list[psutil.Process]], within: float
) -> list[psutil.Process]:
    """Those `listing()` gives that are alive, once none is or `within` seconds have passed."""
    deadline = time.monotonic() + within
    while True:
        alive = [p for p in listing() if _alive(p)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def _alive(p: psutil.Process) -> bool:
    try:
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
