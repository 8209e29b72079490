"""Where samples come from: the one seam between the xarray front end and a recording.

The xarray engine never talks to a `Reader` or to the server directly; it asks a
`RecordingSource`. Two implementations exist:

* embedded (``address is None``): a `Reader` opened in this process (`EmbeddedSource`);
* remote (``address = "host:port"``): ``mef3lab.client.RemoteSource``, a gRPC client of a
  mef3lab server. `open_source` is the single place that chooses between them.

What travels to dask workers is never a source but a `SourceSpec`: a small frozen,
picklable description of how to open one. Each process opens the source for a spec
lazily, once, and keeps it in a module-level cache (`acquire`), the way xarray's
CachingFileManager keeps files: pickling a dataset sends specs, and every worker opens
its own reader or connection on first use.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
from dataclasses import dataclass, field
from typing import ContextManager, Protocol, Sequence, runtime_checkable

import numpy as np

from .readers.base import Reader, SessionInfo

__all__ = [
    "EMBEDDED_CHUNK_BYTES",
    "EMBEDDED_SEGMENT_SECONDS",
    "EmbeddedSource",
    "RecordingSource",
    "SourceSpec",
    "acquire",
    "close_all",
    "discard",
    "get_default_address",
    "install",
    "known_spec",
    "open_source",
    "parse_uri",
    "release",
    "retain",
    "set_default_address",
]

log = logging.getLogger(__name__)

URI_SCHEME = "mef3://"


@runtime_checkable
class RecordingSource(Protocol):
    """An open recording as the xarray engine sees it, embedded or remote.

    Indices are those of the rate-group grid (`SessionInfo.rate_groups`): sample k of
    rate fs lies at ``grid.start_uutc + k * 1e6 / fs``. Implementations must be safe to
    call from several threads of one process (dask's threaded scheduler does so).
    """

    info: SessionInfo

    def read_index(self, channels: Sequence[str], k0: int, k1: int, dtype: str = "float32") -> np.ndarray:
        """Samples ``[k0, k1)`` of the channels' (one rate group's) grid: (n_channels, k1 - k0), NaN outside data
        (dtype "int32": the stored counts, RAW_NAN outside data)."""
        ...

    def segment_samples(self, fs: float) -> int:
        """The preferred read length, in samples, at rate `fs` (a server's segment length)."""
        ...

    def hint(self, channels: Sequence[str], k0: int, k1: int, dtype: str = "float32") -> None:
        """Samples ``[k0, k1)`` of `channels` will probably be read next, as `dtype` (a server may prefetch).

        Called just before each read, so it must return at once; the engine ignores its failures.
        """
        ...

    def block_envelope(self, channel: str) -> dict[str, np.ndarray]:
        """Every stored block of `channel`: ``start_uutc``, ``end_uutc``, ``min``, ``max`` (channel units),
        from the block index (nothing decoded)."""
        ...

    def close(self) -> None:
        """Release the reader or connection. Idempotent."""
        ...


@dataclass(frozen=True)
class SourceSpec:
    """How to open a recording: small, hashable and picklable (what dask ships to workers).

    `path` is absolute for embedded specs (workers may run elsewhere in the file system
    tree); for remote specs it is the path as the server sees it. `address` None means
    embedded. `engine` None means the reader's default engine. The password is kept out
    of ``repr`` so it does not end up in logs or tracebacks.
    """

    path: str
    password: str | None = field(default=None, repr=False)
    engine: str | None = None
    address: str | None = None

    @property
    def remote(self) -> bool:
        return self.address is not None

    def open(self) -> RecordingSource:
        """A new source for this spec (not cached; `acquire` is the cached way)."""
        return open_source(self)


# -- embedded ---------------------------------------------------------------------------

#: Upper bound on the preferred chunk length of embedded reads.
EMBEDDED_SEGMENT_SECONDS = 60.0
#: Target size of one embedded chunk (all channels of a rate group, float32).
EMBEDDED_CHUNK_BYTES = 64 * 2**20


class EmbeddedSource:
    """A `Reader` of this process, behind the `RecordingSource` protocol.

    pymef keeps global state, so reads of pymef readers (of every recording of the process)
    take turns on one lock. Engines that declare themselves thread-safe (mef3io and numba
    release the GIL while decoding) read at once, so dask's threaded scheduler decodes
    chunks on every core.
    """

    _decode_lock = threading.Lock()

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self.info = reader.info
        self._closed = False

    def _turn(self) -> ContextManager:
        return contextlib.nullcontext() if self.reader.thread_safe else EmbeddedSource._decode_lock

    def read_index(self, channels: Sequence[str], k0: int, k1: int, dtype: str = "float32") -> np.ndarray:
        with self._turn():
            if dtype == "int32":  # one conversion_factor per channel: refused where it changes, as remote
                self.info.check_one_factor(channels)
                return self.reader.read_raw(list(channels), k0, k1).counts
            return self.reader.read_index(list(channels), k0, k1, dtype)

    def segment_samples(self, fs: float) -> int:
        """Whole seconds, at most `EMBEDDED_SEGMENT_SECONDS`, and about `EMBEDDED_CHUNK_BYTES` per chunk.

        One minute keeps the per-read overhead of opening MEF segment files negligible
        while a chunk of a typical iEEG rate group (say 128 channels at 2 kHz, float32)
        stays near dask's recommended ~100 MB; wide or fast groups (microwires at 32 kHz)
        get shorter chunks so one chunk never gets out of hand. Never below one second.
        """
        n_channels = max((len(g.channels) for g in self.info.rate_groups if g.fs == fs), default=1)
        seconds = EMBEDDED_CHUNK_BYTES / (4 * fs * n_channels)
        seconds = max(1.0, min(EMBEDDED_SEGMENT_SECONDS, math.floor(seconds)))
        return max(1, int(round(seconds * fs)))

    def hint(self, channels: Sequence[str], k0: int, k1: int, dtype: str = "float32") -> None:
        """Nothing to prefetch embedded: the OS page cache does that."""

    def block_envelope(self, channel: str) -> dict[str, np.ndarray]:
        with self._turn():
            return self.reader.block_envelope(channel)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            with self._turn():
                self.reader.close()


def open_source(spec: SourceSpec) -> RecordingSource:
    """Open a new source for `spec`: the one place that decides embedded vs remote."""
    if spec.remote:
        from .client import RemoteSource  # noqa: PLC0415 - gRPC is loaded only for remote reads

        return RemoteSource(spec)
    from .readers import open_reader

    return EmbeddedSource(open_reader(spec.path, spec.password, spec.engine))


# -- per-process cache ------------------------------------------------------------------

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
    EmbeddedSource._decode_lock = threading.Lock()


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


# -- where data comes from --------------------------------------------------------------

_default_address: str | None = None


def set_default_address(address: str | None) -> None:
    """Read plain paths through the server at `address` ("host:port" or "unix:/path"); None reads them in-process."""
    global _default_address
    _default_address = _check_address(address) if address is not None else None


def get_default_address() -> str | None:
    """The server plain paths are read through, or None (embedded)."""
    return _default_address


def parse_uri(uri: str) -> tuple[str, str]:
    """``mef3://host:port/abs/path.mefd`` -> ``("host:port", "/abs/path.mefd")``."""
    if not uri.startswith(URI_SCHEME):
        raise ValueError(f"not a mef3 URI: {uri!r} (expected mef3://host:port/absolute/path.mefd)")
    rest = uri[len(URI_SCHEME) :]
    address, sep, path = rest.partition("/")
    if not sep or not path:
        raise ValueError(f"{uri!r} names no recording; expected mef3://host:port/absolute/path.mefd")
    return _check_address(address), "/" + path


def _check_address(address: str) -> str:
    address = str(address)
    if address.startswith("unix:"):
        if not address[len("unix:"):].startswith("/"):
            raise ValueError(f"a Unix socket address is 'unix:/absolute/path', not {address!r}")
        return address
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"a server address is 'host:port' or 'unix:/path/to/socket', not {address!r}")
    return address


def resolve(
    path: str | os.PathLike,
    password: str | None = None,
    engine: str | None = None,
    address: str | None | bool = None,
) -> SourceSpec:
    """The spec for a path or ``mef3://`` URI, given the caller's `address` and the default server.

    * a ``mef3://host:port/...`` URI is read through that server (`address`, if also
      given, must agree);
    * a plain path with ``address="host:port"`` is read through that server;
    * a plain path with ``address=None`` goes to `get_default_address()` when one is set,
      else is read in this process; ``address=False`` forces reading in this process.
    """
    p = os.fspath(path)
    if p.startswith(URI_SCHEME):
        uri_address, p = parse_uri(p)
        if address not in (None, False) and _check_address(address) != uri_address:
            raise ValueError(f"address={address!r} contradicts the URI's server {uri_address!r}")
        if address is False:
            raise ValueError("address=False (read in this process) contradicts a mef3:// URI")
        return SourceSpec(p, password or None, engine, uri_address)
    if address is False:
        address = None
    elif address is None:
        address = get_default_address()
    else:
        address = _check_address(address)
    if address is None:
        p = os.path.abspath(os.path.expanduser(p))
    return SourceSpec(p, password or None, engine, address)
