"""Crash-isolated reader processes: where the server decodes samples, and how they come back.

Why processes. pymef keeps global state, holds the GIL for a whole C call and
segfaults on some damaged files. So decoding happens in spawned worker processes
(spawn, never fork: gRPC in the parent is not fork-safe), each keeping its own open
readers, cached per (path, password, engine) because opening is costly. A worker that
dies takes only its current request with it: that request fails with
`CorruptDataError`, the worker is replaced, everything else keeps being served.

How samples come back. The result size is known before the read (channels × samples ×
itemsize), so the parent creates a POSIX shared-memory block of that size and the worker
decodes straight into an array over it; only a few-byte status message crosses the pipe.
The parent owns every block: it unlinks the name the moment the request ends, however it
ends (success, error, worker crash, pool closed), so nothing lingers in /dev/shm. The
memory itself stays mapped for as long as the result array, or any view of it, lives, and
returns to the OS when the last one is freed; `SharedArray.release` is therefore always
safe, even while a caller still holds a view. Workers only attach to blocks and never
register them with the resource tracker, which would otherwise unlink (or warn about)
blocks it does not own.

Crash policy. A request whose worker dies is failed, never retried on another worker: a
deterministic segfault on a damaged block would otherwise take down every worker in turn,
and an out-of-memory kill would most likely repeat. The caller (or the user) may retry.
A worker that dies before it has even started up (a broken environment) fails nobody's
request; its requests wait for the replacement, and after a few consecutive start-up
failures the pool gives up and fails everything with the reason.

Lifetime. One dispatcher thread owns every pipe and process: it starts workers, hands a
queued request to an idle one (foreground requests before background prefetches, FIFO
within each), and waits on result pipes and process sentinels together, so a death is
seen at once without polling. Workers ignore SIGINT (the parent handles Ctrl-C and closes
the pool), exit when their pipe reaches EOF, and on Linux are also killed by the kernel
when the parent dies (PR_SET_PDEATHSIG), so no worker outlives the server even when it is
killed outright. `close()` is idempotent and also runs at interpreter exit or when the
pool is garbage-collected.
"""

from __future__ import annotations

import atexit
import ctypes
import gc
import heapq
import itertools
import logging
import multiprocessing
import multiprocessing.connection
import operator
import os
import pickle
import secrets
import signal
import sys
import threading
import traceback
import weakref
from collections import OrderedDict
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from multiprocessing.context import BaseContext
from multiprocessing.shared_memory import SharedMemory
from typing import Any, Mapping

import numpy as np

from ..errors import (
    ERROR_CLASSES,
    CancelledError,
    CorruptDataError,
    Mef3LabError,
    ReadTooLargeError,
    rebuild,
)

log = logging.getLogger(__name__)

__all__ = ["CALLABLE", "ReadRequest", "ReaderPool", "SharedArray"]

#: Result dtypes: float reads in channel units, or the stored int32 counts (Reader.read_raw).
RESULT_DTYPES = {"float32": np.float32, "float64": np.float64, "int32": np.int32}

#: What `ReaderPool.call` may ask of a reader (read-only; "info" is the attribute).
CALLABLE = frozenset({"info", "block_envelope", "read", "read_groups", "read_index", "read_raw"})

#: Consecutive workers dying before they report ready, after which the pool gives up.
MAX_STARTUP_FAILURES = 3

#: Seconds `close` gives idle workers to exit on their own before killing them.
STOP_GRACE_S = 2.0

