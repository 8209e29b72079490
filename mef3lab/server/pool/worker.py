"""What runs inside a reader worker process: its open readers, and serving the parent's requests.

Each worker keeps its own open readers, cached per (path, password, engine) because opening
is costly, and never outlives the server (docs/server.md, "Worker processes").

The pipe carries, from the parent: ``("read", key, ReadRequest, block name or None,
offset, metadata)``, ``("call", key, path, password, engine, method, args, metadata)``
(metadata: another process's pickled `ReaderMetadata` of the recording, or None),
``("drop", canonical path)`` and ``("stop",)``; from the worker: ``("ready", pid)`` once,
then ``("done", ok, result or error payload, metadata)`` for each read or call (metadata:
the pickled `ReaderMetadata` of a reader it parsed the files for, or None), and once
``("warm",)`` when the decoders' kernels are loaded. Samples never cross it: they go into
the block.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import os
import pickle
import signal
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from multiprocessing.shared_memory import SharedMemory
from typing import Any

import numpy as np

from ...model import SAMPLE_TYPES
from ...readers import ENGINES
from .errors import error_payload
from .requests import ReadRequest
from .shm import attach_block, reserve_block

log = logging.getLogger(__name__)


class OpenReaders:
    """One process's open readers, least recently used closed first, and what it does with them.

    Parameters
    ----------
    max_open : int
        Readers kept open.
    engines : mapping of str to str
        Extra reader engines, name -> "module:Class" (`Reader` subclasses).
    share : bool
        Keep the metadata of each reader that parsed its files in `parsed` (pickled), for
        other processes.
    guard : callable or None
        ``guard(path, channels)``, called in the process that reads right before each read
        (the channels it reads) and each call (channels None); it raises to refuse (served
        roots: `ServedRoots.confine`, since a link in a recording may change while it is
        open). Picklable: workers get a copy.
    """

    def __init__(
        self,
        max_open: int,
        engines: Mapping[str, str],
        share: bool = False,
        guard: Callable[[str, tuple[str, ...] | None], None] | None = None,
    ) -> None:
        self.max_open = max_open
        self.engines = dict(engines)
        self.share = share
        self.guard = guard
        self._open: OrderedDict[tuple, Any] = OrderedDict()
        self._offers: dict[tuple, bytes] = {}  # pickled ReaderMetadata another process parsed
        self.parsed: bytes | None = None  # the pickled metadata of the last reader parsed here

    def offer(self, key: tuple, metadata: bytes) -> None:
        """Open the reader of `key` from `metadata` (a pickled `ReaderMetadata`) when it fits.

        Kept until the recording is dropped, for every opening of `key` here.
        """
        self._offers[key] = metadata

    def get(self, key: tuple, path: str, password: str, engine: str | None) -> Any:
        """The open reader of `key`, opened now if it is not (closing the least recently used).

        Opened from the metadata offered for `key` when it fits; a reader that parsed the
        files itself leaves its own metadata in `parsed`, for the parent to offer others.
        """
        reader = self._open.get(key)
        if reader is not None:
            self._open.move_to_end(key)
            return reader
        if engine in self.engines:
            import importlib

            module, cls = self.engines[engine].split(":")
            reader = getattr(importlib.import_module(module), cls)(path, password or None, 1)
        else:
            from ...readers import open_reader

            offered = self._offers.get(key)
            shared = pickle.loads(offered) if offered is not None else None
            # One thread: the parallelism is the processes'.
            reader = open_reader(path, password or None, engine, threads=1, metadata=shared)
            if self.share and not reader.adopted:
                made = reader.metadata()
                self.parsed = None if made is None else pickle.dumps(made, pickle.HIGHEST_PROTOCOL)
        self._open[key] = reader
        while len(self._open) > self.max_open:
            self._close(self._open.popitem(last=False)[1])
        return reader

    def drop(self, canonical_path: str) -> None:
        """Close every reader of a recording (any password or engine) and forget its offers."""
        for key in [k for k in self._open if k[0] == canonical_path]:
            self._close(self._open.pop(key))
        for key in [k for k in self._offers if k[0] == canonical_path]:
            del self._offers[key]

    def close_all(self) -> None:
        """Close every reader."""
        while self._open:
            self._close(self._open.popitem()[1])

    def read(
        self, req: ReadRequest, key: tuple, out: np.ndarray | None
    ) -> tuple[np.ndarray, tuple]:
        """Decode `req` into `out` (None: a new array), values or int32 counts as it asks.

        Returns the array and where its decoding stopped inside blocks (`Reader.stops_left`).
        """
        if self.guard is not None:
            self.guard(req.path, req.channels)
        reader = self.get(key, req.path, req.password or "", req.engine)
        reader.resume_from(req.resume)
        with reader.stops_left() as stops:
            if req.dtype == "int32":
                array = reader.read_raw(req.channels, req.k0, req.k1, out=out).counts
            else:
                array = reader.read_index(req.channels, req.k0, req.k1, req.dtype, out=out)
        return array, tuple(stops)

    def call(
        self, key: tuple, path: str, password: str, engine: str | None, method: str, args: tuple
    ) -> Any:
        """``reader.<method>(*args)``, or the reader's `info` for "info"."""
        if self.guard is not None:
            self.guard(path, None)
        reader = self.get(key, path, password, engine)
        return reader.info if method == "info" else getattr(reader, method)(*args)

    @staticmethod
    def _close(reader: Any) -> None:
        try:
            reader.close()
        except Exception:  # a reader that fails to close must not take the worker down
            log.warning("closing %s failed", getattr(reader, "path", reader), exc_info=True)


