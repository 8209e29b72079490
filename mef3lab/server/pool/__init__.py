"""Crash-isolated reader processes: where the server decodes samples, and how they come back.

Why processes. pymef keeps global state, holds the GIL for a whole C call and
segfaults on some damaged files. So decoding happens in spawned worker processes
(spawn, never fork: gRPC in the parent is not fork-safe), each keeping its own open
readers, cached per (path, password, engine) because opening is costly. A worker that
dies takes only its current request with it: that request fails with
`CorruptDataError`, the worker is replaced, everything else keeps being served.

Where each part lives:

* `requests`: what callers ask (`ReadRequest`, `CALLABLE`) and get (`SharedArray`), and
  the parent's record of a request in flight;
* `shm`: how samples come back, in shared-memory blocks the parent owns and unlinks;
* `worker`: what runs in a worker process (its open readers, serving requests, dying
  with the parent);
* `errors`: how a reader's exception crosses the pipe and is raised again in the parent;
* `dispatcher`: the parent's one thread that owns every pipe and process, and the crash
  policy;
* `inprocess`: n_workers=0, the same API and results in this process, for debugging;
* this module: `ReaderPool`, the facade over either core.

Lifetime. `close()` is idempotent and also runs at interpreter exit or when the pool is
garbage-collected; no worker outlives the server, even when it is killed outright.
"""

from __future__ import annotations

import multiprocessing
import os
import weakref
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from multiprocessing.context import BaseContext
from typing import Any

from .dispatcher import Dispatcher
from .inprocess import InProcess
from .requests import (
    CALLABLE,
    Job,
    ReadRequest,
    SharedArray,
    absolute_path,
    canonical_path,
    reader_key,
)
from .split import part_jobs

__all__ = ["CALLABLE", "ReadRequest", "ReaderPool", "SharedArray"]


class ReaderPool:
    """Reads MEF samples and metadata in crash-isolated worker processes. Thread-safe.

    n_workers: worker processes (0: read inside this process, one read at a time, for
    debugging; same API and results). mp_context: a start method name or context; spawn
    (the default) or forkserver, never fork in a process that runs gRPC. max_open: readers
    each worker keeps open (least recently used closed first). engines: extra engines,
    name -> "module:Class" (Reader subclasses), made available to `engine=` in every worker.
    read_timeout_s: a request still running after this long has its worker killed and
    replaced, and fails with `ReadTimeoutError` (0: no limit; not with n_workers=0).
    """

    def __init__(
        self,
        n_workers: int = 2,
        *,
        mp_context: str | BaseContext = "spawn",
        max_open: int = 16,
        engines: Mapping[str, str] | None = None,
        read_timeout_s: float = 0.0,
    ) -> None:
        if n_workers < 0:
            raise ValueError(f"n_workers must be >= 0, not {n_workers}")
        if max_open < 1:
            raise ValueError(f"max_open must be >= 1, not {max_open}")
        ctx = multiprocessing.get_context(mp_context) if isinstance(mp_context, str) else mp_context
        self.n_workers = n_workers
        engines = dict(engines or {})
        self._core: InProcess | Dispatcher
        if n_workers == 0:
            self._core = InProcess(max_open, engines)
        else:
            self._core = Dispatcher(n_workers, ctx, max_open, engines, read_timeout_s)
        # The dispatcher holds no reference to this object, so a forgotten pool is collected
        # and closed; atexit covers the rest.
        self._finalizer = weakref.finalize(self, self._core.close)

    def submit(self, req: ReadRequest, *, foreground: bool = True) -> Future[SharedArray]:
        """Queue a read. Foreground reads go before background ones (prefetch).

        Cancelling the future before a worker takes it means it is never run. The future
        fails with the reader's own error (same class and message), `CorruptDataError` if the
        worker crashed on it, or `mef3lab.errors.CancelledError` if the pool was closed first.
        Done-callbacks run on the pool's dispatcher thread: keep them short.
        """
        if not isinstance(req, ReadRequest):
            raise TypeError(f"submit takes a ReadRequest, not {type(req).__name__}")
        return self._core.submit(
            Job("read", req, reader_key(req.path, req.password, req.engine), foreground)
        )

    def submit_split(
        self, req: ReadRequest, ways: int, *, foreground: bool = True
    ) -> Future[SharedArray]:
        """Like `submit`, with the channels divided among up to `ways` workers that decode at
        once, each into its own rows of one result (see `split`). One way, or no workers, is `submit`.
        """
        if not isinstance(req, ReadRequest):
            raise TypeError(f"submit_split takes a ReadRequest, not {type(req).__name__}")
        if ways <= 1 or self.n_workers == 0 or req.nbytes == 0 or len(req.channels) < 2:
            return self.submit(req, foreground=foreground)
        group, jobs = part_jobs(
            req, reader_key(req.path, req.password, req.engine), foreground, ways
        )
        for i, job in enumerate(jobs):
            try:
                self._core.submit(job)
            except BaseException:
                for unsent in jobs[i:]:
                    unsent.future.cancel()  # so the group ends and frees its block
                raise
        return group

    def watch_failures(self, callback: Callable[[str, BaseException], None]) -> None:
        """Have `callback(canonical path, error)` hear of every request failed because its
        reader process died or was killed for the read timeout, before the request fails.
        """
        self._core.watch_failures(callback)

    def abort(self, future: Future[SharedArray]) -> None:
        """Stop a read nobody waits for any more: cancelled while queued; while it runs, its
        worker is killed and replaced (a decode cannot be interrupted) and it fails with
        `CancelledError`. Every part of a split read is stopped. A finished read is left alone.
        """
        for part in getattr(future, "parts", (future,)):
            self._core.abort(part)

    def info(
        self,
        path: str | os.PathLike,
        password: str | None = None,
        engine: str | None = None,
        *,
        timeout: float | None = None,
    ) -> Any:
        """Open `path` in a worker (opening can crash too) and return its `SessionInfo`."""
        return self.call(path, password, engine, "info", timeout=timeout)

    def call(
        self,
        path: str | os.PathLike,
        password: str | None,
        engine: str | None,
        method: str,
        *args: Any,
        timeout: float | None = None,
    ) -> Any:
        """``reader.<method>(*args)`` on `path`'s reader in a worker, result pickled back.

        For small results (block envelopes, metadata); samples go through `submit`.
        `method` is one of CALLABLE ("info" returns the SessionInfo).
        """
        if method not in CALLABLE:
            raise ValueError(f"method must be one of {sorted(CALLABLE)}, not {method!r}")
        self._core.check_blocking()
        job = Job(
            "call",
            (absolute_path(path), password or "", engine, method, args),
            reader_key(path, password, engine),
            True,
        )
        return self._core.submit(job).result(timeout)

    def preopen(
        self, path: str | os.PathLike, password: str | None = None, engine: str | None = None
    ) -> None:
        """Every worker opens `path` when it is next idle, so that the first read split
        across them does not wait for the others to open it. Returns at once.
        """
        self._core.preopen(
            reader_key(path, password, engine), absolute_path(path), password or "", engine
        )

    def close_recording(self, path: str | os.PathLike) -> None:
        """Workers close their readers of `path` (after the request each is running).

        Requests submitted after this call open the recording afresh.
        """
        self._core.close_recording(canonical_path(path))

    def stats(self) -> dict[str, Any]:
        """Workers (configured), alive, busy, queued, restarts, crashes, timeouts, aborted, pids."""
        return self._core.stats()

    def close(self) -> None:
        """Stop and join every worker; pending and running requests fail. Idempotent."""
        self._finalizer()

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def __enter__(self) -> ReaderPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