# ---------------------------------------------------------------------------------------
# Public types
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReadRequest:
    """Samples ``[k0, k1)`` of `channels` on their rate group's grid, as `dtype`.

    dtype "float32"/"float64" are values in channel units (NaN in gaps, Reader.read_index);
    "int32" are the stored counts (RAW_NAN in gaps, Reader.read_raw).
    """

    path: str
    password: str | None
    engine: str | None
    channels: tuple[str, ...]
    k0: int
    k1: int
    dtype: str = "float32"

    def __post_init__(self) -> None:
        chans = (self.channels,) if isinstance(self.channels, str) else tuple(self.channels)
        object.__setattr__(self, "path", _absolute(self.path))
        object.__setattr__(self, "channels", chans)
        object.__setattr__(self, "k0", operator.index(self.k0))
        object.__setattr__(self, "k1", operator.index(self.k1))
        if self.dtype not in RESULT_DTYPES:
            raise ValueError(f"dtype must be one of {sorted(RESULT_DTYPES)}, not {self.dtype!r}")

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.channels), max(self.k1 - self.k0, 0))

    @property
    def nbytes(self) -> int:
        return self.shape[0] * self.shape[1] * np.dtype(self.dtype).itemsize

    def describe(self) -> str:
        names = ", ".join(self.channels[:8]) + (f", … ({len(self.channels) - 8} more)" if len(self.channels) > 8 else "")
        return f"{self.path} channels [{names}] samples [{self.k0}, {self.k1})"


class SharedArray:
    """The samples of one read, ``(n_channels, n_samples)``, read-only, in shared memory.

    `array` is valid for as long as it (or a view of it) is referenced, whether or not
    `release` was called: `release` drops this object's hold, and the memory goes back to
    the OS when nothing else holds a view. A cache holds these and releases them on eviction.
    """

    __slots__ = ("_array", "nbytes", "shape", "dtype")

    def __init__(self, array: np.ndarray) -> None:
        array.flags.writeable = False
        self._array: np.ndarray | None = array
        self.nbytes = array.nbytes
        self.shape = array.shape
        self.dtype = array.dtype

    @property
    def array(self) -> np.ndarray:
        if self._array is None:
            raise ValueError("this SharedArray was released")
        return self._array

    @property
    def released(self) -> bool:
        return self._array is None

    def release(self) -> None:
        """Give up this object's hold on the memory. Idempotent."""
        self._array = None

    def __repr__(self) -> str:
        state = "released" if self._array is None else f"{self.nbytes} bytes"
        return f"SharedArray(shape={self.shape}, dtype={self.dtype}, {state})"


class ReaderPool:
    """Reads MEF samples and metadata in crash-isolated worker processes. Thread-safe.

    n_workers: worker processes (0: read inside this process, one read at a time, for
    debugging; same API and results). mp_context: a start method name or context; spawn
    (the default) or forkserver, never fork in a process that runs gRPC. max_open: readers
    each worker keeps open (least recently used closed first). engines: extra engines,
    name -> "module:Class" (Reader subclasses), made available to `engine=` in every worker.
    """

    def __init__(
        self,
        n_workers: int = 2,
        *,
        mp_context: str | BaseContext = "spawn",
        max_open: int = 16,
        engines: Mapping[str, str] | None = None,
    ) -> None:
        if n_workers < 0:
            raise ValueError(f"n_workers must be >= 0, not {n_workers}")
        if max_open < 1:
            raise ValueError(f"max_open must be >= 1, not {max_open}")
        ctx = multiprocessing.get_context(mp_context) if isinstance(mp_context, str) else mp_context
        self.n_workers = n_workers
        engines = dict(engines or {})
        self._core: _InProcess | _Dispatcher
        if n_workers == 0:
            self._core = _InProcess(max_open, engines)
        else:
            self._core = _Dispatcher(n_workers, ctx, max_open, engines)
        # The dispatcher holds no reference to this object, so a forgotten pool is collected
        # and closed; atexit covers the rest.
        self._finalizer = weakref.finalize(self, self._core.close)

    def submit(self, req: ReadRequest, *, foreground: bool = True) -> "Future[SharedArray]":
        """Queue a read. Foreground reads go before background ones (prefetch).

        Cancelling the future before a worker takes it means it is never run. The future
        fails with the reader's own error (same class and message), `CorruptDataError` if the
        worker crashed on it, or `mef3lab.errors.CancelledError` if the pool was closed first.
        Done-callbacks run on the pool's dispatcher thread: keep them short.
        """
        if not isinstance(req, ReadRequest):
            raise TypeError(f"submit takes a ReadRequest, not {type(req).__name__}")
        return self._core.submit(_Job("read", req, _key(req.path, req.password, req.engine), foreground))

    def info(
        self, path: str | os.PathLike, password: str | None = None, engine: str | None = None,
        *, timeout: float | None = None,
    ) -> Any:
        """Open `path` in a worker (opening can crash too) and return its `SessionInfo`."""
        return self.call(path, password, engine, "info", timeout=timeout)

    def call(
        self, path: str | os.PathLike, password: str | None, engine: str | None, method: str, *args: Any,
        timeout: float | None = None,
    ) -> Any:
        """``reader.<method>(*args)`` on `path`'s reader in a worker, result pickled back.

        For small results (block envelopes, metadata); samples go through `submit`.
        `method` is one of CALLABLE ("info" returns the SessionInfo).
        """
        if method not in CALLABLE:
            raise ValueError(f"method must be one of {sorted(CALLABLE)}, not {method!r}")
        self._core.check_blocking()
        job = _Job("call", (_absolute(path), password or "", engine, method, args), _key(path, password, engine), True)
        return self._core.submit(job).result(timeout)

    def close_recording(self, path: str | os.PathLike) -> None:
        """Workers close their readers of `path` (after the request each is running).

        Requests submitted after this call open the recording afresh.
        """
        self._core.close_recording(_canonical(path))

    def stats(self) -> dict[str, Any]:
        """workers (configured), alive, busy, queued, restarts, crashes, pids."""
        return self._core.stats()

    def close(self) -> None:
        """Stop and join every worker; pending and running requests fail. Idempotent."""
        self._finalizer()

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def __enter__(self) -> "ReaderPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------------------
# What both sides share
# ---------------------------------------------------------------------------------------
def _absolute(path: str | os.PathLike) -> str:
    """The path workers open: absolute (they may not share our working directory), links kept."""
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