#: How much lower than the server's the workers' CPU priority is.
WORKER_NICENESS = 10


def _yield_to_serving() -> None:
    """Lower this worker's CPU priority.

    When decoding (mostly prefetch) fills every core, the server's own threads, which stream
    already decoded data to waiting users, still run at once.
    """
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICENESS)


def worker_main(
    conn: Any,
    parent_pid: int,
    max_open: int,
    engines: Mapping[str, str],
    guard: Callable[[str, tuple[str, ...] | None], None] | None = None,
) -> None:
    """A worker process's life: serve the parent's requests on `conn` until told to stop.

    It ignores SIGINT (the parent handles Ctrl-C and closes the pool), lowers its priority,
    imports the decoders before it reports "ready", loads their kernels on a thread (which
    reports "warm" when they are in), and exits at "stop" or when the pipe reaches EOF (the
    parent is gone).

    Parameters
    ----------
    conn : multiprocessing.connection.Connection
        Its end of the pipe.
    parent_pid : int
        The server's pid (to die with it).
    max_open, engines, guard
        As for `OpenReaders`.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked by the dispatcher
    _die_with_parent(parent_pid)
    _yield_to_serving()
    from ...readers import engine_class
    from ...readers.numba import loaded_at_start

    for engine in ENGINES:  # imported before "ready": what the first opening runs
        engine_class(engine)
    import mef3io  # noqa: F401 - the library those of numba and mef3io open with

    loaded_at_start()  # `_warm_up` loads the kernels now; reads wait for them
    lock = threading.Lock()  # the warm-up thread sends too
    readers = OpenReaders(max_open, engines, share=True, guard=guard)
    try:
        conn.send(("ready", os.getpid()))
        # The kernels load on a thread while the server starts: a first opening does not wait
        # for them; a read that comes before they are in does.
        threading.Thread(
            target=_warm_up, args=(conn, lock), name="mef3lab-warm-up", daemon=True
        ).start()
        while True:
            msg = conn.recv()
            op = msg[0]
            if op == "stop":
                return
            if op == "drop":
                readers.drop(msg[1])
                continue
            *msg, metadata = msg
            if metadata is not None:
                readers.offer(msg[1], metadata)
            reply = (
                _serve_read(readers, *msg[1:]) if op == "read" else _serve_call(readers, *msg[1:])
            )
            with lock:
                conn.send((*reply, readers.parsed))
            readers.parsed = None
    except (EOFError, OSError):
        return  # the parent is gone
    finally:
        readers.close_all()


def _warm_up(conn: Any, lock: threading.Lock) -> None:
    """Load the decoders' kernels, then tell the parent ("warm"), however it ended."""
    from ...readers import warm_up

    try:
        warm_up()
    except Exception:  # reads go on without the kernels (mef3io decodes)
        log.exception("loading the decoder's kernels failed")
    finally:
        with lock, contextlib.suppress(OSError):  # the parent is gone
            conn.send(("warm",))


def _serve_call(readers: OpenReaders, key: tuple, *call: Any) -> tuple:
    try:
        return ("done", True, readers.call(key, *call))
    except Exception as exc:
        return ("done", False, error_payload(exc))


def _serve_read(
    readers: OpenReaders, key: tuple, req: ReadRequest, block_name: str | None, offset: int
) -> tuple:
    if block_name is None:  # empty result (or an invalid request): validate only
        try:
            readers.read(req, key, None)
            return ("done", True, None)
        except Exception as exc:
            return ("done", False, error_payload(exc))
    try:
        block = attach_block(block_name)
    except Exception as exc:
        return ("done", False, error_payload(exc))
    reply = _read_into(readers, key, req, block, offset)
    try:
        block.close()
    except BufferError:  # something (a traceback cycle) still holds the view
        gc.collect()
        try:
            block.close()
        except BufferError:
            log.warning("a view of shared block %s outlived its read", block_name)
    return reply


def _read_into(
    readers: OpenReaders, key: tuple, req: ReadRequest, block: SharedMemory, offset: int
) -> tuple:
    # Kept apart from `_serve_read` so that the view and any traceback holding it are gone
    # by the time the block is closed.
    try:
        reserve_block(block, req)
    except Exception as exc:
        return ("done", False, error_payload(exc))
    itemsize = np.dtype(SAMPLE_TYPES[req.dtype]).itemsize
    # Each row on pages of its own.
    out = np.ndarray(
        req.shape,
        SAMPLE_TYPES[req.dtype],
        buffer=block.buf,
        offset=offset,
        strides=(req.row_bytes, itemsize),
    )
    try:
        return ("done", True, readers.read(req, key, out)[1])
    except Exception as exc:
        return ("done", False, error_payload(exc))
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
