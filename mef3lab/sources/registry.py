"""Each process's open sources, one per `SourceSpec`, opened lazily and counted.

As in xarray's ``CachingFileManager``, a pickled dataset carries specs, and every process
opens its own reader or connection on first use. `open` is what the xarray engine calls:
one counted use of a recording's source, as a `SourceHandle` that gives the use back when
the Dataset closes. `REGISTRY` is the process's one `SourceRegistry`.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import replace
from typing import Any

from .address import resolve
from .base import RecordingSource, SourceSpec

__all__ = ["REGISTRY", "SourceHandle", "SourceRegistry", "open", "open_source"]

log = logging.getLogger(__name__)


def open_source(spec: SourceSpec) -> RecordingSource:
    """A new source for `spec`, shared with no one: the one place that picks embedded or remote.

    Parameters
    ----------
    spec : SourceSpec
        The recording, and where it is read.

    Returns
    -------
    RecordingSource
        A `RemoteSource` when `spec` names a server, else an `EmbeddedSource`. The caller
        closes it.
    """
    if spec.remote:
        from .remote import RemoteSource  # gRPC is loaded only for remote reads

        return RemoteSource(spec)
    from ..readers import open_reader
    from ..readers.changes import ChangeWatch, Snapshot
    from .embedded import EmbeddedSource

    files = Snapshot.take(spec.path)  # before the reader reads them: a change meanwhile shows
    return EmbeddedSource(open_reader(spec.path, spec.password, spec.engine), ChangeWatch(files))


class SourceRegistry:
    """The open sources of one process: one per `SourceSpec`, opened on first use, counted.

    Open datasets count their use (`open`, then `SourceHandle.close`); a source closes with
    its last counted user, and one needed again later is simply reopened by `acquire`.
    Uncounted users (`acquire`: a dataset's reads, a pickled copy) never close it.
    A forked child starts empty (`after_fork`): it must not share readers or sockets, or a
    held lock, with its parent.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sources: dict[SourceSpec, RecordingSource] = {}
        self._refs: dict[SourceSpec, int] = {}
        self._known: dict[tuple[str, str | None, str | None], SourceSpec] = {}
        self._routes: dict[SourceSpec, str | None] = {}  # specs read elsewhere (`reroute`)

    def after_fork(self) -> None:
        """Forget the parent's sources and counts, and its lock (call in a forked child)."""
        self._lock = threading.Lock()
        self._sources = {}
        self._refs = {}
        self._routes = {}

    def acquire(self, spec: SourceSpec) -> RecordingSource:
        """The process's source for `spec`, opened on first use and kept (no use counted).

        Parameters
        ----------
        spec : SourceSpec
            The recording, and where it is read.

        Returns
        -------
        RecordingSource
            The source every caller with this spec shares.
        """
        src = self._sources.get(spec)
        if src is not None:
            return src
        with self._lock:
            src = self._sources.get(spec)
            if src is None:
                src = open_source(self._routed(spec))
                self._sources[spec] = src
            return src

    def _routed(self, spec: SourceSpec) -> SourceSpec:
        return replace(spec, address=self._routes[spec]) if spec in self._routes else spec

    def through(self, address: str | None) -> list[SourceSpec]:
        """The specs of the open sources read through `address` now.

        Parameters
        ----------
        address : str or None
            A server's address; None: this process.

        Returns
        -------
        list of SourceSpec
            As the datasets hold them (a rerouted spec keeps its first address).
        """
        with self._lock:
            return [s for s in self._sources if self._routed(s).address == address]

    def reroute(self, spec: SourceSpec, address: str | None) -> None:
        """Read `spec` through `address` (None: this process) from now on.

        The new source is opened first: if that fails, it raises and nothing changes.
        Then it replaces the old one, which is closed. Datasets holding `spec` read
        through the new source on their next read.

        Parameters
        ----------
        spec : SourceSpec
            As the datasets hold it.
        address : str or None
            A server's address; None: this process.

        Raises
        ------
        mef3lab.errors.Mef3LabError
            When the recording cannot be opened there.
        """
        source = open_source(replace(spec, address=address))
        with self._lock:
            old = self._sources.get(spec)
            self._sources[spec] = source
            if address == spec.address:
                self._routes.pop(spec, None)
            else:
                self._routes[spec] = address
        if old is not None and old is not source:
            try:
                old.close()
            except Exception:  # its server may be gone already
                log.debug("closing a rerouted source failed", exc_info=True)

    def open(self, spec: SourceSpec) -> SourceHandle:
        """One counted use of the source for `spec`, given back by the handle's `close`.

        Parameters
        ----------
        spec : SourceSpec
            The recording, and where it is read.

        Returns
        -------
        SourceHandle
            The use; its source is open.
        """
        self.acquire(spec)
        with self._lock:
            self._refs[spec] = self._refs.get(spec, 0) + 1
            self._known[(spec.path, spec.address, spec.engine)] = spec
        return SourceHandle(spec, self)

    def _release(self, spec: SourceSpec) -> None:
        """One counted use of `spec` ends; the source closes with the last."""
        with self._lock:
            n = self._refs.get(spec, 0) - 1
            if n > 0:
                self._refs[spec] = n
                return
            self._refs.pop(spec, None)
            self._routes.pop(spec, None)
            src = self._sources.pop(spec, None)
        if src is not None:
            src.close()

    def install(self, spec: SourceSpec, source: RecordingSource) -> None:
        """Make `source` the process's source for `spec`, closing the one it replaces.

        Parameters
        ----------
        spec : SourceSpec
            The recording, and where it is read.
        source : RecordingSource
            A source opened elsewhere (or a test double).
        """
        with self._lock:
            old = self._sources.get(spec)
            self._sources[spec] = source
        if old is not None and old is not source:
            old.close()

    def discard(self, spec: SourceSpec, source: RecordingSource) -> None:
        """Forget `source` as the source for `spec` (if it still is), and close it.

        For a connection that failed: the next `acquire` opens a fresh one instead of
        waiting out the old one's reconnection backoff. Counted uses are kept.

        Parameters
        ----------
        spec : SourceSpec
            The recording, and where it is read.
        source : RecordingSource
            The source that failed.
        """
        with self._lock:
            if self._sources.get(spec) is not source:
                return
            del self._sources[spec]
        try:
            source.close()
        except Exception:  # it failed already; closing is best effort
            log.debug("closing a failed source failed", exc_info=True)

    def known_spec(
        self, path: str, address: str | None = None, engine: str | None = None
    ) -> SourceSpec:
        """The spec (with its password) `path` was opened with, else a password-less one.

        Lets what only has a dataset's attrs (which never hold the password) reopen it.

        Parameters
        ----------
        path : str
            The recording's path, as in the spec.
        address : str, optional
            The server it is read through; None: this process.
        engine : str, optional
            The decoder; None: the reader's default.

        Returns
        -------
        SourceSpec
            The spec of the last `open` of this recording, or one without a password.
        """
        return self._known.get((path, address, engine)) or SourceSpec(path, None, engine, address)

    def close_all(self) -> None:
        """Close every source of the registry and forget the counted uses."""
        with self._lock:
            srcs = list(self._sources.values())
            self._sources.clear()
            self._refs.clear()
            self._routes.clear()
        for src in srcs:
            try:
                src.close()
            except Exception:  # closing must go on for the others
                log.warning("closing %r failed", src, exc_info=True)


class SourceHandle:
    """One counted use of a recording's source: what an open Dataset holds.

    `close` gives the use back, once. A pickled copy counts no use, so its `close` does
    nothing; in its process the source lives until `SourceRegistry.close_all` or the
    process ends.

    Parameters
    ----------
    spec : SourceSpec
        The recording, and where it is read.
    registry : SourceRegistry
        The registry that counted the use.
    owned : bool
        Whether this handle counted a use that `close` gives back.
    """

    def __init__(self, spec: SourceSpec, registry: SourceRegistry, owned: bool = True) -> None:
        self.spec = spec
        self._registry = registry
        self._owned = owned

    @property
    def source(self) -> RecordingSource:
        """The process's source for the spec (reopened if it was closed meanwhile)."""
        return self._registry.acquire(self.spec)

    def close(self) -> None:
        """Give the counted use back (the first call of an owning handle only)."""
        if self._owned:
            self._owned = False
            self._registry._release(self.spec)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_unowned, (self.spec,))

    def __repr__(self) -> str:
        return f"SourceHandle({self.spec!r}, owned={self._owned})"


