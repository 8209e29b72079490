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
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import CancelledError as FutureCancelled
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from typing import Protocol

import numpy as np

from ...caching import ByteLRU
from ...model import SessionInfo
from ..config import ServerConfig
from ..pool import ReaderPool, ReadRequest
from . import cancel
from .grace import Grace
from .prefetch import Cancellable


@dataclass(frozen=True)
class SegmentKey:
    """One channel's grid samples ``[k0, k1)`` of one segment: what is cached and loaded.

    Keys name their channel, so a row can only ever be served as the channel it was
    decoded for, and the recording's `generation`, so a row of a recording written again
    since is never served as the new one's.
    """

    path: str
    fs: float
    channel: str
    k0: int
    k1: int
    generation: int = 0


#: One segment's rows: channel name -> its int32 counts (read-only).
Rows = dict[str, np.ndarray]


class Source(Protocol):
    """What a load needs to know of the recording it decodes."""

    path: str
    password: str
    decoder: str
    #: Which contents of the files: a recording written again on disk has a new generation.
    generation: int
    #: What it holds: the channels of each rate group (a segment of the budget is all of them).
    info: SessionInfo


class _Part:
    """Columns ``[a, b)`` of a flight's channels, decoded by one pool request.

    `done` gets the part's rows; `load` is the request (None: a part of a fill not sent
    yet), replaced when a foreground read hurries a queued background part (`promoting`
    while the old one is called off).
    """

    def __init__(self, a: int, b: int, foreground: bool) -> None:
        self.a, self.b = a, b
        self.foreground = foreground
        self.done: Future = Future()
        self.load: Future | None = None
        self.promoting = False
        self.rows: Rows | None = None  # set when its decode is in, before `done` (`_loaded`)