def _canonical(path: str | os.PathLike) -> str:
    """The path readers are cached under: every spelling of one recording is one key."""
    return os.path.realpath(os.path.expanduser(os.fspath(path)))


def _key(path: str | os.PathLike, password: str | None, engine: str | None) -> tuple[str, str, str | None]:
    return (_canonical(path), password or "", engine)


@dataclass(eq=False)
class _Job:
    kind: str  # "read" | "call"
    payload: Any  # ReadRequest | (path, password, engine, method, args)
    key: tuple[str, str, str | None]
    foreground: bool
    future: Future = field(default_factory=Future)
    started: bool = False  # its future is RUNNING (it may still be requeued if its worker never booted)
    block: SharedMemory | None = None

    def describe(self) -> str:
        if self.kind == "read":
            return f"reading {self.payload.describe()}"
        path, _, _, method, args = self.payload
        return f"opening {path}" if method == "info" else f"calling {method}{args!r} on {path}"


class _Readers:
    """One process's open readers, least recently used closed first, and what it does with them."""

    def __init__(self, max_open: int, engines: Mapping[str, str]) -> None:
        self.max_open = max_open
        self.engines = dict(engines)
        self._open: OrderedDict[tuple, Any] = OrderedDict()

    def get(self, key: tuple, path: str, password: str, engine: str | None) -> Any:
        reader = self._open.get(key)
        if reader is not None:
            self._open.move_to_end(key)
            return reader
        if engine in self.engines:
            import importlib

            module, cls = self.engines[engine].split(":")
            reader = getattr(importlib.import_module(module), cls)(path, password or None)
        else:
            from ..readers import open_reader

            reader = open_reader(path, password or None, engine)
        self._open[key] = reader
        while len(self._open) > self.max_open:
            self._close(self._open.popitem(last=False)[1])
        return reader

    def drop(self, canonical_path: str) -> None:
        for key in [k for k in self._open if k[0] == canonical_path]:
            self._close(self._open.pop(key))

    def close_all(self) -> None:
        while self._open:
            self._close(self._open.popitem()[1])

    def read(self, req: ReadRequest, key: tuple, out: np.ndarray | None) -> np.ndarray:
        reader = self.get(key, req.path, req.password or "", req.engine)
        if req.dtype == "int32":
            counts = reader.read_raw(req.channels, req.k0, req.k1).counts
            if out is None:
                return counts
            out[...] = counts
            return out
        return reader.read_index(req.channels, req.k0, req.k1, req.dtype, out=out)

    def call(self, key: tuple, path: str, password: str, engine: str | None, method: str, args: tuple) -> Any:
        reader = self.get(key, path, password, engine)
        return reader.info if method == "info" else getattr(reader, method)(*args)

    @staticmethod
    def _close(reader: Any) -> None:
        try:
            reader.close()
        except Exception:  # a reader that fails to close must not take the worker down
            log.warning("closing %s failed", getattr(reader, "path", reader), exc_info=True)


