"""What callers ask of the pool and what they get back, and how a request is tracked.

Both sides share these: the parent builds `ReadRequest`s and `Job`s, a worker receives the
`ReadRequest` (pickled) and decodes into an array of its shape and dtype.
"""

from __future__ import annotations

import mmap
import operator
import os
from concurrent.futures import Future
from dataclasses import dataclass, field
from multiprocessing.shared_memory import SharedMemory
from typing import Any

import numpy as np

from ...model import SAMPLE_TYPES

#: What `ReaderPool.call` may ask of a reader (read-only; "info" is the attribute).
CALLABLE = frozenset(
    {"info", "block_bounds", "block_envelope", "read", "read_groups", "read_index", "read_raw"}
)


@dataclass(frozen=True)
class ReadRequest:
    """Samples ``[k0, k1)`` of some channels on their rate group's grid.

    Parameters
    ----------
    path : str
        The recording (made absolute: workers may not share the caller's directory).
    password : str or None
        Its password, if encrypted.
    engine : str or None
        The reader engine (None: the default).
    channels : tuple of str
        Channels of one rate group (a single name is taken as one channel).
    k0, k1 : int
        The grid samples.
    dtype : str
        "float32" or "float64": values in channel units (NaN in gaps, `Reader.read_index`);
        "int32": the stored counts (RAW_NAN in gaps, `Reader.read_raw`).
    resume : tuple of tuple
        Where an earlier read's decoder stopped inside blocks of these channels
        (`SharedArray.stops`), for the reader to go on from (`Reader.resume_from`).

    Raises
    ------
    ValueError
        For an unknown `dtype`.
    """

    path: str
    password: str | None
    engine: str | None
    channels: tuple[str, ...]
    k0: int
    k1: int
    dtype: str = "float32"
    resume: tuple[tuple, ...] = ()

    def __post_init__(self) -> None:
        chans = (self.channels,) if isinstance(self.channels, str) else tuple(self.channels)
        object.__setattr__(self, "path", absolute_path(self.path))
        object.__setattr__(self, "channels", chans)
        object.__setattr__(self, "k0", operator.index(self.k0))
        object.__setattr__(self, "k1", operator.index(self.k1))
        object.__setattr__(self, "resume", tuple(tuple(s) for s in self.resume))
        if self.dtype not in SAMPLE_TYPES:
            raise ValueError(f"dtype must be one of {sorted(SAMPLE_TYPES)}, not {self.dtype!r}")

    @property
    def shape(self) -> tuple[int, int]:
        """(channels, samples) of the result."""
        return (len(self.channels), max(self.k1 - self.k0, 0))

    @property
    def row_bytes(self) -> int:
        """Bytes from one row of the result to the next.

        Whole pages, so that each row's memory can go back to the OS on its own
        (`SharedArray.take_rows`).
        """
        n = self.shape[1] * np.dtype(self.dtype).itemsize
        return (n + mmap.PAGESIZE - 1) // mmap.PAGESIZE * mmap.PAGESIZE

    @property
    def nbytes(self) -> int:
        """The size of the result's shared block (rows padded to whole pages)."""
        return self.shape[0] * self.row_bytes

    def describe(self) -> str:
        """The request in words, for error messages (path, channels, samples)."""
        names = ", ".join(self.channels[:8]) + (
            f", … ({len(self.channels) - 8} more)" if len(self.channels) > 8 else ""
        )
        return f"{self.path} channels [{names}] samples [{self.k0}, {self.k1})"


