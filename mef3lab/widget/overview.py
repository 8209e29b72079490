"""The overview bar: a whole recording, of any length, as per-column min/max, nothing decoded.

Every MEF 3.0 block's index entry stores the block's minimum and maximum, so the bar comes
from the block index alone (`RecordingSource.block_envelope`); a column never shows less
than the true extent of its samples, and one no block overlaps is a gap (NaN).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..sources import RecordingSource

__all__ = ["Overview", "overview"]


@dataclass
class Overview:
    """Per-column extents of channels: column c spans ``[c, c + 1) * seconds / columns``.

    Rows are `names`; `lo` and `hi` are (len(names), columns) float32, NaN where no block lies.
    """

    names: tuple[str, ...]
    seconds: float
    lo: np.ndarray
    hi: np.ndarray

    def strip(self) -> np.ndarray:
        """One value per column for the bar: the median over channels of the column's range.

        A night's arousals, artefacts and flat stretches stand out in it at a glance; NaN
        where no channel has data (a gap).
        """
        extent = self.hi - self.lo
        out = np.full(extent.shape[1], np.nan, np.float32)
        data = ~np.isnan(extent).all(axis=0)  # the others are gaps (no warning filter here:
        if data.any():  # it is made on a thread of its own, and filters are process-wide)
            out[data] = np.nanmedian(extent[:, data], axis=0)
        return out


def overview(source: RecordingSource, channels: Sequence[str], columns: int) -> Overview:
    """Per-column min/max of `channels` over the whole recording, from the block index.

    A column gets the minimum of the minima and the maximum of the maxima of the blocks that
    overlap it (a block across a column edge counts in both); nothing is decoded.

    Parameters
    ----------
    source : RecordingSource
        The recording.
    channels : sequence of str
        The channels, one row each.
    columns : int
        Columns of the bar (at least one).

    Returns
    -------
    Overview
        The extents, the recording's duration split into `columns` equal columns.
    """
    info = source.info
    t0, span = info.start_uutc, max(1, info.end_uutc - info.start_uutc)
    columns = max(1, int(columns))
    lo = np.full((len(channels), columns), np.nan, np.float32)
    hi = np.full((len(channels), columns), np.nan, np.float32)
    for row, name in enumerate(channels):
        env = source.block_envelope(name)
        start, end = np.asarray(env["start_uutc"], np.int64), np.asarray(env["end_uutc"], np.int64)
        if not start.size:
            continue
        c0 = np.clip((start - t0) * columns // span, 0, columns - 1)
        c1 = np.clip(
            -(-(np.maximum(end, start + 1) - t0) * columns // span) - 1, c0, columns - 1
        )  # ceil - 1
        counts = c1 - c0 + 1
        cols = np.repeat(c0, counts) + (
            np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        )
        np.fmin.at(lo[row], cols, np.repeat(np.asarray(env["min"], np.float32), counts))
        np.fmax.at(hi[row], cols, np.repeat(np.asarray(env["max"], np.float32), counts))
    return Overview(tuple(channels), span / 1e6, lo, hi)
