"""What a recording is read through: in this process or through a server, chosen in one place.

A *source* is an open recording behind one protocol (`RecordingSource`): an `EmbeddedSource`
(a reader of this process) or a `RemoteSource` (a mef3lab server). A `SourceSpec` says how
to open one; `resolve` makes the spec for a path or ``mef3://`` URI; `open` gives a counted
use of the process's source for it (a `SourceHandle`), and `REGISTRY` keeps them.
"""

from .address import URI_SCHEME, get_default_address, parse_uri, resolve, set_default_address
from .base import RecordingSource, SourceSpec
from .embedded import EMBEDDED_CHUNK_BYTES, EMBEDDED_SEGMENT_SECONDS, EmbeddedSource
from .registry import REGISTRY, SourceHandle, SourceRegistry, open, open_source

__all__ = [
    "EMBEDDED_CHUNK_BYTES",
    "EMBEDDED_SEGMENT_SECONDS",
    "REGISTRY",
    "URI_SCHEME",
    "EmbeddedSource",
    "RecordingSource",
    "SourceHandle",
    "SourceRegistry",
    "SourceSpec",
    "get_default_address",
    "open",
    "open_source",
    "parse_uri",
    "resolve",
    "set_default_address",
]


def __getattr__(name: str):
    """`RemoteSource`, imported on first use: gRPC loads only when a remote source is asked for."""
    if name == "RemoteSource":
        from .remote import RemoteSource

        return RemoteSource
    raise AttributeError(f"module 'mef3lab.sources' has no attribute {name!r}")
