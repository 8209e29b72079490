"""The segment store: each channel's samples of each segment decoded once, cached, prefetched.

One cache entry per (recording, rate, channel, segment) holds that channel's int32 counts,
so every channel subset and every dtype is served from the same entries. A read hits
what is cached, joins what is loading, and decodes the rest in one pool request split
over the reader processes; a read whose call ends stops the loads nobody else waits for.
What is cached and why, how a read is served, and the lock order: docs/server.md
("Segments and the cache").
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
    """One channel's grid samples ``[k0, k1)`` of one segment: what is cached and loaded.

    Keys name their channel, so a row can only ever be served as the channel it was
    decoded for.
    """

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
    """One pool request loading some channels of one segment.

    `background` (a prefetch) until a foreground read joins it. `done` gets the rows once
    they are cached. `waiters` counts the foreground reads waiting for it; `abortable`:
    started by one (not a prefetch).
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
    """A prefetch's handle for the prefetch tracker.

    It can cancel the flight while it is queued, without keeping the flight (and the rows
    it delivers) alive once it is done.
    """

    def __init__(self, flight: _Flight) -> None:
        self._flight = weakref.ref(flight)

    def cancel(self) -> bool:
        flight = self._flight()
        return flight is not None and flight.cancel()


class SegmentStore:
    """The byte-bounded channel-segment cache and the loads that fill it. Thread-safe.

    Parameters
    ----------
    config : ServerConfig
        The cache budget (`cache_mb`, or a budget that grows with the loads), and the
        number of reader processes a load is split over.
    pool : ReaderPool
        Where segments are decoded.
    is_open : callable
        ``is_open(path)``: whether a finished load may still be cached (its recording was
        not closed meanwhile). Called inside the store's lock.
    readers : callable
        ``readers()``: how many readers move through recordings now (the budget grows
        with them when `cache_mb` is 0).
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
        """The rows of some channels for each of some segments, from the cache or from loads.

        Every load is submitted before any is waited for, so a long cold read keeps all
        reader processes busy. A segment counts as a hit when all its rows were cached, as
        a prefetch hit when a prefetch loaded (or is loading) any. When the RPC being
        handled ends first (`cancel.current`), the loads nobody else waits for are stopped.

        Parameters
        ----------
        rec : Source
            The recording (path, password, decoder).
        fs : float
            The channels' rate.
        channels : sequence of str
            The channels (a name may repeat).
        spans : sequence of (int, int)
            Each segment's grid samples ``[k0, k1)``.

        Returns
        -------
        list of Rows
            For each segment, channel name -> its int32 counts (read-only).

        Raises
        ------
        mef3lab.errors.CancelledError
            When the call ended before the data were read.
        Exception
            Whatever the decode raised (errors are never cached).
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
                    except FutureCancelled:
                        # Lost a race with a prefetch cancel: load it in the foreground.
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
        """Queue a background load of the channels of a segment that are neither cached nor loading.

        Parameters
        ----------
        rec : Source
            The recording.
        fs : float
            The channels' rate.
        channels : sequence of str
            The channels.
        k0, k1 : int
            The segment's grid samples ``[k0, k1)``.

        Returns
        -------
        Cancellable or None
            What cancels the load while it is queued; None when nothing needed loading.
        """
        keys = [SegmentKey(rec.path, fs, c, k0, k1) for c in dict.fromkeys(channels)]
        with self._lock:
            missing = [k for k in keys if k not in self._inflight and k not in self.cache]
            return _Handle(self._start(rec, missing, foreground=False)) if missing else None

    def drop_recording(self, path: str) -> None:
        """Free the cached rows of `path` (its last client closed it)."""
        self.cache.drop(lambda k: k.path == path)

    def stats(self) -> dict[str, int]:
        """Hits, misses, prefetches, prefetch hits, decoded samples and the cache's size."""
        c = self.cache.stats()
        with self._lock:
            out = dict(self._counters)
        out.update(cache_bytes=c.bytes, cache_budget_bytes=c.budget_bytes, cache_entries=c.entries)
        return out

    def close(self) -> None:
        """Free every cached row."""
        self.cache.clear()

    def _release(self, held: set[_Flight], aborted: bool) -> None:
        """A read stops waiting for `held`.

        When its call was `aborted`, the unfinished loads it started that nobody else waits
        for are stopped and forgotten (never cached).
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
        """The loads that deliver `keys`, and whether a prefetch under way serves any.

        Those in flight, and one new one for the rest (never two loads of one
        channel-segment). A foreground caller's loads count it as a waiter and are added
        to `held`.
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
                elif self.cache.peek(key) is not None:
                    # Loaded while this caller waited for the lock.
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
        """Hand the decode to the pool, split by channels over the reader processes.

        The read a user waits for uses every core, and prefetches complete nearest first
        (segment N+1 is ready sooner than if each process decoded a whole segment of its own).
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
            rows = dict(zip((k.channel for k in flight.keys), result.take_rows(), strict=True))
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
        """Without CACHE_MB, grow the budget with the largest load and the readers moving now.

        So concurrent readers' prefetches are not evicted unread.
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
