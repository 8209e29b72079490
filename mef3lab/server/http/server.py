"""The HTTP listeners: the status page, ``/api/status``, ``/metrics`` and ``/healthz``.

``/`` refreshes itself, ``/api/status`` is its JSON, ``/healthz`` says only that the server
is up (for Docker and orchestrators, without a token). gRPC cannot pass through
jupyter-server-proxy, which carries HTTP and websockets: this is what the proxy (and a lab's
Prometheus) talks to, on `http_port` and/or `http_socket`; under a JupyterHub, also under
the hub's ``JUPYTERHUB_SERVICE_PREFIX``. Who sees what is decided per request by `access`.
A tornado server on an event loop of its own, with timeouts and a connection limit, so that
slow or half-sent requests hold no thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import ssl
import stat
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import tornado.httpserver
import tornado.netutil
import tornado.web

from ..config import ServerConfig
from ..core.engine import Engine
from ..rpc.auth import Authenticator
from .access import Refused, viewer_for
from .metrics import CONTENT_TYPE_LATEST, exposition
from .status import render_page, status

log = logging.getLogger(__name__)

#: A connection that sends no complete request (headers) for this long is closed.
IDLE_TIMEOUT_S = 10.0
#: Connections open at once on one listener, and from one host; more are closed at once.
MAX_CONNECTIONS = 512
MAX_CONNECTIONS_PER_HOST = 32
#: Requests are GETs: a body or headers larger than this are refused.
MAX_REQUEST_BYTES = 16 * 1024
ROUTES = ("/", "/index.html", "/api/status", "/metrics", "/healthz")


class _Pages(tornado.web.RequestHandler):
    """Every route; who the caller is is settled from the headers, before anything else."""

    def initialize(self, app: StatusHTTP) -> None:
        self.app = app

    async def get(self, route: str) -> None:
        app = self.app
        route = "/" + route
        if app.prefix != "/" and route.startswith(app.prefix):
            route = "/" + route[len(app.prefix) :]
        if route == "/healthz":  # up or not, nothing else: no token needed
            self._send(200, "text/plain; charset=utf-8", b"ok\n")
            return
        if route not in ROUTES:
            self._send_json(
                404, {"error": f"no such page: {route}; try /, /api/status or /metrics"}
            )
            return
        sock = getattr(self.request.connection.stream, "socket", None)
        try:
            # The token check may ask the hub, and a page reads the engine: both on the pool.
            code, kind, body = await asyncio.get_running_loop().run_in_executor(
                app.executor, self._page, route, dict(self.request.headers), sock
            )
        except Refused as no:
            if no.status == 401:
                self.set_header("WWW-Authenticate", 'Bearer realm="mef3lab"')
            self._send_json(no.status, {"error": str(no)})
            return
        except Exception as exc:  # a status page must never take the server down
            log.exception("status page request %s failed", route)
            self._send_json(500, {"error": f"{type(exc).__name__}: {exc}"})
            return
        self._send(code, kind, body)

    def _page(self, route: str, headers, sock) -> tuple[int, str, bytes]:
        app = self.app
        viewer = viewer_for(headers, sock, app.authenticator)
        if route == "/metrics":
            return 200, CONTENT_TYPE_LATEST, exposition(app.engine)
        if route == "/api/status":
            body = json.dumps(status(app.engine, app.address, viewer), indent=1)
            return 200, "application/json", body.encode()
        page = render_page(status(app.engine, app.address, viewer))
        return 200, "text/html; charset=utf-8", page.encode()

    def _send_json(self, code: int, body: dict) -> None:
        self._send(code, "application/json", json.dumps(body).encode())

    def _send(self, code: int, content_type: str, body: bytes) -> None:
        self.set_status(code)
        self.set_header("Content-Type", content_type)
        self.set_header("Cache-Control", "no-store")
        self.finish(body)

    def log_exception(self, typ, value, tb) -> None:  # tornado's signature
        log.debug("http: %s", value)


class _LimitedHTTPServer(tornado.httpserver.HTTPServer):
    """A tornado HTTP server that closes connections beyond its limits at once.

    At most `MAX_CONNECTIONS` in all, and `MAX_CONNECTIONS_PER_HOST` from one TCP host (a
    Unix socket's callers are one host), so one host's idle connections cannot shut out
    another's.
    """

    def initialize(self, *args, **kwargs) -> None:
        """Set up as tornado's server (which is configured here, not in ``__init__``)."""
        super().initialize(*args, **kwargs)
        self._hosts: dict = {}
        self._per_host: Counter[str] = Counter()

    def handle_stream(self, stream, address) -> None:
        """Serve the connection, or close it when the server or its host has too many."""
        host = address[0] if isinstance(address, tuple) else "unix"
        if (
            len(self._connections) >= MAX_CONNECTIONS
            or self._per_host[host] >= MAX_CONNECTIONS_PER_HOST
        ):
            stream.close()
            return
        self._hosts[stream] = host
        self._per_host[host] += 1
        super().handle_stream(stream, address)

    def on_close(self, server_conn) -> None:
        """Count the connection's host down."""
        host = self._hosts.pop(server_conn.stream, None)
        if host is not None:
            self._per_host[host] -= 1
            if not self._per_host[host]:
                del self._per_host[host]
        super().on_close(server_conn)


class StatusHTTP:
    """The HTTP listeners of one server (TCP and/or Unix socket), on an event loop thread.

    Parameters
    ----------
    engine : Engine
        Whose state the pages show.
    config : ServerConfig
        Where to listen (`host` and `http_port`, `http_socket`), and the TLS files: with
        `tls_cert`, the TCP listener speaks HTTPS with the gRPC side's certificate.
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
        self.executor = ThreadPoolExecutor(4, thread_name_prefix="mef3lab-http")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: list[tornado.httpserver.HTTPServer] = []
        self._unix = False

    def start(self) -> StatusHTTP:
        """Listen and serve on an event loop thread of its own.

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
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="mef3lab-http", daemon=True
        )
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result()
        except OSError as exc:
            self.stop()
            raise OSError(f"the status page cannot listen ({exc})") from exc
        return self

    async def _listen(self) -> None:
        app = tornado.web.Application([(r"/(.*)", _Pages, {"app": self})])
        limits = dict(
            idle_connection_timeout=IDLE_TIMEOUT_S,
            body_timeout=IDLE_TIMEOUT_S,
            max_header_size=MAX_REQUEST_BYTES,
            max_body_size=MAX_REQUEST_BYTES,
        )
        if self.config.http_port >= 0:
            tls = _tls_context(self.config)
            tcp = _LimitedHTTPServer(app, ssl_options=tls, **limits)
            sockets = tornado.netutil.bind_sockets(
                self.config.http_port, self.config.host.strip("[]")
            )
            tcp.add_sockets(sockets)
            self._servers.append(tcp)
            host = self.config.host.strip("[]")
            host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
            host = f"[{host}]" if ":" in host else host
            port = sockets[0].getsockname()[1]
            self.urls.append(f"{'https' if tls else 'http'}://{host}:{port}/")
        if self.config.http_socket:
            _unlink_stale_socket(self.config.http_socket)
            unix = _LimitedHTTPServer(app, **limits)
            try:
                listener = tornado.netutil.bind_unix_socket(self.config.http_socket, 0o600)
            except ValueError as exc:  # a file that is no socket is in the way
                raise OSError(str(exc)) from None
            unix.add_socket(listener)
            self._servers.append(unix)
            self._unix = True
            self.urls.append(f"unix:{self.config.http_socket}")

    def stop(self) -> None:
        """Stop every listener and remove the Unix socket."""
        if self._loop is not None and self._thread is not None and self._thread.is_alive():

            async def close():
                for server in self._servers:
                    server.stop()
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(server.close_all_connections(), 2.0)

            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(close(), self._loop).result(5.0)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5.0)
        if self._unix:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.config.http_socket)
        self._servers.clear()
        self.executor.shutdown(wait=False, cancel_futures=True)


def _tls_context(config: ServerConfig) -> ssl.SSLContext | None:
    """The TCP listener's TLS, with the gRPC side's certificate and key (None: no TLS)."""
    if not (config.tls_cert and config.tls_key):
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.tls_cert, config.tls_key)
    return context


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
