"""Who has which recording open, and each client's settings for it.

A recording is opened once however many clients open it, and closed when the last one
leaves; each client keeps its own view of it (segment size, channel selection). The open
limits, the forgetting of idle clients and the noticing of recordings changed on disk live
here; what a close or a change must also free is the owner's to do, told through `on_close`
and `on_change` (docs/server.md, "Open recordings", "Growing and replaced recordings").
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from ...errors import NotOpenError, RecordingChangedError, TimeRangeError, TooManyOpenError
from ...model import RateGroup, SessionInfo
from ...readers.changes import GROWN, REPLACED, ChangeWatch, Snapshot
from ..config import ServerConfig
from ..pool import ReaderPool
from ..pool.requests import canonical_path
from .roots import check_session_tree

log = logging.getLogger(__name__)

#: Shorter segments would cost a reader-process round trip per few samples.
MIN_SEGMENT_SECONDS = 1.0
#: The most bytes of one channel's segment (float32), so that a fast channel's segment, and
#: a chunk of many of them, stays small enough to decode and send at once.
CHANNEL_SEGMENT_BYTES = 2**20
#: The most names a read may list beyond the recording's own channel count (a name may repeat,
#: but every row costs work before a byte is sent).
MAX_EXTRA_NAMES = 1024
#: Seconds between two looks, on reads, at whether an open recording's files changed.
CHANGE_CHECK_S = 1.0


@dataclass
class Recording:
    """A recording open on the server (shared by every client that opened it).

    Parameters
    ----------
    path : str
        Its key: the canonical path (see `OpenRecordings.resolve`).
    password : str
        The password it was opened with ("" for none).
    decoder : str
        The reader engine that decodes it (`open_reader`'s `engine`).
    info : SessionInfo
        What it holds.
    clients : set of str
        The clients that have it open.
    generation : int
        Which contents of its files it reads: one more each time the recording is found
        written again on disk (cached rows are kept per generation).
    watch : ChangeWatch or None
        Its files as it was opened, compared with them now (None: never compared).
    replaced : bool
        Its files were written again since it was opened: its reads are refused.
    """

    path: str
    password: str
    decoder: str
    info: SessionInfo
    clients: set[str] = field(default_factory=set)
    generation: int = 0
    watch: ChangeWatch | None = field(default=None, repr=False, compare=False)
    replaced: bool = False


@dataclass
class ClientView:
    """One client's settings for one recording.

    Parameters
    ----------
    slot : str
        Which opening of the recording it reads: its key and password (`_slot`).
    recording : Recording
        The opening it reads: the slot's when it opened, until it opens again (a
        recording changed on disk meanwhile is a new opening of the slot).
    segment_seconds : float or None
        Its segment size; None: the server's default (see `OpenRecordings.segment_grid`).
    channels : tuple of str or None
        The selection a read that names no channels uses; None: all.
    """

    slot: str
    recording: Recording
    segment_seconds: float | None = None
    channels: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Reading:
    """What one read of a client works from, found with one look-up of the path it gave.

    Parameters
    ----------
    recording : Recording
        The opening it reads (`OpenRecordings.recording`).
    names : tuple of str
        The channels it means (`OpenRecordings.channels`).
    group : RateGroup
        Their rate group.
    length, n_segments : int
        The client's segments of that group: samples per segment, and how many
        (`OpenRecordings.segment_grid`).
    """

    recording: Recording
    names: tuple[str, ...]
    group: RateGroup
    length: int
    n_segments: int


class OpenRecordings:
    """Open recordings and per-client views.

    A recording is opened once per password: an encrypted recording's level-1 and level-2
    holders each get their own opening (readers, annotations, clock), whoever came first,
    and every client reads through the opening of the password it gave.

    Thread-safe: one lock guards recordings, views and last-seen times; it is never held
    while calling out. A thread of its own closes the recordings of idle clients until
    `stop`.

    Parameters
    ----------
    config : ServerConfig
        The open limits, the idle time and the segment sizes.
    pool : ReaderPool
        Where recordings are opened.
    resolve : callable or None
        ``resolve(client, path)``: the key of the recording `client` means by `path`, or
        an error when it may not open it (served roots); None: the canonical path. Its
        ``confine(key)``, if it has one, checks a recording's files before the recording is
        first opened (else `check_session_tree`: no pipes or devices).
    on_close : callable
        ``on_close(client, key, last)``, called after `client` closed the recording `key`
        (`last`: nobody has it open any more), outside the lock.
    on_change : callable or None
        ``on_change(key, change, generation)``, called outside the lock when an open or a
        read finds that the files of `key`, opened as `generation`, changed on disk
        (`change`: `GROWN` or `REPLACED`).
    """

    def __init__(
        self,
        config: ServerConfig,
        pool: ReaderPool,
        resolve: Callable[[str, str], str] | None,
        on_close: Callable[[str, str, bool], None],
        on_change: Callable[[str, str, int], None] | None = None,
    ) -> None:
        self.config = config
        self.pool = pool
        self._on_close = on_close
        self._on_change = on_change or (lambda key, change, generation: None)
        #: (client, path as the client wrote it) -> the recording's key; may refuse (served roots).
        self._resolve = resolve or (lambda client, path: canonical_path(path) if path else path)
        self._confine = getattr(resolve, "confine", check_session_tree)
        #: Slot (the key, and a hash of the password: `_slot`) -> the recording opened so.
        self._recordings: dict[str, Recording] = {}
        #: Key -> the generation its next opening gets (see `Recording.generation`).
        self._generations: dict[str, int] = {}
        self._views: dict[tuple[str, str], ClientView] = {}
        #: (client, key) of the opens under way: they hold a place (see `_reserve`).
        self._opening: set[tuple[str, str]] = set()
        self._lock = threading.RLock()
        self._last_seen: dict[str, float] = {}
        self._stopping = threading.Event()
        self._janitor = threading.Thread(
            target=self._expire_loop, name="mef3lab-janitor", daemon=True
        )
        self._janitor.start()

    # -- recordings and clients -----------------------------------------------------------
    def open(
        self, client: str, path: str, password: str | None = None, decoder: str | None = None
    ) -> SessionInfo:
        """Open a recording for a client; a second client, or a second open, is a normal open.

        A recording whose files changed on disk since it was opened (grown or replaced) is
        opened afresh, and a client that opens it again reads that new opening: opening
        again is how a view refreshes its extent. Other clients' views keep theirs.

        Parameters
        ----------
        client : str
            Who opens it.
        path : str
            The recording as the client names it.
        password : str or None
            Its password, if encrypted; every client must give it.
        decoder : str or None
            The reader engine for a recording not open yet (None: the server's default).

        Returns
        -------
        SessionInfo
            What the recording holds.

        Raises
        ------
        mef3lab.errors.TooManyOpenError
            Beyond `max_open_per_client` or `max_open_total` (opens under way count).
        mef3lab.errors.Mef3LabError
            What resolving or opening the recording raised (not served, not found, a
            wrong password, ...).
        """
        key = self.resolve(client, path)
        password = password or ""
        with self._lock:
            view = self._views.get((client, key))
        if view is not None and view.slot != _slot(key, password):
            self.close(client, path)  # opened again with another password: as a new open
        with self._lock:
            rec = self._recordings.get(_slot(key, password))
            reserved = self._reserve(client, key)
        try:
            return self._open(client, key, password, decoder, rec)
        finally:
            if reserved:
                with self._lock:
                    self._opening.discard((client, key))

    def _open(
        self, client: str, key: str, password: str, decoder: str | None, rec: Recording | None
    ) -> SessionInfo:
        slot = _slot(key, password)
        change = rec.watch.check(force=True) if rec is not None and rec.watch else None
        if change is not None:
            self._changed(rec, change)
            rec = None
        if rec is None:
            self._confine(key)
            decoder = decoder or self.config.engine
            snapshot = Snapshot.take(key)  # before the files are read: a change meanwhile shows
            info = self.pool.info(key, password, decoder)
            # Only once one worker opened it (within the read timeout) do the others open it,
            # so that the first (split) read need not wait for them: a recording whose opening
            # hangs or fails holds one worker, never all of them.
            self.pool.preopen(key, password, decoder)
            with self._lock:
                fresh = Recording(
                    key, password, decoder, info, generation=self._generations.get(key, 0)
                )
                fresh.watch = ChangeWatch(snapshot, CHANGE_CHECK_S)
                rec = self._recordings.setdefault(slot, fresh)
        with self._lock:
            rec.clients.add(client)
            view = self._views.setdefault((client, key), ClientView(slot, rec))
            if view.recording is not rec:  # opened again: its view moves to the new opening
                view.recording.clients.discard(client)
                view.recording = rec
            self._last_seen[client] = time.monotonic()
        return rec.info

    def _changed(self, rec: Recording, change: str | None) -> None:
        """`rec`'s files changed on disk: the next open of its key opens it afresh.

        A replacement also marks every opening of that generation (any password) replaced,
        so that their reads are refused, and gives the next opening a new generation. The
        owner is told (`on_change`) once per opening and change.
        """
        if change is None:
            return
        with self._lock:
            current = [s for s, r in self._recordings.items() if r is rec]
            for s in current:
                del self._recordings[s]
            # told already: when it was no longer the slot's, unless this replaces it first
            told = not current and (change == GROWN or rec.replaced)
            if change == REPLACED:
                for r in self._live():
                    if r.path == rec.path and r.generation <= rec.generation:
                        r.replaced = True
                nxt = max(self._generations.get(rec.path, 0), rec.generation + 1)
                self._generations[rec.path] = nxt
        if not told:
            log.info("%s changed on disk (%s): it is opened afresh", rec.path, change)
            self._on_change(rec.path, change, rec.generation)

    def _live(self) -> list[Recording]:
        """Every opening still read: the slots' and those of views not opened again. Locked."""
        out = {id(r): r for r in self._recordings.values()}
        out.update((id(v.recording), v.recording) for v in self._views.values())
        return list(out.values())

    def _reserve(self, client: str, key: str) -> bool:
        """Check the open limits and hold a place for this open; False when it needs none.

        Called under the lock, so two opens at once cannot both take the last place. A
        re-open needs no place. Refuses an open beyond `max_open_per_client` (counted per
        identity: every client id of one user, or of one host without authentication) or
        `max_open_total`; opens under way count.
        """
        if (client, key) in self._views or (client, key) in self._opening:
            return False
        who = _identity(client)
        mine = {k for c, k in self._views if _identity(c) == who}
        mine |= {k for c, k in self._opening if _identity(c) == who}
        per_client, total = self.config.max_open_per_client, self.config.max_open_total
        if per_client and key not in mine and len(mine) >= per_client:
            owner = "this client has" if who == client else f"{who} has, over all its clients,"
            raise TooManyOpenError(
                f"{owner} {len(mine)} recordings open, the server's limit; close one "
                "(Mef3Client.close_file) before opening another"
            )
        held = {r.path for r in self._recordings.values()} | {k for _, k in self._opening}
        if total and key not in held and len(held) >= total:
            raise TooManyOpenError(
                f"the server has {len(held)} recordings open, its limit; "
                "try again when others have closed theirs"
            )
        self._opening.add((client, key))
        return True

    def close(self, client: str, path: str) -> bool:
        """Close a recording for a client, then tell the owner (`on_close`).

        Parameters
        ----------
        client : str
            Who closes it.
        path : str
            The recording as the client names it.

        Returns
        -------
        bool
            False when the client did not have it open.
        """
        key = self.resolve(client, path)
        with self._lock:
            view = self._views.pop((client, key), None)
            if view is None:
                return False
            rec = view.recording
            rec.clients.discard(client)
            if not rec.clients and self._recordings.get(view.slot) is rec:
                del self._recordings[view.slot]
            # Its readers and cached segments go with the last opening of the file.
            last = not any(r.path == key for r in self._live())
        self._on_close(client, key, last)
        return True

    def recordings(self) -> list[Recording]:
        """Every open recording.

        Returns
        -------
        list of Recording
            A snapshot, for status pages: its client sets are copies, since opens and
            closes change them while a page is being made.
        """
        with self._lock:
            return [replace(r, clients=set(r.clients)) for r in self._live()]

    def list_open(self, client: str) -> list[str]:
        """The keys of the recordings `client` has open, sorted."""
        with self._lock:
            return sorted(p for (c, p) in self._views if c == client)

    def info(self, client: str, path: str) -> SessionInfo:
        """What the recording `client` has open as `path` holds (`NotOpenError` if none)."""
        return self._open_view(client, path)[0].info

    def resolve(self, client: str, path: str) -> str:
        """The key of the recording `client` means by `path`.

        Raises
        ------
        mef3lab.errors.PathNotServedError
            When the server does not serve it to this client (served roots).
        """
        return self._resolve(client, path)

    def recording_decoder(self, client: str, path: str) -> str:
        """The decoder serving `path` to `client` ("" when it does not have it open)."""
        key = self.resolve(client, path)
        with self._lock:
            view = self._views.get((client, key))
        return view.recording.decoder if view is not None else ""

    def forget_client(self, client: str) -> None:
        """Close everything a client had open (it went away)."""
        for path in self.list_open(client):
            self.close(client, path)
        with self._lock:
            self._last_seen.pop(client, None)

    def expire_idle(self, now: float | None = None) -> list[str]:
        """Close the recordings of the clients silent for longer than `client_idle_s`.

        A client known only by its connection can never come back once that connection is
        gone, so what it held would stay open for good otherwise.

        Parameters
        ----------
        now : float or None
            The time to measure silence at (`time.monotonic`; None: now).

        Returns
        -------
        list of str
            The clients forgotten.
        """
        now = time.monotonic() if now is None else now
        with self._lock:
            idle = [c for c, t in self._last_seen.items() if now - t > self.config.client_idle_s]
        for client in idle:
            log.info(
                "closing the recordings of %s: idle for more than %g s",
                client,
                self.config.client_idle_s,
            )
            self.forget_client(client)
        return idle

    def _expire_loop(self) -> None:
        while not self._stopping.wait(min(60.0, self.config.client_idle_s / 4)):
            self.expire_idle()

    # -- per-client settings --------------------------------------------------------------
    def set_segment_seconds(self, client: str, path: str, seconds: float) -> dict[float, int]:
        """Set this client's segment size for one recording.

        Parameters
        ----------
        client, path : str
            The client and the recording as it names it.
        seconds : float
            The segment size, at least `MIN_SEGMENT_SECONDS`.

        Returns
        -------
        dict of float to int
            The number of segments of each rate group (by rate).

        Raises
        ------
        mef3lab.errors.TimeRangeError
            For a size under `MIN_SEGMENT_SECONDS`, not finite, or so long that one channel's
            segment would exceed the server's read limit (no read of it could be served).
            A refused size is not applied.
        mef3lab.errors.NotOpenError
            When the client does not have the recording open.
        """
        if not (seconds >= MIN_SEGMENT_SECONDS and math.isfinite(seconds)):
            raise TimeRangeError(
                f"a segment must last at least {MIN_SEGMENT_SECONDS:g} s (and be finite), "
                f"not {seconds!r}"
            )
        rec, view = self._open_view(client, path)
        fastest = max(g.fs for g in rec.info.rate_groups)
        longest = self.config.max_read_bytes // 4 / fastest  # one channel's int32 segment
        if seconds > longest:
            raise TimeRangeError(
                f"a segment of {seconds:g} s is longer than this server decodes at once "
                f"({longest:g} s at {fastest:g} Hz, its {self.config.max_read_mb:g} MiB read "
                "limit); the segment size is unchanged"
            )
        view.segment_seconds = float(seconds)
        return {g.fs: self.segment_grid(client, path, g)[1] for g in rec.info.rate_groups}

    def segment_seconds(self, client: str, path: str) -> float:
        """The segment size this client's reads use, in seconds.

        Its own, else the server's default as the rate groups use it (the shortest group's
        where wide, fast groups were shortened: see `segment_grid`).
        """
        rec, view = self._open_view(client, path)
        if view.segment_seconds is not None:
            return view.segment_seconds
        return min(self.segment_grid(client, path, g)[0] / g.fs for g in rec.info.rate_groups)

    def set_channels(
        self, client: str, path: str, channels: Sequence[str] | None
    ) -> tuple[str, ...]:
        """Set this client's channel selection, for the reads that name no channels.

        Parameters
        ----------
        client, path : str
            The client and the recording as it names it.
        channels : sequence of str or None
            The selection; None or empty: all channels.

        Returns
        -------
        tuple of str
            The channels such a read now gets.

        Raises
        ------
        mef3lab.errors.UnknownChannelError
            For a channel the recording does not have.
        ValueError
            For a list longer than the recording's channels plus `MAX_EXTRA_NAMES`.
        """
        rec, view = self._open_view(client, path)
        view.channels = _checked(rec.info, channels) if channels else None
        return view.channels or rec.info.names

    def channels(
        self, client: str, path: str, channels: Sequence[str] | None = None
    ) -> tuple[str, ...]:
        """The channels a read means: those named, else the client's selection, else all.

        Raises
        ------
        mef3lab.errors.UnknownChannelError
            For a channel the recording does not have.
        ValueError
            For a list longer than the recording's channels plus `MAX_EXTRA_NAMES`.
        """
        rec, view = self._open_view(client, path)
        return _checked(rec.info, channels or view.channels)

    def segment_grid(self, client: str, path: str, group: RateGroup) -> tuple[int, int]:
        """How this client's segments cut a rate group's grid.

        A client that chose no size gets the server's `segment_seconds`, shortened to whole
        seconds where one channel's segment would exceed `CHANNEL_SEGMENT_BYTES` as float32,
        where a segment of all the group's channels would exceed `segment_mb`, or half the
        read limit (so that float64 segments are never refused); never below
        `MIN_SEGMENT_SECONDS`.

        Parameters
        ----------
        client, path : str
            The client and the recording as it names it.
        group : RateGroup
            One of the recording's rate groups.

        Returns
        -------
        tuple of (int, int)
            (samples per segment, number of segments).
        """
        return self._grid(self._open_view(client, path)[1], group)

    def _grid(self, view: ClientView, group: RateGroup) -> tuple[int, int]:
        seconds = view.segment_seconds
        if seconds is None:
            budget = min(self.config.segment_mb * 2**20, self.config.max_read_bytes / 2)
            budget = min(budget, CHANNEL_SEGMENT_BYTES * len(group.channels))
            fits = math.floor(budget / (4 * len(group.channels) * group.fs))
            seconds = min(self.config.segment_seconds, max(MIN_SEGMENT_SECONDS, fits))
        length = max(1, int(round(seconds * group.fs)))
        return length, max(1, math.ceil(group.grid.n_samples / length))

    def is_open(self, key: str, generation: int | None = None) -> bool:
        """Whether any client has the recording `key` open (as `generation`, not replaced)."""
        with self._lock:
            return any(
                r.path == key
                and (generation is None or (r.generation, r.replaced) == (generation, False))
                for r in self._live()
            )

    def recording(self, client: str, path: str) -> Recording:
        """The recording `client` has open as `path`, to read it.

        Whether its files changed on disk is looked at, at most every `CHANGE_CHECK_S`:
        a grown recording is read as it was opened (the client opens it again to see the
        rest); a replaced one is not read at all.

        Raises
        ------
        mef3lab.errors.NotOpenError
            When the client does not have it open.
        mef3lab.errors.RecordingChangedError
            When its files were written again since the client opened it.
        mef3lab.errors.PathNotServedError
            When they were, and one of them is now a link out of the served roots.
        """
        rec = self._open_view(client, path)[0]
        self._look(path, rec, force=False)
        return rec

    def reading(self, client: str, path: str, channels: Sequence[str] | None = None) -> Reading:
        """What a read of `client` works from: `recording`, `channels` and `segment_grid`.

        The path is resolved once (a served root's rules, links followed), not once each.

        Raises
        ------
        mef3lab.errors.Mef3LabError
            As `recording` and `channels`; `MixedRatesError` for channels of several rates.
        """
        rec, view = self._open_view(client, path)
        self._look(path, rec, force=False)
        names = _checked(rec.info, channels or view.channels)
        group = rec.info.group_of(names)
        return Reading(rec, names, group, *self._grid(view, group))

    def recheck(self, path: str, rec: Recording) -> None:
        """Look at `rec`'s files now, however recently they were: a read of them failed.

        A read may find the files damaged in the second before a replacement is noticed
        (the old index, the new data); this tells it what happened instead.

        Parameters
        ----------
        path : str
            The recording as the client names it (for the message).
        rec : Recording
            The opening the read used.

        Raises
        ------
        mef3lab.errors.RecordingChangedError
            When its files were written again since it was opened.
        """
        self._look(path, rec, force=True)

    def _look(self, path: str, rec: Recording, force: bool) -> None:
        """Compare `rec`'s files with its snapshot (`force`: now); refuse a replaced one."""
        change = rec.watch.check(force) if rec.watch is not None and not rec.replaced else None
        if change is not None:
            self._changed(rec, change)
        if rec.replaced:
            self._confine(rec.path)  # a file now a link out of the served roots: that first
            raise RecordingChangedError(
                f"{path} changed on disk since it was opened (it was written again, not only "
                "appended to); reopen it to read it as it is now"
            )

    def stats(self) -> dict[str, int]:
        """How many recordings are open, and by how many clients."""
        with self._lock:
            return {
                "open_recordings": len(self._live()),
                "clients": len({c for c, _ in self._views}),
            }

    def stop(self) -> None:
        """Stop forgetting idle clients (the server is shutting down)."""
        self._stopping.set()

    def _open_view(self, client: str, path: str) -> tuple[Recording, ClientView]:
        key = self.resolve(client, path)
        with self._lock:
            view = self._views.get((client, key))
            if view is not None:
                self._last_seen[client] = time.monotonic()
        if view is None:
            raise NotOpenError(f"{path} is not open for this client; open it first")
        return view.recording, view


def _identity(client: str) -> str:
    """Whom `client`'s opens count against: its `identity` when it has one, else itself."""
    return getattr(client, "identity", client)


def _checked(info: SessionInfo, names: Sequence[str] | None) -> tuple[str, ...]:
    """`names` validated (`SessionInfo.check_channels`), refused at once when far too many."""
    if names is not None and not isinstance(names, str):
        most = len(info.names) + MAX_EXTRA_NAMES
        if len(names) > most:
            raise ValueError(
                f"a read may name at most {most} channels (repeats included), not {len(names)}"
            )
    return info.check_channels(names)


def _slot(key: str, password: str) -> str:
    """Where a recording opened with `password` is kept: one opening per password."""
    if not password:
        return key
    return f"{key}\0{hashlib.sha256(password.encode()).hexdigest()[:16]}"
