"""Where a path is read: ``mef3://`` URIs, server addresses and the default server.

`resolve` is the one place that turns what a user wrote (a path or URI, an ``address=``)
and the process's default server into a `SourceSpec`.
"""

from __future__ import annotations

import os

from .base import SourceSpec

__all__ = ["URI_SCHEME", "get_default_address", "parse_uri", "resolve", "set_default_address"]

URI_SCHEME = "mef3://"

_default_address: str | None = None


def set_default_address(address: str | None) -> None:
    """Read plain paths through a mef3lab server from now on, or in this process again.

    Applies to what is opened afterwards with ``address=None`` (the default of
    `mef3lab.open_recording`); a ``mef3://`` URI or an explicit ``address`` wins.

    Parameters
    ----------
    address : str or None
        "host:port" or "unix:/absolute/path" of the server; None reads plain paths in this
        process.

    Raises
    ------
    ValueError
        When `address` is neither "host:port" nor "unix:/absolute/path".

    Examples
    --------
    >>> import mef3lab
    >>> mef3lab.set_default_address("lab-server:50051")
    >>> rec = mef3lab.open_recording("/data/sub-01.mefd")  # doctest: +SKIP
    >>> mef3lab.set_default_address(None)
    """
    global _default_address
    _default_address = _check_address(address) if address is not None else None


def get_default_address() -> str | None:
    """The server plain paths are read through (`set_default_address`), or None: this process."""
    return _default_address


def parse_uri(uri: str) -> tuple[str, str]:
    """Split a ``mef3://`` URI into the server's address and the path on the server.

    Parameters
    ----------
    uri : str
        ``mef3://host:port/abs/path.mefd``.

    Returns
    -------
    tuple of str
        ``("host:port", "/abs/path.mefd")``.

    Raises
    ------
    ValueError
        When `uri` is not a ``mef3://`` URI, names no recording, or its address is malformed.
    """
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

    A ``mef3://host:port/...`` URI is read through that server; a plain path through the
    server `address` names, else through the default server when one is set, else in this
    process (made absolute).

    Parameters
    ----------
    path : str or os.PathLike
        A ``.mefd`` folder or a ``mef3://host:port/abs/path.mefd`` URI.
    password : str, optional
        The recording's password (an empty one counts as none).
    engine : str, optional
        The decoder for reads in this process; None: the reader's default.
    address : str or bool, optional
        "host:port" or "unix:/path" of a server (it must agree with a URI's); None: the
        default server, if any; False: this process even when a default server is set.

    Returns
    -------
    SourceSpec
        How to open the recording.

    Raises
    ------
    ValueError
        When the URI or address is malformed, or `address` contradicts the URI.
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
