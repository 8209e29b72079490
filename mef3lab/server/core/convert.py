"""Cached counts to what a caller asked for: a read's rows converted as its reply is sent.

A read is a `Window` over the cached int32 counts of its segments, rows in the caller's
order. Nothing is converted until the reply is sent, one message at a time into one reused
buffer, by small numba kernels: float64 is exactly ``count × factor`` (as every reader
computes it), float32 that value rounded once, int32 the counts themselves. Why a window
and not an array, and how a change of conversion factor is handled: docs/server.md
("Conversion").
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numba
import numpy as np
from numba.extending import intrinsic

from ...model import RAW_NAN, SAMPLE_TYPES, FactorRuns

_RAW_NAN = int(RAW_NAN)

#: Where each output row's columns come from, as `_plan` makes it:
#: (first, start, stop, address, offset, factor).
_PLAN = (numba.int64[::1],) * 5 + (numba.float64[::1],)
_OUTS = (numba.float32, numba.float64, numba.int32)


@intrinsic
def _counts_at(typingctx, address):  # pragma: no cover - compiled
    """The int32 counts at `address`.

    Why raw addresses: a read's rows are separate arrays, and numba's typed list of them
    compiles on first use in every process, which the server's first read would pay for.
    The `Window` that hands the addresses out holds its rows, and its plan only names
    samples inside them.
    """
    pointer = numba.types.CPointer(numba.int32)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(pointer))

    return pointer(numba.int64), codegen


@numba.njit(nogil=True, cache=True)
def _fill_row(
    first, start, stop, address, offset, factor, j, a, b, raw, out, o
):  # pragma: no cover - compiled
    """Row j's columns [a, b) into out[o:o + b - a].

    float64 exactly count × factor (then rounded once into out's type), or with `raw`
    (out int32) the counts; gaps are NaN or RAW_NAN.
    """
    for s in range(first[j], first[j + 1]):
        lo, hi = max(a, start[s]), min(b, stop[s])
        if hi <= lo:
            continue
        dst = out[o + lo - a : o + hi - a]
        if address[s] == 0:
            dst[:] = _RAW_NAN if raw else np.nan
            continue
        counts, shift, f = _counts_at(address[s]), offset[s] + lo - start[s], factor[s]
        for i in range(hi - lo):
            c = counts[shift + i]
            if raw:
                dst[i] = c
            else:
                dst[i] = np.nan if c == _RAW_NAN else np.float64(c) * f


@numba.njit(
    [numba.void(*_PLAN, numba.int64, numba.int64, numba.boolean, t[:, ::1]) for t in _OUTS],
    nogil=True,
    cache=True,
)
def _fill_block(
    first, start, stop, address, offset, factor, a, b, raw, out
):  # pragma: no cover - compiled
    for j in range(out.shape[0]):
        _fill_row(first, start, stop, address, offset, factor, j, a, b, raw, out[j], 0)


@numba.njit(
    [
        numba.void(*_PLAN, numba.int64, numba.int64, numba.int64, numba.boolean, t[::1])
        for t in _OUTS
    ],
    nogil=True,
    cache=True,
)
def _fill_flat(
    first, start, stop, address, offset, factor, n, p, q, raw, out
):  # pragma: no cover - compiled
    """Samples [p, q) of the window flattened in C order (n per row) into out."""
    pos = p
    while pos < q:
        r, c = pos // n, pos % n
        m = min(q - pos, n - c)
        _fill_row(first, start, stop, address, offset, factor, r, c, c + m, raw, out, pos - p)
        pos += m


class Window:
    """Grid samples ``[k0, k1)`` of some channels over cached counts, converted when asked.

    Samples no piece covers are gaps. Nothing is converted until asked for, and then one
    compiled call converts a whole message. The window holds the rows it reads.

    Parameters
    ----------
    pieces : sequence of (int, mapping of str to numpy.ndarray)
        (first grid sample, {channel: int32 counts}) of consecutive segments.
    names : sequence of str
        The rows' channels, in the caller's order (a name may repeat).
    factors : sequence of FactorRuns
        Each row's conversion factors on the grid.
    k0, k1 : int
        The grid samples ``[k0, k1)`` the window covers.

    Raises
    ------
    TypeError
        When cached counts are not contiguous int32.
    """

    def __init__(
        self,
        pieces: Sequence[tuple[int, Mapping[str, np.ndarray]]],
        names: Sequence[str],
        factors: Sequence[FactorRuns],
        k0: int,
        k1: int,
    ) -> None:
        self.shape = (len(names), max(k1 - k0, 0))
        self._rows, self._plan = _plan(pieces, names, factors, k0, k1)

    def array(self, dtype: str) -> np.ndarray:
        """The whole window as a new (channels, samples) array.

        Parameters
        ----------
        dtype : str
            "float32", "float64" or "int32".

        Returns
        -------
        numpy.ndarray
        """
        out = np.empty(self.shape, SAMPLE_TYPES[dtype])
        _fill_block(*self._plan, 0, self.shape[1], dtype == "int32", out)
        return out

    def blocks(self, dtype: str, max_bytes: int) -> Iterator[tuple[int, int, np.ndarray]]:
        """Consecutive column blocks of the window, converted one by one.

        Parameters
        ----------
        dtype : str
            "float32", "float64" or "int32".
        max_bytes : int
            The most bytes a block holds (a block has at least one column).

        Yields
        ------
        tuple of (int, int, numpy.ndarray)
            ``(a, b, values)``: columns ``[a, b)`` as a (channels, b - a) array; at least
            one block, maybe empty. `values` is one buffer reused: use it before the next.
        """
        n_ch, n = self.shape
        step = max(1, max_bytes // max(1, n_ch * np.dtype(dtype).itemsize))
        buf = np.empty(n_ch * min(step, n), SAMPLE_TYPES[dtype])
        for a in range(0, max(n, 1), step):
            b = min(a + step, n)
            block = buf[: n_ch * (b - a)].reshape(n_ch, b - a)
            _fill_block(*self._plan, a, b, dtype == "int32", block)
            yield a, b, block

    def pieces(self, dtype: str, max_bytes: int) -> Iterator[bytes]:
        """The window's bytes in C order, in consecutive pieces, each converted when asked for.

        Parameters
        ----------
        dtype : str
            "float32", "float64" or "int32".
        max_bytes : int
            The most bytes a piece holds (a piece has at least one sample).

        Yields
        ------
        bytes
            At least one piece, maybe empty.
        """
        n = self.shape[1]
        total = self.shape[0] * n
        step = max(1, max_bytes // np.dtype(dtype).itemsize)
        buf = np.empty(min(step, total), SAMPLE_TYPES[dtype])
        for p in range(0, max(total, 1), step):
            q = min(p + step, total)
            _fill_flat(*self._plan, n, p, q, dtype == "int32", buf[: q - p])
            yield buf[: q - p].tobytes()


def _plan(
    pieces: Sequence[tuple[int, Mapping[str, np.ndarray]]],
    names: Sequence[str],
    factors: Sequence[FactorRuns],
    k0: int,
    k1: int,
) -> tuple[list[np.ndarray], tuple[np.ndarray, ...]]:
    """The rows the window reads (to be held while it lives), and the plan over them.

    For each output row j, its stretches ``first[j]:first[j + 1]``: columns
    ``[start, stop)`` from the counts at `address` (0: a gap) from sample `offset` on,
    times `factor`, in order, covering the window.
    """
    rows = []
    first, table = [0], []
    for name, runs in zip(names, factors, strict=True):
        edge = k0  # the first grid sample not yet placed
        for s0, segment in pieces:
            counts = segment[name]
            a, b = max(k0, s0, edge), min(k1, s0 + len(counts))
            if b <= a:
                continue
            if counts.dtype != np.int32 or not counts.flags.c_contiguous:
                raise TypeError(
                    f"cached counts must be contiguous int32, not {counts.dtype} {counts.strides}"
                )
            rows.append(counts)
            address = counts.__array_interface__["data"][0]
            if a > edge:
                table.append((edge - k0, a - k0, 0, 0, 0.0))
            table.extend((p - k0, q - k0, address, p - s0, f) for p, q, f in runs.pieces(a, b))
            edge = b
        if edge < k1:
            table.append((edge - k0, k1 - k0, 0, 0, 0.0))
        first.append(len(table))
    columns = list(zip(*table, strict=True)) or [()] * 5
    plan = (
        np.array(first, np.int64),
        *(np.array(c, np.int64) for c in columns[:4]),
        np.array(columns[4], np.float64),
    )
    return rows, plan


def array_pieces(data: np.ndarray, max_bytes: int) -> Iterator[bytes]:
    """The bytes of an array in C order, in consecutive pieces.

    Parameters
    ----------
    data : numpy.ndarray
        Any array.
    max_bytes : int
        The most bytes a piece holds (a piece has at least one item).

    Returns
    -------
    iterator of bytes
        At least one piece, maybe empty.
    """
    arr = np.ascontiguousarray(data)
    raw = memoryview(arr).cast("B") if arr.size else memoryview(b"")
    step = max(arr.itemsize, max_bytes - max_bytes % max(arr.itemsize, 1))
    return (bytes(raw[a : a + step]) for a in range(0, max(len(raw), 1), step))


def array_blocks(data: np.ndarray, max_bytes: int) -> Iterator[tuple[int, int, np.ndarray]]:
    """Column blocks of a (channels, n) array, each of at most `max_bytes`.

    Parameters
    ----------
    data : numpy.ndarray
        A (channels, n) array.
    max_bytes : int
        The most bytes a block holds (a block has at least one column).

    Returns
    -------
    iterator of tuple of (int, int, numpy.ndarray)
        ``(a, b, data[:, a:b])``; at least one block, maybe empty.
    """
    n_ch, n = data.shape
    step = max(1, max_bytes // max(1, n_ch * data.itemsize))
    return ((a, min(a + step, n), data[:, a : a + step]) for a in range(0, max(n, 1), step))
