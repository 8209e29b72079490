"""One opening at a time per recording: clients opening it together wait for the same one.

Opening a recording is a reader process's job (`ReaderPool.info`). Clients that open the
same recording (path, password, engine) while it is being opened wait for that opening's
answer instead of each sending their own, so a recording whose files hang holds one reader
process until the read timeout, however many open it at once, and the others stay free for
everyone else's reads.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future
from typing import Any

from ..pool import ReaderPool


class OneOpening:
    """A `ReaderPool` whose `info` for one recording runs once for all concurrent callers.

    Everything but `info` passes through to the pool unchanged.

    Parameters
    ----------
    pool : ReaderPool
        The pool (or a wrapper of it, such as `Quarantine`).
    """

    def __init__(self, pool: ReaderPool) -> None:
        self._pool = pool
        self._opening: dict[tuple, Future] = {}
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:  # every other part of the pool's API, as the pool
        return getattr(self._pool, name)

    def info(self, path, password=None, engine=None, *, timeout=None) -> Any:
        """`ReaderPool.info`, shared with every caller asking for the same opening meanwhile.

        Raises
        ------
        mef3lab.errors.Mef3LabError
            What the opening raised, to every caller that waited for it.
        """
        key = (os.path.realpath(path), password or "", engine)
        with self._lock:
            running = self._opening.get(key)
            if running is None:
                mine = self._opening[key] = Future()
        if running is not None:
            return running.result(timeout)
        try:
            info = self._pool.info(path, password, engine, timeout=timeout)
        except BaseException as exc:
            mine.set_exception(exc)
            raise
        else:
            mine.set_result(info)
            return info
        finally:
            with self._lock:
                del self._opening[key]


__all__ = ["OneOpening"]