def _unowned(spec: SourceSpec) -> SourceHandle:
    """A handle of this process's registry that counts no use (a pickled copy)."""
    return SourceHandle(spec, REGISTRY, owned=False)


#: The process's open sources.
REGISTRY = SourceRegistry()

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=REGISTRY.after_fork)


def open(
    path: str | os.PathLike | SourceSpec,
    password: str | None = None,
    engine: str | None = None,
    address: str | None | bool = None,
) -> SourceHandle:
    """One counted use of a recording's source in this process: `resolve`, then `REGISTRY.open`.

    Parameters
    ----------
    path : str, os.PathLike or SourceSpec
        A ``.mefd`` folder or a ``mef3://host:port/abs/path.mefd`` URI; a `SourceSpec` is
        opened as it is (the other arguments are not used).
    password : str, optional
        The recording's password, if it is encrypted.
    engine : str, optional
        The decoder for reads in this process; None: the reader's default.
    address : str or bool, optional
        As in `resolve`: "host:port" of a server, None for the default server (if set),
        False for this process.

    Returns
    -------
    SourceHandle
        The use, its source open; ``close()`` gives it back.

    Raises
    ------
    ValueError
        When the path or address is malformed or they contradict each other.
    mef3lab.errors.Mef3LabError
        When the recording cannot be opened (missing, wrong password, server unreachable).
    """
    spec = path if isinstance(path, SourceSpec) else resolve(path, password, engine, address)
    return REGISTRY.open(spec)