class SharedArray:
    """The samples of one read, ``(n_channels, n_samples)``, read-only, in shared memory.

    Each row is on pages of its own: `array` is C-contiguous along rows only. `array` is
    valid for as long as it (or a view of it) is referenced, whether or not `release` was
    called: `release` drops this object's hold, and the memory goes back to the OS when
    nothing else holds a view. `take_rows` hands the rows out one by one.

    Parameters
    ----------
    array : numpy.ndarray
        The samples (made read-only).
    mapping : object
        The shared mapping under `array` (None for an ordinary array).
    stops : tuple
        Where its decoders stopped inside blocks at the read's end (`Reader.stops_left`),
        for a read that goes on from there (`ReadRequest.resume`).
    """

    __slots__ = ("_array", "_mapping", "nbytes", "shape", "dtype", "stops")

    def __init__(self, array: np.ndarray, mapping: Any = None, stops: tuple = ()) -> None:
        array.flags.writeable = False
        self.stops = stops
        self._array: np.ndarray | None = array
        self._mapping = mapping  # shm._Mapping under `array`, None for an ordinary array
        self.nbytes = array.nbytes
        self.shape = array.shape
        self.dtype = array.dtype

    def take_rows(self, separately: bool = True) -> tuple[np.ndarray, ...]:
        """The rows as read-only arrays, releasing this object's hold.

        Parameters
        ----------
        separately : bool
            True: each row is an array of its own, whose memory goes back to the OS as soon
            as that row (and every view of it) is gone, whatever became of its siblings:
            for a cache that keeps and evicts rows one by one, with no copy. Views of
            `array` taken earlier must be gone by then (a freed row reads as zeros).
            False: views of `array`, whose memory goes back when the last of them goes;
            cheaper, for rows that are copied elsewhere soon (the parts of a segment).

        Returns
        -------
        tuple of numpy.ndarray
        """
        array, mapping = self.array, self._mapping
        self.release()
        rows = tuple(array) if mapping is None or not separately else mapping.rows()
        for row in rows:
            row.flags.writeable = False
        return rows

    @property
    def array(self) -> np.ndarray:
        """The samples.

        Raises
        ------
        ValueError
            Once released.
        """
        if self._array is None:
            raise ValueError("this SharedArray was released")
        return self._array

    @property
    def released(self) -> bool:
        """Whether this object's hold was given up (`release`, `take_rows`)."""
        return self._array is None

    def release(self) -> None:
        """Give up this object's hold on the memory. Idempotent."""
        self._array = self._mapping = None

    def __repr__(self) -> str:
        state = "released" if self._array is None else f"{self.nbytes} bytes"
        return f"SharedArray(shape={self.shape}, dtype={self.dtype}, {state})"


def absolute_path(path: str | os.PathLike) -> str:
    """The path workers open: absolute (they may not share our working directory), links kept."""
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


def canonical_path(path: str | os.PathLike) -> str:
    """The path readers are cached under: every spelling of one recording is one key."""
    return os.path.realpath(os.path.expanduser(os.fspath(path)))


def reader_key(
    path: str | os.PathLike, password: str | None, engine: str | None
) -> tuple[str, str, str | None]:
    """What a worker's open readers are keyed by: (canonical path, password, engine)."""
    return (canonical_path(path), password or "", engine)


@dataclass(eq=False)
class Job:
    """The parent's record of a request in flight.

    Parameters
    ----------
    kind : str
        "read" or "call".
    payload : ReadRequest or tuple
        The `ReadRequest`, or a call's (path, password, engine, method, args).
    key : tuple
        The reader it needs (`reader_key`): a worker that has it open is preferred.
    foreground : bool
        False for a prefetch.
    future : concurrent.futures.Future
        What the caller waits for.
    block : SharedMemory or None
        The result's shared block, once created (a whole read).
    target : tuple of (str, int) or None
        For a part of a split read: its group's block and the byte offset of its rows.
    """

    kind: str
    payload: Any
    key: tuple[str, str, str | None]
    foreground: bool
    future: Future = field(default_factory=Future)
    block: SharedMemory | None = None
    target: tuple[str, int] | None = None

    def describe(self) -> str:
        """The job in words, for logs and error messages."""
        if self.kind == "read":
            return f"reading {self.payload.describe()}"
        path, _, _, method, args = self.payload
        return f"opening {path}" if method == "info" else f"calling {method}{args!r} on {path}"
