"""Assembling a running server: engine + services + health on a gRPC server, and its lifecycle.

`Server(...).start()` runs in the background of the calling process (notebooks, tests,
the seed's `gRPCMef3ServerHandler` use); `serve(config)` runs in the foreground until
SIGTERM or Ctrl-C, then drains in-flight calls and stops every reader process.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import weakref
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from ..protocol import gRPCMef3Server_pb2_grpc as compat_pb_grpc
from ..protocol import mef3lab_pb2_grpc as pb_grpc
from ..protocol.wire import MAX_MESSAGE_BYTES
from . import discovery
from .config import HTTP_PREFIX, READY_PREFIX, ServerConfig
from .core.engine import Engine, pool_for
from .core.quarantine import Quarantine
from .core.roots import ServedRoots
from .http.server import StatusHTTP
from .rpc.auth import AuthInterceptor, authenticator_for, check_exposure
from .rpc.compat import CompatService
from .rpc.service import Mef3LabService

log = logging.getLogger("mef3lab.server")

#: Receive limit: requests are small, but a generous limit costs nothing and avoids surprises.
GRPC_OPTIONS = [
    ("grpc.max_receive_message_length", 16 * MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", 16 * MAX_MESSAGE_BYTES),
    ("grpc.so_reuseport", 0),
]
SERVICE_NAMES = ("mef3lab.v1.Mef3Lab", "gRPCMef3Server")


class Server:
    """A mef3lab server running in this process (its readers in worker processes)."""

    def __init__(self, config: ServerConfig | None = None, **overrides: Any) -> None:
        self.config = ServerConfig.from_env(**overrides) if config is None else config
        self.engine: Engine | None = None
        self._grpc: grpc.Server | None = None
        self._health: health.HealthServicer | None = None
        self.port: int | None = None
        self._finalizer: weakref.finalize | None = None
        self.http: StatusHTTP | None = None

    @property
    def address(self) -> str:
        """Where clients connect: ``host:port``, or ``unix:/path`` for a server without a TCP listener."""
        if self.config.port < 0:
            return f"unix:{self.config.unix_socket}"
        host = "127.0.0.1" if self.config.host in ("0.0.0.0", "::", "") else self.config.host
        host = f"[{host}]" if ":" in host else host
        return f"{host}:{self.port}"

    @property
    def http_urls(self) -> list[str]:
        """Where the status page answers (empty without `http_port`/`http_socket`)."""
        return self.http.urls if self.http else []

    def start(self) -> Server:
        if self._grpc is not None:
            return self
        # Everything a shared server is told is checked before any reader process starts.
        roots = ServedRoots.parse(self.config.root, self.config.allow_group)
        authenticator = authenticator_for(self.config)
        check_exposure(self.config, authenticator is not None)
        credentials = tls_credentials(self.config)
        pool = Quarantine(pool_for(self.config), self.config.quarantine_crashes)
        engine = Engine(self.config, pool=pool, resolve=_resolver(roots) if roots else None)
        interceptors = [AuthInterceptor(authenticator)] if authenticator else []
        server = grpc.server(
            futures.ThreadPoolExecutor(self.config.grpc_threads, thread_name_prefix="mef3lab-rpc"),
            options=GRPC_OPTIONS,
            interceptors=interceptors,
        )
        pb_grpc.add_Mef3LabServicer_to_server(Mef3LabService(engine, roots), server)
        compat_pb_grpc.add_gRPCMef3ServerServicer_to_server(CompatService(engine), server)
        self._health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        http = None
        try:
            if self.config.port >= 0:
                self.port = (
                    server.add_secure_port(self.config.address, credentials)
                    if credentials
                    else server.add_insecure_port(self.config.address)
                )
                if not self.port:
                    raise OSError(f"cannot listen on {self.config.address}")
            if self.config.unix_socket:
                _listen_unix(server, self.config.unix_socket, owner_only=authenticator is None)
            server.start()
            if self.config.http_port >= 0 or self.config.http_socket:
                http = StatusHTTP(engine, self.config, self.address, authenticator).start()
        except BaseException:
            server.stop(None)
            engine.shutdown()
            raise
        for name in ("",) + SERVICE_NAMES:
            self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self.engine, self._grpc, self.http = engine, server, http
        # No orphans even if the owner forgets stop(): the finalizer runs at exit or collection.
        self._finalizer = weakref.finalize(self, _stop, server, engine, self._health, http, 1.0)
        log.info(
            "mef3lab server listening on %s (%d reader processes; %s; %s; %s)",
            self.address,
            self.config.n_process_workers,
            "TLS" if credentials else "no TLS",
            type(authenticator).__name__ if authenticator else "no authentication",
            f"roots {', '.join(roots.roots)}" if roots else "any path",
        )
        return self

    def stop(self, grace: float | None = 5.0) -> None:
        """Stop accepting calls, let in-flight ones finish for up to `grace` s, stop the workers."""
        if self._finalizer is not None and self._finalizer.alive:
            self._finalizer.detach()
            _stop(self._grpc, self.engine, self._health, self.http, grace)
        self._grpc = None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server stops (True) or `timeout` passes (False)."""
        return self._grpc.wait_for_termination(timeout) if self._grpc else True

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"listening on {self.address}" if self._grpc else "stopped"
        return f"<mef3lab.Server {state}>"


