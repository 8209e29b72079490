"""Zoomed-out pages (minutes to hours): per-column min/max from envelopes cached by segment.

A 1-hour page of 64 channels at 256 Hz is 59 M samples, yet the screen shows a thousand
columns. Reading it at full resolution for every flip (and holding it in the page cache)
is what a zoomed-out page must not do. Instead each source segment, once decoded, is
reduced to the min and max of fine bins of ``b`` samples (a power of two, at most an
eighth of a column) and kept in a byte-bounded cache like decoded segments are; a page's
columns are then reduced from those bins. A column takes every bin that overlaps it, so
it shows the true extent of its samples (no peak is lost) and at most ``b - 1`` samples
of its neighbours'; a column without data stays NaN (a gap).

Only pages shown as recorded and unfiltered take this path: a montage or a filter needs
the samples themselves.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..server.cache import ByteLRU
from ..server.decimate import bin_starts
from ..source import RecordingSource
from .pages import View

__all__ = ["EnvelopeStore", "ZOOM_SAMPLES_PER_COLUMN"]

log = logging.getLogger(__name__)

#: Pages with at least this many samples per column (and no review) are drawn from cached envelopes.
ZOOM_SAMPLES_PER_COLUMN = 256


class EnvelopeStore:
    """Fine min/max bins of decoded segments, by (rate, channels, segment, bin size), within `budget_bytes`."""

    def __init__(self, source: RecordingSource, budget_bytes: int = 64 * 2**20) -> None:
        self.source = source
        self._bins: ByteLRU[tuple, np.ndarray] = ByteLRU(budget_bytes, lambda a: a.nbytes)
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="mef3lab-zoom-ahead")
        self.decoded = 0  # samples decoded for envelopes (per channel), for tests and benchmarks

    def ahead(self, view: View, columns: int) -> None:
        """Compute the envelopes of `view` on a background thread (the next page in the direction of travel)."""
        self._pool.submit(self._ahead, view, columns)

    def _ahead(self, view: View, columns: int) -> None:
        try:
            self.encode(view, columns)
        except Exception:  # noqa: BLE001 - reading ahead is only advice
            log.debug("zoomed read-ahead of %s failed", view, exc_info=True)

    def close(self) -> None:
        """Stop the read-ahead thread (after the envelope under way) and free the envelopes."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._bins.clear()

    def encode(self, view: View, columns: int) -> tuple[list[dict], bytes]:
        """What `display.encode` gives for a zoomed-out page: "minmax" traces and their float32 buffer."""
        info = self.source.info
        t0, t1 = info.start_uutc + view.start_us, info.start_uutc + view.start_us + view.length_us
        traces: dict[str, dict] = {}
        parts: list[np.ndarray] = []
        offset = 0
        for group in info.rate_groups:
            names = tuple(n for n in view.channels if n in group.channels)
            if not names:
                continue
            grid = group.grid
            k0, k1 = grid.index_at(t0), grid.index_at(t1)
            n = k1 - k0
            count = max(1, min(columns, n))
            lo, hi = self._columns(group.fs, names, grid.n_samples, k0, k1, count)
            first_s = (float(grid.time_of(k0)) - info.start_uutc) / 1e6
            for row, name in enumerate(names):
                traces[name] = {"name": name, "fs": group.fs, "kind": "minmax", "n": count,
                                "t0": first_s - view.start_s, "dt": n / group.fs / count,
                                "offset": offset + row * 2 * count, "error": None}
            values = np.concatenate([lo, hi], axis=1).astype(np.float32)
            parts.append(values.reshape(-1))
            offset += values.size
        buffer = np.concatenate(parts).tobytes() if parts else b""
        return [traces[name] for name in view.channels], buffer

    def _columns(self, fs: float, names: tuple[str, ...], total: int, k0: int, k1: int,
                 count: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-column (lo, hi) of grid samples ``[k0, k1)`` in `count` columns: (len(names), count) each."""
        seg = self.source.segment_samples(fs)
        b = _bin_size(seg, (k1 - k0) // count)
        j0, j1 = k0 // b, -(-k1 // b)  # the fine bins overlapping the page
        lo = np.full((len(names), j1 - j0), np.nan, np.float32)
        hi = np.full((len(names), j1 - j0), np.nan, np.float32)
        for i in range(max(k0, 0) // seg, (min(k1, total) - 1) // seg + 1 if min(k1, total) > max(k0, 0) else 0):
            fine = self._segment(fs, names, total, i, seg, b)
            a = i * seg // b  # the segment's first bin
            x0, x1 = max(a, j0), min(a + fine.shape[2], j1)
            lo[:, x0 - j0 : x1 - j0] = fine[0, :, x0 - a : x1 - a]
            hi[:, x0 - j0 : x1 - j0] = fine[1, :, x0 - a : x1 - a]
        starts = k0 + bin_starts(k1 - k0, count)
        ends = np.append(starts[1:], k1)
        first = starts // b - j0  # each column's first bin; reduceat runs to the next column's first bin
        with np.errstate(invalid="ignore"):
            col_lo, col_hi = np.fmin.reduceat(lo, first, axis=1), np.fmax.reduceat(hi, first, axis=1)
            shared = (ends % b != 0) & (ends // b - j0 < lo.shape[1])  # a column's last bin starts the next
            idx = (ends // b - j0)[shared]
            col_lo[:, shared] = np.fmin(col_lo[:, shared], lo[:, idx])
            col_hi[:, shared] = np.fmax(col_hi[:, shared], hi[:, idx])
        return col_lo, col_hi

    def _segment(self, fs: float, names: tuple[str, ...], total: int, i: int, seg: int, b: int) -> np.ndarray:
        """(2, channels, bins) fine min/max of segment `i`, decoded once and cached."""
        key = (fs, names, i, b)
        with self._lock:
            got = self._bins.get(key)
        if got is not None:
            return got
        a, z = i * seg, min((i + 1) * seg, total)
        data = self.source.read_index(list(names), a, z)
        self.decoded += data.shape[1]
        bins = -(-(z - a) // b)
        with np.errstate(invalid="ignore"):
            fine = np.stack([np.fmin.reduceat(data, np.arange(bins) * b, axis=1),
                             np.fmax.reduceat(data, np.arange(bins) * b, axis=1)]).astype(np.float32)
        self._bins.put(key, fine)
        return fine


def _bin_size(segment: int, per_column: int) -> int:
    """The largest power of two that divides `segment` and is at most an eighth of a column."""
    b = 1
    while b * 2 <= max(1, per_column // 8) and segment % (b * 2) == 0:
        b *= 2
    return b
