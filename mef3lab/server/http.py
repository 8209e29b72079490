"""The server's HTTP side: ``/`` (a self-refreshing status page), ``/api/status`` (JSON), ``/metrics``.

gRPC cannot pass through jupyter-server-proxy, which carries HTTP and websockets; this second
listener is what the proxy (and a lab's Prometheus) talks to. It listens where gRPC does
(`host`, localhost by default) on `http_port`, and/or on the Unix socket `http_socket`.

Who sees paths: a recording's path says whose recording it is, so it is shown only to a
caller who could open it. The HTTP side does not check the gRPC side's tokens (`auth`) yet,
so that is decided by `owner_only`: a caller on the Unix socket whose peer credentials are
the server's own user (the proxy of that user's Jupyter, or the user's own kernel). TCP
callers cannot be told apart, so they get everything but paths. `StatusHTTP(authorize=...)`
is the seam for a token- or hub-based decision (per caller, per root).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import socketserver
import stat
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from .config import ServerConfig
from .engine import Engine
from .metrics import CONTENT_TYPE_LATEST, exposition
from .status import render_page, status

log = logging.getLogger(__name__)

#: Decides whether the caller of a request may see recording paths.
Authorize = Callable[[BaseHTTPRequestHandler], bool]


def owner_only(handler: BaseHTTPRequestHandler) -> bool:
    """True for a Unix-socket caller running as this server's user; False for everyone else."""
    sock = handler.connection
    if sock.family != socket.AF_UNIX or not hasattr(socket, "SO_PEERCRED"):
        return False
    _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                          struct.calcsize("3i")))
    return uid == os.geteuid()


class _Handler(BaseHTTPRequestHandler):
    server_version = "mef3lab"

    def do_GET(self) -> None:  # noqa: N802 - the http.server spelling
        app: StatusHTTP = self.server.app  # type: ignore[attr-defined]
        route = self.path.split("?", 1)[0]
        try:
            if route in ("/", "/index.html"):
                self._send(200, "text/html; charset=utf-8", render_page(app.status(self)).encode())
            elif route == "/api/status":
                self._send(200, "application/json", json.dumps(app.status(self), indent=1).encode())
            elif route == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, exposition(app.engine))
            else:
                self._send(404, "application/json", json.dumps(
                    {"error": f"no such page: {route}; try /, /api/status or /metrics"}).encode())
        except Exception as exc:  # noqa: BLE001 - a status page must never take the server down
            log.exception("status page request %s failed", route)
            self._send(500, "application/json", json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode())

    def _send(self, code: int, content_type: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        log.debug("http: " + format, *args)


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class StatusHTTP:
    """The HTTP listeners of one server (TCP and/or Unix socket), each served by a daemon thread."""

    def __init__(self, engine: Engine, config: ServerConfig, address: str, authorize: Authorize = owner_only) -> None:
        self.engine, self.config, self.address, self.authorize = engine, config, address, authorize
        self.urls: list[str] = []
        self._servers: list[socketserver.BaseServer] = []

    def status(self, handler: BaseHTTPRequestHandler) -> dict:
        return status(self.engine, self.address, show_paths=self.authorize(handler))

    def start(self) -> "StatusHTTP":
        try:
            if self.config.http_port >= 0:
                tcp = ThreadingHTTPServer((self.config.host, self.config.http_port), _Handler)
                tcp.daemon_threads = True
                host = "127.0.0.1" if self.config.host in ("0.0.0.0", "::", "") else self.config.host
                self._serve(tcp, f"http://{host}:{tcp.server_address[1]}/")
            if self.config.http_socket:
                _unlink_stale_socket(self.config.http_socket)
                self._serve(_UnixHTTPServer(self.config.http_socket, _Handler), f"unix:{self.config.http_socket}")
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
        for server in self._servers:
            server.shutdown()
            server.server_close()
        if any(isinstance(s, _UnixHTTPServer) for s in self._servers):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.config.http_socket)
        self._servers.clear()


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
