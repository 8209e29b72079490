"""The segment store: decoded segments cached, loaded once each, and prefetched.

A read asks the cache; a miss joins an in-flight load of the same segment or submits
one to the reader pool; a finished load fills the cache. Decoded segments are keyed by
recording, rate, channel *set*, sample range and dtype, so a channel subset can never
be served as another.

Lock order: the store's lock comes before the engine's. A load that finishes at once
runs its done-callback inside the store's lock, and that callback asks `is_open` (the
engine's lock) and `readers` (the prefetch tracker's lock); so the engine never calls
the store while it holds its own lock.
"""

from __future__ import annotations

import threading
from concurrent.futures import CancelledError as FutureCancelled
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

import numpy as np

from ..readers.base import RateGroup
from .cache import ByteLRU
from .config import ServerConfig
from .pool import ReaderPool, ReadRequest, SharedArray
from .prefetch import Cancellable


@dataclass(frozen=True)
class SegmentKey:
    path: str
    fs: float
    channels: tuple[str, ...]  # canonical (session) order: one entry per channel *set*
    k0: int
    k1: int
    dtype: str

    @classmethod
    def of(cls, path: str, group: RateGroup, channels: tuple[str, ...], index: int, length: int,
           dtype: str) -> SegmentKey:
        """Segment `index` of `group`'s grid cut into `length` samples (the last one may be shorter)."""
        return cls(path, group.fs, channels, index * length, min((index + 1) * length, group.grid.n_samples), dtype)


class Source(Protocol):
    """What a load needs to know of the recording it decodes."""

    path: str
    password: str
    engine: str


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


class SegmentStore:
    """The byte-bounded segment cache and the loads that fill it. Thread-safe.

    `is_open(path)` says whether a finished load may still be cached (its recording was
    not closed meanwhile); `readers()` counts readers moving through recordings now."""

    def __init__(self, config: ServerConfig, pool: ReaderPool, is_open: Callable[[str], bool],
                 readers: Callable[[], int]) -> None:
        self.config = config
        self.pool = pool
        budget = config.cache_budget_bytes(0) if config.cache_mb > 0 else 0
        self.cache: ByteLRU[SegmentKey, np.ndarray] = ByteLRU(budget, lambda a: a.nbytes, self._evicted)
        self._is_open = is_open
        self._readers = readers
        self._inflight: dict[SegmentKey, _Flight] = {}
        self._prefetched: set[SegmentKey] = set()
        self._lock = threading.RLock()
        self._counters = {"prefetches": 0, "prefetch_hits": 0, "decoded_samples": 0}

    def get(self, rec: Source, keys: Sequence[SegmentKey]) -> list[np.ndarray]:
        """Segments `keys` (read-only), from the cache or from loads that fill it. Every miss
        is submitted before any is waited for, so a long cold read keeps all reader processes busy."""
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

    def prefetch(self, rec: Source, key: SegmentKey) -> Cancellable | None:
        """Queue a background load of `key`; None when it is cached or already under way."""
        if key in self.cache:
            return None
        with self._lock:
            if key in self._inflight:
                return None
            self._load(rec, key, foreground=False)
            return self._inflight.get(key)

    def drop_recording(self, path: str) -> None:
        """Free the cached segments of `path` (its last client closed it)."""
        self.cache.drop(lambda k: k.path == path)

    def stats(self) -> dict[str, int]:
        c = self.cache.stats()
        with self._lock:
            out = dict(self._counters)
        out.update(cache_bytes=c.bytes, cache_budget_bytes=c.budget_bytes, cache_entries=c.entries,
                   hits=c.hits, misses=c.misses)
        return out

    def close(self) -> None:
        """Free every cached segment."""
        self.cache.clear()

    def _load(self, rec: Source, key: SegmentKey, foreground: bool) -> Future:
        """The load of `key`: the one in flight, or a new one. Never two loads of one segment."""
        with self._lock:
            flight = self._inflight.get(key)
            if flight is not None and foreground and flight.cancel():
                flight = None  # a queued prefetch: re-issue it ahead of the queue
            if flight is None:
                cached = self.cache.peek(key)
                if cached is not None:  # loaded while this caller waited for the lock
                    done: Future = Future()
                    done.set_result(cached)
                    return done
                flight = _Flight(self._submit(rec, key, foreground), not foreground, self._lock)
                self._inflight[key] = flight
                if flight.background:
                    self._counters["prefetches"] += 1
                flight.future.add_done_callback(lambda f, key=key, fl=flight: self._loaded(key, fl))
            elif foreground and flight.background:
                flight.background = False  # from now on nobody may cancel it
                self._counters["prefetch_hits"] += 1  # a prefetch under way serves this read
        return flight.future

    def _submit(self, rec: Source, key: SegmentKey, foreground: bool) -> Future:
        """Hand the decode to the pool, split by channels over the reader processes: the read a
        user waits for uses every core, and prefetches complete nearest first (segment N+1 is
        ready twice as soon as when each process decodes a whole segment of its own)."""
        req = ReadRequest(rec.path, rec.password, rec.engine, key.channels, key.k0, key.k1, key.dtype)
        small = (key.k1 - key.k0) * len(key.channels) < SPLIT_MIN_SAMPLES
        return self.pool.submit_split(req, 1 if small else self.config.n_process_workers, foreground=foreground)

    def _loaded(self, key: SegmentKey, flight: _Flight) -> None:
        fut = flight.future
        try:
            with self._lock:
                if fut.cancelled() or fut.exception() is not None:
                    return  # errors are never cached
                data = _array(fut.result())
                self._counters["decoded_samples"] += data.size
                if not self._is_open(key.path):
                    return  # closed while loading
                if flight.background:
                    self._prefetched.add(key)
            self._grow_budget(data.nbytes)
            self.cache.put(key, data)
        finally:
            # Only now: until the segment is in the cache, a reader must find this finished load.
            with self._lock:
                if self._inflight.get(key) is flight:
                    del self._inflight[key]

    def _grow_budget(self, segment_bytes: int) -> None:
        """Without CACHE_MB the budget follows the largest segment and the number of readers
        moving through recordings now, so concurrent readers' prefetches are not evicted unread."""
        if self.config.cache_mb <= 0:
            wanted = self.config.cache_budget_bytes(segment_bytes, self._readers())
            if wanted > self.cache.stats().budget_bytes:
                self.cache.resize(wanted)

    def _evicted(self, key: SegmentKey, _data: np.ndarray) -> None:
        # Memory returns to the OS when the last view of the array is gone (see pool.SharedArray).
        with self._lock:
            self._prefetched.discard(key)


#: Below this many samples a read is not split over processes (not worth the round trips).
SPLIT_MIN_SAMPLES = 1 << 20


def _array(result) -> np.ndarray:
    """The samples of a finished load: a pool result (SharedArray), or a cached array."""
    return result.array if isinstance(result, SharedArray) else result


