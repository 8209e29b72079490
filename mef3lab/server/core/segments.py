"""The segment store: each channel's samples of each segment decoded once, cached, prefetched.

What is cached. One entry per (recording, rate, channel, segment): that channel's int32
counts of the segment (``RAW_NAN`` in gaps), what the file holds. Every channel subset, in
any order, and every dtype is served from the same entries (`convert.gather` puts rows in
the caller's order and converts them on the way out), so a lab's clients reading their own
channels of one recording, or the legacy float64 API beside the own float32 one, never
decode or hold the same samples twice. Keys name their channel: a row can only ever be
served as the channel it was decoded for (the seed's swapped-rows bug cannot come back).
Entries hold no factor: a segment may span a change of conversion factor between MEF
segments, and the engine scales rows by the channel's `SessionInfo.factor_runs`.

Why one entry per channel rather than per channel *set* with subsets served from
supersets: a per-set cache decodes every new selection again (127× the recording under a
30-client mixed workload) and holds overlapping copies; per channel, memory tracks the
distinct samples held, and eviction frees exactly what it accounts for. Each entry owns
its memory without a copy: the reader processes decode every row onto pages of its own in
the pool's shared block, and an evicted row gives its pages back at once, whatever became
of its siblings (`SharedArray.take_rows`). Copying the rows out instead cost a cold read
~20 ms (64 fresh mappings and 20 MB copied while the reply was being sent).

How a read is served. A segment's cached channels are hit; channels another read or a
prefetch is already loading are joined (single flight per channel-segment, so two clients
asking overlapping subsets at once decode each channel once); the rest are decoded in ONE
pool request for all of them, split over the reader processes. Every miss is submitted
before any is waited for. Errors are never cached.

When a read's call ends before its data are ready (the client cancelled, or its deadline
passed: `cancel.current()`), the read stops waiting, and every load it started that no
other read waits for is stopped (`ReaderPool.abort`: its reader process is freed) and
forgotten, so a later read loads afresh. A load another read still waits for goes on, and
so does a prefetch a read joined: that is the prefetch's work, wanted by the reader who asked.

Lock order: the store's lock comes before the engine's. A load that finishes at once
runs its done-callback inside the store's lock, and that callback asks `is_open` (the
engine's lock) and `readers` (the prefetch tracker's lock); so the engine never calls
the store while it holds its own lock.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError as FutureCancelled
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from typing import Protocol

import numpy as np

from ...caching import ByteLRU
from ..config import ServerConfig
from ..pool import ReaderPool, ReadRequest
from . import cancel
from .prefetch import Cancellable


@dataclass(frozen=True)
class SegmentKey:
    """One channel's grid samples ``[k0, k1)`` of one segment: what is cached and loaded."""

    path: str
    fs: float
    channel: str
    k0: int
    k1: int


#: One segment's rows: channel name -> its int32 counts (read-only).
Rows = dict[str, np.ndarray]


class Source(Protocol):
    """What a load needs to know of the recording it decodes."""

    path: str
    password: str
    decoder: str


class _Flight:
    """One pool request loading some channels of one segment; `background` (a prefetch)
    until a foreground read joins it. `done` gets the rows once they are cached. `waiters`
    counts the foreground reads waiting for it; `abortable`: started by one (not a prefetch).
    """

    def __init__(
        self, keys: tuple[SegmentKey, ...], background: bool, lock: threading.RLock
    ) -> None:
        self.keys = keys
        self.background = background
        self.abortable = not background
        self.waiters = 0
        self.lock = lock
        self.done: Future = Future()
        self.load: Future | None = None

    def cancel(self) -> bool:
        """Cancel a queued prefetch, never a load that a foreground read is waiting for."""
        with self.lock:
            return self.background and self.load is not None and self.load.cancel()

    def row(self, channel: str, call: cancel.CallCancel | None) -> np.ndarray:
        if call is not None:
            call.wait_for(self.done)
        return self.done.result()[channel]


class _Handle:
    """A prefetch's handle for the prefetch tracker: it can cancel the flight while it is
    queued, without keeping the flight (and the rows it delivers) alive once it is done.
    """

    def __init__(self, flight: _Flight) -> None:
        self._flight = weakref.ref(flight)

    def cancel(self) -> bool:
        flight = self._flight()
        return flight is not None and flight.cancel()


