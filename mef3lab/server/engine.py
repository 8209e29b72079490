"""The server's engine: open recordings, per-client views, and the segment read path.

Every service (mef3lab's own API, the lab's compatibility API) calls only this.
Data flows one way: a read asks the cache; a miss joins an in-flight load of the same
segment or submits one to the reader pool; a finished load fills the cache; then the
next segments in the reader's direction are queued in the background.

Per-client state (segment size, channel selection, open recordings) lives in
`ClientView`s keyed by client id, so one client's settings never change another's
reads. Decoded segments are keyed by recording, rate, channel *set*, sample range and
dtype, so a channel subset can never be served as another; rows are put in the
order each caller asked for on the way out.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from concurrent.futures import CancelledError as FutureCancelled
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..errors import NotOpenError, PasswordError, ReadTooLargeError, SegmentIndexError, TimeRangeError
from ..readers.base import DTYPES, RateGroup, SessionInfo
from .cache import ByteLRU
from .decimate import bin_starts
from .config import ServerConfig
from .pool import ReaderPool, ReadRequest, SharedArray
from .prefetch import PrefetchTracker, Readahead

log = logging.getLogger(__name__)

ITEMSIZE = {"float32": 4, "float64": 8, "int32": 4}

#: Shorter segments would cost a reader-process round trip per few samples.
MIN_SEGMENT_SECONDS = 1.0


@dataclass(frozen=True)
class SegmentKey:
    path: str
    fs: float
    channels: tuple[str, ...]  # canonical (session) order: one entry per channel *set*
    k0: int
    k1: int
    dtype: str


@dataclass(frozen=True)
class Samples:
    """A block of samples on a rate group's grid, rows in the caller's channel order."""

    data: np.ndarray  # (n_channels, n_samples); read-only view when it is cache memory
    channels: tuple[str, ...]
    group: RateGroup
    start_index: int
    factors: np.ndarray | None = None  # per-channel conversion factors when data are raw int32 counts

    @property
    def first_sample_uutc(self) -> int:
        return self.group.grid.uutc_of(self.start_index)

    @property
    def end_uutc(self) -> int:
        """Time just past the last sample."""
        return self.group.grid.uutc_of(self.start_index + self.data.shape[1])


@dataclass
class Recording:
    """A recording open on the server (shared by every client that opened it)."""

    path: str
    password: str
    engine: str
    info: SessionInfo
    clients: set[str] = field(default_factory=set)


@dataclass
class _Flight:
    """A segment load under way; `background` until a foreground read waits for it."""

    future: Future
    background: bool
    lock: threading.RLock

    def cancel(self) -> bool:
        """Cancel a queued prefetch, never a load that a foreground read is waiting for."""
        with self.lock:
            return self.background and self.future.cancel()


@dataclass
class ClientView:
    """One client's settings for one recording."""

    segment_seconds: float
    channels: tuple[str, ...] | None = None  # selection used when a read names none


