"""Display decimation that never loses a peak: per-bin minimum and maximum.

A screen shows a few thousand points; an hour at 2 kHz is millions of samples. Taking
every k-th sample hides spikes; the min and max of each bin keep them. NaN (gaps) is
ignored inside a bin, and a bin with no data stays NaN so gaps remain visible.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt


def bin_starts(n: int, bins: int) -> np.ndarray:
    """First sample of each of `bins` near-equal bins over `n` samples (bins <= n)."""
    return (np.arange(bins, dtype=np.int64) * n) // bins


def envelope(data: np.ndarray, bins: int) -> np.ndarray:
    """Min and max of each of `bins` near-equal slices along time.

    Parameters
    ----------
    data : numpy.ndarray
        (channels, samples), NaN in gaps.
    bins : int
        How many bins; at most one per sample.

    Returns
    -------
    numpy.ndarray
        (2, channels, bins): minima, then maxima, in data's float type (float32 for integers);
        NaN for a bin with no data.
    """
    n = data.shape[1]
    bins = max(1, min(bins, n)) if n else 0
    dtype = data.dtype if np.issubdtype(data.dtype, np.floating) else np.float32
    out = np.full((2, data.shape[0], bins), np.nan, dtype)
    if bins:
        # Each bin's samples gathered into one row of the widest bin's length, a narrower bin
        # repeating its last sample (which changes neither its min nor its max): one reduction
        # over a contiguous axis, faster than `ufunc.reduceat` over uneven bins.
        starts = bin_starts(n, bins)
        ends = np.append(starts[1:], n)
        width = int((ends - starts).max())
        take = np.minimum(starts[:, None] + np.arange(width), ends[:, None] - 1)
        binned = data[:, take]  # (channels, bins, width)
        with np.errstate(invalid="ignore"):
            out[0] = np.fmin.reduce(binned, axis=2)  # (reducing into `out` is far slower)
            out[1] = np.fmax.reduce(binned, axis=2)
    return out


#: The most bytes of samples `minmax_points` reduces at once (its temporaries are a few times that).
CHUNK_BYTES = 4 * 2**20


def minmax_points(data: np.ndarray, n_out: int) -> np.ndarray:
    """Each row reduced to ``2 * (n_out // 2)`` points: every bin's min and max in time order.

    A line plot of the result traces the signal's true extent. The rows are reduced a few
    columns at a time (`minmax_points_blocks`), so the work costs little beside `data`.

    Parameters
    ----------
    data : numpy.ndarray
        (channels, samples).
    n_out : int
        The most points per row.

    Returns
    -------
    numpy.ndarray
        (channels, 2 * (n_out // 2)); `data` itself when it has at most `n_out` samples.
    """
    n_ch, n = data.shape
    if n <= n_out:
        return data
    step = max(1, CHUNK_BYTES // max(1, n_ch * data.itemsize))
    blocks = ((a, min(a + step, n), data[:, a : a + step]) for a in range(0, n, step))
    return minmax_points_blocks(blocks, data.shape, n_out, data.dtype)


def minmax_points_blocks(
    blocks: Iterable[tuple[int, int, np.ndarray]],
    shape: tuple[int, int],
    n_out: int,
    dtype: npt.DTypeLike,
) -> np.ndarray:
    """`minmax_points` of an array that arrives as consecutive column blocks.

    Only one block is held at a time (a block may be a reused buffer), so a window of any
    length is reduced in the memory of one block and the result.

    Parameters
    ----------
    blocks : iterable of (int, int, numpy.ndarray)
        ``(a, b, values)``: columns ``[a, b)`` as a (channels, b - a) array, in order,
        covering ``[0, samples)``.
    shape : tuple of (int, int)
        (channels, samples) of the whole.
    n_out : int
        The most points per row; more samples than that are reduced.
    dtype : numpy dtype
        The values' type (of the result too).

    Returns
    -------
    numpy.ndarray
        (channels, 2 * (n_out // 2)) points, or the whole (a copy) when it has at most
        `n_out` samples; NaN for a bin with no data.
    """
    n_ch, n = shape
    if n <= n_out:
        whole = np.empty(shape, dtype)
        for a, b, values in blocks:
            whole[:, a:b] = values
        return whole
    bins = n_out // 2
    starts = bin_starts(n, bins)
    ends = np.append(starts[1:], n)
    lo = np.full((n_ch, bins), np.nan, dtype)
    hi = np.full((n_ch, bins), np.nan, dtype)
    at_lo = np.full((n_ch, bins), n, np.int64)  # where each extreme first occurs
    at_hi = np.full((n_ch, bins), n, np.int64)
    for a, b, values in blocks:
        if b <= a:
            continue
        i, j = np.searchsorted(ends, a, "right"), np.searchsorted(starts, b, "left")
        local = np.maximum(starts[i:j] - a, 0)  # the block's part of bins [i, j)
        counts = np.diff(np.append(local, b - a))
        for ext, at, pick in ((lo, at_lo, np.fmin), (hi, at_hi, np.fmax)):
            with np.errstate(invalid="ignore"):
                part = pick.reduceat(values, local, axis=1)
            first = np.where(values == np.repeat(part, counts, axis=1), np.arange(a, b), n)
            where = np.minimum.reduceat(first, local, axis=1)
            old = ext[:, i:j]
            better = (part < old) if pick is np.fmin else (part > old)
            better |= np.isnan(old) & ~np.isnan(part)
            ext[:, i:j] = np.where(better, part, old)
            at[:, i:j] = np.where(better, where, at[:, i:j])
    lo_first = at_lo <= at_hi
    out = np.empty((n_ch, 2 * bins), dtype)
    out[:, 0::2] = np.where(lo_first, lo, hi)
    out[:, 1::2] = np.where(lo_first, hi, lo)
    return out
