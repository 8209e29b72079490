"""Cached counts to what a caller asked for: a read's rows converted as its reply is sent.

The store caches what the file holds, int32 counts (``RAW_NAN`` in gaps), one array per
channel-segment. A read is a `Window` over those arrays, rows in the caller's order; it
converts on the way out: float64 is exactly ``count × factor`` (as every reader computes
it), float32 that float64 value rounded once (bit for bit what the readers return), int32
the counts themselves. One small numba kernel does the float cases: numpy needs two passes
(multiply, then the NaN mask) and a temporary, 3.9 ms per 5 M samples against numba's 0.7.

Why a window and not an array: a reply is converted one message at a time into one small
buffer that stays in the CPU cache, so the whole reply is never allocated in its wire type.
A fresh 20 MB array costs ~5 ms of page faults alone, more than converting it; assembling
the reply first (then cutting it into messages) made a cache hit twice as slow as sending
the bytes of a cached array. `Window.array` builds the whole array for those who need it.

A channel whose MEF segments store different conversion factors (a gain change) is scaled
piece by piece, each sample by its own segment's factor as mef3io reads it (`FactorRuns`);
a channel with one factor, nearly all of them, is one piece per segment.
"""

from __future__ import annotations

from typing import Iterator, Mapping, Sequence

import numba
import numpy as np

from ..readers.base import RAW_NAN, SAMPLE_TYPES, FactorRuns

_RAW_NAN = int(RAW_NAN)


#: Compiled ahead (at import; numba caches the machine code on disk) for cached, read-only
#: rows and writable ones, into float32 or float64: no compile pause on a first read.
_SIGNATURES = [
    numba.void(numba.types.Array(numba.int32, 1, "C", readonly=ro), numba.float64, out[::1])
    for ro in (True, False) for out in (numba.float32, numba.float64)
]


@numba.njit(_SIGNATURES, nogil=True, cache=True)
def _scale(counts, factor, out):  # pragma: no cover - compiled
    for i in range(counts.size):
        c = counts[i]
        out[i] = np.nan if c == _RAW_NAN else np.float64(c) * factor


def convert_into(counts: np.ndarray, factor: float, out: np.ndarray) -> None:
    """Write `counts` (1-D int32) into `out` (1-D, contiguous) as out's dtype."""
    if out.dtype == np.int32:
        out[...] = counts
    else:
        _scale(counts, factor, out)


def gap_value(dtype: str) -> float | int:
    """What marks "no sample here" in an array of `dtype`."""
    return int(RAW_NAN) if dtype == "int32" else np.nan


#: One stretch of a row: columns ``[start, stop)`` come from ``counts[offset:]`` times
#: `factor`; counts None: no sample there (outside the grid).
_Stretch = tuple[int, int, "np.ndarray | None", int, float]


