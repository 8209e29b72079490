"""Who may see what on the HTTP side (status page, ``/api/status``, ``/metrics``).

A recording's path says whose recording it is, so what a caller sees depends on who they are:

* the server's own user on the Unix socket (peer credentials: the proxy of that user's
  Jupyter, or the user's own kernel) sees everything, with or without authentication;
* with authentication on (``--token-file``/``MEF3LAB_TOKEN`` or ``--hub-auth``, the same
  `Authenticator` as the gRPC side), every other caller must send ``Authorization: Bearer
  <token>`` (or JupyterHub's ``Authorization: token <token>``) and then sees only the
  recordings that user has open, with their paths; without a valid token: 401, nothing;
* without authentication, TCP callers cannot be told apart: they see every recording's
  counts, never a path (what a server on localhost always showed).
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

from ...errors import Mef3LabError
from ..core.sessions import Recording
from ..rpc.auth import Authenticator


@dataclass(frozen=True)
class Viewer:
    """What one HTTP caller may see: everything (`owner`), one `user`'s recordings, or counts only."""

    owner: bool = False
    user: str | None = None

    @property
    def shows_paths(self) -> bool:
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


def viewer_for(handler: BaseHTTPRequestHandler, authenticator: Authenticator | None) -> Viewer:
    """Who the caller of `handler`'s request is; raises `Refused` when auth is on and they proved nothing."""
    if is_owner(handler):
        return Viewer(owner=True)
    if authenticator is None:
        return Viewer()
    token = _token(handler.headers.get("Authorization", ""))
    if not token:
        raise Refused(401, "this server needs a token: send 'Authorization: Bearer <token>'")
    try:
        caller = authenticator.authenticate(token)
    except Mef3LabError as exc:  # the check itself failed (the hub is down)
        raise Refused(503, str(exc)) from None
    if caller is None:
        raise Refused(401, "the token was not accepted")
    return Viewer(user=caller.user)


def is_owner(handler: BaseHTTPRequestHandler) -> bool:
    """True for a Unix-socket caller running as this server's user; False for everyone else."""
    sock = handler.connection
    if sock.family != socket.AF_UNIX or not hasattr(socket, "SO_PEERCRED"):
        return False
    _pid, uid, _gid = struct.unpack(
        "3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    )
    return uid == os.geteuid()


def _token(header: str) -> str:
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() in ("bearer", "token") else ""
