"""n_workers=0: the pool's API and results without worker processes, for debugging.

No crash isolation and no shared memory: the worker's reader cache runs in the calling
thread, and a read's result is an ordinary array.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any

from .requests import Job, SharedArray
from .worker import OpenReaders


class InProcess:
    """Reads in the calling thread, one at a time (readers are not thread-safe)."""

    def __init__(self, max_open: int, engines: Mapping[str, str]) -> None:
        self._readers = OpenReaders(max_open, engines)
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, job: Job) -> Future:
        fut = job.future
        fut.set_running_or_notify_cancel()
        error: BaseException | None = None
        with self._lock:
            if self._closed:
                raise RuntimeError("the reader pool is closed")
            try:
                if job.kind == "read":
                    result: Any = SharedArray(self._readers.read(job.payload, job.key, None))
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

    def watch_failures(self, callback) -> None:
        """Nothing to watch: without worker processes, no reader dies or is stopped."""

    def abort(self, future: Future) -> None:
        """Nothing to stop: a read here is finished by the time anyone holds its future."""

    def preopen(self, key: tuple, path: str, password: str, engine: str | None) -> None:
        """Nothing to do: the one reader that reads was opened by the call that asked for it."""

    def close_recording(self, path: str) -> None:
        with self._lock:
            self._readers.drop(path)

    def stats(self) -> dict[str, Any]:
        return {
            "workers": 0,
            "alive": 0,
            "ready": 0,
            "busy": 0,
            "queued": 0,
            "restarts": 0,
            "crashes": 0,
            "timeouts": 0,
            "aborted": 0,
            "pids": [],
        }

    def check_blocking(self) -> None:
        pass

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._readers.close_all()
