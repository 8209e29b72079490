"""The HTTP listeners: ``/`` (a self-refreshing status page), ``/api/status`` (JSON), ``/metrics``.

gRPC cannot pass through jupyter-server-proxy, which carries HTTP and websockets: this is
what the proxy (and a lab's Prometheus) talks to, on `http_port` and/or `http_socket`. Under
a JupyterHub, routes are also served under the hub's ``JUPYTERHUB_SERVICE_PREFIX``. Who sees
what is decided per request by `access`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import socketserver
import stat
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ..config import ServerConfig
from ..core.engine import Engine
from ..rpc.auth import Authenticator
from .access import Refused, viewer_for
from .metrics import CONTENT_TYPE_LATEST, exposition
from .status import render_page, status

log = logging.getLogger(__name__)


class _Handler(BaseHTTPRequestHandler):
    server_version = "mef3lab"

    def do_GET(self) -> None:  # the http.server spelling
        app: StatusHTTP = self.server.app  # type: ignore[attr-defined]
        route = self.path.split("?", 1)[0]
        if app.prefix != "/" and route.startswith(app.prefix):
            route = "/" + route[len(app.prefix) :]
        try:
            if route not in ("/", "/index.html", "/api/status", "/metrics"):
                self._send(
                    404,
                    "application/json",
                    json.dumps(
                        {"error": f"no such page: {route}; try /, /api/status or /metrics"}
                    ).encode(),
                )
                return
            viewer = viewer_for(self, app.authenticator)
            if route == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, exposition(app.engine))
            elif route == "/api/status":
                body = json.dumps(status(app.engine, app.address, viewer), indent=1)
                self._send(200, "application/json", body.encode())
            else:
                self._send(
                    200,
                    "text/html; charset=utf-8",
                    render_page(status(app.engine, app.address, viewer)).encode(),
                )
        except Refused as no:
            self._send(
                no.status,
                "application/json",
                json.dumps({"error": str(no)}).encode(),
                {"WWW-Authenticate": 'Bearer realm="mef3lab"'} if no.status == 401 else {},
            )
        except Exception as exc:  # a status page must never take the server down
            log.exception("status page request %s failed", route)
            self._send(
                500,
                "application/json",
                json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode(),
            )

    def _send(
        self, code: int, content_type: str, body: bytes, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(code)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # the base class's signature
        log.debug("http: " + format, *args)


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class StatusHTTP:
    """The HTTP listeners of one server (TCP and/or Unix socket), each served by a daemon thread.

    Parameters
    ----------
    engine : Engine
        Whose state the pages show.
    config : ServerConfig
        Where to listen: `host` and `http_port`, `http_socket`.
    address : str
        The server's gRPC address, shown on the page.
    authenticator : Authenticator, optional
        The token check of the gRPC side (None: authentication is off).

    Attributes
    ----------
    urls : list of str
        Where the pages answer, once started.
    """

    def __init__(
        self,
        engine: Engine,
        config: ServerConfig,
        address: str,
        authenticator: Authenticator | None = None,
    ) -> None:
        self.engine, self.config, self.address, self.authenticator = (
            engine,
            config,
            address,
            authenticator,
        )
        self.prefix = _service_prefix()
        self.urls: list[str] = []
        self._servers: list[socketserver.BaseServer] = []

    def start(self) -> StatusHTTP:
        """Listen and serve, each listener in a daemon thread.

        Returns
        -------
        StatusHTTP
            These listeners, serving.

        Raises
        ------
        OSError
            A listener cannot listen (another server on the socket, a port in use); none is
            left running.
        """
        try:
            if self.config.http_port >= 0:
                tcp = ThreadingHTTPServer((self.config.host, self.config.http_port), _Handler)
                tcp.daemon_threads = True
                host = (
                    "127.0.0.1" if self.config.host in ("0.0.0.0", "::", "") else self.config.host
                )
                self._serve(tcp, f"http://{host}:{tcp.server_address[1]}/")
            if self.config.http_socket:
                _unlink_stale_socket(self.config.http_socket)
                self._serve(
                    _UnixHTTPServer(self.config.http_socket, _Handler),
                    f"unix:{self.config.http_socket}",
                )
        except OSError as exc:
            self.stop()
            raise OSError(f"the status page cannot listen ({exc})") from exc
        return self

    def _serve(self, server: socketserver.BaseServer, url: str) -> None:
        server.app = self  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, name="mef3lab-http", daemon=True).start()
        self._servers.append(server)
        self.urls.append(url)

    def stop(self) -> None:
        """Stop every listener and remove the Unix socket."""
        for server in self._servers:
            server.shutdown()
            server.server_close()
        if any(isinstance(s, _UnixHTTPServer) for s in self._servers):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.config.http_socket)
        self._servers.clear()


def _service_prefix() -> str:
    """The hub's JUPYTERHUB_SERVICE_PREFIX as ``/services/NAME/`` ("/" outside a hub)."""
    inner = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "").strip("/")
    return f"/{inner}/" if inner else "/"


def _unlink_stale_socket(path: str) -> None:
    """Remove a socket file nobody listens on any more (binding fails on it); refuse a live one."""
    try:
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            return  # not a socket: binding fails with a clear error and nothing is removed
    except FileNotFoundError:
        return
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)
            return
    raise OSError(f"another server is already listening on {path}")
