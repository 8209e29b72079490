"""How samples come back: POSIX shared-memory blocks (parent: create, own, unlink; worker: attach).

The parent creates a block the size of the result and the worker decodes straight into
it; only a short status message crosses the pipe. The parent owns every block and unlinks
its name the moment the request ends, however it ends; the memory lives as long as the
result array (or a view of it), each row on pages of its own that go back to the OS when
that row goes. Details: docs/server.md ("Shared memory").
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import secrets
import sys
from multiprocessing.shared_memory import SharedMemory

import numpy as np

from ...errors import ReadTooLargeError
from ...model import SAMPLE_TYPES
from .requests import Job, ReadRequest, SharedArray


def create_block(nbytes: int) -> SharedMemory:
    """A new shared block of `nbytes`, owned by this process (which must unlink it).

    Named after the owning process, so a leak (there should be none) says whose it is.
    """
    return SharedMemory(f"mef3lab_{os.getpid()}_{secrets.token_hex(6)}", create=True, size=nbytes)


def reserve_block(block: SharedMemory, req: ReadRequest) -> None:
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
            f"no room in shared memory for {block.size / 2**20:.1f} MiB of samples "
            f"({req.describe()}): {exc.strerror}; read a shorter window, free memory, or give "
            "the server a larger /dev/shm (docker: --shm-size)"
        ) from None
    finally:
        os.close(fd)


def unlink_block(block: SharedMemory) -> None:
    """Remove the block's name (its memory lives on while mapped); unlinked already is fine."""
    with contextlib.suppress(FileNotFoundError):
        block.unlink()


def discard_block(job: Job) -> None:
    """Unlink and close the block of a job that ended without a result, if it has one."""
    if job.block is not None:
        unlink_block(job.block)
        job.block.close()
        job.block = None


class _Mapping:
    """The parent's mapping of one block, kept by every array over it; unmapped with the last.

    Mapped anew with mmap(2) and the block's descriptors closed at once: a cache of
    thousands of rows must not hold two file descriptors each. Arrays are built from
    `__array_interface__` (a raw address), so no buffer export pins the mapping.
    """

    def __init__(self, block: SharedMemory, req: ReadRequest) -> None:
        size = block.size
        # SharedMemory's descriptor (POSIX); closed just below.
        address = _libc.mmap(
            None, size, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_SHARED, block._fd, 0
        )
        block.close()
        if address in (None, _MAP_FAILED):
            raise OSError(ctypes.get_errno(), f"mapping a shared block of {size} bytes failed")
        self.address, self.size, self.row_bytes = address, size, req.row_bytes
        _advise(self.address, self.size, _MADV_POPULATE_READ)
        self._shape, self._typestr = req.shape, np.dtype(req.dtype).str
        self.__array_interface__ = {
            "version": 3,
            "shape": req.shape,
            "typestr": self._typestr,
            "data": (self.address, False),
            "strides": (self.row_bytes, np.dtype(req.dtype).itemsize),
        }

    def rows(self) -> tuple[np.ndarray, ...]:
        """Each row as an array of its own, whose pages are freed when it goes."""
        return tuple(np.asarray(_Row(self, i)) for i in range(self._shape[0]))

    def __del__(self) -> None:
        _libc.munmap(ctypes.c_void_p(self.address), ctypes.c_size_t(self.size))


class _Row:
    """One row of a mapping; its pages go back to the OS when the last array over it goes."""

    def __init__(self, mapping: _Mapping, i: int) -> None:
        self._mapping = mapping
        self._address = mapping.address + i * mapping.row_bytes
        self.__array_interface__ = {
            "version": 3,
            "shape": mapping._shape[1:],
            "typestr": mapping._typestr,
            "data": (self._address, False),
        }

    def __del__(self) -> None:
        _advise(self._address, self._mapping.row_bytes, _MADV_REMOVE)


#: madvise(2) advice (Linux): map a range's pages now (5.14+), and free a shared range's
#: pages and their backing store. Populating matters because otherwise the first read of a
#: result (often a client's first cache hit on a prefetched segment) takes a page fault per
#: page; it is done where the result arrives (the pool's thread, GIL released).
_MADV_POPULATE_READ, _MADV_REMOVE = 22, 9
_LINUX = sys.platform.startswith("linux")


def _advise(address: int, nbytes: int, advice: int) -> None:
    """madvise(2) on Linux; elsewhere nothing.

    A failure (an older kernel, say) leaves things as they are.
    """
    if _LINUX and nbytes:
        _libc.madvise(ctypes.c_void_p(address), ctypes.c_size_t(nbytes), advice)


def _load_libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = (
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_long,
    )
    libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
    libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    return libc


_libc = _load_libc()
_MAP_FAILED = ctypes.c_void_p(-1).value


def result_array(job: Job) -> SharedArray:
    """A finished whole read's result; its block's name is unlinked now."""
    req: ReadRequest = job.payload
    block, job.block = job.block, None
    if block is None:  # nothing to share: an empty read
        return SharedArray(np.empty(req.shape, SAMPLE_TYPES[req.dtype]))
    unlink_block(block)  # the name goes now; the memory lives as long as the array
    return shared_array(block, req)


def shared_array(block: SharedMemory, req: ReadRequest) -> SharedArray:
    """A finished read's block as its result (the block's own mapping and descriptor closed)."""
    mapping = _Mapping(block, req)
    return SharedArray(np.asarray(mapping), mapping)


def attach_block(name: str) -> SharedMemory:
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
