"""Each process's open sources, one per `SourceSpec`, opened lazily and counted.

Like xarray's CachingFileManager: pickling a dataset sends specs, and every process opens
its own reader or connection on first use (`acquire`). Open datasets count their use
(`retain`/`release`); the source closes with its last counted user.
"""

from __future__ import annotations

import logging
import os
import threading

from .base import RecordingSource, SourceSpec

__all__ = [
    "acquire",
    "close_all",
    "discard",
    "install",
    "known_spec",
    "open_source",
    "release",
    "retain",
]

log = logging.getLogger(__name__)


def open_source(spec: SourceSpec) -> RecordingSource:
    """Open a new source for `spec`: the one place that decides embedded vs remote."""
    if spec.remote:
        from .remote import RemoteSource  # noqa: PLC0415 - gRPC is loaded only for remote reads

        return RemoteSource(spec)
    from ..readers import open_reader
    from .embedded import EmbeddedSource

    return EmbeddedSource(open_reader(spec.path, spec.password, spec.engine))


_lock = threading.Lock()
_sources: dict[SourceSpec, RecordingSource] = {}
_refs: dict[SourceSpec, int] = {}
_known: dict[tuple[str, str | None, str | None], SourceSpec] = {}


def _after_fork() -> None:
    """A forked child must not share readers or sockets (or a held lock) with its parent."""
    global _lock, _sources, _refs
    _lock = threading.Lock()
    _sources = {}
    _refs = {}


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def acquire(spec: SourceSpec) -> RecordingSource:
    """This process's source for `spec`, opened on first use and cached."""
    src = _sources.get(spec)
    if src is not None:
        return src
    with _lock:
        src = _sources.get(spec)
        if src is None:
            src = open_source(spec)
            _sources[spec] = src
        return src


def install(spec: SourceSpec, source: RecordingSource) -> None:
    """Make `source` this process's source for `spec` (e.g. a test double, or a source opened elsewhere)."""
    with _lock:
        old = _sources.get(spec)
        _sources[spec] = source
    if old is not None and old is not source:
        old.close()


def discard(spec: SourceSpec, source: RecordingSource) -> None:
    """Forget `source` as this process's source for `spec` (if it still is), and close it.

    For a connection that failed: the next `acquire` opens a fresh one instead of
    waiting out the old one's reconnection backoff. Counted uses are kept.
    """
    with _lock:
        if _sources.get(spec) is not source:
            return
        del _sources[spec]
    try:
        source.close()
    except Exception:  # noqa: BLE001 - it failed already; closing is best effort
        log.debug("closing a failed source failed", exc_info=True)


def retain(spec: SourceSpec) -> RecordingSource:
    """`acquire`, counting one more user that will call `release` (an open Dataset)."""
    src = acquire(spec)
    with _lock:
        _refs[spec] = _refs.get(spec, 0) + 1
        _known[(spec.path, spec.address, spec.engine)] = spec
    return src


def known_spec(path: str, address: str | None = None, engine: str | None = None) -> SourceSpec:
    """The spec (with its password) this process opened `path` with, or a password-less one.

    Lets what only has a dataset's attrs (which never hold the password) reopen it.
    """
    return _known.get((path, address, engine)) or SourceSpec(path, None, engine, address)


def release(spec: SourceSpec) -> None:
    """One user of `spec` is done; the source is closed when the last counted user is.

    A source that is needed again later (a copy of a closed dataset is computed) is
    simply reopened by `acquire`.
    """
    with _lock:
        n = _refs.get(spec, 0) - 1
        if n > 0:
            _refs[spec] = n
            return
        _refs.pop(spec, None)
        src = _sources.pop(spec, None)
    if src is not None:
        src.close()


def close_all() -> None:
    """Close every source this process has opened."""
    with _lock:
        srcs = list(_sources.values())
        _sources.clear()
        _refs.clear()
    for src in srcs:
        try:
            src.close()
        except Exception:  # noqa: BLE001 - closing must go on for the others
            log.warning("closing %r failed", src, exc_info=True)