def _error_payload(exc: BaseException) -> tuple[bytes | None, str, str, str | None]:
    """An exception as it crosses the pipe: pickled when possible, plus name/message to rebuild it."""
    try:
        blob: bytes | None = pickle.dumps(exc)
    except Exception:
        blob = None
    tb = None if isinstance(exc, Mef3LabError) else "".join(traceback.format_exception(exc))
    return blob, type(exc).__name__, str(exc), tb


def _rebuild_error(payload: tuple[bytes | None, str, str, str | None]) -> BaseException:
    blob, name, message, tb = payload
    exc: BaseException | None = None
    if blob is not None:
        try:
            exc = pickle.loads(blob)
        except Exception:
            exc = None
    if exc is None:
        exc = rebuild(name, message) if name in ERROR_CLASSES else RuntimeError(f"{name}: {message}")
    if tb:
        exc.add_note("raised in the reader process:\n" + tb.rstrip())
    return exc


# ---------------------------------------------------------------------------------------
# n_workers=0: in this process
# ---------------------------------------------------------------------------------------
class _InProcess:
    """Reads in the calling thread, one at a time (readers are not thread-safe)."""

    def __init__(self, max_open: int, engines: Mapping[str, str]) -> None:
        self._readers = _Readers(max_open, engines)
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, job: _Job) -> Future:
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

    def close_recording(self, path: str) -> None:
        with self._lock:
            self._readers.drop(path)

    def stats(self) -> dict[str, Any]:
        return {"workers": 0, "alive": 0, "ready": 0, "busy": 0, "queued": 0, "restarts": 0, "crashes": 0, "pids": []}

    def check_blocking(self) -> None:
        pass

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._readers.close_all()


# ---------------------------------------------------------------------------------------
# The parent side: one dispatcher thread
# ---------------------------------------------------------------------------------------
@dataclass(eq=False)
class _Worker:
    process: Any  # multiprocessing.Process
    conn: multiprocessing.connection.Connection
    ready: bool = False
    eof: bool = False
    job: _Job | None = None
    keys: set = field(default_factory=set)  # readers it (probably) has open: dispatch affinity


