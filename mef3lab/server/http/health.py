"""Asking a server's status listener whether it is up: ``mef3lab health``, Docker's HEALTHCHECK.

It asks ``/healthz`` where the server's own settings say the listener is: over HTTPS,
trusting the server's certificate, when the server serves TLS, else over HTTP, on the TCP
port or else the Unix socket. So one command works whatever the container's settings.
"""

from __future__ import annotations

import http.client
import socket
import ssl

from ...errors import ServerUnavailableError
from ..config import ServerConfig

#: Seconds a check waits for the listener's answer.
HEALTH_TIMEOUT_S = 5.0


class UnixHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection over a Unix socket.

    Parameters
    ----------
    path : str
        The socket's path.
    timeout : float
        Seconds for connecting and for each read.
    """

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        """Connect to the socket, with the connection's timeout."""
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def check_health(config: ServerConfig, timeout: float = HEALTH_TIMEOUT_S) -> str:
    """Ask the status listener of the server that `config` describes whether it is up.

    Parameters
    ----------
    config : ServerConfig
        The server's settings: `http_port` and `host` (a wildcard host is asked on
        loopback), else `http_socket`; `tls_cert` when it serves TLS (the certificate is
        trusted as it is, its host name not checked: the listener asked is the local one).
    timeout : float
        Seconds to wait for the answer.

    Returns
    -------
    str
        The URL that answered.

    Raises
    ------
    mef3lab.errors.ServerUnavailableError
        When the server has no status listener, does not answer in time, or answers
        anything but 200.

    Examples
    --------
    >>> from mef3lab.server.config import ServerConfig
    >>> check_health(ServerConfig(http_port=8080))  # doctest: +SKIP
    'http://127.0.0.1:8080/healthz'
    """
    if config.http_port >= 0:
        host = config.host.strip("[]")
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
        shown = f"[{host}]" if ":" in host else host
        if config.tls_cert:
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, config.http_port, timeout=timeout, context=_trusting(config.tls_cert)
            )
            url = f"https://{shown}:{config.http_port}/healthz"
        else:
            conn = http.client.HTTPConnection(host, config.http_port, timeout=timeout)
            url = f"http://{shown}:{config.http_port}/healthz"
    elif config.http_socket:
        conn = UnixHTTPConnection(config.http_socket, timeout)
        url = f"unix:{config.http_socket} /healthz"
    else:
        raise ServerUnavailableError(
            "this server has no status listener to ask (set HTTP_PORT or HTTP_SOCKET)"
        )
    try:
        conn.request("GET", "/healthz")
        reply = conn.getresponse()
        body = reply.read(64)
    except (OSError, http.client.HTTPException) as exc:
        raise ServerUnavailableError(f"{url} did not answer: {exc}") from None
    finally:
        conn.close()
    if reply.status != 200:
        raise ServerUnavailableError(f"{url} answered {reply.status} {body!r}")
    return url


def _trusting(cert: str) -> ssl.SSLContext:
    """A client context that trusts `cert` (the server's own chain), whatever host it names."""
    context = ssl.create_default_context(cafile=cert)
    context.check_hostname = False
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # the leaf itself is the anchor
    return context


__all__ = ["HEALTH_TIMEOUT_S", "UnixHTTPConnection", "check_health"]
