"""n_workers=0: the pool's API and results without worker processes, for debugging.

No crash isolation and no shared memory: the worker's reader cache runs in the calling
thread, and a read's result is an ordinary array.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any

from .requests import Job, SharedArray
from .worker import OpenReaders


class InProcess:
    """The pool's core without worker processes: reads in the calling thread, one at a time.

    One at a time because readers are not thread-safe. Same methods as `Dispatcher`.

    Parameters
    ----------
    max_open : int
        Readers kept open (least recently used closed first).
    engines : mapping of str to str
        Extra reader engines, name -> "module:Class".
    """

    def __init__(
        self,
        max_open: int,
        engines: Mapping[str, str],
        guard: Callable[[str, tuple[str, ...] | None], None] | None = None,
    ) -> None:
        self._readers = OpenReaders(max_open, engines, guard=guard)
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, job: Job) -> Future:
        """Run `job` now; its future is done when this returns.

        Raises
        ------
        RuntimeError
            When the pool is closed.
        """
        fut = job.future
        fut.set_running_or_notify_cancel()
        error: BaseException | None = None
        with self._lock:
            if self._closed:
                raise RuntimeError("the reader pool is closed")
            try:
                if job.kind == "read":
                    array, stops = self._readers.read(job.payload, job.key, None)
                    result: Any = SharedArray(array, stops=stops)
                else:
                    result = self._readers.call(job.key, *job.payload)
            except Exception as exc:
                error = exc
        # Outside the lock: done-callbacks may submit again.
        if error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(result)
        return fut

    def watch_failures(self, callback: Callable[[str, BaseException], None]) -> None:
        """Nothing to watch: without worker processes, no reader dies or is stopped."""

    def abort(self, future: Future) -> None:
        """Nothing to stop: a read here is finished by the time anyone holds its future."""

    def preopen(self, key: tuple, path: str, password: str, engine: str | None) -> None:
        """Nothing to do: the one reader that reads was opened by the call that asked for it."""

    def close_recording(self, path: str) -> None:
        """Close the readers of `path` (a canonical path)."""
        with self._lock:
            self._readers.drop(path)

    def stats(self) -> dict[str, Any]:
        """The pool's counters, all zero: no workers."""
        return {
            "workers": 0,
            "alive": 0,
            "ready": 0,
            "warm": 0,
            "busy": 0,
            "queued": 0,
            "restarts": 0,
            "crashes": 0,
            "timeouts": 0,
            "aborted": 0,
            "parses": 0,
            "offers": 0,
            "pids": [],
        }

    def check_blocking(self) -> None:
        """Nothing to check: a blocking call here never waits for a dispatcher thread."""

    def close(self) -> None:
        """Close every reader; later requests are refused."""
        with self._lock:
            self._closed = True
            self._readers.close_all()