def _resolver(roots: ServedRoots):
    """The engine's path rule on a server with roots: inside a root this caller may read, or refused."""
    return lambda client, path: roots.resolve(path, getattr(client, "groups", None))


def tls_credentials(config: ServerConfig) -> grpc.ServerCredentials | None:
    """The server's TLS credentials from --tls-cert/--tls-key (None: plain TCP)."""
    if not (config.tls_cert or config.tls_key):
        return None
    if not (config.tls_cert and config.tls_key):
        raise ValueError("TLS needs both --tls-cert and --tls-key")
    with open(config.tls_key, "rb") as k, open(config.tls_cert, "rb") as c:
        return grpc.ssl_server_credentials([(k.read(), c.read())])


def _listen_unix(server: grpc.Server, path: str, owner_only: bool) -> None:
    """Listen on a Unix socket; without authentication, only this server's user may connect."""
    previous = os.umask(0o177) if owner_only else None
    try:
        if not server.add_insecure_port(f"unix:{path}"):
            raise OSError(f"cannot listen on the Unix socket {path}")
    finally:
        if previous is not None:
            os.umask(previous)
    if owner_only and os.path.exists(path):
        os.chmod(path, 0o600)


def _stop(
    server: grpc.Server,
    engine: Engine,
    health_servicer,
    http: StatusHTTP | None,
    grace: float | None,
) -> None:
    if health_servicer is not None:
        health_servicer.enter_graceful_shutdown()
    if http is not None:
        http.stop()
    server.stop(grace).wait()
    engine.shutdown()


def serve(config: ServerConfig, owner_pid: int | None = None) -> int:
    """Run in the foreground until SIGTERM/SIGINT (or until `owner_pid` exits); drain, stop workers, return 0."""
    server = Server(config).start()
    done = threading.Event()

    def on_signal(signum, _frame):
        log.info("received %s: draining in-flight calls", signal.Signals(signum).name)
        done.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for url in server.http_urls:
            print(f"{HTTP_PREFIX}{url}", flush=True)
        if config.discovery_file:  # before the ready line: whoever waits for it can read the file
            try:
                discovery.write(config.discovery_file, server.address, server.http_urls)
            except OSError as exc:  # serving matters more than being found
                log.warning(
                    "cannot write the discovery file %s (%s): kernels will start their own servers",
                    config.discovery_file,
                    exc,
                )
        print(f"{READY_PREFIX}{server.address}", flush=True)
        while not done.wait(0.5):
            if owner_pid is not None and os.getppid() != owner_pid:
                log.info(
                    "the process that started this server (pid %d) is gone: stopping", owner_pid
                )
                break
    finally:
        if config.discovery_file:
            discovery.remove(config.discovery_file)
        server.stop(grace=5.0)
        for s, h in previous.items():
            signal.signal(s, h)
    log.info("mef3lab server stopped")
    return 0