class _Flight:
    """The pool requests loading some channels of one segment.

    `background` (a prefetch) until a foreground read joins it. `done` gets the whole rows
    once they are cached. A cold read that wants part of a segment loads it in parts: its
    `head` (the columns it asked for, from a block's start, foreground) first, then the
    rest in smaller parts at prefetch priority (the fill), a few at a time from when the
    head's reply is sent, the part after the head going on where the head stopped
    (`stops`); a read waits only for the parts its window needs, and `done` gets the
    rows joined once every part is in. `waiters` counts the foreground reads waiting for
    it; `abortable`: started by one.
    """

    def __init__(
        self,
        keys: tuple[SegmentKey, ...],
        background: bool,
        lock: threading.RLock,
        parts: Sequence[_Part] = (),
    ) -> None:
        self.keys = keys
        self.background = background
        self.abortable = not background
        self.waiters = 0
        self.lock = lock
        self.done: Future = Future()
        self.parts = list(parts) or [_Part(keys[0].k0, keys[0].k1, not background)]
        self.joining = False  # every part is in: their rows are being joined and cached
        self.reader: Hashable | None = None  # who started it (see `SegmentStore.get`)
        self.segment_bytes = 0  # its whole segment's (`_segment_bytes`), what the budget counts
        self.rec: Source | None = None  # the recording, for the parts sent later
        self.filling = False  # its fill was started: each part that ends sends the next
        self.sending = False  # `SegmentStore._fill` is sending its parts
        self.stops: tuple = ()  # where the head's decoding stopped (`SharedArray.stops`)

    @property
    def head(self) -> _Part | None:
        """The part a cold read asked for, when the segment is loaded in parts."""
        return self.parts[0] if len(self.parts) > 1 and self.parts[0].foreground else None

    def cancel(self) -> bool:
        """Cancel a queued prefetch (all its parts, or none), never a load a read waits for."""
        with self.lock:
            loads = [p.load for p in self.parts]
            if not self.background or any(f is None or f.running() or f.done() for f in loads):
                return False
            return all([f.cancel() for f in loads])

    def needs(self, want: tuple[int, int]) -> list[_Part]:
        """The parts that hold columns `want` (at least one)."""
        hit = [p for p in self.parts if p.a < want[1] and p.b > want[0]]
        return hit or self.parts[:1]

    def rows(self, parts: list[_Part], call: cancel.CallCancel | None) -> tuple[int, Rows]:
        """(first grid sample, rows) of `parts`, adjacent columns in any order, once decoded."""
        for part in parts:
            if call is not None:
                call.wait_for(part.done)
        if len(parts) == 1:
            return parts[0].a, parts[0].done.result()
        first = min(p.a for p in parts)
        whole = len(parts) == len(self.parts) and self.done.done() and not self.done.cancelled()
        if whole and self.done.exception() is None:
            return first, self.done.result()  # joined once already, for the cache
        return first, _joined({p.a: p.done.result() for p in parts})


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
        ``is_open(path, generation)``: whether a finished load may still be cached (its
        recording was not closed, nor written again, meanwhile). Called inside the store's
        lock.
    readers : callable
        ``readers()``: how many readers move through recordings now (the budget grows
        with them when `cache_mb` is 0).
    """

    def __init__(
        self,
        config: ServerConfig,
        pool: ReaderPool,
        is_open: Callable[[str, int], bool],
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
        #: How many parts of a fill are sent at a time: one per reader process, and one queued.
        self._fill_ahead = pool.n_workers + 1
        self._grace = Grace(FILL_GRACE_S, "mef3lab-fill")  # when deferred fills start
        self._counters = {
            "hits": 0,
            "misses": 0,
            "prefetches": 0,
            "prefetch_hits": 0,
            "decoded_samples": 0,
        }

    def get(
        self,
        rec: Source,
        fs: float,
        channels: Sequence[str],
        spans: Sequence[tuple[int, int]],
        want: tuple[int, int] | None = None,
        bounds: Bounds | None = None,
        reader: Hashable | None = None,
        fills: list[Callable[[], None]] | None = None,
    ) -> list[Piece]:
        """The rows of some channels for each of some segments, from the cache or from loads.

        Every load is submitted before any is waited for, so a long cold read keeps all
        reader processes busy. A cold segment of which the read wants only some columns is
        loaded in parts: those columns first, from the start of the block that holds the
        first (the head), answered at once, then the rest of the segment (its fill) at
        prefetch priority, a few parts at a time (`bounds` says where a segment may be cut;
        the head ends where the columns do, and the part after it resumes the blocks the
        head stopped in). A segment counts as a hit when all
        its rows were cached, as a prefetch hit when a prefetch loaded (or is loading) any.
        When the RPC being handled ends first (`cancel.current`), the loads nobody else waits
        for are stopped.

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
        want : (int, int) or None
            The grid samples the read needs (None: the whole of every segment).
        bounds : callable or None
            ``bounds(k0, k1)``: the grid indices in ``[k0, k1]`` at which segment
            ``[k0, k1)`` may be cut without cutting a block, sorted, `k0` and `k1` among them
            (None: segments are always loaded whole).
        reader : hashable or None
            Who reads (a client): a new cold read in parts means it jumped, and calls off
            the fills behind its earlier ones that no read waits for (None: nothing).
        fills : list or None
            When given, the fills of this read's heads are not started: what starts each
            `FILL_GRACE_S` after it is called is appended, for the caller to call once its
            reply is sent. (A part a read needs is sent at once all the same, and the fills
            are started here if this raises.) None: they start at once.

        Returns
        -------
        list of Piece
            For each segment, (first grid sample, {channel name: its int32 counts,
            read-only}), covering at least the part of `want` in the segment.

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
            return self._get(rec, fs, names, spans, want, bounds, call, held, reader, fills)
        except BaseException:
            for start in fills or ():  # no reply will be sent to start them after
                start()
            if fills:
                fills.clear()
            raise
        finally:
            self._release(held, aborted=call is not None and call.is_set)

    def _get(
        self,
        rec: Source,
        fs: float,
        names: tuple[str, ...],
        spans: Sequence[tuple[int, int]],
        want: tuple[int, int] | None,
        bounds: Bounds | None,
        call: cancel.CallCancel | None,
        held: set[_Flight],
        reader: Hashable | None = None,
        fills: list[Callable[[], None]] | None = None,
    ) -> list[Piece]:
        waiting = []
        for k0, k1 in spans:
            keys = [SegmentKey(rec.path, fs, c, k0, k1, rec.generation) for c in names]
            rows = {k.channel: a for k in keys if (a := self.cache.get(k)) is not None}
            missing = [k for k in keys if k.channel not in rows]
            cols = (k0, k1) if want is None else (max(want[0], k0), min(want[1], k1))
            cuts = None
            big = len(missing) * (k1 - k0) >= PARTIAL_MIN_SAMPLES
            if big and bounds is not None and cols != (k0, k1):
                cuts = _parts(bounds(k0, k1), cols, len(missing))
            flights, joined = self._load(rec, missing, True, held, cuts, reader, fills)
            waiting.append((keys, cols, rows, flights, joined))
        out = []
        for keys, cols, rows, flights, joined in waiting:
            starts: dict[str, int] = {}
            got_from: dict[int, tuple[int, Rows]] = {}
            for key, flight in flights.items():
                while key.channel not in rows:
                    try:
                        if id(flight) not in got_from:
                            parts = flight.needs(cols)
                            self._hurry(rec, flight, parts)
                            got_from[id(flight)] = flight.rows(parts, call)
                        start, got = got_from[id(flight)]
                        rows[key.channel], starts[key.channel] = got[key.channel], start
                    except FutureCancelled:
                        # Lost a race with a cancel: load it in the foreground.
                        got_from.pop(id(flight), None)
                        flight = self._load(rec, [key], True, held)[0][key]
            with self._lock:
                self._counters["misses" if flights else "hits"] += 1
                prefetched = self._prefetched.intersection(keys)
                self._prefetched.difference_update(prefetched)
                self._counters["prefetch_hits"] += bool(joined or prefetched)
            out.append(_one_piece(keys[0].k0, rows, starts))
        return out

    def prefetch(
        self,
        rec: Source,
        fs: float,
        channels: Sequence[str],
        k0: int,
        k1: int,
        bounds: Bounds | None = None,
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
        bounds : callable or None
            As for `get`: a large segment is loaded in parts cut there, so that a
            foreground read never waits long for a reader process busy with it.

        Returns
        -------
        Cancellable or None
            What cancels the load while it is queued; None when nothing needed loading.
        """
        keys = [
            SegmentKey(rec.path, fs, c, k0, k1, rec.generation) for c in dict.fromkeys(channels)
        ]
        edges = None
        if bounds is not None and len(keys) * (k1 - k0) >= 2 * PREFETCH_PART_SAMPLES:
            edges = bounds(k0, k1)  # not under the lock: it may wait for a reader process
        with self._lock:
            missing = [k for k in keys if k not in self._inflight and k not in self.cache]
            if not missing:
                return None
            cuts = None
            if edges is not None and len(missing) * (k1 - k0) >= 2 * PREFETCH_PART_SAMPLES:
                cuts = _tiles(edges, k0, k1, PREFETCH_PART_SAMPLES // len(missing))
            return _Handle(self._start(rec, missing, False, cuts))

    def drop_recording(self, path: str, before: int | None = None) -> None:
        """Free the cached rows of `path` (its last client closed it, or it was written again).

        The fills after a cold read's first part that have not started are called off, so
        the segment is never cached (loads that finish after this are not cached either).

        Parameters
        ----------
        path : str
            The recording.
        before : int or None
            Only the rows of generations before this one (None: every generation).
        """

        def gone(k: SegmentKey) -> bool:
            return k.path == path and (before is None or k.generation < before)

        with self._lock:
            flights = {f for k, f in self._inflight.items() if gone(k) and f.head}
            for flight in flights:
                self._stop_fill(flight, flight.parts[1:])
        self.cache.drop(gone)

    def _call_off_fills(self, path: str, reader: Hashable) -> None:
        """Call off the queued parts of `reader`'s fills of `path` that no read waits for.

        A new cold read in parts means its reader has jumped: the fill behind its previous
        one would only compete with it for the reader processes. A fill called off caches
        nothing (as after a close); its parts already running finish, and a read that comes
        back there is a cold read again. Other readers' fills go on.
        """
        with self._lock:
            fills = {
                f
                for k, f in self._inflight.items()
                if k.path == path and f.head is not None and f.reader == reader and not f.waiters
            }
            for flight in fills:  # the parts a read hurried are its own now
                self._stop_fill(flight, [p for p in flight.parts[1:] if not p.foreground])

    def stats(self) -> dict[str, int]:
        """Hits, misses, prefetches, prefetch hits, decoded samples and the cache's size."""
        c = self.cache.stats()
        with self._lock:
            out = dict(self._counters)
        out.update(cache_bytes=c.bytes, cache_budget_bytes=c.budget_bytes, cache_entries=c.entries)
        return out

    def close(self) -> None:
        """Free every cached row; start no more fills."""
        self._grace.close()
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
            self.pool.abort(flight.parts[0].load)
            self._stop_fill(flight, flight.parts[1:])  # a fill after the head, like a prefetch

    def _load(
        self,
        rec: Source,
        keys: Sequence[SegmentKey],
        foreground: bool,
        held: set[_Flight] | None = None,
        cuts: list[tuple[int, int]] | None = None,
        reader: Hashable | None = None,
        fills: list[Callable[[], None]] | None = None,
    ) -> tuple[dict[SegmentKey, _Flight], bool]:
        """The loads that deliver `keys`, and whether a prefetch under way serves any.

        Those in flight, and one new one for the rest (never two loads of one
        channel-segment), in parts when `cuts` are given (the head first). A foreground
        caller's loads count it as a waiter and are added to `held`. A new flight's fill
        starts at once, or is appended to `fills` (see `get`).
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
                    flight.parts[0].done.set_result(flight.done.result())
                    found[key] = flight
                else:
                    new.append(key)
            if new:
                if cuts is not None and reader is not None:  # a cold read in parts: a jump
                    self._call_off_fills(rec.path, reader)
                flight = self._start(rec, new, foreground, cuts, fills)
                flight.reader = reader
                found.update((k, flight) for k in new)
            if held is not None:
                for flight in set(found.values()) - held:
                    flight.waiters += 1
                    held.add(flight)
        return found, joined

    def _start(
        self,
        rec: Source,
        keys: Sequence[SegmentKey],
        foreground: bool,
        cuts: list[tuple[int, int]] | None = None,
        fills: list[Callable[[], None]] | None = None,
    ) -> _Flight:
        """Submit the pool requests for `keys` (channels of one segment); called under the lock.

        One request for the whole segment, or one per part of `cuts`: for a foreground load
        the first (the head) in the foreground, the others (its fill) in the background, a
        few at a time from when the fill starts: at once, or when the caller calls what
        this appends to `fills`.
        """
        parts = [_Part(a, b, foreground and i == 0) for i, (a, b) in enumerate(cuts or ())]
        flight = _Flight(tuple(keys), not foreground, self._lock, parts)
        flight.segment_bytes = _segment_bytes(rec.info, keys[0])
        flight.rec = rec
        for key in keys:
            self._inflight[key] = flight
        if flight.background:
            self._counters["prefetches"] += 1
        if flight.head is None:
            for part in flight.parts:
                self._send(rec, flight, part)
            return flight
        self._send(rec, flight, flight.head)
        if fills is None:
            self._fill(flight)
        else:
            fills.append(partial(self._grace.call_later, partial(self._fill, flight)))
        return flight

    def _fill(self, flight: _Flight) -> None:
        """Start or go on with the fill after a flight's head: keep `_fill_ahead` parts sent.

        Each part that ends calls this again (`_loaded`). Parts a read hurried count among
        those sent; a fill called off sends nothing more.
        """
        with self._lock:
            flight.filling = True
            if flight.sending:  # a pool without processes decodes as it is sent: the loop
                return  # below sends the next one
            flight.sending = True
            try:
                while not flight.done.done():
                    fill = flight.parts[1:]
                    sent = sum(p.load is not None and not p.load.done() for p in fill)
                    # the part after the head goes on where the head stops: not before it did
                    head_done = flight.parts[0].done.done()
                    waiting = [p for p in fill if p.load is None]
                    nxt = next((p for p in waiting if head_done or not _after(flight, p)), None)
                    if nxt is None or sent >= self._fill_ahead:
                        return
                    self._send(flight.rec, flight, nxt)
            finally:
                flight.sending = False

    def _stop_fill(self, flight: _Flight, parts: Sequence[_Part]) -> None:
        """Call off `parts` of a fill: those queued are cancelled, those not sent never sent.

        A flight with parts that will never come is over (never cached); the parts running
        finish for the reads that wait for them.
        """
        with self._lock:
            unsent = [p for p in parts if p.load is None]
            for part in parts:
                if part.load is not None:
                    part.load.cancel()  # when queued; its done-callback ends the flight
            for part in unsent:
                part.done.cancel()
            if unsent and not flight.done.done():
                flight.done.cancel()
                self._forget(flight)

    def _send(self, rec: Source, flight: _Flight, part: _Part) -> None:
        """Hand a part's decode to the pool; called under the lock.

        The part that starts where the head ended goes on in the blocks the head stopped in,
        once the head is decoded (before, it decodes them from their start).
        """
        resume = flight.stops if _after(flight, part) else ()
        part.load = self._submit(rec, flight.keys, part.a, part.b, part.foreground, resume)
        # Weak references only: a strong one from the load's callback back to its part would
        # make a cycle, and the rows would wait for the garbage collector after a close.
        part.load.add_done_callback(partial(self._loaded, weakref.ref(flight), weakref.ref(part)))

    def _hurry(self, rec: Source, flight: _Flight, parts: list[_Part]) -> None:
        """Move queued background parts a foreground read waits for ahead of the queue."""
        with self._lock:
            for part in parts:
                if part.foreground or flight.done.done():
                    continue
                if part.load is None:  # a part of a fill not sent yet: send it now
                    part.foreground = True
                    self._send(rec, flight, part)
                    continue
                part.promoting = True
                if part.load.cancel():  # still queued: decode it in the foreground now
                    part.foreground = True
                    self._send(rec, flight, part)
                part.promoting = False

    def _submit(
        self,
        rec: Source,
        keys: tuple[SegmentKey, ...],
        k0: int,
        k1: int,
        foreground: bool,
        resume: tuple = (),
    ) -> Future:
        """Hand the decode of columns ``[k0, k1)`` to the pool, split by channels.

        The read a user waits for uses every core, and prefetches complete nearest first
        (segment N+1 is ready sooner than if each process decoded a whole segment of its own).
        `resume`: where an earlier part's decoding stopped (`ReadRequest.resume`).
        """
        names = tuple(k.channel for k in keys)
        req = ReadRequest(rec.path, rec.password, rec.decoder, names, k0, k1, "int32", resume)
        samples = (k1 - k0) * len(keys)
        if foreground:
            ways = 1 if samples < FOREGROUND_SPLIT_MIN_SAMPLES else self.config.n_process_workers
        else:  # in jobs a read that comes meanwhile waits for only briefly
            ways = -(-samples // BACKGROUND_JOB_SAMPLES)
        return self.pool.submit_split(req, ways, foreground=foreground)

    def _loaded(self, ref: weakref.ref[_Flight], part_ref: weakref.ref[_Part], fut: Future) -> None:
        """A part's request ended; the last part caches the joined rows."""
        flight = ref()  # alive while `_inflight` holds it, until the flight ends
        part = part_ref()  # alive while its flight is
        if flight is None or part is None or fut is not part.load or part.promoting:
            # A flight that failed and was forgotten, or a request replaced by a hurried one.
            if not fut.cancelled() and fut.exception() is None:
                fut.result().release()
            return
        if fut.cancelled() or fut.exception() is not None:
            self._failed(flight, part, fut)
            return
        result = fut.result()
        size = result.array.size
        if part is flight.parts[0]:
            flight.stops = result.stops  # for the part after it (`_send`)
        # The rows of a segment loaded in parts are joined into new ones: views will do.
        rows = result.take_rows(separately=len(flight.parts) == 1)
        part.rows = dict(zip((k.channel for k in flight.keys), rows, strict=True))
        with self._lock:
            self._counters["decoded_samples"] += size
            # the last part to arrive joins them (unless another part failed)
            last = (
                not flight.done.done()
                and not flight.joining
                and all(p.rows is not None for p in flight.parts)
            )
            flight.joining = flight.joining or last
        if not last:
            part.done.set_result(part.rows)
            if flight.filling:
                self._fill(flight)  # the next part of the fill, in this part's place
            return
        try:
            whole = _joined({p.a: p.rows for p in flight.parts})
            with self._lock:
                first = flight.keys[0]  # not closed, nor written again, while loading
                keep = self._is_open(first.path, first.generation)
                if keep and flight.background:
                    self._prefetched.update(flight.keys)
            # cached before the reads waiting for it answer: a client that reads again, or
            # asks for the counters, after its reply finds the cache as its read left it
            if keep:
                self._grow_budget(flight.segment_bytes)
                for key in flight.keys:
                    self.cache.put(key, whole[key.channel])
            flight.done.set_result(whole)  # first: a read of every part takes it (`rows`)
            part.done.set_result(part.rows)
        except BaseException as e:  # the reads waiting for it fail with it, never hang
            for fut in (part.done, flight.done):
                if not fut.done():
                    _settle(fut, e)
            raise
        finally:
            # Only now: until the rows are in the cache, a reader must find this finished load.
            self._forget(flight)

    def _failed(self, flight: _Flight, part: _Part, fut: Future) -> None:
        """A part was cancelled or failed: so is the flight (errors are never cached).

        A failed head calls off the parts after it while they are queued; a failed part
        after the head leaves the head to answer its read.
        """
        error = None if fut.cancelled() else fut.exception()
        with self._lock:
            _settle(part.done, error)
            if flight.done.done():
                return
            _settle(flight.done, error)
            for other in flight.parts:
                if other.load is None:  # never sent now: a read that wanted it loads anew
                    other.done.cancel()
        self._forget(flight)
        if part is flight.head:
            for other in flight.parts[1:]:
                if other.load is not None:
                    other.load.cancel()

    def _forget(self, flight: _Flight) -> None:
        with self._lock:
            for key in flight.keys:
                if self._inflight.get(key) is flight:
                    del self._inflight[key]

    def _grow_budget(self, segment_bytes: int) -> None:
        """Without CACHE_MB, grow the budget with the largest segment and the readers moving now.

        A segment counts with all its rate group's channels (`_segment_bytes`). So
        concurrent readers' prefetches are not evicted unread.
        """
        if self.config.cache_mb <= 0:
            wanted = self.config.cache_budget_bytes(segment_bytes, self._readers())
            if wanted > self.cache.stats().budget_bytes:
                self.cache.resize(wanted)

    def _evicted(self, key: SegmentKey, _data: np.ndarray) -> None:
        with self._lock:
            self._prefetched.discard(key)


#: The most samples (all its channels) one job of a background load decodes: the job
#: a reader process is busy with when a read comes is what that read may wait for.
BACKGROUND_JOB_SAMPLES = 1 << 18

#: Below this many samples a load a read waits for is not split over processes. A page's
#: blocks are split from a few milliseconds of decoding on (a 1-s page of 16 channels at
#: 8 kHz is one block each, 128,000 samples): the reply comes sooner, and no process is left
#: to start a background part beside them.
FOREGROUND_SPLIT_MIN_SAMPLES = 1 << 16

#: Below this many samples (all its channels) a cold segment is loaded whole, not in parts.
PARTIAL_MIN_SAMPLES = 1 << 18


#: ``bounds(k0, k1)``: where segment ``[k0, k1)`` may be cut without cutting a block.
Bounds = Callable[[int, int], np.ndarray]

#: The most samples (all channels) of one part of a fill after a cold read's head, unless
#: a single block of each channel holds more: a read that comes while a reader process
#: decodes one waits for a few milliseconds at most, and one that needs a part not yet
#: decoded decodes little more than it asked for.
FILL_PART_SAMPLES = 1 << 17

#: Seconds after a cold read's reply was sent before the fill behind its head starts
#: (when the caller defers it, as a server does). A reader that jumps on at once calls it
#: off before it began: neither the next read's decode nor its reply waits for a reader
#: process busy with a fill nobody will read. A read that needs a part of it sends that
#: part at once.
FILL_GRACE_S = 0.1

#: A prefetch of at least twice this many samples (all channels) is loaded in parts of
#: about this many, for the same reason.
PREFETCH_PART_SAMPLES = 1 << 21

#: (first grid sample, rows): one segment's rows as a read gets them.
Piece = tuple[int, Rows]


def _parts(
    bounds: np.ndarray, want: tuple[int, int], n_channels: int
) -> list[tuple[int, int]] | None:
    """A segment's parts: the head (`want`, from its first block's start), then the rest.

    `bounds` are the segment's cut points (its ends among them). The head ends where `want`
    does: the part after it goes on in the blocks it stopped in (`SegmentStore._send`). The
    rest is cut into parts of at most `FILL_PART_SAMPLES` (or one block), after the head
    first. None when the head is the whole segment.
    """
    k0, k1 = int(bounds[0]), int(bounds[-1])
    a = int(bounds[np.searchsorted(bounds, want[0], side="right") - 1])
    b = max(a + 1, min(int(want[1]), k1))
    if (a, b) == (k0, k1):
        return None
    step = FILL_PART_SAMPLES // max(1, n_channels)
    return [(a, b), *_tiles(bounds, b, k1, step), *_tiles(bounds, k0, a, step)]


def _tiles(bounds: np.ndarray, lo: int, hi: int, step: int) -> list[tuple[int, int]]:
    """``[lo, hi)`` in consecutive parts of at most `step` columns, cut only at `bounds`.

    A part holds one block at least: a block longer than `step` is a part of its own.
    """
    out = []
    while lo < hi:
        j = int(np.searchsorted(bounds, lo + max(1, step), side="right")) - 1  # the last cut
        if j < 0 or bounds[j] <= lo:  # within `step`; none: the first cut after `lo`
            j = int(np.searchsorted(bounds, lo, side="right"))
        nxt = hi if j >= len(bounds) else min(hi, int(bounds[j]))
        out.append((lo, nxt))
        lo = nxt
    return out


def _after(flight: _Flight, part: _Part) -> bool:
    """Whether `part` starts where the flight's first part (its head) ends."""
    return part is not flight.parts[0] and part.a == flight.parts[0].b


def _segment_bytes(info: SessionInfo, key: SegmentKey) -> int:
    """The bytes of `key`'s whole segment: every channel of its rate group, as int32 counts.

    What the budget counts a segment as, however few channels a load decodes: clients that
    read a channel each would otherwise keep the cache at a few rows, and decode again and
    again what they read a moment ago.
    """
    width = next(len(g.channels) for g in info.rate_groups if g.fs == key.fs)
    return width * (key.k1 - key.k0) * np.dtype(np.int32).itemsize


def _settle(fut: Future, error: BaseException | None) -> None:
    """End a future that will get no rows: with `error`, else cancelled."""
    if error is None:
        fut.cancel()
    else:
        fut.set_exception(error)


def _joined(pieces: dict[int, Rows]) -> Rows:
    """The rows of consecutive parts (by first column), each channel's joined in column order."""
    order = [pieces[s] for s in sorted(pieces)]
    if len(order) == 1:
        return order[0]
    out = {}
    for channel in order[0]:
        row = np.concatenate([p[channel] for p in order])
        row.flags.writeable = False
        out[channel] = row
    return out


def _one_piece(k0: int, rows: Rows, starts: dict[str, int]) -> Piece:
    """One segment's rows as one piece: cut to the columns they all hold.

    Rows of a segment loaded in parts may start at its head (`starts`), the others at `k0`.
    """
    if all(s == k0 for s in starts.values()):
        return k0, rows
    first = {c: starts.get(c, k0) for c in rows}
    a = max(first.values())
    b = min(first[c] + len(r) for c, r in rows.items())
    return a, {c: r[a - first[c] : b - first[c]] for c, r in rows.items()}
