"""The server's engine: open recordings, per-client views, and windows cut from segments.

Every service (mef3lab's own API, the lab's compatibility API) calls only this.
A read is cut into segments of the client's grid, which the `SegmentStore` serves from
its cache or loads; then the next segments in the reader's direction are queued there
in the background.

Per-client state (segment size, channel selection, open recordings) lives in
`ClientView`s keyed by client id, so one client's settings never change another's
reads. The store caches each channel's int32 counts per segment; a read is a window over
them, rows in the caller's order, converted to the dtype asked for on the way out (`convert`).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field, replace
from functools import cached_property, partial
from typing import Callable, Iterator, Sequence

import numpy as np

from ..errors import NotOpenError, ReadTooLargeError, SegmentIndexError, TimeRangeError, TooManyOpenError
from ..readers.base import SAMPLE_TYPES, RateGroup, SessionInfo
from .config import ServerConfig
from .convert import Window, array_blocks, array_pieces
from .decimate import bin_starts
from .pool import ReaderPool
from .prefetch import PrefetchTracker, Readahead
from .segments import SegmentStore

log = logging.getLogger(__name__)

#: Shorter segments would cost a reader-process round trip per few samples.
MIN_SEGMENT_SECONDS = 1.0


@dataclass(frozen=True)
class Samples:
    """A block of samples on a rate group's grid, rows in the caller's channel order.

    A read's `source` is a `Window` over cached counts, converted to `dtype` as the reply is
    sent (`pieces`, `blocks`); computed values (an envelope) are an array already."""

    source: Window | np.ndarray
    channels: tuple[str, ...]
    group: RateGroup
    start_index: int
    dtype: str = "float32"
    factors: np.ndarray | None = None  # each row's conversion factor, for int32 counts
    #: The background loads this read asks for, when the caller starts them (`defer_prefetch`).
    deferred_prefetch: Callable[[], None] | None = field(default=None, compare=False, repr=False)

    @cached_property
    def data(self) -> np.ndarray:
        """All of it as one array of `dtype` (a window is converted when first asked)."""
        return self.source.array(self.dtype) if isinstance(self.source, Window) else self.source

    @property
    def shape(self) -> tuple[int, ...]:
        return self.source.shape

    def pieces(self, max_bytes: int) -> Iterator[bytes]:
        """The bytes of `data` in C order, in consecutive pieces of at most `max_bytes`."""
        if isinstance(self.source, Window):
            return self.source.pieces(self.dtype, max_bytes)
        return array_pieces(self.source, max_bytes)

    def blocks(self, max_bytes: int) -> Iterator[tuple[int, int, np.ndarray]]:
        """Column blocks ``(a, b, values)`` of at most `max_bytes` (see `Window.blocks`)."""
        if isinstance(self.source, Window):
            return self.source.blocks(self.dtype, max_bytes)
        return array_blocks(self.source, max_bytes)

    def start_prefetch(self) -> None:
        """Start the deferred background loads, if any (once the reply is on its way)."""
        if self.deferred_prefetch is not None:
            self.deferred_prefetch()

    @property
    def first_sample_uutc(self) -> int:
        return self.group.grid.uutc_of(self.start_index)

    @property
    def end_uutc(self) -> int:
        """Time just past the last sample."""
        return self.group.grid.uutc_of(self.start_index + self.shape[-1])


@dataclass
class Recording:
    """A recording open on the server (shared by every client that opened it)."""

    path: str
    password: str
    engine: str
    info: SessionInfo
    clients: set[str] = field(default_factory=set)


@dataclass
class ClientView:
    """One client's settings for one recording."""

    segment_seconds: float | None = None  # None: the server's default (see `Engine.segment_grid`)
    channels: tuple[str, ...] | None = None  # selection used when a read names none


