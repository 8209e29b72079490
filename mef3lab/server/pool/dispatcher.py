"""The parent side: one dispatcher thread that owns every worker process and pipe.

It starts workers, hands queued requests to idle, started ones (foreground before
background, preferring a worker that has the recording open), and waits on result pipes
and process sentinels together, so a death is seen at once. A request whose worker dies
fails and is never retried; a decode that must stop (read timeout, abort) costs its
process. The scheduling, crash policy and stopping rules: docs/server.md ("Dispatcher").
"""

from __future__ import annotations

import atexit
import contextlib
import heapq
import itertools
import logging
import multiprocessing.connection
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from multiprocessing.context import BaseContext
from typing import Any

from ...readers.salvage import remove_shadows_of, remove_stale_shadows
from .errors import (
    closed_error,
    crash_error,
    fail,
    how_it_ended,
    rebuild_error,
    stopped_error,
    succeed,
)
from .requests import Job, ReadRequest
from .shm import create_block, discard_block, result_array
from .worker import worker_main

log = logging.getLogger(__name__)

#: Consecutive workers dying before they report ready, after which the pool gives up.
MAX_STARTUP_FAILURES = 3

#: Seconds `close` gives idle workers to exit on their own before killing them.
STOP_GRACE_S = 2.0


@dataclass(eq=False)
class _Worker:
    process: Any  # multiprocessing.Process
    conn: multiprocessing.connection.Connection
    ready: bool = False
    warm: bool = False  # its decoders' kernels are loaded (its reads run at full speed)
    eof: bool = False
    job: Job | None = None
    keys: set = field(default_factory=set)  # readers it (probably) has open: dispatch affinity
    offered: set = field(default_factory=set)  # keys whose metadata it has (sent, or its own)
    opens: list = field(default_factory=list)  # pre-opens (Jobs) it takes before any other job
    deadline: float | None = None  # monotonic time its current job must be done by
    stopped: str | None = None  # why it was killed mid-job: "timeout" | "aborted"


