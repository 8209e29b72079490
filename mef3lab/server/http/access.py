"""Who may see what on the HTTP side (status page, ``/api/status``, ``/metrics``).

A recording's path says whose recording it is, so each request gets a `Viewer`: the server's
own user on the Unix socket sees everything; with authentication on, a caller with a token
sees that user's recordings; without authentication, TCP callers see counts, never a path.
The rules in full are in ``docs/serving.md``.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from ...errors import Mef3LabError
from ..core.recordings import Recording
from ..rpc.auth import Authenticator


@dataclass(frozen=True)
class Viewer:
    """What one HTTP caller may see: everything (`owner`), one `user`'s recordings, or counts."""

    owner: bool = False
    user: str | None = None

    @property
    def shows_paths(self) -> bool:
        """Whether this caller may see where recordings are."""
        return self.owner or self.user is not None

    def sees(self, rec: Recording) -> bool:
        """Whether `rec` is listed for this caller at all."""
        if self.owner or self.user is None:
            return True
        return any(
            getattr(getattr(c, "caller", None), "user", None) == self.user for c in rec.clients
        )


class Refused(Exception):
    """The caller may see nothing: `status` is the HTTP status to answer, the message says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def viewer_for(
    headers: Mapping[str, str], sock: socket.socket | None, authenticator: Authenticator | None
) -> Viewer:
    """Who the caller of a request is.

    Parameters
    ----------
    headers : Mapping of str to str
        The request's headers (its ``Authorization``).
    sock : socket.socket or None
        The connection it came on (None: unknown).
    authenticator : Authenticator or None
        The server's token check (None: authentication is off).

    Returns
    -------
    Viewer
        What the caller may see.

    Raises
    ------
    Refused
        Authentication is on and the caller brought no valid token (401), or the token
        could not be checked (503).
    """
    if is_owner(sock):
        return Viewer(owner=True)
    if authenticator is None:
        return Viewer()
    token = _token(headers.get("Authorization", ""))
    if not token:
        raise Refused(401, "this server needs a token: send 'Authorization: Bearer <token>'")
    try:
        caller = authenticator.authenticate(token)
    except Mef3LabError as exc:  # the check itself failed (the hub is down)
        raise Refused(503, str(exc)) from None
    if caller is None:
        raise Refused(401, "the token was not accepted")
    return Viewer(user=caller.user)


def is_owner(sock: socket.socket | None) -> bool:
    """True for a Unix-socket caller running as this server's user; False for everyone else."""
    if sock is None or sock.family != socket.AF_UNIX or not hasattr(socket, "SO_PEERCRED"):
        return False
    _pid, uid, _gid = struct.unpack(
        "3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    )
    return uid == os.geteuid()


def _token(header: str) -> str:
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() in ("bearer", "token") else ""
