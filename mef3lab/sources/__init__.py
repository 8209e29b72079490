"""What a recording is read through: in this process or through a server, chosen in one place.

A *source* is an open recording behind one protocol (`RecordingSource`): an
`EmbeddedSource` (a reader of this process) or a `RemoteSource` (a mef3lab server). A
`SourceSpec` says how to open one; `resolve` makes the spec for a path or ``mef3://`` URI;
the registry keeps each process's open sources.
"""

from .address import URI_SCHEME, get_default_address, parse_uri, resolve, set_default_address
from .base import RecordingSource, SourceSpec
from .embedded import EMBEDDED_CHUNK_BYTES, EMBEDDED_SEGMENT_SECONDS, EmbeddedSource
from .registry import acquire, close_all, discard, install, known_spec, open_source, release, retain

__all__ = [
    "EMBEDDED_CHUNK_BYTES",
    "EMBEDDED_SEGMENT_SECONDS",
    "URI_SCHEME",
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
    "resolve",
    "retain",
    "set_default_address",
]


def __getattr__(name: str):
    if name == "RemoteSource":  # gRPC loads only when a remote source is asked for
        from .remote import RemoteSource

        return RemoteSource
    raise AttributeError(f"module 'mef3lab.sources' has no attribute {name!r}")
