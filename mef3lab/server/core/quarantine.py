"""Quarantine: a recording that keeps crashing reader processes is refused instead of read again.

`Quarantine` wraps the engine's `ReaderPool`: once reads of one recording have killed
`limit` reader processes (by a fault signal, or by outliving the read timeout), every
request for it fails at once with `QuarantinedError` until the server restarts. What
counts as the file's fault, and why, is in docs/server.md ("Quarantine").
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from concurrent.futures import Future
from typing import Any

from ...errors import QuarantinedError, ReaderCrashedError, ReadTimeoutError
from ..pool import ReaderPool, ReadRequest
from ..pool.errors import FAULTS

log = logging.getLogger(__name__)


class Quarantine:
    """A `ReaderPool` that stops sending a recording to reader processes after `limit` crashes.

    Everything but `submit`, `submit_split`, `info`, `call` and `preopen` passes through to the pool
    unchanged. A crash is counted before its request fails (`ReaderPool.watch_failures`),
    so a caller who retries at once is already refused.

    Parameters
    ----------
    pool : ReaderPool
        The pool to guard.
    limit : int
        Crashes of one recording after which it is refused (0: never).
    """

    def __init__(self, pool: ReaderPool, limit: int = 3) -> None:
        self._pool = pool
        self.limit = limit
        self._crashes: Counter[str] = Counter()
        self._lock = threading.Lock()
        if pool is not None:
            pool.watch_failures(self._crashed)

    def __getattr__(self, name: str) -> Any:  # every other part of the pool's API, as the pool
        return getattr(self._pool, name)

    def submit(self, req: ReadRequest, **kw: Any) -> Future:
        """`ReaderPool.submit`, refused for a quarantined recording (`QuarantinedError`)."""
        self._check(req.path)
        return self._pool.submit(req, **kw)

    def submit_split(self, req: ReadRequest, ways: int, **kw: Any) -> Future:
        """`ReaderPool.submit_split`, refused for a quarantined recording (`QuarantinedError`)."""
        self._check(req.path)
        return self._pool.submit_split(req, ways, **kw)

    def info(self, path, password=None, engine=None, *, timeout=None) -> Any:
        """`ReaderPool.info`, refused for a quarantined recording (`QuarantinedError`)."""
        return self.call(path, password, engine, "info", timeout=timeout)

    def call(self, path, password, engine, method: str, *args: Any, timeout=None) -> Any:
        """`ReaderPool.call`, refused for a quarantined recording (`QuarantinedError`)."""
        self._check(path)
        return self._pool.call(path, password, engine, method, *args, timeout=timeout)

    def preopen(self, path, password=None, engine=None) -> None:
        """`ReaderPool.preopen`, skipped for a quarantined recording (no worker opens it)."""
        if not self._quarantined(path):
            self._pool.preopen(path, password, engine)

    def _quarantined(self, path) -> int:
        """The crashes counted against `path` when it is quarantined, else 0."""
        key = os.path.realpath(path)  # outside the lock: it asks the filesystem
        with self._lock:
            crashes = self._crashes.get(key, 0)
        return crashes if self.limit and crashes >= self.limit else 0

    def _check(self, path) -> None:
        crashes = self._quarantined(path)
        if crashes:
            raise QuarantinedError(
                f"{path} is quarantined: reading it crashed {crashes} reader processes "
                "(or hung one past the read timeout), so this server no "
                "longer reads it (its files are damaged; it is tried again after a server restart)"
            )

    def _crashed(self, path: str, exc: BaseException) -> None:
        """Count a request failed by its reader's death: a fault signal, or the read timeout."""
        if isinstance(exc, ReaderCrashedError):
            if exc.exitcode is None or -exc.exitcode not in FAULTS:
                return
        elif not isinstance(exc, ReadTimeoutError):
            return  # stopped because nobody waited for it: not the file's doing
        key = os.path.realpath(path)
        with self._lock:
            self._crashes[key] += 1
            n = self._crashes[key]
        if n == self.limit:
            log.error(
                "%s crashed %d reader processes: quarantined until the server restarts", path, n
            )
