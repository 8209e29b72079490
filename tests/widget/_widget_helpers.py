"""What several scroller tests compute the same way."""

from __future__ import annotations

import numpy as np


def column_minmax(x: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """Min and max of each of `columns` slices ``[c*n//columns, (c+1)*n//columns)`` of a row.

    NaN is ignored. Written out here on purpose, not with mef3lab's own decimation.
    """
    n = x.size
    lo, hi = np.full(columns, np.nan, np.float32), np.full(columns, np.nan, np.float32)
    for c in range(columns):
        part = x[c * n // columns : (c + 1) * n // columns]
        part = part[~np.isnan(part)]
        if part.size:
            lo[c], hi[c] = part.min(), part.max()
    return lo, hi
