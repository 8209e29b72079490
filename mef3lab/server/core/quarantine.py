"""Quarantine: a recording that keeps crashing reader processes is refused instead of read again.

The pool already isolates a crash (one request fails, its process is replaced). But a
recording on which a decoder segfaults deterministically would cost a process start,
and every prefetch and retry another, for as long as anyone asks. `Quarantine` wraps
the engine's `ReaderPool`: once reads of one recording have crashed `limit` reader
processes (by a fault signal: SIGSEGV, SIGBUS, SIGFPE, SIGILL or SIGABRT, what a decoder
dies of; a SIGKILL is the OOM killer or an operator, not the file) or outlived the read timeout (a
hung decoder, `ReadTimeoutError`), every request for it fails at once with `QuarantinedError`, saying why, until
the server restarts. Everything else passes through to the pool unchanged. A crash is
counted before its failure is delivered (`ReaderPool.watch_failures`), so a caller who
retries at once is refused; requests already in flight when the limit is reached still
run (at most one more crash per request in flight, none per later request).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections import Counter
from concurrent.futures import Future
from typing import Any

from ...errors import QuarantinedError, ReaderCrashedError, ReadTimeoutError
from ..pool import ReaderPool, ReadRequest

log = logging.getLogger(__name__)

#: Signals a decoder dies of when a file defeats it.
FAULTS = frozenset({signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGABRT})


class Quarantine:
    """A `ReaderPool` that stops sending a recording to reader processes after `limit` crashes."""

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
        self._check(req.path)
        return self._pool.submit(req, **kw)

    def submit_split(self, req: ReadRequest, ways: int, **kw: Any) -> Future:
        self._check(req.path)
        return self._pool.submit_split(req, ways, **kw)

    def info(self, path, password=None, engine=None, *, timeout=None) -> Any:
        return self.call(path, password, engine, "info", timeout=timeout)

    def call(self, path, password, engine, method: str, *args: Any, timeout=None) -> Any:
        self._check(path)
        return self._pool.call(path, password, engine, method, *args, timeout=timeout)

    def _check(self, path) -> None:
        key = os.path.realpath(path)
        with self._lock:
            crashes = self._crashes[key]
        if self.limit and crashes >= self.limit:
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