class Engine:
    """Recordings, clients, segment store, prefetch and pool, tied together. Thread-safe.

    The engine's lock guards recordings, views and last-seen times. It is taken inside the
    store's lock (see `segments`), so the engine never calls the store while holding it."""

    def __init__(self, config: ServerConfig | None = None, pool: ReaderPool | None = None,
                 resolve: Callable[[str, str], str] | None = None) -> None:
        self.config = config or ServerConfig()
        #: (client, path as the client wrote it) -> the recording's key; may refuse (served roots).
        self._resolve = resolve or (lambda client, path: canonical_path(path))
        self.pool = pool or pool_for(self.config)
        self.prefetch = PrefetchTracker(Readahead(self.config.n_prefetch))
        self.segments = SegmentStore(self.config, self.pool, self._is_open, self.prefetch.active)
        self._recordings: dict[str, Recording] = {}
        self._views: dict[tuple[str, str], ClientView] = {}
        self._opening: set[tuple[str, str]] = set()  # (client, key) opens under way: they hold a place
        self._lock = threading.RLock()
        self._last_seen: dict[str, float] = {}
        self._stopping = threading.Event()
        self._janitor = threading.Thread(target=self._expire_loop, name="mef3lab-janitor", daemon=True)
        self._janitor.start()

    # -- recordings and clients -----------------------------------------------------------
    def open(self, client: str, path: str, password: str | None = None, engine: str | None = None) -> SessionInfo:
        """Open `path` for `client` (a second client, or a second open, is a normal open)."""
        key = self.resolve(client, path)
        password = password or ""
        with self._lock:
            rec = self._recordings.get(key)
            reserved = self._reserve(client, key)
        try:
            return self._open(client, key, password, engine, rec)
        finally:
            if reserved:
                with self._lock:
                    self._opening.discard((client, key))

    def _open(self, client: str, key: str, password: str, engine: str | None, rec: Recording | None) -> SessionInfo:
        if rec is None:
            engine = engine or self.config.engine
            # Every worker starts opening it now, beside the one that answers `info`: the first
            # (split) read needs them all, and one still opening made it 60-70 ms slower.
            self.pool.preopen(key, password, engine)
            info = self.pool.info(key, password, engine)
            with self._lock:
                rec = self._recordings.setdefault(key, Recording(key, password, engine, info))
        elif rec.info.encrypted and password != rec.password:
            self.pool.info(key, password, rec.engine)  # this client must prove its own password
        with self._lock:
            rec.clients.add(client)
            self._views.setdefault((client, key), ClientView())
            self._last_seen[client] = time.monotonic()
        return rec.info

    def _reserve(self, client: str, key: str) -> bool:
        """Check the open limits and hold a place for this open (called under the lock, so two
        opens at once cannot both take the last place); False when it needs none (re-opening).

        Refuses an open beyond `max_open_per_client` or `max_open_total`; opens under way count."""
        if (client, key) in self._views or (client, key) in self._opening:
            return False
        mine = sum(1 for c, _ in self._views if c == client) + sum(1 for c, _ in self._opening if c == client)
        per_client, total = self.config.max_open_per_client, self.config.max_open_total
        if per_client and mine >= per_client:
            raise TooManyOpenError(f"this client has {mine} recordings open, the server's limit; close one "
                                   "(Mef3Client.close_file) before opening another")
        held = set(self._recordings) | {k for _, k in self._opening}
        if total and key not in held and len(held) >= total:
            raise TooManyOpenError(f"the server has {len(held)} recordings open, its limit; "
                                   "try again when others have closed theirs")
        self._opening.add((client, key))
        return True

    def close(self, client: str, path: str) -> bool:
        """Close `path` for `client`; the last client out frees its cache entries and readers."""
        key = self.resolve(client, path)
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
            self.segments.drop_recording(key)
            self.pool.close_recording(key)
        return True

    def recordings(self) -> list[Recording]:
        """Every open recording (a snapshot, for status pages: its client sets are copies, since
        opens and closes change them while a page is being made)."""
        with self._lock:
            return [replace(r, clients=set(r.clients)) for r in self._recordings.values()]

    def list_open(self, client: str) -> list[str]:
        with self._lock:
            return sorted(p for (c, p) in self._views if c == client)

    def info(self, client: str, path: str) -> SessionInfo:
        return self._open_view(client, path)[0].info

    def resolve(self, client: str, path: str) -> str:
        """The key of the recording `client` means by `path` (refused when the server does not serve it)."""
        return self._resolve(client, path)

    def recording_engine(self, client: str, path: str) -> str:
        """The decoding engine serving `path` ("" when it is not open)."""
        with self._lock:
            rec = self._recordings.get(self.resolve(client, path))
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
        """The segment size this client's reads use: its own, else the server's default as the
        rate groups use it (the shortest group's where wide, fast groups were shortened)."""
        rec, view = self._open_view(client, path)
        if view.segment_seconds is not None:
            return view.segment_seconds
        return min(self.segment_grid(client, path, g)[0] / g.fs for g in rec.info.rate_groups)

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
        """(samples per segment, number of segments) of `group` for this client.

        A client that chose no size gets `segment_seconds`, shortened to whole seconds where
        a segment of all the group's channels would exceed `segment_mb` as float32 (256
        channels at 32 kHz: 8 s, not 300 s and 9.8 GB), or half the read limit (so that
        float64 segments are never refused); never below one second.
        """
        _, view = self._open_view(client, path)
        seconds = view.segment_seconds
        if seconds is None:
            budget = min(self.config.segment_mb * 2**20, self.config.max_read_bytes / 2)
            fits = math.floor(budget / (4 * len(group.channels) * group.fs))
            seconds = min(self.config.segment_seconds, max(MIN_SEGMENT_SECONDS, fits))
        length = max(1, int(round(seconds * group.fs)))
        return length, max(1, math.ceil(group.grid.n_samples / length))

    # -- reads ----------------------------------------------------------------------------
    def read_segment(
        self, client: str, path: str, index: int, channels: Sequence[str] | None = None,
        dtype: str = "float32", prefetch: bool = True, defer_prefetch: bool = False,
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
        return self.read_index(client, path, names, index * length, min((index + 1) * length, group.grid.n_samples),
                               dtype, prefetch, defer_prefetch)

    def time_window(self, client: str, path: str, channels: Sequence[str] | None, start_uutc: float,
                    end_uutc: float) -> tuple[int, int]:
        """Grid indices of ``[start_uutc, end_uutc)`` for the channels' rate group (refusing bad windows)."""
        rec, _ = self._open_view(client, path)
        return rec.info.group_of(self.channels(client, path, channels)).grid.window(start_uutc, end_uutc, rec.path)

    def read_time(
        self, client: str, path: str, channels: Sequence[str] | None, start_uutc: float, end_uutc: float,
        dtype: str = "float32", prefetch: bool = True, defer_prefetch: bool = False,
    ) -> Samples:
        """Samples in ``[start_uutc, end_uutc)`` on the channels' grid (NaN outside the data)."""
        k0, k1 = self.time_window(client, path, channels, start_uutc, end_uutc)
        return self.read_index(client, path, channels, k0, k1, dtype, prefetch, defer_prefetch)

    def read_index(
        self, client: str, path: str, channels: Sequence[str] | None, k0: int, k1: int,
        dtype: str = "float32", prefetch: bool = True, defer_prefetch: bool = False,
    ) -> Samples:
        """Grid samples ``[k0, k1)``, from (cached) segments of this client's grid.

        `prefetch` queues the segments after these in the client's direction. With
        `defer_prefetch` they are queued only when the caller calls `Samples.start_prefetch`:
        a server does so once its reply is sent, since a decode running beside the reply's
        transfer doubles the time a cache hit takes to arrive. `as_counts` gives the int32
        counts and factors a reply in `dtype` is converted from block by block as it is sent
        (`convert.to_values`), or the values when a channel's factor changes in the window
        (`factors` None); the read limit still applies to `dtype`. int32 is refused for a
        channel whose MEF segments store different factors (`SessionInfo.check_one_factor`).
        """
        rec, _ = self._open_view(client, path)
        names = self.channels(client, path, channels)
        group = rec.info.group_of(names)
        if dtype not in SAMPLE_TYPES:
            raise ValueError(f"dtype must be one of {sorted(SAMPLE_TYPES)}, not {dtype!r}")
        if k1 < k0:
            raise TimeRangeError(f"sample range [{k0}, {k1}) ends before it starts")
        if dtype == "int32":
            rec.info.check_one_factor(names)
        self._check_size(len(names), k1 - k0, dtype)
        length, n_seg = self.segment_grid(client, path, group)
        self._check_segments(len(set(names)), length)
        indices = _touched(group, length, k0, k1)
        spans = [_span(group, length, i) for i in indices]
        rows = self.segments.get(rec, group.fs, names, spans)
        later = None
        if prefetch and spans:
            later = partial(self._prefetch_after, client, rec, group, _channel_set(rec.info, names), length, n_seg,
                            indices[-1])
            if not defer_prefetch:
                later()
                later = None
        runs = [rec.info.factor_runs(c) for c in names]
        window = Window([(s[0], r) for s, r in zip(spans, rows)], names, runs, k0, k1)
        factors = np.array([r.window(k0, k1).factors[0] for r in runs], np.float64) if dtype == "int32" else None
        return Samples(window, names, group, k0, dtype, factors, later)

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
        self._check_segments(len(set(names)), length)
        runs = [rec.info.factor_runs(c) for c in names]
        bins = min(bins, k1 - k0)
        starts = k0 + bin_starts(k1 - k0, bins)
        out = np.full((2, len(names), bins), np.nan, np.float32)
        for i in _touched(group, length, k0, k1):
            span = _span(group, length, i)
            (rows,) = self.segments.get(rec, group.fs, names, [span])
            a, b = max(k0, span[0]), min(k1, span[1])
            j0, j1 = np.searchsorted(starts, [a, b - 1], side="right") - 1
            edges = np.maximum(starts[j0:j1 + 1], a) - a
            chunk = Window([(span[0], rows)], names, runs, a, b).array("float32")
            with np.errstate(invalid="ignore"):
                out[0, :, j0:j1 + 1] = np.fmin(out[0, :, j0:j1 + 1], np.fmin.reduceat(chunk, edges, axis=1))
                out[1, :, j0:j1 + 1] = np.fmax(out[1, :, j0:j1 + 1], np.fmax.reduceat(chunk, edges, axis=1))
        return Samples(out, names, group, k0)

    def _check_size(self, n_channels: int, n_samples: int, dtype: str, what: str = "a read",
                    advice: str = "read it in smaller windows") -> None:
        size = n_channels * n_samples * np.dtype(SAMPLE_TYPES[dtype]).itemsize
        if size > self.config.max_read_bytes:
            raise ReadTooLargeError(
                f"{what} of {size / 2**20:.2f} MiB ({n_channels} channels × {n_samples} samples) exceeds the "
                f"server's limit of {self.config.max_read_mb:g} MiB; {advice}")

    def _check_segments(self, n_channels: int, length: int) -> None:
        """Segments are decoded whole (as int32 counts), however little of one a read wants."""
        self._check_size(n_channels, length, "int32", "a segment (decoded whole)",
                         "set a shorter segment size for this recording")

    def block_envelope(
        self, client: str, path: str, channel: str, start_uutc: int | None = None, end_uutc: int | None = None,
    ) -> dict[str, np.ndarray]:
        """Per-MEF-block min/max of one channel from the block index (decoded in a reader process)."""
        rec, _ = self._open_view(client, path)
        rec.info.channel(channel)
        return self.pool.call(rec.path, rec.password, rec.engine, "block_envelope", channel, start_uutc, end_uutc)

    def hint(self, client: str, path: str, channels: Sequence[str] | None, k0: int, k1: int, dtype: str = "float32") -> int:
        """Queue background loads of the segments covering ``[k0, k1)``; returns how many were queued.

        `dtype` is accepted for the API's sake: every dtype is served from the same entries."""
        if dtype not in SAMPLE_TYPES:
            raise ValueError(f"dtype must be one of {sorted(SAMPLE_TYPES)}, not {dtype!r}")
        rec, _ = self._open_view(client, path)
        names = self.channels(client, path, channels)
        group = rec.info.group_of(names)
        length, _ = self.segment_grid(client, path, group)
        self._check_segments(len(set(names)), length)
        return sum(self.segments.prefetch(rec, group.fs, names, *_span(group, length, i)) is not None
                   for i in _touched(group, length, k0, k1))

    def _prefetch_after(self, client: str, rec: Recording, group: RateGroup, channels: tuple[str, ...],
                        length: int, n_seg: int, index: int) -> None:
        """Queue the segments after `index` in this reader's direction (per channel set: a
        client reading two montages moves through each on its own)."""
        if self.config.n_prefetch <= 0:
            return
        stream = (client, rec.path, group.fs, channels, length)
        for i in self.prefetch.advance(stream, index, n_seg):
            handle = self.segments.prefetch(rec, group.fs, channels, *_span(group, length, i))
            if handle is not None:
                self.prefetch.queued(stream, i, handle)

    def _is_open(self, path: str) -> bool:
        with self._lock:
            return path in self._recordings

    def _open_view(self, client: str, path: str) -> tuple[Recording, ClientView]:
        key = self.resolve(client, path)
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
        out = self.segments.stats()
        p = self.pool.stats()
        with self._lock:
            clients = len({c for c, _ in self._views})
            n_open = len(self._recordings)
        out.update(workers=p.get("alive", p.get("workers", 0)),
                   worker_restarts=p.get("restarts", 0), open_recordings=n_open, clients=clients)
        return out

    def shutdown(self) -> None:
        """Stop every worker and free every cached segment."""
        self._stopping.set()
        self.pool.close()
        self.segments.close()


def pool_for(config: ServerConfig) -> ReaderPool:
    """The reader pool `config` describes: its processes, extra engines and read timeout."""
    return ReaderPool(config.n_process_workers, engines=config.reader_engines, read_timeout_s=config.read_timeout_s)


def canonical_path(path: str) -> str:
    """The one spelling of a recording's path that keys recordings, views and cache entries."""
    return os.path.realpath(os.path.expanduser(path)) if path else path


def _channel_set(info: SessionInfo, names: tuple[str, ...]) -> tuple[str, ...]:
    """`names` as a set, in session order: what identifies a reading stream for prefetch."""
    wanted = set(names)
    return tuple(n for n in info.names if n in wanted)


def _span(group: RateGroup, length: int, index: int) -> tuple[int, int]:
    """Grid samples ``[k0, k1)`` of segment `index` (of `length` samples; the last may be shorter)."""
    return index * length, min((index + 1) * length, group.grid.n_samples)


def _touched(group: RateGroup, length: int, k0: int, k1: int) -> range:
    """Indices of the segments (of `length` samples) that hold grid samples ``[k0, k1)``."""
    n = group.grid.n_samples
    if k1 <= max(k0, 0) or k0 >= n:
        return range(0)
    return range(max(k0, 0) // length, (min(k1, n) - 1) // length + 1)
