"""How samples come back: POSIX shared-memory blocks (parent: create, own, unlink; worker: attach).

The result size is known before the read (channels × samples × itemsize), so the parent
creates a POSIX shared-memory block of that size and the worker decodes straight into an
array over it; only a few-byte status message crosses the pipe. The parent owns every block:
it unlinks the name the moment the request ends, however it ends (success, error, worker
crash, pool closed), so nothing lingers in /dev/shm. The memory itself stays mapped for as
long as the result array, or any view of it, lives, and returns to the OS when the last one
is freed; `SharedArray.release` is therefore always safe, even while a caller still holds a
view. Workers only attach to blocks and never register them with the resource tracker,
which would otherwise unlink (or warn about) blocks it does not own.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import sys
from multiprocessing.shared_memory import SharedMemory

import numpy as np

from ...errors import ReadTooLargeError
from ...readers.base import SAMPLE_TYPES
from .requests import ReadRequest, SharedArray, _Job


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
        _populate(address, block.size)
        self._block = block
        self.__array_interface__ = {
            "version": 3, "shape": shape, "typestr": np.dtype(dtype).str, "data": (address, False),
        }

    def __del__(self) -> None:
        self._block.close()


#: madvise(2) advice that maps a range's pages now (Linux 5.14+; elsewhere a no-op).
_MADV_POPULATE_READ = 22


def _populate(address: int, nbytes: int) -> None:
    """Map the worker-written pages into this process before anyone reads them.

    Otherwise the first read of a result (often the client's first cache hit on a
    prefetched segment) takes a page fault per 4 KiB page: 5,000 for a 20 MB segment, a
    10-15 ms penalty. Done where the result arrives (the pool's thread, GIL released).
    """
    if _libc is None or nbytes == 0:
        return
    _libc.madvise(ctypes.c_void_p(address), ctypes.c_size_t(nbytes), _MADV_POPULATE_READ)


def _load_libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
        return libc
    except (OSError, AttributeError):
        return None


_libc = _load_libc()


def _result_array(job: _Job) -> SharedArray:
    req: ReadRequest = job.payload
    block, job.block = job.block, None
    if block is None:  # nothing to share: an empty read
        return SharedArray(np.empty(req.shape, SAMPLE_TYPES[req.dtype]))
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