class _Dispatcher:
    def __init__(self, n_workers: int, ctx: BaseContext, max_open: int, engines: Mapping[str, str]) -> None:
        self._n = n_workers
        self._ctx = ctx
        self._worker_args = (os.getpid(), max_open, dict(engines))
        self._lock = threading.Lock()
        self._queue: list[tuple[int, int, _Job]] = []  # heap of (background?, seq, job)
        self._seq = itertools.count()
        self._controls: list[tuple] = []  # messages for every worker, e.g. ("drop", path)
        self._workers: list[_Worker] = []
        self._closing = False
        self._failure: str | None = None  # why the pool gave up
        self._startup_failures = 0
        self._counts = {"restarts": 0, "crashes": 0}
        self._wake_r, self._wake_w = multiprocessing.connection.Pipe(duplex=False)
        self._wake_pending = False
        self._thread = threading.Thread(target=self._run, name="mef3lab-reader-pool", daemon=True)
        self._thread.start()
        # Registered after multiprocessing's own exit handler, so it runs first (LIFO): the
        # workers are stopped here, not terminated under a dispatcher that would replace them.
        atexit.register(self.close)

    # -- called from any thread -----------------------------------------------------------
    def submit(self, job: _Job) -> Future:
        with self._lock:
            if self._closing:
                raise RuntimeError("the reader pool is closed")
            if self._failure is not None:
                raise RuntimeError(self._failure)
            heapq.heappush(self._queue, (0 if job.foreground else 1, next(self._seq), job))
            self._wake_locked()
        return job.future

    def close_recording(self, path: str) -> None:
        with self._lock:
            if self._closing:
                return
            for w in self._workers:
                w.keys = {k for k in w.keys if k[0] != path}
            self._controls.append(("drop", path))
            self._wake_locked()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "workers": self._n,
                "alive": len(self._workers),
                "ready": sum(w.ready for w in self._workers),
                "busy": sum(w.job is not None for w in self._workers),
                "queued": sum(not j.future.cancelled() for _, _, j in self._queue),
                "pids": [w.process.pid for w in self._workers],
                **self._counts,
            }

    def check_blocking(self) -> None:
        if threading.current_thread() is self._thread:
            raise RuntimeError("a blocking pool call from a done-callback would wait for itself forever")

    def close(self) -> None:
        atexit.unregister(self.close)
        with self._lock:
            self._closing = True
            self._wake_locked()
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def _wake_locked(self) -> None:
        if not self._wake_pending:
            self._wake_pending = True
            try:
                self._wake_w.send_bytes(b"")
            except OSError:  # the dispatcher is gone (closed)
                pass

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
            _fail(job.future, exc)
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
        ready = set(multiprocessing.connection.wait(waitables))
        for w in list(self._workers):
            if w.conn in ready:
                self._receive(w)
        for w in list(self._workers):
            if w.process.sentinel in ready:
                self._died(w)
        return True

    def _start_worker(self) -> None:
        parent_end, child_end = multiprocessing.connection.Pipe()
        p = self._ctx.Process(
            target=_worker_main, args=(child_end, *self._worker_args), name="mef3lab-reader", daemon=True
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

    def _assign(self) -> tuple[list[tuple[_Worker, tuple]], list[tuple[_Job, BaseException]]]:
        """Hand queued jobs to idle workers, preferring one that already has the recording open."""
        sends, failed = [], []
        idle = [w for w in self._workers if w.job is None and not w.eof]
        while idle and self._queue:
            job = heapq.heappop(self._queue)[2]
            if not job.started:
                if not job.future.set_running_or_notify_cancel():
                    continue  # cancelled while queued: never run
                job.started = True
            try:
                msg = self._message(job)
            except Exception as exc:
                failed.append((job, exc))
                continue
            w = next((w for w in idle if job.key in w.keys), idle[0])
            idle.remove(w)
            w.job = job
            w.keys.add(job.key)
            sends.append((w, msg))
        return sends, failed

    def _message(self, job: _Job) -> tuple:
        if job.kind == "call":
            return ("call", job.key, *job.payload)
        req: ReadRequest = job.payload
        name = None
        if req.nbytes > 0 and job.block is None:
            job.block = _create_block(req.nbytes)
        if job.block is not None:
            name = job.block.name
        return ("read", job.key, req, name)

    def _send(self, w: _Worker, msg: tuple) -> None:
        try:
            w.conn.send(msg)
        except OSError:
            pass  # the worker is dying; its sentinel will tell

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
        job, w.job = w.job, None
        if job is None:  # cannot happen: a reply without a request
            log.error("reader worker %s replied without a request", w.process.pid)
            return
        ok, payload = msg[1], msg[2]
        if not ok:
            _discard_block(job)
            _fail(job.future, _rebuild_error(payload))
        elif job.kind == "call":
            _succeed(job.future, payload)
        else:
            _succeed(job.future, _result_array(job))

    def _died(self, w: _Worker) -> None:
        while not w.eof and w.conn.poll():  # a last reply may be waiting in the pipe
            self._receive(w)
        w.process.join()
        code = w.process.exitcode
        w.conn.close()
        job, w.job = w.job, None
        with self._lock:
            self._workers.remove(w)
            closing = self._closing
            if not closing:
                self._counts["restarts"] += 1
                if not w.ready:
                    self._startup_failures += 1
                    if job is not None:  # it never ran: it goes first to the replacement
                        heapq.heappush(self._queue, (0, -1 - next(self._seq), job))
                        job = None
                elif job is not None:
                    self._counts["crashes"] += 1
            startup_failures = self._startup_failures
        if closing:
            if job is not None:
                _discard_block(job)
                _fail(job.future, _closed_error())
            return
        log.warning("reader worker %s %s%s", w.process.pid, _how(code),
                    f" while {job.describe()}" if job is not None else "")
        if job is not None:
            _discard_block(job)
            _fail(job.future, CorruptDataError(
                f"the decoder crashed {job.describe()} (reader process {_how(code)}); the recording may be damaged"
            ))
        if startup_failures >= MAX_STARTUP_FAILURES:
            self._give_up(
                f"reader worker processes die while starting ({_how(code)}, {startup_failures} times in a row); "
                "see their error output"
            )

    def _give_up(self, reason: str) -> None:
        """Stop starting workers and fail everything queued, now and later, with `reason`."""
        log.error("%s", reason)
        with self._lock:
            self._failure = reason
            queued, self._queue = self._queue, []
        for _, _, job in queued:
            _discard_block(job)
            if job.started or job.future.set_running_or_notify_cancel():
                _fail(job.future, RuntimeError(reason))

    def _shutdown(self) -> None:
        with self._lock:
            self._closing = True
            queued, self._queue = self._queue, []
            workers = list(self._workers)
        for _, _, job in queued:
            _discard_block(job)
            if job.started or job.future.set_running_or_notify_cancel():
                _fail(job.future, _closed_error())
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
            if w.job is not None:
                _discard_block(w.job)
                _fail(w.job.future, _closed_error())
                w.job = None
            w.conn.close()
        with self._lock:
            self._workers.clear()
        self._wake_r.close()
        self._wake_w.close()


def _closed_error() -> CancelledError:
    return CancelledError("the reader pool was closed before this request finished")


def _succeed(fut: Future, result: Any) -> None:
    try:
        fut.set_result(result)
    except InvalidStateError:
        pass


def _fail(fut: Future, exc: BaseException) -> None:
    try:
        fut.set_exception(exc)
    except InvalidStateError:
        pass


def _how(exitcode: int | None) -> str:
    if exitcode is None:
        return "vanished"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"was killed by {name}" + (", e.g. out of memory" if -exitcode == signal.SIGKILL else "")
    return f"exited with code {exitcode}"


# ---------------------------------------------------------------------------------------
# Shared-memory blocks (parent: create, own, unlink; worker: attach only)
# ---------------------------------------------------------------------------------------
def _create_block(nbytes: int) -> SharedMemory:
    # Named after the owning process, so a leak (there should be none) says whose it is.
    return SharedMemory(f"mef3lab_{os.getpid()}_{secrets.token_hex(6)}", create=True, size=nbytes)


def _reserve(block: SharedMemory, req: ReadRequest) -> None:
    """Allocate the block's memory now, so that a full /dev/shm is an error and not a SIGBUS.

    Without this, tmpfs allocates pages as the decoder writes, and running out of them kills
    the worker with SIGBUS, which would be reported as a damaged recording. Done in the
    worker: the cost (zeroing the pages) replaces the page faults of the first write.
    """
    path = "/dev/shm/" + block.name
    if not hasattr(os, "posix_fallocate") or not os.path.exists(path):
        return
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, block.size)
    except OSError as exc:
        raise ReadTooLargeError(
            f"no room in shared memory for {block.size / 2**20:.1f} MiB of samples ({req.describe()}): "
            f"{exc.strerror}; read a shorter window, free memory, or give the server a larger /dev/shm "
            "(docker: --shm-size)"
        ) from None
    finally:
        os.close(fd)


