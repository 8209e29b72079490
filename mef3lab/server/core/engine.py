"""The server's engine: windows cut from segments of the clients' grids, and their prefetch.

Every service (mef3lab's own API, the lab's compatibility API) calls only the `Engine`.
It has the `OpenRecordings` (who has what open), the `SegmentStore` (the cache and its loads),
the prefetch tracker and the reader pool; a read is cut into segments of the client's
grid and comes back as `Samples`. How it fits together: docs/server.md.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial

import numpy as np

from ...errors import CorruptDataError, ReadTooLargeError, SegmentIndexError, TimeRangeError
from ...model import SAMPLE_TYPES, RateGroup, SessionInfo
from ...readers.changes import REPLACED
from ...signal.decimate import bin_starts
from ..config import ServerConfig
from ..pool import ReaderPool
from .convert import Window
from .inflight import charge_reply
from .prefetch import PrefetchPolicy, PrefetchTracker
from .recordings import OpenRecordings, Recording
from .samples import Samples
from .segments import SegmentStore

log = logging.getLogger(__name__)


class Engine:
    """Recordings, clients, segment store, prefetch and pool, tied together. Thread-safe.

    Who has what open, and each client's settings, are its `sessions`; the methods the
    services call on them are offered here too, so that every service calls only the
    engine. The sessions' lock is taken inside the store's lock, so the engine never calls
    the store while holding it.

    Parameters
    ----------
    config : ServerConfig or None
        The server's settings (None: the defaults).
    pool : ReaderPool or None
        Where recordings are decoded (None: the pool `config` describes, `pool_for`).
    resolve : callable or None
        ``resolve(client, path)``: the key of the recording a client means, or an error
        when it may not open it (served roots); None: any path, canonical.

    Attributes
    ----------
    open_recordings : OpenRecordings
        Who has what open, and each client's settings.
    segments : SegmentStore
        The channel-segment cache and its loads.
    prefetch : PrefetchTracker
        Where each reader is, and what is queued for it.
    """

    def __init__(
        self,
        config: ServerConfig | None = None,
        pool: ReaderPool | None = None,
        resolve: Callable[[str, str], str] | None = None,
    ) -> None:
        self.config = config or ServerConfig()
        self.pool = pool or pool_for(self.config)
        self.prefetch = PrefetchTracker(PrefetchPolicy(self.config.n_prefetch))
        self.open_recordings = OpenRecordings(
            self.config, self.pool, resolve, self._recording_closed, self._recording_changed
        )
        self.segments = SegmentStore(
            self.config, self.pool, self.open_recordings.is_open, self.prefetch.active
        )
        self._bounds_of: dict[tuple, Future] = {}  # see `_bounds`
        self._bounds_lock = threading.Lock()
        self._ahead = ThreadPoolExecutor(1, thread_name_prefix="mef3lab-bounds")

    def _recording_closed(self, client: str, key: str, last: bool) -> None:
        """Free what `client` held of `key` (the sessions' `on_close`).

        Its prefetch streams; the cached rows and the readers too when it was the `last`
        client.
        """
        self.prefetch.forget(lambda s: s[0] == client and s[1] == key)
        if last:
            with self._bounds_lock:
                for k in [k for k in self._bounds_of if k[0] == key]:
                    del self._bounds_of[k]
            self.segments.drop_recording(key)
            self.pool.close_recording(key)

    def _recording_changed(self, key: str, change: str, generation: int) -> None:
        """`key`'s files changed on disk (the sessions' `on_change`).

        The readers are closed, so that the next open and read see the files as they are
        now, and the block bounds asked of them are forgotten (asked again by the openings
        still read: a recording refreshed as it grows would otherwise keep one set per
        extent); when the recording was replaced, the cached rows of its `generation` and
        before are dropped too (its open views are refused from now on).
        """
        if change == REPLACED:
            self.segments.drop_recording(key, before=generation + 1)
        with self._bounds_lock:
            for k in [k for k in self._bounds_of if k[0] == key]:
                del self._bounds_of[k]
        self.pool.close_recording(key)

    # -- recordings and clients (see `OpenRecordings`) ------------------------------------------
    def open(
        self, client: str, path: str, password: str | None = None, decoder: str | None = None
    ) -> SessionInfo:
        """Open `path` for `client` (see `OpenRecordings.open`).

        The block bounds of each of its rate groups (all channels) are then asked for in
        the background, so that the first read, a first page, does not wait for them.
        """
        info = self.open_recordings.open(client, path, password, decoder)
        try:
            rec = self.open_recordings.recording(client, path)
            for group in rec.info.rate_groups:
                n = group.grid.n_samples
                self._ahead.submit(self._bounds, rec, group, group.channels, 0, n)
        except Exception:  # only ahead of time: a read asks for them itself
            log.debug("no block bounds asked for ahead of %s", path, exc_info=True)
        return info

    def close(self, client: str, path: str) -> bool:
        """Close `path` for `client` (see `OpenRecordings.close`)."""
        return self.open_recordings.close(client, path)

    def info(self, client: str, path: str) -> SessionInfo:
        """What `path` holds, as `client` has it open."""
        return self.open_recordings.info(client, path)

    def list_open(self, client: str) -> list[str]:
        """The recordings `client` has open."""
        return self.open_recordings.list_open(client)

    def resolve(self, client: str, path: str) -> str:
        """The key of the recording `client` means by `path` (see `OpenRecordings.resolve`)."""
        return self.open_recordings.resolve(client, path)

    def recording_decoder(self, client: str, path: str) -> str:
        """The decoder serving `path` ("" when it is not open)."""
        return self.open_recordings.recording_decoder(client, path)

    def recordings(self) -> list[Recording]:
        """Every open recording (see `OpenRecordings.recordings`)."""
        return self.open_recordings.recordings()

    def set_segment_seconds(self, client: str, path: str, seconds: float) -> dict[float, int]:
        """Set this client's segment size (see `OpenRecordings.set_segment_seconds`)."""
        return self.open_recordings.set_segment_seconds(client, path, seconds)

    def segment_seconds(self, client: str, path: str) -> float:
        """The segment size this client's reads use (see `OpenRecordings.segment_seconds`)."""
        return self.open_recordings.segment_seconds(client, path)

    def set_channels(
        self, client: str, path: str, channels: Sequence[str] | None
    ) -> tuple[str, ...]:
        """Set this client's channel selection (see `OpenRecordings.set_channels`)."""
        return self.open_recordings.set_channels(client, path, channels)

    def channels(
        self, client: str, path: str, channels: Sequence[str] | None = None
    ) -> tuple[str, ...]:
        """The channels a read means (see `OpenRecordings.channels`)."""
        return self.open_recordings.channels(client, path, channels)

    def segment_grid(self, client: str, path: str, group: RateGroup) -> tuple[int, int]:
        """(samples per segment, segments) of `group` (see `OpenRecordings.segment_grid`)."""
        return self.open_recordings.segment_grid(client, path, group)

    # -- reads ----------------------------------------------------------------------------
    def read_segment(
        self,
        client: str,
        path: str,
        index: int,
        channels: Sequence[str] | None = None,
        dtype: str = "float32",
        prefetch: bool = True,
        defer_prefetch: bool = False,
    ) -> Samples:
        """One segment of this client's grid.

        Parameters
        ----------
        client, path : str
            The client and the recording as it names it.
        index : int
            The segment (see `segment_grid`).
        channels : sequence of str or None
            Channels of one rate group (None: the client's selection, else all).
        dtype : str
            "float32", "float64" or "int32" (the stored counts).
        prefetch, defer_prefetch : bool
            As for `read_index`.

        Returns
        -------
        Samples

        Raises
        ------
        mef3lab.errors.SegmentIndexError
            For an index outside the grid.
        mef3lab.errors.Mef3LabError
            As `read_index`.
        """
        r = self.open_recordings.reading(client, path, channels)
        rec, names, group, length, n_seg = r.recording, r.names, r.group, r.length, r.n_segments
        if not 0 <= index < n_seg:
            raise SegmentIndexError(
                f"segment {index} does not exist: {rec.path} has {n_seg} segments of "
                f"{length / group.fs:g} s at {group.fs:g} Hz (indices 0..{n_seg - 1})"
            )
        return self.read_index(
            client,
            path,
            names,
            index * length,
            min((index + 1) * length, group.grid.n_samples),
            dtype,
            prefetch,
            defer_prefetch,
        )

    def time_window(
        self,
        client: str,
        path: str,
        channels: Sequence[str] | None,
        start_uutc: float,
        end_uutc: float,
    ) -> tuple[int, int]:
        """The grid indices ``(k0, k1)`` of a time window for the channels' rate group.

        Raises
        ------
        mef3lab.errors.TimeRangeError
            For a window that is empty or inverted, or lies wholly outside the recording.
        """
        r = self.open_recordings.reading(client, path, channels)
        return r.group.grid.window(start_uutc, end_uutc, r.recording.path)

    def read_time(
        self,
        client: str,
        path: str,
        channels: Sequence[str] | None,
        start_uutc: float,
        end_uutc: float,
        dtype: str = "float32",
        prefetch: bool = True,
        defer_prefetch: bool = False,
    ) -> Samples:
        """The samples in ``[start_uutc, end_uutc)`` on the channels' grid (NaN outside the data).

        See `time_window` for the window, `read_index` for the rest.
        """
        k0, k1 = self.time_window(client, path, channels, start_uutc, end_uutc)
        return self.read_index(client, path, channels, k0, k1, dtype, prefetch, defer_prefetch)

    def read_index(
        self,
        client: str,
        path: str,
        channels: Sequence[str] | None,
        k0: int,
        k1: int,
        dtype: str = "float32",
        prefetch: bool = True,
        defer_prefetch: bool = False,
    ) -> Samples:
        """Grid samples ``[k0, k1)``, from (cached) segments of this client's grid.

        Parameters
        ----------
        client, path : str
            The client and the recording as it names it.
        channels : sequence of str or None
            Channels of one rate group (None: the client's selection, else all).
        k0, k1 : int
            The grid samples; outside the recording they are gaps.
        dtype : str
            "float32", "float64" or "int32" (the stored counts, with each row's factor).
        prefetch : bool
            Queue the segments after these in the client's direction.
        defer_prefetch : bool
            Start the background loads this read asks for (those, and the rest of a cold
            segment it read only part of) only when the caller calls
            `Samples.start_prefetch`: a server does so once its reply is sent, so that they
            slow neither the read's own decode nor the reply's transfer.

        Returns
        -------
        Samples
            A `Window` over the cached counts, converted to `dtype` as it is sent.

        Raises
        ------
        mef3lab.errors.NotOpenError
            When the client does not have the recording open.
        mef3lab.errors.ReadTooLargeError
            For a read, or a segment, beyond the server's read limit.
        mef3lab.errors.FactorChangeError
            For int32 of a channel whose MEF segments store different factors.
        mef3lab.errors.TimeRangeError
            When `k1` is before `k0`.
        ValueError
            For an unknown `dtype`.
        """
        r = self.open_recordings.reading(client, path, channels)
        rec, names, group, length, n_seg = r.recording, r.names, r.group, r.length, r.n_segments
        if dtype not in SAMPLE_TYPES:
            raise ValueError(f"dtype must be one of {sorted(SAMPLE_TYPES)}, not {dtype!r}")
        if k1 < k0:
            raise TimeRangeError(f"sample range [{k0}, {k1}) ends before it starts")
        if dtype == "int32":
            rec.info.check_one_factor(names)
        self._check_size(len(names), k1 - k0, dtype)
        charge_reply(len(names) * (k1 - k0) * np.dtype(SAMPLE_TYPES[dtype]).itemsize)
        self._check_segments(len(set(names)), length)
        indices = _touched(group, length, k0, k1)
        spans = [_span(group, length, i) for i in indices]
        later: list[Callable[[], None]] = []  # the background loads this read starts
        with self._told_if_changed(path, rec):
            pieces = self.segments.get(
                rec,
                group.fs,
                names,
                spans,
                (k0, k1),
                partial(self._bounds, rec, group, names),
                reader=client,  # a jump of this client calls off the fills behind it
                fills=later if defer_prefetch else None,
            )
        if prefetch and spans:
            later.append(
                partial(
                    self._prefetch_after,
                    client,
                    rec,
                    group,
                    _channel_set(rec.info, names),
                    length,
                    n_seg,
                    indices[-1],
                )
            )
        start = partial(_call_each, later) if later else None
        if start is not None and not defer_prefetch:
            start()
            start = None
        try:
            runs = [rec.info.factor_runs(c) for c in names]
            window = Window(pieces, names, runs, k0, k1)
            factors = (
                np.array([r.window(k0, k1).factors[0] for r in runs], np.float64)
                if dtype == "int32"
                else None
            )
        except BaseException:
            if start is not None:  # no reply will be sent to start them after
                start()
            raise
        return Samples(window, names, group, k0, dtype, factors, start)

    def envelope(
        self,
        client: str,
        path: str,
        channels: Sequence[str] | None,
        k0: int,
        k1: int,
        bins: int,
    ) -> Samples:
        """The min and max of near-equal bins of grid samples ``[k0, k1)``.

        Segment by segment through the cache, so an overview of hours costs memory for one
        segment at a time; the reply itself (minima and maxima) must fit `max_read_mb`.

        Parameters
        ----------
        client, path : str
            The client and the recording as it names it.
        channels : sequence of str or None
            Channels of one rate group (None: the client's selection, else all).
        k0, k1 : int
            The grid samples.
        bins : int
            How many bins (at most one per sample).

        Returns
        -------
        Samples
            float32 data of shape (2, channels, bins): the minima, then the maxima.

        Raises
        ------
        mef3lab.errors.TimeRangeError
            For an empty window, or no bins.
        mef3lab.errors.ReadTooLargeError
            For a reply beyond the server's read limit (too many bins).
        """
        if bins <= 0 or k1 <= k0:
            raise TimeRangeError(
                f"an envelope needs a non-empty window and a positive number of bins, "
                f"not [{k0}, {k1}) in {bins} bins"
            )
        r = self.open_recordings.reading(client, path, channels)
        rec, names, group, length = r.recording, r.names, r.group, r.length
        self._check_segments(len(set(names)), length)
        bins = min(bins, k1 - k0)
        self._check_size(2 * len(names), bins, "float32", "an envelope", "ask for fewer bins")
        charge_reply(2 * len(names) * bins * 4)
        runs = [rec.info.factor_runs(c) for c in names]
        starts = k0 + bin_starts(k1 - k0, bins)
        out = np.full((2, len(names), bins), np.nan, np.float32)
        for i in _touched(group, length, k0, k1):
            span = _span(group, length, i)
            with self._told_if_changed(path, rec):
                (piece,) = self.segments.get(rec, group.fs, names, [span])
            a, b = max(k0, span[0]), min(k1, span[1])
            j0, j1 = np.searchsorted(starts, [a, b - 1], side="right") - 1
            edges = np.maximum(starts[j0 : j1 + 1], a) - a
            chunk = Window([piece], names, runs, a, b).array("float32")
            with np.errstate(invalid="ignore"):
                out[0, :, j0 : j1 + 1] = np.fmin(
                    out[0, :, j0 : j1 + 1], np.fmin.reduceat(chunk, edges, axis=1)
                )
                out[1, :, j0 : j1 + 1] = np.fmax(
                    out[1, :, j0 : j1 + 1], np.fmax.reduceat(chunk, edges, axis=1)
                )
        return Samples(out, names, group, k0)

    def _check_size(
        self,
        n_channels: int,
        n_samples: int,
        dtype: str,
        what: str = "a read",
        advice: str = "read it in smaller windows",
    ) -> None:
        size = n_channels * n_samples * np.dtype(SAMPLE_TYPES[dtype]).itemsize
        if size > self.config.max_read_bytes:
            raise ReadTooLargeError(
                f"{what} of {size / 2**20:.2f} MiB ({n_channels} channels × {n_samples} samples) "
                f"exceeds the server's limit of {self.config.max_read_mb:g} MiB; {advice}"
            )

    def _check_segments(self, n_channels: int, length: int) -> None:
        """Segments are decoded whole (as int32 counts), however little of one a read wants."""
        self._check_size(
            n_channels,
            length,
            "int32",
            "a segment (decoded whole)",
            "set a shorter segment size for this recording",
        )

    def block_envelope(
        self,
        client: str,
        path: str,
        channel: str,
        start_uutc: int | None = None,
        end_uutc: int | None = None,
    ) -> dict[str, np.ndarray]:
        """The min and max of each MEF block of one channel, from the block index.

        Decoded in a reader process.

        Parameters
        ----------
        client, path : str
            The client and the recording as it names it.
        channel : str
            The channel.
        start_uutc, end_uutc : int or None
            The time window (None: from the start, to the end).

        Returns
        -------
        dict of str to numpy.ndarray
            The reader's `block_envelope`.
        """
        rec = self.open_recordings.recording(client, path)
        rec.info.channel(channel)
        with self._told_if_changed(path, rec):
            return self.pool.call(
                rec.path, rec.password, rec.decoder, "block_envelope", channel, start_uutc, end_uutc
            )

    @contextmanager
    def _told_if_changed(self, path: str, rec: Recording) -> Iterator[None]:
        """A read of `rec` that finds its files damaged asks first whether they were replaced.

        Then it fails with `RecordingChangedError` (see `OpenRecordings.recheck`), not as
        damaged.
        """
        try:
            yield
        except CorruptDataError:
            self.open_recordings.recheck(path, rec)
            raise

    def hint(
        self,
        client: str,
        path: str,
        channels: Sequence[str] | None,
        k0: int,
        k1: int,
        dtype: str = "float32",
    ) -> int:
        """Queue background loads of the segments covering grid samples ``[k0, k1)``.

        Parameters
        ----------
        client, path : str
            The client and the recording as it names it.
        channels : sequence of str or None
            Channels of one rate group (None: the client's selection, else all).
        k0, k1 : int
            The grid samples.
        dtype : str
            Accepted for the API's sake: every dtype is served from the same entries.

        Returns
        -------
        int
            How many loads were queued (segments cached or loading need none).
        """
        if dtype not in SAMPLE_TYPES:
            raise ValueError(f"dtype must be one of {sorted(SAMPLE_TYPES)}, not {dtype!r}")
        r = self.open_recordings.reading(client, path, channels)
        rec, names, group, length = r.recording, r.names, r.group, r.length
        self._check_segments(len(set(names)), length)
        return sum(
            self.segments.prefetch(rec, group.fs, names, *_span(group, length, i)) is not None
            for i in _touched(group, length, k0, k1)
        )

    def _bounds(
        self, rec: Recording, group: RateGroup, names: Sequence[str], k0: int, k1: int
    ) -> np.ndarray:
        """Where segment ``[k0, k1)`` may be cut without cutting a block (`SegmentStore.get`).

        From the channels' reader, once per recording and channel set (`Reader.block_bounds`);
        only the segment's ends when the reader cannot say.
        """
        n = group.grid.n_samples
        key = (rec.path, rec.generation, n, group.fs, tuple(sorted(set(names))))
        with self._bounds_lock:
            asked = self._bounds_of.get(key)
            if asked is None:  # one question per key, whoever asks meanwhile waits for it
                asked = self._bounds_of[key] = Future()
                asked.set_running_or_notify_cancel()
                mine = True
            else:
                mine = False
        if mine:
            bounds = np.array([0, n], np.int64)  # the segment is then read whole
            try:
                bounds = self.pool.call(
                    rec.path, rec.password, rec.decoder, "block_bounds", key[-1], 0, n
                )
            except Exception as exc:  # noqa: BLE001 - read whole, as said
                log.debug("no block bounds for %s: %s", rec.path, exc)
            finally:
                asked.set_result(bounds)
        bounds = asked.result()
        inside = bounds[(bounds > k0) & (bounds < k1)]
        return np.concatenate([[k0], inside, [k1]]).astype(np.int64)

    def _prefetch_after(
        self,
        client: str,
        rec: Recording,
        group: RateGroup,
        channels: tuple[str, ...],
        length: int,
        n_seg: int,
        index: int,
    ) -> None:
        """Queue the segments after `index` in this reader's direction.

        Per channel set: a client reading two montages moves through each on its own.
        """
        if self.config.n_prefetch <= 0:
            return
        stream = (client, rec.path, group.fs, channels, length)
        for i in self.prefetch.advance(stream, index, n_seg):
            handle = self.segments.prefetch(
                rec,
                group.fs,
                channels,
                *_span(group, length, i),
                partial(self._bounds, rec, group, channels),
            )
            if handle is not None:
                self.prefetch.queued(stream, i, handle)

    # -- operations -----------------------------------------------------------------------
    def stats(self) -> dict[str, int]:
        """The counters: the store's, the workers and their restarts, recordings and clients."""
        out = self.segments.stats()
        p = self.pool.stats()
        out.update(
            workers=p.get("alive", p.get("workers", 0)), worker_restarts=p.get("restarts", 0)
        )
        out.update(self.open_recordings.stats())
        return out

    def shutdown(self) -> None:
        """Stop every worker and free every cached segment."""
        self._ahead.shutdown(wait=False, cancel_futures=True)
        self.open_recordings.stop()
        self.pool.close()
        self.segments.close()


