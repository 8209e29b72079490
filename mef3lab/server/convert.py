"""Cached counts to what a caller asked for: rows gathered and converted in one pass.

The store caches what the file holds, int32 counts (``RAW_NAN`` in gaps), one array per
channel-segment; every read gathers its rows, in the caller's order, from those arrays
straight into its output, converting on the way: float64 is exactly ``count × factor``
(as every reader computes it), float32 that float64 value rounded once (bit for bit what
the readers return), int32 the counts themselves. One small numba kernel does the float
cases: numpy needs two passes (multiply, then the NaN mask) and a temporary, 3.9 ms per
5 M samples against numba's 0.7 ms, which a cache hit of ~10 ms would feel.

Known limit: a channel whose MEF segments store different conversion factors (mef3io's
float reads scale each segment by its own) is scaled by the one factor its ChannelInfo
carries, the first segment's, as its int32 reads always were.
"""

from __future__ import annotations

from typing import Iterator, Mapping, Sequence

import numba
import numpy as np

from ..readers.base import RAW_NAN, SAMPLE_TYPES

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


def to_values(counts: np.ndarray, factors: Sequence[float], dtype: str) -> np.ndarray:
    """(channels, n) int32 counts (e.g. one message's columns of a read) as `dtype` values.

    For replies streamed in blocks: converting block by block keeps the working set in the
    CPU cache and never allocates the whole reply in the wider type (a 40 MB float64 array
    is above glibc's mmap threshold, so it was page-faulted afresh for every read)."""
    out = np.empty(counts.shape, SAMPLE_TYPES[dtype])
    for j, factor in enumerate(factors):
        convert_into(counts[j], factor, out[j])
    return out


def value_pieces(counts: np.ndarray, factors: Sequence[float], dtype: str, max_bytes: int) -> Iterator[bytes]:
    """The bytes of (channels, n) `counts` as `dtype` values in C order, in consecutive pieces of
    at most `max_bytes` (at least one, maybe empty), each converted as it is asked for."""
    n = counts.shape[1]
    total = counts.size
    step = max(1, max_bytes // np.dtype(dtype).itemsize)
    buf = np.empty(min(step, total), SAMPLE_TYPES[dtype])
    for p in range(0, max(total, 1), step):
        q = min(p + step, total)
        pos = p
        while pos < q:  # the piece's part of each row it touches
            r, c = divmod(pos, n)
            m = min(q - pos, n - c)
            convert_into(counts[r, c:c + m], factors[r], buf[pos - p:pos - p + m])
            pos += m
        yield buf[:q - p].tobytes()


def gap_value(dtype: str) -> float | int:
    """What marks "no sample here" in an array of `dtype`."""
    return int(RAW_NAN) if dtype == "int32" else np.nan


def gather(
    pieces: Sequence[tuple[int, Mapping[str, np.ndarray]]], names: Sequence[str], factors: Sequence[float],
    k0: int, k1: int, dtype: str,
) -> np.ndarray:
    """Grid samples ``[k0, k1)`` of `names` (rows in that order) as `dtype`, from `pieces`:
    (first sample, {channel: counts}) of consecutive segments. Samples no piece covers
    (outside the grid) are gaps; nothing is written twice."""
    out = np.empty((len(names), max(k1 - k0, 0)), SAMPLE_TYPES[dtype])
    lo = hi = k0
    for s0, rows in pieces:
        a, b = max(k0, s0), min(k1, s0 + len(rows[names[0]]))
        if b <= a:
            continue
        if lo == hi:
            lo = a
        hi = b
        for j, (name, factor) in enumerate(zip(names, factors)):
            convert_into(rows[name][a - s0:b - s0], factor, out[j, a - k0:b - k0])
    out[:, :lo - k0] = gap_value(dtype)
    out[:, hi - k0:] = gap_value(dtype)
    return out