def _unlink(block: SharedMemory) -> None:
    try:
        block.unlink()
    except FileNotFoundError:
        pass


def _discard_block(job: _Job) -> None:
    if job.block is not None:
        _unlink(job.block)
        job.block.close()
        job.block = None


class _Mapping:
    """The parent's mapping of one block, kept open by every array over it; unmapped with the last.

    Arrays are built from `__array_interface__` (a raw address) rather than the buffer
    protocol, so no buffer export pins the mapping: closing it here never fails.
    """

    def __init__(self, block: SharedMemory, shape: tuple[int, ...], dtype: str) -> None:
        probe = np.frombuffer(block.buf, np.uint8, count=1)
        address = probe.__array_interface__["data"][0]
        del probe
        self._block = block
        self.__array_interface__ = {
            "version": 3, "shape": shape, "typestr": np.dtype(dtype).str, "data": (address, False),
        }

    def __del__(self) -> None:
        self._block.close()


def _result_array(job: _Job) -> SharedArray:
    req: ReadRequest = job.payload
    block, job.block = job.block, None
    if block is None:  # nothing to share: an empty read
        return SharedArray(np.empty(req.shape, RESULT_DTYPES[req.dtype]))
    _unlink(block)  # the name goes now; the memory lives as long as the array
    return SharedArray(np.asarray(_Mapping(block, req.shape, req.dtype)))


