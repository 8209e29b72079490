"""Who has which recording open, and each client's settings for it.

A recording is opened once however many clients open it (`Recording`), and closed when
the last one leaves; each client keeps its own view of it (`ClientView`: segment size,
channel selection), so one client's settings never change another's reads. Clients
silent for `client_idle_s` are forgotten. The limits on open recordings are checked here.
What a close must also free (cached segments, readers, prefetch streams) is the owner's
to do: `Sessions` calls its `on_close` after every close.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from ...errors import NotOpenError, TimeRangeError, TooManyOpenError
from ...model import RateGroup, SessionInfo
from ..config import ServerConfig
from ..pool import ReaderPool
from ..pool.requests import canonical_path

log = logging.getLogger(__name__)

#: Shorter segments would cost a reader-process round trip per few samples.
MIN_SEGMENT_SECONDS = 1.0


@dataclass
class Recording:
    """A recording open on the server (shared by every client that opened it)."""

    path: str
    password: str
    decoder: str  # the reader engine that decodes it (`open_reader`'s engine)
    info: SessionInfo
    clients: set[str] = field(default_factory=set)


@dataclass
class ClientView:
    """One client's settings for one recording."""

    segment_seconds: float | None = None  # None: the server's default (see `Engine.segment_grid`)
    channels: tuple[str, ...] | None = None  # selection used when a read names none


class Sessions:
    """Open recordings and per-client views. Thread-safe: one lock guards recordings, views
    and last-seen times (never held while calling out, except `is_open`'s).

    `on_close(client, key, last)` is called after `client` closed the recording `key`
    (`last`: nobody has it open any more), outside the lock.
    """

    def __init__(
        self,
        config: ServerConfig,
        pool: ReaderPool,
        resolve: Callable[[str, str], str] | None,
        on_close: Callable[[str, str, bool], None],
    ) -> None:
        self.config = config
        self.pool = pool
        self._on_close = on_close
        #: (client, path as the client wrote it) -> the recording's key; may refuse (served roots).
        self._resolve = resolve or (lambda client, path: canonical_path(path) if path else path)
        self._recordings: dict[str, Recording] = {}
        self._views: dict[tuple[str, str], ClientView] = {}
        self._opening: set[tuple[str, str]] = (
            set()
        )  # (client, key) opens under way: they hold a place
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
        """Open `path` for `client` (a second client, or a second open, is a normal open)."""
        key = self.resolve(client, path)
        password = password or ""
        with self._lock:
            rec = self._recordings.get(key)
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
        if rec is None:
            decoder = decoder or self.config.engine
            # Every worker starts opening it now, beside the one that answers `info`: the first
            # (split) read needs them all, and one still opening made it 60-70 ms slower.
            self.pool.preopen(key, password, decoder)
            info = self.pool.info(key, password, decoder)
            with self._lock:
                rec = self._recordings.setdefault(key, Recording(key, password, decoder, info))
        elif rec.info.encrypted and password != rec.password:
            self.pool.info(key, password, rec.decoder)  # this client must prove its own password
        with self._lock:
            rec.clients.add(client)
            self._views.setdefault((client, key), ClientView())
            self._last_seen[client] = time.monotonic()
        return rec.info

    def _reserve(self, client: str, key: str) -> bool:
        """Check the open limits and hold a place for this open (called under the lock, so two
        opens at once cannot both take the last place); False when it needs none (re-opening).

        Refuses an open beyond `max_open_per_client` or `max_open_total`; opens under way count.
        """
        if (client, key) in self._views or (client, key) in self._opening:
            return False
        mine = sum(1 for c, _ in self._views if c == client) + sum(
            1 for c, _ in self._opening if c == client
        )
        per_client, total = self.config.max_open_per_client, self.config.max_open_total
        if per_client and mine >= per_client:
            raise TooManyOpenError(
                f"this client has {mine} recordings open, the server's limit; close one "
                "(Mef3Client.close_file) before opening another"
            )
        held = set(self._recordings) | {k for _, k in self._opening}
        if total and key not in held and len(held) >= total:
            raise TooManyOpenError(
                f"the server has {len(held)} recordings open, its limit; "
                "try again when others have closed theirs"
            )
        self._opening.add((client, key))
        return True

    def close(self, client: str, path: str) -> bool:
        """Close `path` for `client`; the owner frees what the last client out held (`on_close`)."""
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
        self._on_close(client, key, last)
        return True

    def recordings(self) -> list[Recording]:
        """Every open recording (a snapshot, for status pages: its client sets are copies, since
        opens and closes change them while a page is being made).
        """
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

    def recording_decoder(self, client: str, path: str) -> str:
        """The decoder serving `path` ("" when it is not open)."""
        with self._lock:
            rec = self._recordings.get(self.resolve(client, path))
        return rec.decoder if rec else ""

    def forget_client(self, client: str) -> None:
        """Close everything a client had open (it went away)."""
        for path in self.list_open(client):
            self.close(client, path)
        with self._lock:
            self._last_seen.pop(client, None)

    def expire_idle(self, now: float | None = None) -> list[str]:
        """Forget clients silent for longer than `client_idle_s` (a client known only by its
        connection can never come back once that connection is gone); returns who was forgotten.
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
        """Set this client's segment size; returns the number of segments per rate."""
        if not (seconds >= MIN_SEGMENT_SECONDS and math.isfinite(seconds)):
            raise TimeRangeError(
                f"a segment must last at least {MIN_SEGMENT_SECONDS:g} s (and be finite), not {seconds!r}"
            )
        rec, view = self._open_view(client, path)
        view.segment_seconds = float(seconds)
        return {g.fs: self.segment_grid(client, path, g)[1] for g in rec.info.rate_groups}

    def segment_seconds(self, client: str, path: str) -> float:
        """The segment size this client's reads use: its own, else the server's default as the
        rate groups use it (the shortest group's where wide, fast groups were shortened).
        """
        rec, view = self._open_view(client, path)
        if view.segment_seconds is not None:
            return view.segment_seconds
        return min(self.segment_grid(client, path, g)[0] / g.fs for g in rec.info.rate_groups)

    def set_channels(
        self, client: str, path: str, channels: Sequence[str] | None
    ) -> tuple[str, ...]:
        """This client's channel selection for reads that name none (None or empty = all)."""
        rec, view = self._open_view(client, path)
        view.channels = rec.info.check_channels(channels) if channels else None
        return view.channels or rec.info.names

    def channels(
        self, client: str, path: str, channels: Sequence[str] | None = None
    ) -> tuple[str, ...]:
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

    def is_open(self, key: str) -> bool:
        """Whether any client has the recording `key` open."""
        with self._lock:
            return key in self._recordings

    def recording(self, client: str, path: str) -> Recording:
        """The recording `client` has open as `path` (`NotOpenError` when it has not)."""
        return self._open_view(client, path)[0]

    def stats(self) -> dict[str, int]:
        """How many recordings are open, and by how many clients."""
        with self._lock:
            return {
                "open_recordings": len(self._recordings),
                "clients": len({c for c, _ in self._views}),
            }

    def stop(self) -> None:
        """Stop forgetting idle clients (the server is shutting down)."""
        self._stopping.set()

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