def pool_for(config: ServerConfig, guard: Callable | None = None) -> ReaderPool:
    """The reader pool `config` describes: its processes, extra reader engines and read timeout.

    `guard` checks each read and call in its reader process (`ReaderPool`).
    """
    return ReaderPool(
        config.n_process_workers,
        engines=config.reader_engines,
        read_timeout_s=config.read_timeout_s,
        guard=guard,
    )


def _channel_set(info: SessionInfo, names: tuple[str, ...]) -> tuple[str, ...]:
    """`names` as a set, in session order: what identifies a reading stream for prefetch."""
    wanted = set(names)
    return tuple(n for n in info.names if n in wanted)


def _span(group: RateGroup, length: int, index: int) -> tuple[int, int]:
    """Grid samples ``[k0, k1)`` of segment `index` of `length` samples (the last: fewer)."""
    return index * length, min((index + 1) * length, group.grid.n_samples)


def _touched(group: RateGroup, length: int, k0: int, k1: int) -> range:
    """Indices of the segments (of `length` samples) that hold grid samples ``[k0, k1)``."""
    n = group.grid.n_samples
    if k1 <= max(k0, 0) or k0 >= n:
        return range(0)
    return range(max(k0, 0) // length, (min(k1, n) - 1) // length + 1)


def _call_each(calls: list[Callable[[], None]]) -> None:
    """Call each of `calls`, in order."""
    for call in calls:
        call()