class Engine:
    """Recordings, clients, cache, prefetch and pool, tied together. Thread-safe."""

    def __init__(self, config: ServerConfig | None = None, pool: ReaderPool | None = None) -> None:
        self.config = config or ServerConfig()
        self.pool = pool or ReaderPool(self.config.n_process_workers)
        budget = self.config.cache_budget_bytes(0) if self.config.cache_mb > 0 else 0
        self.cache: ByteLRU[SegmentKey, np.ndarray] = ByteLRU(budget, lambda a: a.nbytes, self._evicted)
        self.prefetch = PrefetchTracker(Readahead(self.config.n_prefetch))
        self._recordings: dict[str, Recording] = {}
        self._views: dict[tuple[str, str], ClientView] = {}
        self._inflight: dict[SegmentKey, Future] = {}
        self._prefetched: set[SegmentKey] = set()
        self._lock = threading.RLock()
        self._counters = {"prefetches": 0, "prefetch_hits": 0, "decoded_samples": 0}
        self._last_seen: dict[str, float] = {}
        self._stopping = threading.Event()
        self._janitor = threading.Thread(target=self._expire_loop, name="mef3lab-janitor", daemon=True)
        self._janitor.start()

    # -- recordings and clients -----------------------------------------------------------
    def open(self, client: str, path: str, password: str | None = None, engine: str | None = None) -> SessionInfo:
        """Open `path` for `client` (a second client, or a second open, is a normal open)."""
        key = canonical_path(path)
        password = password or ""
        with self._lock:
            rec = self._recordings.get(key)
        if rec is None:
            engine = engine or self.config.engine
            info = self.pool.info(key, password, engine)
            with self._lock:
                rec = self._recordings.setdefault(key, Recording(key, password, engine, info))
        elif rec.info.encrypted and password != rec.password:
            self.pool.info(key, password, rec.engine)  # this client must prove its own password
        with self._lock:
            rec.clients.add(client)
            self._views.setdefault((client, key), ClientView(self.config.segment_seconds))
            self._last_seen[client] = time.monotonic()
        return rec.info

    def close(self, client: str, path: str) -> bool:
        """Close `path` for `client`; the last client out frees its cache entries and readers."""
        key = canonical_path(path)
        with self._lock:
            view = self._views.pop((client, key), None)
            rec = self._recordings.get(key)
            if view is None or rec is None:
                return False
            rec.clients.discard(client)
            last = not rec.clients
            if last:
                del self._recordings[key]
        self.prefetch.forget(lambda s: s[0] == client and s[1] == key)
        if last:
            self.cache.drop(lambda k: k.path == key)
            self.pool.close_recording(key)
        return True

    def list_open(self, client: str) -> list[str]:
        with self._lock:
            return sorted(p for (c, p) in self._views if c == client)

    def info(self, client: str, path: str) -> SessionInfo:
        return self._open_view(client, path)[0].info

    def recording_engine(self, path: str) -> str:
        """The decoding engine serving `path` ("" when it is not open)."""
        with self._lock:
            rec = self._recordings.get(canonical_path(path))
        return rec.engine if rec else ""

    def forget_client(self, client: str) -> None:
        """Close everything a client had open (it went away)."""
        for path in self.list_open(client):
            self.close(client, path)
        with self._lock:
            self._last_seen.pop(client, None)

    def expire_idle(self, now: float | None = None) -> list[str]:
        """Forget clients silent for longer than `client_idle_s` (a client known only by its
        connection can never come back once that connection is gone); returns who was forgotten."""
        now = time.monotonic() if now is None else now
        with self._lock:
            idle = [c for c, t in self._last_seen.items() if now - t > self.config.client_idle_s]
        for client in idle:
            log.info("closing the recordings of %s: idle for more than %g s", client, self.config.client_idle_s)
            self.forget_client(client)
        return idle

    def _expire_loop(self) -> None:
        while not self._stopping.wait(min(60.0, self.config.client_idle_s / 4)):
            self.expire_idle()

    # -- per-client settings --------------------------------------------------------------
    def set_segment_seconds(self, client: str, path: str, seconds: float) -> dict[float, int]:
        """Set this client's segment size; returns the number of segments per rate."""
        if not (seconds >= MIN_SEGMENT_SECONDS and math.isfinite(seconds)):
            raise TimeRangeError(f"a segment must last at least {MIN_SEGMENT_SECONDS:g} s (and be finite), not {seconds!r}")
        rec, view = self._open_view(client, path)
        view.segment_seconds = float(seconds)
        return {g.fs: self.segment_grid(client, path, g)[1] for g in rec.info.rate_groups}

    def segment_seconds(self, client: str, path: str) -> float:
        return self._open_view(client, path)[1].segment_seconds

    def set_channels(self, client: str, path: str, channels: Sequence[str] | None) -> tuple[str, ...]:
        """This client's channel selection for reads that name none (None or empty = all)."""
        rec, view = self._open_view(client, path)
        view.channels = rec.info.check_channels(channels) if channels else None
        return view.channels or rec.info.names

    def channels(self, client: str, path: str, channels: Sequence[str] | None = None) -> tuple[str, ...]:
        """The channels a read means: those named, else the client's selection, else all."""
        rec, view = self._open_view(client, path)
        return rec.info.check_channels(channels or view.channels)

    def segment_grid(self, client: str, path: str, group: RateGroup) -> tuple[int, int]:
        """(samples per segment, number of segments) of `group` for this client."""
        _, view = self._open_view(client, path)
        length = max(1, int(round(view.segment_seconds * group.fs)))
        return length, max(1, math.ceil(group.grid.n_samples / length))

    # -- reads ----------------------------------------------------------------------------
    def read_segment(
        self, client: str, path: str, index: int, channels: Sequence[str] | None = None,
        dtype: str = "float32", prefetch: bool = True,
    ) -> Samples:
        """Segment `index` of this client's grid for `channels` (one rate group)."""
        rec, _ = self._open_view(client, path)
        names = self.channels(client, path, channels)
        group = rec.info.group_of(names)
        length, n_seg = self.segment_grid(client, path, group)
        if not 0 <= index < n_seg:
            raise SegmentIndexError(
                f"segment {index} does not exist: {rec.path} has {n_seg} segments of "
                f"{length / group.fs:g} s at {group.fs:g} Hz (indices 0..{n_seg - 1})"
            )
        return self.read_index(client, path, names, index * length,
                               min((index + 1) * length, group.grid.n_samples), dtype, prefetch)

    def time_window(self, client: str, path: str, channels: Sequence[str] | None, start_uutc: float,
                    end_uutc: float) -> tuple[int, int]:
        """Grid indices of ``[start_uutc, end_uutc)`` for the channels' rate group (refusing bad windows)."""
        rec, _ = self._open_view(client, path)
        return rec.info.group_of(self.channels(client, path, channels)).grid.window(start_uutc, end_uutc, rec.path)

    def read_time(
        self, client: str, path: str, channels: Sequence[str] | None, start_uutc: float, end_uutc: float,
        dtype: str = "float32", prefetch: bool = True,
    ) -> Samples:
        """Samples in ``[start_uutc, end_uutc)`` on the channels' grid (NaN outside the data)."""
        k0, k1 = self.time_window(client, path, channels, start_uutc, end_uutc)
        return self.read_index(client, path, channels, k0, k1, dtype, prefetch)

    def read_index(
        self, client: str, path: str, channels: Sequence[str] | None, k0: int, k1: int,
        dtype: str = "float32", prefetch: bool = True,
    ) -> Samples:
        """Grid samples ``[k0, k1)``, assembled from (cached) segments of this client's grid."""
        rec, _ = self._open_view(client, path)
        names = self.channels(client, path, channels)
        group = rec.info.group_of(names)
        if dtype not in ITEMSIZE:
            raise ValueError(f"dtype must be one of {sorted(ITEMSIZE)}, not {dtype!r}")
        if k1 < k0:
            raise TimeRangeError(f"sample range [{k0}, {k1}) ends before it starts")
        self._check_size(len(names), k1 - k0, dtype)
        length, n_seg = self.segment_grid(client, path, group)
        canon = tuple(n for n in rec.info.names if n in set(names))
        rows = None if canon == names else [canon.index(n) for n in names]
        first, last = max(k0, 0) // length, (min(k1, group.grid.n_samples) - 1) // length
        indices = range(first, last + 1) if k1 > max(k0, 0) and k0 < group.grid.n_samples else range(0)
        pieces = list(zip(indices, self._segments(rec, group, canon, indices, length, dtype)))
        if prefetch and pieces:
            self._prefetch_after(client, rec, group, canon, dtype, length, n_seg, pieces[-1][0])
        if len(pieces) == 1 and (pieces[0][0] * length, pieces[0][0] * length + pieces[0][1].shape[1]) == (k0, k1):
            data = pieces[0][1] if rows is None else pieces[0][1][rows]
        else:
            data = _assemble(pieces, length, k0, k1, len(canon), dtype, rows)
        factors = (np.array([rec.info.channel(c).conversion_factor for c in names], np.float64)
                   if dtype == "int32" else None)
        return Samples(data, names, group, k0, factors)

    def envelope(
        self, client: str, path: str, channels: Sequence[str] | None, k0: int, k1: int, bins: int,
    ) -> Samples:
        """Min and max of `bins` near-equal bins of grid samples ``[k0, k1)``: data (2, channels, bins).

        Segment by segment through the cache, so an overview of hours costs memory for one
        segment at a time (no `max_read_mb` limit applies: the reply is small)."""
        if bins <= 0 or k1 <= k0:
            raise TimeRangeError(f"an envelope needs a non-empty window and a positive number of bins, "
                                 f"not [{k0}, {k1}) in {bins} bins")
        rec, _ = self._open_view(client, path)
        names = self.channels(client, path, channels)
        group = rec.info.group_of(names)
        length, _ = self.segment_grid(client, path, group)
        canon = tuple(n for n in rec.info.names if n in set(names))
        self._check_size(len(canon), min(length, k1 - k0), "float32")
        bins = min(bins, k1 - k0)
        starts = k0 + bin_starts(k1 - k0, bins)
        out = np.full((2, len(canon), bins), np.nan, np.float32)
        lo_i, hi_i = max(k0, 0) // length, (min(k1, group.grid.n_samples) - 1) // length
        for i in range(lo_i, hi_i + 1) if k1 > 0 and k0 < group.grid.n_samples else ():
            (seg,) = self._segments(rec, group, canon, range(i, i + 1), length, "float32")
            a, b = max(k0, i * length), min(k1, i * length + seg.shape[1])
            j0, j1 = np.searchsorted(starts, [a, b - 1], side="right") - 1
            edges = np.maximum(starts[j0:j1 + 1], a) - a
            chunk = seg[:, a - i * length:b - i * length]
            with np.errstate(invalid="ignore"):
                out[0, :, j0:j1 + 1] = np.fmin(out[0, :, j0:j1 + 1], np.fmin.reduceat(chunk, edges, axis=1))
                out[1, :, j0:j1 + 1] = np.fmax(out[1, :, j0:j1 + 1], np.fmax.reduceat(chunk, edges, axis=1))
        rows = None if canon == names else [canon.index(n) for n in names]
        return Samples(out if rows is None else out[:, rows], names, group, k0)

    def _check_size(self, n_channels: int, n_samples: int, dtype: str) -> None:
        size = n_channels * n_samples * ITEMSIZE[dtype]
        if size > self.config.max_read_bytes:
            raise ReadTooLargeError(
                f"a read of {size / 2**20:.2f} MiB ({n_channels} channels × {n_samples} samples) exceeds the "
                f"server's limit of {self.config.max_read_mb:g} MiB; read it in smaller windows")

    def block_envelope(
        self, client: str, path: str, channel: str, start_uutc: int | None = None, end_uutc: int | None = None,
    ) -> dict[str, np.ndarray]:
        """Per-MEF-block min/max of one channel from the block index (decoded in a reader process)."""
        rec, _ = self._open_view(client, path)
        rec.info.channel(channel)
        return self.pool.call(rec.path, rec.password, rec.engine, "block_envelope", channel, start_uutc, end_uutc)

    def hint(self, client: str, path: str, channels: Sequence[str] | None, k0: int, k1: int, dtype: str = "float32") -> int:
        """Queue background loads of the segments covering ``[k0, k1)``; returns how many were queued."""
        rec, _ = self._open_view(client, path)
        names = self.channels(client, path, channels)
        group = rec.info.group_of(names)
        canon = tuple(n for n in rec.info.names if n in set(names))
        length, n_seg = self.segment_grid(client, path, group)
        lo, hi = max(k0, 0) // length, min(n_seg - 1, (k1 - 1) // length)
        return sum(self._background(rec, group, canon, dtype, length, i) is not None for i in range(lo, hi + 1))

    # -- the segment path -----------------------------------------------------------------
    def _segments(self, rec: Recording, group: RateGroup, canon: tuple[str, ...], indices: range, length: int,
                  dtype: str) -> list[np.ndarray]:
        """Segments `indices` (read-only), from the cache or from loads that fill it. Every miss
        is submitted before any is waited for, so a long cold read keeps all reader processes busy."""
        n = group.grid.n_samples
        keys = [SegmentKey(rec.path, group.fs, canon, i * length, min((i + 1) * length, n), dtype) for i in indices]
        hits = [self.cache.get(k) for k in keys]
        loads = {k: self._load(rec, k, foreground=True) for k, h in zip(keys, hits) if h is None}
        out = []
        for key, hit in zip(keys, hits):
            while hit is None:
                try:
                    hit = _array(loads[key].result())
                except FutureCancelled:  # lost a race with a prefetch cancel: load it in the foreground
                    loads[key] = self._load(rec, key, foreground=True)
            if key in self._prefetched:
                with self._lock:
                    if key in self._prefetched:
                        self._prefetched.discard(key)
                        self._counters["prefetch_hits"] += 1
            out.append(hit)
        return out

    def _load(self, rec: Recording, key: SegmentKey, foreground: bool) -> Future:
        """The load of `key`: the one in flight, or a new one. Never two loads of one segment."""
        with self._lock:
            flight = self._inflight.get(key)
            if flight is not None and foreground and flight.cancel():
                flight = None  # a queued prefetch: re-issue it ahead of the queue
            if flight is None:
                flight = _Flight(self._submit(rec, key, foreground), not foreground, self._lock)
                self._inflight[key] = flight
                if flight.background:
                    self._counters["prefetches"] += 1
                flight.future.add_done_callback(lambda f, key=key, fl=flight: self._loaded(key, fl))
            elif foreground and flight.background:
                flight.background = False  # from now on nobody may cancel it
                self._counters["prefetch_hits"] += 1  # a prefetch under way serves this read
        return flight.future

    def _submit(self, rec: Recording, key: SegmentKey, foreground: bool) -> Future:
        """Hand the decode to the pool, split by channels over the reader processes: the read a
        user waits for uses every core, and prefetches complete nearest first (segment N+1 is
        ready twice as soon as when each process decodes a whole segment of its own)."""
        parts = _split(key.channels, self.config.n_process_workers, (key.k1 - key.k0) * len(key.channels))
        futures = [self.pool.submit(ReadRequest(rec.path, rec.password, rec.engine, part, key.k0, key.k1, key.dtype),
                                    foreground=foreground) for part in parts]
        return futures[0] if len(futures) == 1 else _Stacked(futures)

    def _loaded(self, key: SegmentKey, flight: "_Flight") -> None:
        fut = flight.future
        with self._lock:
            if self._inflight.get(key) is flight:
                del self._inflight[key]
            if fut.cancelled() or fut.exception() is not None:
                return  # errors are never cached
            data = _array(fut.result())
            self._counters["decoded_samples"] += data.size
            if key.path not in self._recordings:
                return  # closed while loading
            if flight.background:
                self._prefetched.add(key)
        self._grow_budget(data.nbytes)
        self.cache.put(key, data)

    def _background(self, rec, group, canon, dtype, length, index) -> "_Flight | None":
        k0, k1 = index * length, min((index + 1) * length, group.grid.n_samples)
        key = SegmentKey(rec.path, group.fs, canon, k0, k1, dtype)
        if key in self.cache:
            return None
        with self._lock:
            if key in self._inflight:
                return None
            self._load(rec, key, foreground=False)
            return self._inflight.get(key)

    def _prefetch_after(self, client, rec, group, canon, dtype, length, n_seg, index) -> None:
        if self.config.n_prefetch <= 0:
            return
        stream = (client, rec.path, group.fs, canon, dtype, length)
        for i in self.prefetch.advance(stream, index, n_seg):
            fut = self._background(rec, group, canon, dtype, length, i)
            if fut is not None:
                self.prefetch.queued(stream, i, fut)

    def _grow_budget(self, segment_bytes: int) -> None:
        """Without CACHE_MB the budget follows the largest segment and the number of readers
        moving through recordings now, so concurrent readers' prefetches are not evicted unread."""
        if self.config.cache_mb <= 0:
            wanted = self.config.cache_budget_bytes(segment_bytes, self.prefetch.active())
            if wanted > self.cache.stats().budget_bytes:
                self.cache.resize(wanted)

    def _evicted(self, key: SegmentKey, _data: np.ndarray) -> None:
        # Memory returns to the OS when the last view of the array is gone (see pool.SharedArray).
        with self._lock:
            self._prefetched.discard(key)

    def _open_view(self, client: str, path: str) -> tuple[Recording, ClientView]:
        key = canonical_path(path)
        with self._lock:
            view = self._views.get((client, key))
            rec = self._recordings.get(key)
            if view is not None:
                self._last_seen[client] = time.monotonic()
        if view is None or rec is None:
            raise NotOpenError(f"{path} is not open for this client; open it first")
        return rec, view

    # -- operations -----------------------------------------------------------------------
    def stats(self) -> dict[str, int]:
        c = self.cache.stats()
        p = self.pool.stats()
        with self._lock:
            clients = len({c_ for c_, _ in self._views})
            out = dict(self._counters)
            n_open = len(self._recordings)
        out.update(cache_bytes=c.bytes, cache_budget_bytes=c.budget_bytes, cache_entries=c.entries,
                   hits=c.hits, misses=c.misses, workers=p.get("alive", p.get("workers", 0)),
                   worker_restarts=p.get("restarts", 0), open_recordings=n_open, clients=clients)
        return out

    def shutdown(self) -> None:
        """Stop every worker and free every cached segment."""
        self._stopping.set()
        self.pool.close()
        self.cache.clear()