class SegmentStore:
    """The byte-bounded channel-segment cache and the loads that fill it. Thread-safe.

    `is_open(path)` says whether a finished load may still be cached (its recording was
    not closed meanwhile); `readers()` counts readers moving through recordings now.
    """

    def __init__(
        self,
        config: ServerConfig,
        pool: ReaderPool,
        is_open: Callable[[str], bool],
        readers: Callable[[], int],
    ) -> None:
        self.config = config
        self.pool = pool
        budget = config.cache_budget_bytes(0) if config.cache_mb > 0 else 0
        self.cache: ByteLRU[SegmentKey, np.ndarray] = ByteLRU(
            budget, lambda a: a.nbytes, self._evicted
        )
        self._is_open = is_open
        self._readers = readers
        self._inflight: dict[SegmentKey, _Flight] = {}
        self._prefetched: set[SegmentKey] = set()
        self._lock = threading.RLock()
        self._counters = {
            "hits": 0,
            "misses": 0,
            "prefetches": 0,
            "prefetch_hits": 0,
            "decoded_samples": 0,
        }

    def get(
        self, rec: Source, fs: float, channels: Sequence[str], spans: Sequence[tuple[int, int]]
    ) -> list[Rows]:
        """The rows of `channels` for each segment ``[k0, k1)`` in `spans`, from the cache or
        from loads that fill it. Every load is submitted before any is waited for, so a long
        cold read keeps all reader processes busy. A segment counts as a hit when all its
        rows were cached, as a prefetch hit when a prefetch loaded (or is loading) any.
        """
        names = tuple(dict.fromkeys(channels))
        call = cancel.current()
        held: set[_Flight] = set()
        try:
            return self._get(rec, fs, names, spans, call, held)
        finally:
            self._release(held, aborted=call is not None and call.is_set)

    def _get(
        self,
        rec: Source,
        fs: float,
        names: tuple[str, ...],
        spans: Sequence[tuple[int, int]],
        call: cancel.CallCancel | None,
        held: set[_Flight],
    ) -> list[Rows]:
        waiting = []
        for k0, k1 in spans:
            keys = [SegmentKey(rec.path, fs, c, k0, k1) for c in names]
            rows = {k.channel: a for k in keys if (a := self.cache.get(k)) is not None}
            flights, joined = self._load(
                rec, [k for k in keys if k.channel not in rows], True, held
            )
            waiting.append((keys, rows, flights, joined))
        out = []
        for keys, rows, flights, joined in waiting:
            for key, flight in flights.items():
                while key.channel not in rows:
                    try:
                        rows[key.channel] = flight.row(key.channel, call)
                    except (
                        FutureCancelled
                    ):  # lost a race with a prefetch cancel: load it in the foreground
                        flight = self._load(rec, [key], True, held)[0][key]
            with self._lock:
                self._counters["misses" if flights else "hits"] += 1
                prefetched = self._prefetched.intersection(keys)
                self._prefetched.difference_update(prefetched)
                self._counters["prefetch_hits"] += bool(joined or prefetched)
            out.append(rows)
        return out

    def prefetch(
        self, rec: Source, fs: float, channels: Sequence[str], k0: int, k1: int
    ) -> Cancellable | None:
        """Queue a background load of the channels of segment ``[k0, k1)`` that are neither
        cached nor loading; None when there are none.
        """
        keys = [SegmentKey(rec.path, fs, c, k0, k1) for c in dict.fromkeys(channels)]
        with self._lock:
            missing = [k for k in keys if k not in self._inflight and k not in self.cache]
            return _Handle(self._start(rec, missing, foreground=False)) if missing else None

    def drop_recording(self, path: str) -> None:
        """Free the cached rows of `path` (its last client closed it)."""
        self.cache.drop(lambda k: k.path == path)

    def stats(self) -> dict[str, int]:
        c = self.cache.stats()
        with self._lock:
            out = dict(self._counters)
        out.update(cache_bytes=c.bytes, cache_budget_bytes=c.budget_bytes, cache_entries=c.entries)
        return out

    def close(self) -> None:
        """Free every cached row."""
        self.cache.clear()

    def _release(self, held: set[_Flight], aborted: bool) -> None:
        """A read stops waiting for `held`. When its call was `aborted`, the unfinished loads it
        started that nobody else waits for are stopped and forgotten (never cached).
        """
        stop = []
        with self._lock:
            for flight in held:
                flight.waiters -= 1
                if aborted and flight.abortable and not flight.waiters and not flight.done.done():
                    for key in flight.keys:
                        if self._inflight.get(key) is flight:
                            del self._inflight[key]
                    stop.append(flight)
        for flight in stop:  # outside the lock: aborting runs the load's done-callback
            if flight.load is not None:
                self.pool.abort(flight.load)

    def _load(
        self,
        rec: Source,
        keys: Sequence[SegmentKey],
        foreground: bool,
        held: set[_Flight] | None = None,
    ) -> tuple[dict[SegmentKey, _Flight], bool]:
        """The loads that deliver `keys`: those in flight, and one new one for the rest (never
        two loads of one channel-segment); and whether a prefetch under way serves any. A
        foreground caller's loads count it as a waiter and are added to `held`.
        """
        found: dict[SegmentKey, _Flight] = {}
        joined = False
        with self._lock:
            new = []
            for key in keys:
                flight = self._inflight.get(key)
                if flight is not None and foreground and flight.cancel():
                    flight = None  # a queued prefetch: re-issue it ahead of the queue
                if flight is not None:
                    if foreground and flight.background:
                        flight.background = False  # from now on nobody may cancel it
                        joined = True
                    found[key] = flight
                elif (
                    self.cache.peek(key) is not None
                ):  # loaded while this caller waited for the lock
                    flight = _Flight((key,), False, self._lock)
                    flight.done.set_result({key.channel: self.cache.peek(key)})
                    found[key] = flight
                else:
                    new.append(key)
            if new:
                flight = self._start(rec, new, foreground)
                found.update((k, flight) for k in new)
            if held is not None:
                for flight in set(found.values()) - held:
                    flight.waiters += 1
                    held.add(flight)
        return found, joined

    def _start(self, rec: Source, keys: Sequence[SegmentKey], foreground: bool) -> _Flight:
        """Submit one pool request for `keys` (channels of one segment); called under the lock."""
        flight = _Flight(tuple(keys), not foreground, self._lock)
        for key in keys:
            self._inflight[key] = flight
        if flight.background:
            self._counters["prefetches"] += 1
        flight.load = self._submit(rec, flight.keys, foreground)
        flight.load.add_done_callback(partial(self._loaded, weakref.ref(flight)))
        return flight

    def _submit(self, rec: Source, keys: tuple[SegmentKey, ...], foreground: bool) -> Future:
        """Hand the decode to the pool, split by channels over the reader processes: the read a
        user waits for uses every core, and prefetches complete nearest first (segment N+1 is
        ready twice as soon as when each process decodes a whole segment of its own).
        """
        k0, k1 = keys[0].k0, keys[0].k1
        req = ReadRequest(
            rec.path, rec.password, rec.decoder, tuple(k.channel for k in keys), k0, k1, "int32"
        )
        small = (k1 - k0) * len(keys) < SPLIT_MIN_SAMPLES
        return self.pool.submit_split(
            req, 1 if small else self.config.n_process_workers, foreground=foreground
        )

    def _loaded(self, ref: weakref.ref[_Flight], fut: Future) -> None:
        flight = ref()  # alive: `_inflight` holds it until the end of this call
        assert flight is not None
        try:
            if fut.cancelled():
                flight.done.cancel()
                return
            if fut.exception() is not None:
                flight.done.set_exception(fut.exception())  # errors are never cached
                return
            result = fut.result()
            with self._lock:
                self._counters["decoded_samples"] += result.array.size
                keep = self._is_open(flight.keys[0].path)  # not closed while loading
                if keep and flight.background:
                    self._prefetched.update(flight.keys)
            rows = dict(zip((k.channel for k in flight.keys), result.take_rows()))
            flight.done.set_result(rows)
            if keep:
                self._grow_budget(sum(a.nbytes for a in rows.values()))
                for key in flight.keys:
                    self.cache.put(key, rows[key.channel])
        finally:
            # Only now: until the rows are in the cache, a reader must find this finished load.
            with self._lock:
                for key in flight.keys:
                    if self._inflight.get(key) is flight:
                        del self._inflight[key]

    def _grow_budget(self, segment_bytes: int) -> None:
        """Without CACHE_MB the budget follows the largest load and the number of readers
        moving through recordings now, so concurrent readers' prefetches are not evicted unread.
        """
        if self.config.cache_mb <= 0:
            wanted = self.config.cache_budget_bytes(segment_bytes, self._readers())
            if wanted > self.cache.stats().budget_bytes:
                self.cache.resize(wanted)

    def _evicted(self, key: SegmentKey, _data: np.ndarray) -> None:
        with self._lock:
            self._prefetched.discard(key)


#: Below this many samples a read is not split over processes (not worth the round trips).
SPLIT_MIN_SAMPLES = 1 << 20
