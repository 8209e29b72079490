"""Zoomed-out pages (minutes to hours): per-column min/max from envelopes cached by segment.

A zoomed-out page is never read at full resolution: each decoded segment is reduced once to
the min/max of fine bins, kept in a byte-bounded cache, and a page's columns come from those
bins (or, for very wide columns, from the MEF block index). Only pages shown as recorded and
unfiltered take this path; docs/scroller.md explains why every column's extent is exact.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..caching import ByteLRU
from ..signal.decimate import bin_starts
from ..sources import RecordingSource
from .pages import View

__all__ = ["EnvelopeStore", "ZOOM_SAMPLES_PER_COLUMN"]

log = logging.getLogger(__name__)

#: Pages with at least this many samples per column (and no review) come from the envelopes.
ZOOM_SAMPLES_PER_COLUMN = 256
#: Columns at least this many (median) blocks wide take whole blocks from the block index.
INDEX_BLOCKS_PER_COLUMN = 4


class EnvelopeStore:
    """Fine min/max bins of decoded segments, kept within `budget_bytes`.

    Bins are kept by rate, channels, segment and bin size, beside the block index's extents
    and the decoded blocks across column edges.

    Parameters
    ----------
    source : RecordingSource
        The recording.
    budget_bytes : int, default 64 MiB
        The most the cached envelopes may take.
    """

    def __init__(self, source: RecordingSource, budget_bytes: int = 64 * 2**20) -> None:
        self.source = source
        self._bins: ByteLRU[tuple, Any] = ByteLRU(budget_bytes, _nbytes)
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="mef3lab-zoom-ahead")
        self.decoded = 0  # samples decoded for envelopes (per channel), for tests and benchmarks

    def ahead(self, view: View, columns: int) -> None:
        """Compute the envelopes of `view` (the next page) on a background thread."""
        with contextlib.suppress(RuntimeError):  # closed, or the interpreter is exiting
            self._pool.submit(self._ahead, view, columns)

    def _ahead(self, view: View, columns: int) -> None:
        try:
            self.encode(view, columns)
        except Exception:  # reading ahead is only advice
            log.debug("zoomed read-ahead of %s failed", view, exc_info=True)

    def close(self) -> None:
        """Stop the read-ahead thread (after the envelope under way) and free the envelopes."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._bins.clear()

    def encode(self, view: View, columns: int) -> tuple[list[dict], bytes]:
        """What `display.encode` gives for a zoomed-out page.

        Parameters
        ----------
        view : View
            The window and channels (as recorded, unfiltered).
        columns : int
            Pixel columns of the trace area.

        Returns
        -------
        traces : list of dict
            One "minmax" description per channel, in the view's order.
        buffer : bytes
            The float32 values they index.
        """
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
            got = self._index_columns(grid, names, k0, k1, count)
            lo, hi = (
                got
                if got is not None
                else self._columns(group.fs, names, grid.n_samples, k0, k1, count)
            )
            first_s = (float(grid.time_of(k0)) - info.start_uutc) / 1e6
            for row, name in enumerate(names):
                traces[name] = {
                    "name": name,
                    "fs": group.fs,
                    "kind": "minmax",
                    "n": count,
                    "t0": first_s - view.start_s,
                    "dt": n / group.fs / count,
                    "offset": offset + row * 2 * count,
                    "error": None,
                }
            values = np.concatenate([lo, hi], axis=1).astype(np.float32)
            parts.append(values.reshape(-1))
            offset += values.size
        buffer = np.concatenate(parts).tobytes() if parts else b""
        return [traces[name] for name in view.channels], buffer

    def _columns(
        self, fs: float, names: tuple[str, ...], total: int, k0: int, k1: int, count: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-column (lo, hi) of grid samples ``[k0, k1)`` in `count` columns.

        Each is (len(names), count).
        """
        seg = self.source.segment_samples(fs)
        b = _bin_size(seg, (k1 - k0) // count)
        j0, j1 = k0 // b, -(-k1 // b)  # the fine bins overlapping the page
        lo = np.full((len(names), j1 - j0), np.nan, np.float32)
        hi = np.full((len(names), j1 - j0), np.nan, np.float32)
        for i in range(
            max(k0, 0) // seg, (min(k1, total) - 1) // seg + 1 if min(k1, total) > max(k0, 0) else 0
        ):
            fine = self._segment(fs, names, total, i, seg, b)
            a = i * seg // b  # the segment's first bin
            x0, x1 = max(a, j0), min(a + fine.shape[2], j1)
            lo[:, x0 - j0 : x1 - j0] = fine[0, :, x0 - a : x1 - a]
            hi[:, x0 - j0 : x1 - j0] = fine[1, :, x0 - a : x1 - a]
        # Each column's first bin: the bin its first sample lies in; reduceat then gives a column
        # every bin up to the next column's first, so each bin lands in one column only. Columns
        # are at least 8 bins wide, so no two start in the same bin.
        first = (k0 + bin_starts(k1 - k0, count)) // b - j0
        with np.errstate(invalid="ignore"):
            return np.fmin.reduceat(lo, first, axis=1), np.fmax.reduceat(hi, first, axis=1)

    def _blocks(
        self, grid, names: tuple[str, ...]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """Block [start, end) grid indices and (channels, blocks) minima and maxima.

        None if the channels' blocks do not start together.
        """
        key = ("blocks", grid.fs, names)
        with self._lock:
            got = self._bins.get(key)
        if got is None:
            envs = [self.source.block_envelope(n) for n in names]
            starts = np.asarray(envs[0]["start_uutc"], np.int64)
            if any(
                not np.array_equal(np.asarray(e["start_uutc"], np.int64), starts) for e in envs[1:]
            ):
                return None
            end = np.max([np.asarray(e["end_uutc"], np.int64) for e in envs], axis=0)

            def to_k(t: np.ndarray) -> np.ndarray:  # Grid.index_at, over arrays
                return np.ceil((t - grid.start_uutc) * grid.fs / 1e6 - 1e-3)

            got = np.vstack(
                [to_k(starts), to_k(end), *[e["min"] for e in envs], *[e["max"] for e in envs]]
            )
            self._bins.put(key, got)
        n = len(names)
        return got[0].astype(np.int64), got[1].astype(np.int64), got[2 : 2 + n], got[2 + n :]

    def _index_columns(
        self, grid, names: tuple[str, ...], k0: int, k1: int, count: int
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Columns from the block index plus the decoded blocks across column edges.

        None where that does not apply: blocks not aligned, or columns narrower than
        `INDEX_BLOCKS_PER_COLUMN` blocks.
        """
        blocks = self._blocks(grid, names)
        if blocks is None or not blocks[0].size:
            return None
        ks, ke, bmin, bmax = blocks
        if (k1 - k0) / count < INDEX_BLOCKS_PER_COLUMN * float(np.median(ke - ks)):
            return None
        edges = np.append(k0 + bin_starts(k1 - k0, count), k1)
        lo = np.full((len(names), count), np.nan, np.float32)
        hi = np.full((len(names), count), np.nan, np.float32)
        inside = (ke > k0) & (ks < k1)
        ks, ke, bmin, bmax = ks[inside], ke[inside], bmin[:, inside], bmax[:, inside]
        first = np.searchsorted(edges, ks, side="right") - 1  # column of a block's first sample
        last = np.searchsorted(edges, ke - 1, side="right") - 1  # ... and of its last
        whole = (first == last) & (first >= 0) & (last < count)
        for row in range(len(names)):
            np.fmin.at(lo[row], first[whole], bmin[row, whole].astype(np.float32))
            np.fmax.at(hi[row], first[whole], bmax[row, whole].astype(np.float32))
        for a, z in zip(ks[~whole].tolist(), ke[~whole].tolist(), strict=True):
            cols, part_lo, part_hi = self._split_block(
                grid, names, max(a, k0, 0), min(z, k1, grid.n_samples), edges
            )
            lo[:, cols] = np.fmin(lo[:, cols], part_lo)
            hi[:, cols] = np.fmax(hi[:, cols], part_hi)
        return lo, hi

    def _split_block(
        self, grid, names: tuple[str, ...], a: int, z: int, edges: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A block across column edges, decoded once per set of edges.

        Its columns, and each one's (lo, hi) of the block.
        """
        if z <= a:
            return (
                np.empty(0, np.int64),
                np.empty((len(names), 0), np.float32),
                np.empty((len(names), 0), np.float32),
            )
        cuts = edges[(edges > a) & (edges < z)]
        key = ("edge", grid.fs, names, a, z, tuple(cuts.tolist()))
        with self._lock:
            got = self._bins.get(key)
        if got is not None:
            return got
        data = self.source.read_index(list(names), a, z)
        self.decoded += data.shape[1]
        bounds = np.concatenate([[a], cuts, [z]]) - a
        cols = np.searchsorted(edges, a + bounds[:-1], side="right") - 1
        with np.errstate(invalid="ignore"):
            lo_parts = np.fmin.reduceat(data, bounds[:-1], axis=1)
            hi_parts = np.fmax.reduceat(data, bounds[:-1], axis=1)
        keep = (cols >= 0) & (cols < len(edges) - 1)
        got = (cols[keep], lo_parts[:, keep], hi_parts[:, keep])
        self._bins.put(key, got)
        return got

    def _segment(
        self, fs: float, names: tuple[str, ...], total: int, i: int, seg: int, b: int
    ) -> np.ndarray:
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
            fine = np.stack(
                [
                    np.fmin.reduceat(data, np.arange(bins) * b, axis=1),
                    np.fmax.reduceat(data, np.arange(bins) * b, axis=1),
                ]
            ).astype(np.float32)
        self._bins.put(key, fine)
        return fine


def _nbytes(value: Any) -> int:
    return sum(a.nbytes for a in value) if isinstance(value, tuple) else value.nbytes


def _bin_size(segment: int, per_column: int) -> int:
    """The largest power of two that divides `segment` and is at most an eighth of a column."""
    b = 1
    while b * 2 <= max(1, per_column // 8) and segment % (b * 2) == 0:
        b *= 2
    return b