class Dispatcher:
    """The pool's core when it has worker processes; its public methods are thread-safe.

    Parameters
    ----------
    n_workers : int
        Worker processes to keep running.
    ctx : multiprocessing.context.BaseContext
        How to start them (spawn or forkserver).
    max_open : int
        Readers each worker keeps open.
    engines : mapping of str to str
        Extra reader engines, name -> "module:Class".
    read_timeout_s : float
        A job still running after this long has its worker killed (0: no limit).
    guard : callable or None
        Checks each job in its worker before it runs (`ReaderPool`).
    """

    def __init__(
        self,
        n_workers: int,
        ctx: BaseContext,
        max_open: int,
        engines: Mapping[str, str],
        read_timeout_s: float = 0.0,
        guard: Callable[[str, tuple[str, ...] | None], None] | None = None,
    ) -> None:
        self._n = n_workers
        self._timeout = read_timeout_s
        self._on_failure: Callable[[str, BaseException], None] | None = None
        self._ctx = ctx
        self._worker_args = (os.getpid(), max_open, dict(engines), guard)
        remove_stale_shadows()  # salvage folders of readers of a server that did not stop cleanly
        self._lock = threading.Lock()
        self._queue: list[tuple[int, int, Job]] = []  # heap of (background?, seq, job)
        self._seq = itertools.count()
        self._controls: list[tuple] = []  # messages for every worker, e.g. ("drop", path)
        # reader key -> pickled ReaderMetadata a worker parsed, offered to the others
        self._metadata: dict[tuple, bytes] = {}
        self._workers: list[_Worker] = []
        self._closing = False
        self._failure: str | None = None  # why the pool gave up
        self._startup_failures = 0
        self._counts = {
            "restarts": 0,
            "crashes": 0,
            "timeouts": 0,
            "aborted": 0,
            "parses": 0,  # openings that parsed a recording's files
            "offers": 0,  # metadata sent to a worker that had none of its recording
        }
        self._wake_r, self._wake_w = multiprocessing.connection.Pipe(duplex=False)
        self._wake_pending = False
        self._thread = threading.Thread(target=self._run, name="mef3lab-reader-pool", daemon=True)
        self._thread.start()
        # Registered after multiprocessing's own exit handler, so it runs first (LIFO): the
        # workers are stopped here, not terminated under a dispatcher that would replace them.
        atexit.register(self.close)

    # -- called from any thread -----------------------------------------------------------
    def submit(self, job: Job) -> Future:
        """Queue `job`; returns its future.

        Raises
        ------
        RuntimeError
            When the pool is closed, or gave up starting workers (with the reason).
        """
        with self._lock:
            if self._closing:
                raise RuntimeError("the reader pool is closed")
            if self._failure is not None:
                raise RuntimeError(self._failure)
            heapq.heappush(self._queue, (0 if job.foreground else 1, next(self._seq), job))
            self._wake_locked()
        return job.future

    def watch_failures(self, callback: Callable[[str, BaseException], None]) -> None:
        """Have `callback(canonical path, error)` hear of every job whose worker died or stopped.

        It is called before the job fails.
        """
        self._on_failure = callback

    def abort(self, future: Future) -> None:
        """Stop the job of `future`: cancelled while queued, its worker killed while running."""
        if future.cancel():  # outside the lock: this runs its done-callbacks
            return
        with self._lock:
            for w in self._workers:
                if w.job is not None and w.job.future is future and w.stopped is None:
                    w.stopped = "aborted"
                    w.process.kill()  # the dispatcher sees the death and replaces it

    def preopen(self, key: tuple, path: str, password: str, engine: str | None) -> None:
        """Have every worker that does not have the reader of `key` open it when next idle.

        Each opening is a job of its worker, with the read timeout: a worker stuck opening
        is busy (no read waits behind it), and one stuck past the timeout is killed and
        blames the recording it was opening.
        """
        with self._lock:
            if self._closing:
                return
            for w in self._workers:
                if key not in w.keys:
                    w.keys.add(key)
                    w.opens.append(Job("call", (path, password, engine, "info", ()), key, True))
            self._wake_locked()

    def close_recording(self, path: str) -> None:
        """Have every worker close its readers of `path` (a canonical path)."""
        with self._lock:
            if self._closing:
                return
            for w in self._workers:
                w.keys = {k for k in w.keys if k[0] != path}
                w.offered = {k for k in w.offered if k[0] != path}
                w.opens = [j for j in w.opens if j.key[0] != path]
            for key in [k for k in self._metadata if k[0] == path]:
                del self._metadata[key]
            self._controls.append(("drop", path))
            self._wake_locked()

    def stats(self) -> dict[str, Any]:
        """The pool's counters (see `ReaderPool.stats`)."""
        with self._lock:
            return {
                "workers": self._n,
                "alive": len(self._workers),
                "ready": sum(w.ready for w in self._workers),
                "warm": sum(w.warm for w in self._workers),
                "busy": sum(w.job is not None for w in self._workers),
                "queued": sum(not j.future.cancelled() for _, _, j in self._queue),
                "pids": [w.process.pid for w in self._workers],
                **self._counts,
            }

    def check_blocking(self) -> None:
        """Refuse a blocking call from the dispatcher thread (a done-callback).

        Raises
        ------
        RuntimeError
            On the dispatcher thread, which the call would wait for forever.
        """
        if threading.current_thread() is self._thread:
            raise RuntimeError(
                "a blocking pool call from a done-callback would wait for itself forever"
            )

    def close(self) -> None:
        """Stop the dispatcher and every worker; pending and running jobs fail. Idempotent."""
        atexit.unregister(self.close)
        with self._lock:
            self._closing = True
            self._wake_locked()
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def _wake_locked(self) -> None:
        if not self._wake_pending:
            self._wake_pending = True
            with contextlib.suppress(OSError):  # the dispatcher is gone (closed)
                self._wake_w.send_bytes(b"")

    # -- the dispatcher thread ------------------------------------------------------------
    def _run(self) -> None:
        # Children inherit the signal mask of the thread that starts them: with SIGINT blocked
        # here, a Ctrl-C while a worker boots cannot reach it before it ignores SIGINT itself.
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            while self._step():
                pass
        except BaseException:
            log.critical("the reader pool's dispatcher failed; closing the pool", exc_info=True)
            with self._lock:
                self._closing = True
        finally:
            self._shutdown()

    def _step(self) -> bool:
        """Start missing workers, hand out work, then wait for wake-ups, results and deaths."""
        while self._wake_r.poll():
            self._wake_r.recv_bytes()
        with self._lock:
            self._wake_pending = False
            if self._closing:
                return False
            missing = self._n - len(self._workers) if self._failure is None else 0
        for _ in range(missing):
            self._start_worker()
        with self._lock:
            controls, self._controls = self._controls, []
            sends, failed = self._assign()
        for job, exc in failed:
            fail(job.future, exc)
        for w in self._workers:
            for msg in controls:
                self._send(w, msg)
        for w, msg in sends:
            self._send(w, msg)
        waitables: list[Any] = [self._wake_r]
        for w in self._workers:
            if not w.eof:
                waitables.append(w.conn)
            waitables.append(w.process.sentinel)
        ready = set(multiprocessing.connection.wait(waitables, self._next_deadline()))
        self._kill_overdue()
        for w in list(self._workers):
            if w.conn in ready:
                self._receive(w)
        for w in list(self._workers):
            if w.process.sentinel in ready:
                self._died(w)
        return True

    def _deadline(self, w: _Worker) -> float | None:
        """When the job `w` starts now must be done by (None: no limit yet).

        The clock starts once the worker is warm: a job that runs beside the loading of its
        kernels is slowed by it, and its recording must not be blamed for that.
        """
        return time.monotonic() + self._timeout if self._timeout > 0 and w.warm else None

    def _next_deadline(self) -> float | None:
        """Seconds until the nearest running job's deadline (None: no deadline to keep)."""
        deadlines = [
            w.deadline for w in self._workers if w.deadline is not None and w.stopped is None
        ]
        return max(0.0, min(deadlines) - time.monotonic()) if deadlines else None

    def _kill_overdue(self) -> None:
        now = time.monotonic()
        with self._lock:
            for w in self._workers:
                if (
                    w.deadline is not None
                    and w.deadline <= now
                    and w.job is not None
                    and w.stopped is None
                ):
                    w.stopped = "timeout"
                    log.error(
                        "reader worker %s: %s took longer than %g s; killing it",
                        w.process.pid,
                        w.job.describe(),
                        self._timeout,
                    )
                    w.process.kill()

    def _start_worker(self) -> None:
        parent_end, child_end = multiprocessing.connection.Pipe()
        p = self._ctx.Process(
            target=worker_main,
            args=(child_end, *self._worker_args),
            name="mef3lab-reader",
            daemon=True,
        )
        try:
            p.start()
        except Exception as exc:
            parent_end.close()
            self._give_up(f"cannot start reader worker processes: {exc}")
            return
        finally:
            child_end.close()  # so that our end sees EOF when the worker dies
        with self._lock:
            self._workers.append(_Worker(p, parent_end))

    def _assign(self) -> tuple[list[tuple[_Worker, tuple]], list[tuple[Job, BaseException]]]:
        """Hand queued jobs to idle workers, preferring one that already has the recording open."""
        sends, failed = [], []
        idle = [
            w
            for w in self._workers
            if w.ready and w.job is None and not w.eof and w.stopped is None
        ]
        for w in [w for w in idle if w.opens]:
            idle.remove(w)
            w.job = w.opens.pop(0)
            w.deadline = self._deadline(w)
            sends.append((w, self._message(w.job, w)))
        while idle and self._queue:
            job = heapq.heappop(self._queue)[2]
            if not job.future.set_running_or_notify_cancel():
                continue  # cancelled while queued: never run
            w = next((w for w in idle if job.key in w.keys), idle[0])
            try:
                msg = self._message(job, w)
            except Exception as exc:
                failed.append((job, exc))
                continue
            idle.remove(w)
            w.job = job
            w.deadline = self._deadline(w)
            w.keys.add(job.key)
            sends.append((w, msg))
        return sends, failed

    def _message(self, job: Job, w: _Worker) -> tuple:
        """What `w` is sent for `job` (called under the lock), with the metadata it lacks."""
        metadata = None
        if job.key not in w.offered:
            metadata = self._metadata.get(job.key)
            if metadata is not None:
                w.offered.add(job.key)
                self._counts["offers"] += 1
        if job.kind == "call":
            return ("call", job.key, *job.payload, metadata)
        req: ReadRequest = job.payload
        if job.target is not None:  # a part of a split read: its rows of the group's block
            return ("read", job.key, req, *job.target, metadata)
        name = None
        if req.nbytes > 0 and job.block is None:
            job.block = create_block(req.nbytes)
        if job.block is not None:
            name = job.block.name
        return ("read", job.key, req, name, 0, metadata)

    def _send(self, w: _Worker, msg: tuple) -> None:
        with contextlib.suppress(OSError):  # the worker is dying; its sentinel will tell
            w.conn.send(msg)

    def _receive(self, w: _Worker) -> None:
        try:
            msg = w.conn.recv()
        except (EOFError, OSError):
            w.eof = True  # dead or dying: the sentinel follows
            return
        if msg[0] == "ready":
            with self._lock:
                w.ready = True
                self._startup_failures = 0
            return
        if msg[0] == "warm":
            with self._lock:
                w.warm = True
                if w.job is not None:
                    w.deadline = self._deadline(w)
            return
        job, w.job, w.deadline = w.job, None, None
        if job is None:  # cannot happen: a reply without a request
            log.error("reader worker %s replied without a request", w.process.pid)
            return
        ok, payload, parsed = msg[1], msg[2], msg[3]
        if parsed is not None:
            self._parsed(w, job, parsed)
        if not ok:
            discard_block(job)
            fail(job.future, rebuild_error(payload))
        elif job.kind == "call" or job.target is not None:
            succeed(job.future, payload)
        else:
            result = result_array(job)
            result.stops = payload or ()
            succeed(job.future, result)

    def _parsed(self, w: _Worker, job: Job, metadata: bytes) -> None:
        """Keep the metadata `w` parsed for `job`, to offer the workers that open it next.

        Only from an opening (`info`, a pre-open) or in place of what is kept: a read that
        outlived its recording's close must not keep metadata nobody will drop.
        """
        opening = job.kind == "call" and job.payload[3] == "info"
        with self._lock:
            self._counts["parses"] += 1
            if opening or job.key in self._metadata:
                self._metadata[job.key] = metadata
                for other in self._workers:  # the files changed: the others get this one
                    other.offered.discard(job.key)
                w.offered.add(job.key)

    def _died(self, w: _Worker) -> None:
        while not w.eof and w.conn.poll():  # a last reply may be waiting in the pipe
            self._receive(w)
        w.process.join()
        code = w.process.exitcode
        remove_shadows_of(w.process.pid)  # a killed reader could not remove its salvage folders
        w.conn.close()
        job, w.job = w.job, None
        with self._lock:
            self._workers.remove(w)
            closing = self._closing
            if not closing:
                self._counts["restarts"] += 1
                if not w.ready:
                    self._startup_failures += 1
                elif job is not None:
                    self._counts[
                        "crashes"
                        if w.stopped is None
                        else "timeouts"
                        if w.stopped == "timeout"
                        else "aborted"
                    ] += 1
            startup_failures = self._startup_failures
        if closing:
            if job is not None:
                discard_block(job)
                fail(job.future, closed_error())
            return
        if job is not None and w.stopped is not None:
            self._failed(job, stopped_error(w.stopped, job, self._timeout))
            return
        log.warning(
            "reader worker %s %s%s",
            w.process.pid,
            how_it_ended(code),
            f" while {job.describe()}" if job is not None else "",
        )
        if job is not None:
            self._failed(job, crash_error(job, code))
        if startup_failures >= MAX_STARTUP_FAILURES:
            self._give_up(
                f"reader worker processes die while starting ({how_it_ended(code)}, "
                f"{startup_failures} times in a row); see their error output"
            )

    def _failed(self, job: Job, exc: BaseException) -> None:
        """Fail a job whose worker died or was stopped; the watcher hears of it first.

        So a caller who retries at once already meets the consequence (a quarantine).
        """
        discard_block(job)
        if self._on_failure is not None:
            try:
                self._on_failure(job.key[0], exc)
            except Exception:  # noqa: BLE001 - a watcher must not take the dispatcher down
                log.exception("the reader pool's failure watcher failed")
        fail(job.future, exc)

    def _give_up(self, reason: str) -> None:
        """Stop starting workers and fail everything queued, now and later, with `reason`."""
        log.error("%s", reason)
        with self._lock:
            self._failure = reason
            queued, self._queue = self._queue, []
        for _, _, job in queued:
            discard_block(job)
            if job.future.set_running_or_notify_cancel():
                fail(job.future, RuntimeError(reason))

    def _shutdown(self) -> None:
        with self._lock:
            self._closing = True
            queued, self._queue = self._queue, []
            workers = list(self._workers)
        for _, _, job in queued:
            discard_block(job)
            if job.future.set_running_or_notify_cancel():
                fail(job.future, closed_error())
        for w in workers:
            if w.job is not None:
                w.process.kill()  # mid-read: nothing to save
            else:
                self._send(w, ("stop",))
        for w in workers:
            w.process.join(STOP_GRACE_S)
            if w.process.exitcode is None:
                w.process.kill()
                w.process.join()
            remove_shadows_of(w.process.pid)
            if w.job is not None:
                discard_block(w.job)
                fail(w.job.future, closed_error())
                w.job = None
            w.conn.close()
        with self._lock:
            self._workers.clear()
        self._wake_r.close()
        self._wake_w.close()