def canonical_path(path: str) -> str:
    """The one spelling of a recording's path that keys recordings, views and cache entries."""
    return os.path.realpath(os.path.expanduser(path)) if path else path


#: Below this many samples a foreground read is not split over processes (not worth a round trip).
SPLIT_MIN_SAMPLES = 1 << 20


def _split(channels: tuple[str, ...], ways: int, samples: int) -> list[tuple[str, ...]]:
    """`channels` in up to `ways` contiguous parts (one when the read is small)."""
    ways = min(ways, len(channels)) if samples >= SPLIT_MIN_SAMPLES else 1
    if ways <= 1:
        return [channels]
    edges = [round(i * len(channels) / ways) for i in range(ways + 1)]
    return [channels[a:b] for a, b in zip(edges, edges[1:])]


def _array(result) -> np.ndarray:
    """The samples of a finished load: a pool result (SharedArray) or an already stacked array."""
    return result.array if isinstance(result, SharedArray) else result


class _Stacked(Future):
    """One future for a channel-split load: the parts' rows stacked in order, or the first
    failure. Cancelling it cancels the parts, and succeeds only while none has started."""

    def __init__(self, parts: list[Future]) -> None:
        super().__init__()
        self._parts = parts
        self._left = len(parts)
        self._count_lock = threading.Lock()
        for f in parts:
            f.add_done_callback(self._part_done)

    def cancel(self) -> bool:
        if any(p.running() or p.done() for p in self._parts) or not super().cancel():
            return False
        for p in self._parts:
            p.cancel()  # a part that started meanwhile finishes unused
        return True

    def _part_done(self, _part: Future) -> None:
        with self._count_lock:
            self._left -= 1
            if self._left:
                return
        if not self.set_running_or_notify_cancel():
            return  # cancelled
        errors = [FutureCancelled() if f.cancelled() else f.exception() for f in self._parts
                  if f.cancelled() or f.exception() is not None]
        if errors:
            self.set_exception(errors[0])
        else:
            data = np.concatenate([f.result().array for f in self._parts], axis=0)
            data.flags.writeable = False
            self.set_result(data)


def _assemble(pieces, length: int, k0: int, k1: int, n_ch: int, dtype: str, rows) -> np.ndarray:
    """One array for ``[k0, k1)`` from whole segments; NaN (or the raw gap marker) outside the grid."""
    from ..readers.base import RAW_NAN

    out = np.empty((n_ch, k1 - k0), DTYPES.get(dtype, np.int32))
    out.fill(RAW_NAN if dtype == "int32" else np.nan)
    for i, seg in pieces:
        s0 = i * length
        a, b = max(k0, s0), min(k1, s0 + seg.shape[1])
        if b > a:
            out[:, a - k0:b - k0] = seg[:, a - s0:b - s0]
    return out if rows is None else out[rows]
