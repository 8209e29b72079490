"""The single data path of the ``mef3`` engine: `Mef3BackendArray`, and read-ahead hints.

Every sample xarray or dask reads comes through `Mef3BackendArray`, which asks the
source to prefetch the neighbouring window in the direction reads travel; docs/xarray.md
tells what that means through a server, after Ctrl-C and when the server goes down.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from typing import Any

import numpy as np
from xarray.backends import BackendArray
from xarray.core import indexing

from ..errors import ServerUnavailableError
from ..sources import REGISTRY, SourceSpec
from .scheduler import local_unless_distributed

__all__ = ["Mef3BackendArray"]

log = logging.getLogger(__name__)


class Mef3BackendArray(BackendArray):
    """One rate group, ``(channel, time)``: every sample xarray or dask reads comes through here.

    Holds only the (picklable) `SourceSpec` and the group's names; the source itself is
    looked up in the process's `mef3lab.sources.REGISTRY` on each read, so pickled copies
    reopen lazily.

    Parameters
    ----------
    spec : SourceSpec
        The recording.
    channels : tuple of str
        The group's channels, rows in this order.
    n_time : int
        The group's grid length in samples.
    dtype : str
        "float32", "float64" or "int32" (stored counts).
    fs : float, optional
        The group's rate: lets a read's hint skip the segments that read loads anyway.
    """

    def __init__(
        self,
        spec: SourceSpec,
        channels: tuple[str, ...],
        n_time: int,
        dtype: str,
        fs: float | None = None,
    ) -> None:
        local_unless_distributed()
        self.spec = spec
        self.channels = tuple(channels)
        self.shape = (len(self.channels), int(n_time))
        self.dtype = np.dtype(dtype)
        self.fs = fs

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.OUTER, self._getitem
        )

    def _getitem(self, key: tuple[Any, Any]) -> np.ndarray:
        ckey, tkey = key
        n_time = self.shape[1]

        # channels: int (dimension dropped), slice, or sorted int array (maybe repeated)
        if isinstance(ckey, slice):
            cidx: Any = np.arange(len(self.channels))[ckey]
        else:
            cidx = np.asarray(ckey, dtype=np.int64)
        uniq, inverse = np.unique(np.atleast_1d(cidx), return_inverse=True)

        # time: int (dimension dropped), positive-step slice, or sorted int array
        if isinstance(tkey, slice):
            start, stop, step = tkey.indices(n_time)
            k0, k1 = start, max(start, stop)
            take: Any = slice(None, None, step)
        else:
            tidx = np.asarray(tkey, dtype=np.int64)
            if tidx.size:
                k0, k1 = int(tidx.min()), int(tidx.max()) + 1
            else:
                k0 = k1 = 0
            take = tidx - k0

        if uniq.size == 0 or k1 <= k0:
            block = np.empty((uniq.size, k1 - k0), self.dtype)
        else:
            names = [self.channels[i] for i in uniq.tolist()]
            source = REGISTRY.acquire(self.spec)
            self._hint(source, names, k0, k1)
            try:
                block = source.read_index(names, k0, k1, self.dtype.name)
            except ServerUnavailableError:
                # computing again after the server is back reconnects at once
                REGISTRY.discard(self.spec, source)
                raise
        if np.ndim(cidx) == 0:
            block = block[inverse[0]]
        elif not np.array_equal(uniq, cidx):  # repeated or reordered channels: rows as asked for
            block = block[inverse.reshape(np.shape(cidx))]
        if not (isinstance(take, slice) and take.step in (None, 1)):  # contiguous: no copy
            block = block[..., take]
        block = np.asarray(block, dtype=self.dtype)
        return block if block.flags.writeable else block.copy()  # users may modify what they get

    def _hint(self, source: Any, names: list[str], k0: int, k1: int) -> None:
        """Announce the window next to ``[k0, k1)`` (as long again) in the direction reads travel.

        dask's local schedulers run a whole-array compute from the last chunk to the first,
        a user scrolls forwards, so the direction is learnt from this process's previous
        read of the same channels (forwards at first). The segments this read loads anyway
        are left out: for chunk-aligned reads (dask chunks are segments) the hint is exactly
        the neighbouring chunk; a short window inside a segment announces nothing until
        the next window would reach another segment. A read more than a segment away from
        the previous one (a jump) announces nothing: the next read is as likely anywhere.
        """
        n_time = self.shape[1]
        seg = 0
        if self.fs is not None:
            try:
                seg = source.segment_samples(self.fs)
            except Exception:  # a source that cannot tell just gets the plain hint
                seg = 0
        step = _travel(source, names, self.dtype.name, k0, k1, seg)
        if step > 0:
            h0, h1 = k1, min(n_time, k1 + (k1 - k0))
            if seg > 0:
                h0 = max(h0, -(-k1 // seg) * seg)  # the segment holding k1 - 1 is read now
        elif step < 0:
            h0, h1 = max(0, k0 - (k1 - k0)), k0
            if seg > 0:
                h1 = min(h1, k0 // seg * seg)  # the segment holding k0 is read now
        else:
            return
        if h0 >= h1:
            return
        try:
            source.hint(names, h0, h1, self.dtype.name)
        except Exception:  # a hint must never fail a read
            log.debug("hint failed", exc_info=True)


#: Per source of this process, per (channels, dtype): the window the last read asked for,
#: and which way reads go.
_travels: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], tuple[int, int, int]]] = (
    weakref.WeakKeyDictionary()
)
_travels_lock = threading.Lock()


def _travel(source: Any, names: list[str], dtype: str, k0: int, k1: int, seg: int) -> int:
    """The way from the previous read of these channels to ``[k0, k1)``: +1, -1, or 0 (a jump).

    A jump lands more than a segment of `seg` samples away from the previous read's
    segments (never with `seg` 0); the reads after it go forwards until they show otherwise.
    """
    key = (tuple(names), dtype)
    with _travels_lock:
        try:
            mine = _travels.setdefault(source, {})
        except TypeError:  # a source that cannot be weakly referenced: always forwards
            return 1
        previous = mine.get(key)
        if previous is None:
            step = 1
        elif seg > 0 and (
            k0 // seg > (previous[1] - 1) // seg + 1 or (k1 - 1) // seg < previous[0] // seg - 1
        ):
            mine[key] = (k0, k1, 1)
            return 0
        else:
            step = previous[2] if k0 == previous[0] else (1 if k0 > previous[0] else -1)
        mine[key] = (k0, k1, step)
    return step


def _travels_after_fork() -> None:
    global _travels_lock
    _travels_lock = threading.Lock()
    _travels.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_travels_after_fork)