def _attach(name: str) -> SharedMemory:
    """Attach to the parent's block without telling the resource tracker (the parent owns it)."""
    if sys.version_info >= (3, 13):
        return SharedMemory(name, track=False)
    from multiprocessing import resource_tracker

    register = resource_tracker.register
    resource_tracker.register = lambda *args: None  # this process is single-threaded here
    try:
        return SharedMemory(name)
    finally:
        resource_tracker.register = register


# ---------------------------------------------------------------------------------------
# The worker process
# ---------------------------------------------------------------------------------------
def _worker_main(conn: Any, parent_pid: int, max_open: int, engines: Mapping[str, str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked by the dispatcher
    _die_with_parent(parent_pid)
    readers = _Readers(max_open, engines)
    try:
        conn.send(("ready", os.getpid()))
        while True:
            msg = conn.recv()
            op = msg[0]
            if op == "stop":
                return
            if op == "drop":
                readers.drop(msg[1])
                continue
            conn.send(_serve_read(readers, *msg[1:]) if op == "read" else _serve_call(readers, *msg[1:]))
    except (EOFError, OSError):
        return  # the parent is gone
    finally:
        readers.close_all()


def _serve_call(readers: _Readers, key: tuple, *call: Any) -> tuple:
    try:
        return ("done", True, readers.call(key, *call))
    except Exception as exc:
        return ("done", False, _error_payload(exc))


def _serve_read(readers: _Readers, key: tuple, req: ReadRequest, block_name: str | None) -> tuple:
    if block_name is None:  # empty result (or an invalid request): validate only
        try:
            readers.read(req, key, None)
            return ("done", True, None)
        except Exception as exc:
            return ("done", False, _error_payload(exc))
    try:
        block = _attach(block_name)
    except Exception as exc:
        return ("done", False, _error_payload(exc))
    reply = _read_into(readers, key, req, block)
    try:
        block.close()
    except BufferError:  # something (a traceback cycle) still holds the view
        gc.collect()
        try:
            block.close()
        except BufferError:
            log.warning("a view of shared block %s outlived its read", block_name)
    return reply


def _read_into(readers: _Readers, key: tuple, req: ReadRequest, block: SharedMemory) -> tuple:
    # Kept apart from `_serve_read` so that the view and any traceback holding it are gone
    # by the time the block is closed.
    try:
        _reserve(block, req)
    except Exception as exc:
        return ("done", False, _error_payload(exc))
    out = np.ndarray(req.shape, RESULT_DTYPES[req.dtype], buffer=block.buf)
    try:
        readers.read(req, key, out)
        return ("done", True, None)
    except Exception as exc:
        return ("done", False, _error_payload(exc))
    finally:
        del out


def _die_with_parent(parent_pid: int) -> None:
    """Have the kernel kill this worker when the parent dies, even mid-decode (Linux)."""
    if os.getppid() != parent_pid:
        return  # started through a fork server: rely on the pipe's EOF
    if sys.platform.startswith("linux"):
        try:
            pr_set_pdeathsig = 1
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before the line above
        os._exit(0)