class Window:
    """Grid samples ``[k0, k1)`` of `names` (rows in that order, a name may repeat) over
    `pieces`: (first sample, {channel: counts}) of consecutive segments, each row scaled by
    its channel's `factors` on the grid. Samples no piece covers are gaps. Nothing is
    converted until asked for, and then only once."""

    def __init__(self, pieces: Sequence[tuple[int, Mapping[str, np.ndarray]]], names: Sequence[str],
                 factors: Sequence[FactorRuns], k0: int, k1: int) -> None:
        self.names = tuple(names)
        self.shape = (len(self.names), max(k1 - k0, 0))
        self._rows = [_stretches(pieces, name, runs, k0, k1) for name, runs in zip(self.names, factors)]

    def fill(self, j: int, a: int, b: int, out: np.ndarray) -> None:
        """Write row j's columns ``[a, b)`` into `out` (1-D, contiguous) as out's dtype."""
        for start, stop, counts, offset, factor in self._rows[j]:
            lo, hi = max(a, start), min(b, stop)
            if lo >= hi:
                continue
            if counts is None:
                out[lo - a:hi - a] = gap_value(out.dtype.name)
            else:
                convert_into(counts[offset + lo - start:offset + hi - start], factor, out[lo - a:hi - a])

    def array(self, dtype: str) -> np.ndarray:
        """The whole window as a new (channels, samples) array of `dtype`."""
        out = np.empty(self.shape, SAMPLE_TYPES[dtype])
        for j in range(self.shape[0]):
            self.fill(j, 0, self.shape[1], out[j])
        return out

    def blocks(self, dtype: str, max_bytes: int) -> Iterator[tuple[int, int, np.ndarray]]:
        """Consecutive column blocks ``(a, b, values)`` of at most `max_bytes` (at least one,
        maybe empty). `values` (channels, b - a) is one buffer reused: use it before the next."""
        n_ch, n = self.shape
        step = max(1, max_bytes // max(1, n_ch * np.dtype(dtype).itemsize))
        buf = np.empty(n_ch * min(step, n), SAMPLE_TYPES[dtype])
        for a in range(0, max(n, 1), step):
            b = min(a + step, n)
            block = buf[:n_ch * (b - a)].reshape(n_ch, b - a)
            for j in range(n_ch):
                self.fill(j, a, b, block[j])
            yield a, b, block

    def pieces(self, dtype: str, max_bytes: int) -> Iterator[bytes]:
        """The window's bytes as `dtype` in C order, in consecutive pieces of at most
        `max_bytes` (at least one, maybe empty), each converted as it is asked for."""
        n = self.shape[1]
        total = self.shape[0] * n
        step = max(1, max_bytes // np.dtype(dtype).itemsize)
        buf = np.empty(min(step, total), SAMPLE_TYPES[dtype])
        for p in range(0, max(total, 1), step):
            q = min(p + step, total)
            pos = p
            while pos < q:  # the piece's part of each row it touches
                r, c = divmod(pos, n)
                m = min(q - pos, n - c)
                self.fill(r, c, c + m, buf[pos - p:pos - p + m])
                pos += m
            yield buf[:q - p].tobytes()


def _stretches(pieces: Sequence[tuple[int, Mapping[str, np.ndarray]]], name: str, runs: FactorRuns,
               k0: int, k1: int) -> list[_Stretch]:
    """Where row `name`'s columns of ``[k0, k1)`` come from, in order, gaps included."""
    out: list[_Stretch] = []
    edge = k0  # the first grid sample not yet placed
    for s0, rows in pieces:
        counts = rows[name]
        a, b = max(k0, s0, edge), min(k1, s0 + len(counts))
        if b <= a:
            continue
        if a > edge:
            out.append((edge - k0, a - k0, None, 0, 0.0))
        for p, q, factor in runs.pieces(a, b):
            out.append((p - k0, q - k0, counts, p - s0, factor))
        edge = b
    if edge < k1:
        out.append((edge - k0, k1 - k0, None, 0, 0.0))
    return out


def array_pieces(data: np.ndarray, max_bytes: int) -> Iterator[bytes]:
    """The bytes of `data` in C order, in consecutive pieces of at most `max_bytes` (at least one)."""
    arr = np.ascontiguousarray(data)
    raw = memoryview(arr).cast("B") if arr.size else memoryview(b"")
    step = max(arr.itemsize, max_bytes - max_bytes % max(arr.itemsize, 1))
    return (bytes(raw[a:a + step]) for a in range(0, max(len(raw), 1), step))


def array_blocks(data: np.ndarray, max_bytes: int) -> Iterator[tuple[int, int, np.ndarray]]:
    """Column blocks ``(a, b, data[:, a:b])`` of (channels, n) `data`, each at most `max_bytes`."""
    n_ch, n = data.shape
    step = max(1, max_bytes // max(1, n_ch * data.itemsize))
    return ((a, min(a + step, n), data[:, a:a + step]) for a in range(0, max(n, 1), step))
