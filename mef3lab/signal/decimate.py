"""Display decimation that never loses a peak: per-bin minimum and maximum.

A screen shows a few thousand points; an hour at 2 kHz is millions of samples. Taking
every k-th sample hides spikes; the min and max of each bin keep them. NaN (gaps) is
ignored inside a bin, and a bin with no data stays NaN so gaps remain visible.
"""

from __future__ import annotations

import numpy as np


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
        starts = bin_starts(n, bins)
        with np.errstate(invalid="ignore"):
            out[0] = np.fmin.reduceat(data, starts, axis=1)
            out[1] = np.fmax.reduceat(data, starts, axis=1)
    return out


def minmax_points(data: np.ndarray, n_out: int) -> np.ndarray:
    """Each row reduced to ``2 * (n_out // 2)`` points: every bin's min and max in time order.

    A line plot of the result traces the signal's true extent.

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
    bins = n_out // 2
    starts = bin_starts(n, bins)
    lo, hi = envelope(data, bins)
    bucket = np.repeat(np.arange(bins), np.diff(np.append(starts, n)))
    pos = np.arange(n)
    out = np.empty((n_ch, 2 * bins), data.dtype)
    for i, row in enumerate(data):
        at_lo = np.minimum.reduceat(np.where(row == lo[i][bucket], pos, n), starts)
        at_hi = np.minimum.reduceat(np.where(row == hi[i][bucket], pos, n), starts)
        lo_first = at_lo <= at_hi
        out[i, 0::2] = np.where(lo_first, lo[i], hi[i])
        out[i, 1::2] = np.where(lo_first, hi[i], lo[i])
    return out
