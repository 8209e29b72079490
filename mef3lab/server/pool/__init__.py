"""Crash-isolated reader processes: where the server decodes samples, and how they come back.

Decoding happens in spawned worker processes, so that a decoder's crash, global state or
held GIL never reaches the server: a worker that dies fails only its current request and
is replaced. `ReaderPool` is the facade; `requests` (what is asked and returned), `shm`
(shared-memory results), `split` (one read over several workers), `worker` (the worker
process), `errors`, `dispatcher` (the parent's thread that owns every worker) and
`inprocess` (no workers, for debugging) are its parts. Why and how: docs/server.md
("The reader pool").
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

    `close()` is idempotent and also runs at interpreter exit or when the pool is garbage
    collected; no worker outlives the server, even when it is killed outright.

    Parameters
    ----------
    n_workers : int
        Worker processes (0: read inside this process, one read at a time, for
        debugging; same API and results).
    mp_context : str or multiprocessing.context.BaseContext
        A start method name or context: spawn (the default) or forkserver, never fork in
        a process that runs gRPC.
    max_open : int
        Readers each worker keeps open (least recently used closed first).
    engines : mapping of str to str or None
        Extra reader engines, name -> "module:Class" (`Reader` subclasses), made available
        to `engine=` in every worker.
    read_timeout_s : float
        A request still running after this long has its worker killed and replaced, and
        fails with `ReadTimeoutError` (0: no limit; not with n_workers=0).
    guard : callable or None
        ``guard(path, channels)``, called in the process that reads right before each read
        (the channels it reads) and each call (channels None); it raises to refuse (served
        roots: `ServedRoots.confine`, since a link in a recording may change while it is
        open). Picklable: workers get a copy.

    Raises
    ------
    ValueError
        For a negative `n_workers`, or `max_open` under 1.
    """

    def __init__(
        self,
        n_workers: int = 2,
        *,
        mp_context: str | BaseContext = "spawn",
        max_open: int = 16,
        engines: Mapping[str, str] | None = None,
        read_timeout_s: float = 0.0,
        guard: Callable[[str, tuple[str, ...] | None], None] | None = None,
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
            self._core = InProcess(max_open, engines, guard)
        else:
            self._core = Dispatcher(n_workers, ctx, max_open, engines, read_timeout_s, guard)
        # The dispatcher holds no reference to this object, so a forgotten pool is collected
        # and closed; atexit covers the rest.
        self._finalizer = weakref.finalize(self, self._core.close)

    def submit(self, req: ReadRequest, *, foreground: bool = True) -> Future[SharedArray]:
        """Queue a read; foreground reads go before background ones (prefetch).

        Cancelling the future before a worker takes it means it is never run. Done-callbacks
        run on the pool's dispatcher thread: keep them short.

        Parameters
        ----------
        req : ReadRequest
            What to read.
        foreground : bool
            False for a prefetch: it waits behind every foreground read.

        Returns
        -------
        concurrent.futures.Future of SharedArray
            Fails with the reader's own error (same class and message),
            `CorruptDataError` if the worker crashed on it, `ReadTimeoutError` past the
            read timeout, or `mef3lab.errors.CancelledError` if the pool was closed first.

        Raises
        ------
        TypeError
            When `req` is not a `ReadRequest`.
        RuntimeError
            When the pool is closed, or gave up starting workers.
        """
        if not isinstance(req, ReadRequest):
            raise TypeError(f"submit takes a ReadRequest, not {type(req).__name__}")
        return self._core.submit(
            Job("read", req, reader_key(req.path, req.password, req.engine), foreground)
        )

    def submit_split(
        self, req: ReadRequest, ways: int, *, foreground: bool = True
    ) -> Future[SharedArray]:
        """Like `submit`, with the channels divided among up to `ways` workers.

        They decode at once, each into its own rows of one result (see `split`). One way,
        or no workers, is `submit`.

        Parameters
        ----------
        req : ReadRequest
            What to read.
        ways : int
            Into how many parts (at most one per channel).
        foreground : bool
            False for a prefetch.

        Returns
        -------
        concurrent.futures.Future of SharedArray
            As for `submit`; the first part that fails fails the whole.
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
        """Hear of every request failed because its reader process died or was stopped.

        Parameters
        ----------
        callback : callable
            ``callback(canonical path, error)``, called before the request fails (on the
            dispatcher thread); a crash, a read timeout or an abort.
        """
        self._core.watch_failures(callback)

    def abort(self, future: Future[SharedArray]) -> None:
        """Stop a read nobody waits for any more.

        Cancelled while queued; while it runs, its worker is killed and replaced (a decode
        cannot be interrupted) and it fails with `CancelledError`. Every part of a split
        read is stopped. A finished read is left alone.

        Parameters
        ----------
        future : concurrent.futures.Future
            What `submit` or `submit_split` returned.
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
        """Open a recording in a worker (opening can crash too) and return what it holds.

        Parameters
        ----------
        path : str or os.PathLike
            The recording.
        password : str or None
            Its password, if encrypted.
        engine : str or None
            The reader engine (None: the default).
        timeout : float or None
            Seconds to wait (None: for as long as it takes).

        Returns
        -------
        SessionInfo

        Raises
        ------
        mef3lab.errors.Mef3LabError
            What opening raised, as the reader raised it.
        """
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
        """``reader.<method>(*args)`` on a recording's reader in a worker, result pickled back.

        For small results (block envelopes, metadata); samples go through `submit`.

        Parameters
        ----------
        path, password, engine
            The recording and how to open it (as for `info`).
        method : str
            One of `CALLABLE` ("info" returns the `SessionInfo`).
        *args
            The method's arguments.
        timeout : float or None
            Seconds to wait (None: for as long as it takes).

        Returns
        -------
        object
            What the method returned.

        Raises
        ------
        ValueError
            For a method not in `CALLABLE`.
        RuntimeError
            When called from a done-callback of this pool (it would wait for itself).
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
        """Have every worker open a recording when it is next idle; returns at once.

        So that the first read split across them does not wait for the others to open it.
        A failure is left for the read that needs the recording to report. Every worker
        opens it from the metadata the first opening of it parsed (its `info`), kept until
        `close_recording`, and so does a worker started later: the files are parsed once
        (again only where they changed since).
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
        """The pool's counters.

        Workers (configured), alive, ready, warm (their decoders' kernels loaded; the read
        timeout of a job runs from then), busy, queued, restarts, crashes, timeouts,
        aborted, parses (openings that parsed a recording's files), offers (another
        worker's metadata sent to one that had none of that recording), and the workers'
        pids.
        """
        return self._core.stats()

    def close(self) -> None:
        """Stop and join every worker; pending and running requests fail. Idempotent."""
        self._finalizer()

    @property
    def closed(self) -> bool:
        """Whether `close` has run."""
        return not self._finalizer.alive

    def __enter__(self) -> ReaderPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
