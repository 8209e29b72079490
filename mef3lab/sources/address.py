"""Where a path is read: ``mef3://`` URIs, server addresses and the default server."""

from __future__ import annotations

import os

from .base import SourceSpec

__all__ = ["URI_SCHEME", "get_default_address", "parse_uri", "resolve", "set_default_address"]

URI_SCHEME = "mef3://"

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
        raise ValueError(
            f"{uri!r} names no recording; expected mef3://host:port/absolute/path.mefd"
        )
    return _check_address(address), "/" + path


def _check_address(address: str) -> str:
    address = str(address)
    if address.startswith("unix:"):
        if not address[len("unix:") :].startswith("/"):
            raise ValueError(f"a Unix socket address is 'unix:/absolute/path', not {address!r}")
        return address
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(
            f"a server address is 'host:port' or 'unix:/path/to/socket', not {address!r}"
        )
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
