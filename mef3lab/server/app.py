"""A running server: the engine, both gRPC services, health and the status page, and its lifecycle.

`Server` runs in the background of the calling process (notebooks, tests, where the seed used
`gRPCMef3ServerHandler`); `serve` runs one in the foreground, as ``mef3lab serve`` does.
How to run, secure and watch a server: ``docs/serving.md``.
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

from ..protocol import gRPCMef3Server_pb2_grpc as compat_pb_grpc
from ..protocol import mef3lab_pb2_grpc as pb_grpc
from ..protocol.wire import MAX_MESSAGE_BYTES
from . import discovery
from .config import HTTP_PREFIX, READY_PREFIX, ServerConfig
from .core.engine import Engine, pool_for
from .core.inflight import BytesInFlight
from .core.openings import OneOpening
from .core.quarantine import Quarantine
from .core.roots import ServedRoots
from .http.server import StatusHTTP
from .rpc.auth import authenticator_for, check_exposure
from .rpc.compat import CompatService
from .rpc.loop import AioServer
from .rpc.service import Mef3LabService
from .rpc.threads import ThreadedHandlers

log = logging.getLogger("mef3lab.server")

#: Replies well above the largest message the server sends; requests (a path, a window, a
#: channel list) at most one message: a larger one is refused before it is parsed, since
#: parsing a million names costs the server far more than it costs the sender. No port
#: sharing. Clients' keepalive pings are welcome during a long call that sends nothing yet
#: (gRPC's default answers a second such ping within 5 minutes with GOAWAY "too_many_pings",
#: which ends every call of that client).
GRPC_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", 16 * MAX_MESSAGE_BYTES),
    ("grpc.so_reuseport", 0),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
]
SERVICE_NAMES = ("mef3lab.v1.Mef3Lab", "gRPCMef3Server")


class Server:
    """A mef3lab server running in this process, its readers in worker processes.

    One engine (reader processes, segment cache, prefetch) serves mef3lab's own gRPC API and
    the lab's `gRPCMef3Server` API on one port, with gRPC health checking, and optionally a
    status page. `start` returns once it listens; an event loop of this process sends the
    replies, and a thread pool does the calls' work, until `stop` (a client that stops
    reading holds no thread: docs/serving.md). A server nobody stopped is stopped when it is
    garbage collected or the interpreter exits, so no reader process outlives it.

    Parameters
    ----------
    config : ServerConfig, optional
        The settings. Without them: `ServerConfig.from_env`, i.e. the defaults, then the
        environment variables, then `overrides`.
    **overrides
        Settings by field name (``port=0``, ``n_process_workers=2``, ...), used only without
        `config`; a None value leaves that setting as it is.

    Attributes
    ----------
    config : ServerConfig
        The settings it runs with.
    engine : Engine or None
        The engine, while the server runs.
    port : int or None
        The TCP port it listens on (the one picked for ``port=0``), once started.
    http : StatusHTTP or None
        The status page's listeners, while it runs with ``http_port`` or ``http_socket``.

    See Also
    --------
    ServerProcess : The same server in a child process that dies with its owner.
    serve : The same server in the foreground, as ``mef3lab serve`` runs it.

    Notes
    -----
    Reader processes are spawned as `multiprocessing` spawns them: in a script, start the
    server under ``if __name__ == "__main__":``.

    Examples
    --------
    >>> from mef3lab import Server, Mef3Client
    >>> with Server(port=0, n_process_workers=1) as server:  # doctest: +SKIP
    ...     Mef3Client(server.address).open_file("/data/patient1.mefd")
    """

    def __init__(self, config: ServerConfig | None = None, **overrides: Any) -> None:
        self.config = ServerConfig.from_env(**overrides) if config is None else config
        self.engine: Engine | None = None
        self._grpc: AioServer | None = None
        self.port: int | None = None
        self._finalizer: weakref.finalize | None = None
        self.http: StatusHTTP | None = None

    @property
    def address(self) -> str:
        """Where clients connect: ``host:port``, or ``unix:/path`` without a TCP listener."""
        if self.config.port < 0:
            return f"unix:{self.config.unix_socket}"
        host = "127.0.0.1" if self.config.host in ("0.0.0.0", "::", "") else self.config.host
        host = f"[{host}]" if ":" in host else host
        return f"{host}:{self.port}"

    @property
    def listening(self) -> str:
        """Where it listens, as configured (``0.0.0.0:50051`` listens on every interface)."""
        if self.config.port < 0:
            return f"unix:{self.config.unix_socket}"
        host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        return f"{host}:{self.port}"

    @property
    def http_urls(self) -> list[str]:
        """Where the status page answers (empty without `http_port`/`http_socket`)."""
        return self.http.urls if self.http else []

    def start(self) -> Server:
        """Check the settings, start the reader processes and listen; a running server is kept.

        Returns
        -------
        Server
            This server, listening.

        Raises
        ------
        ValueError
            The settings do not go together: a root that is no folder, tokens beside
            ``hub_auth``, half of a TLS key pair, a host beyond localhost without
            authentication, and the like. Nothing was started.
        OSError
            A port, Unix socket or file named in the settings cannot be used.
        """
        if self._grpc is not None:
            return self
        # Everything a shared server is told is checked before any reader process starts.
        roots = ServedRoots.parse(self.config.root, self.config.allow_group)
        authenticator = authenticator_for(self.config)
        check_exposure(self.config, authenticator is not None)
        credentials = tls_credentials(self.config)
        # With roots, every read is confined again right before its reader process reads.
        guard = roots.confine if roots else None
        pool = OneOpening(Quarantine(pool_for(self.config, guard), self.config.quarantine_crashes))
        engine = Engine(self.config, pool=pool, resolve=_resolver(roots) if roots else None)
        executor = futures.ThreadPoolExecutor(
            self.config.grpc_threads, thread_name_prefix="mef3lab-rpc"
        )
        handlers = ThreadedHandlers(
            executor,
            authenticator,
            self.config.stream_write_timeout_s,
            self.config.max_calls_per_client,
            roots.redact if roots else None,  # no server path in an error to a remote caller
            BytesInFlight(int(self.config.max_bytes_in_flight_mb * 2**20)),
        )
        server = AioServer(executor, [handlers], GRPC_OPTIONS)
        server.add(pb_grpc.add_Mef3LabServicer_to_server, Mef3LabService(engine, roots))
        server.add(compat_pb_grpc.add_gRPCMef3ServerServicer_to_server, CompatService(engine))
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
            server.start(("",) + SERVICE_NAMES)
            if self.config.http_port >= 0 or self.config.http_socket:
                http = StatusHTTP(engine, self.config, self.address, authenticator).start()
        except BaseException:
            server.stop(None)
            engine.shutdown()
            raise
        self.engine, self._grpc, self.http = engine, server, http
        # No orphans even if the owner forgets stop(): the finalizer runs at exit or collection.
        self._finalizer = weakref.finalize(self, _stop, server, engine, http, 1.0)
        log.info(
            "mef3lab server listening on %s (%d reader processes; %s; %s; %s)",
            self.listening,
            self.config.n_process_workers,
            "TLS" if credentials else "no TLS",
            type(authenticator).__name__ if authenticator else "no authentication",
            f"roots {', '.join(roots.roots)}" if roots else "any path",
        )
        return self

    def stop(self, grace: float | None = 5.0) -> None:
        """Stop accepting calls, let in-flight ones finish, then stop the reader processes.

        Parameters
        ----------
        grace : float or None, default 5.0
            Seconds in-flight calls may go on; None cancels them at once. Stopping a stopped
            server does nothing.
        """
        if self._finalizer is not None and self._finalizer.alive:
            self._finalizer.detach()
            _stop(self._grpc, self.engine, self.http, grace)
        self._grpc = None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server stops or `timeout` passes.

        Parameters
        ----------
        timeout : float or None, default None
            Seconds to wait at most; None waits for as long as it runs.

        Returns
        -------
        bool
            True when the server has stopped (or never ran), False when `timeout` passed.
        """
        return self._grpc.wait(timeout) if self._grpc else True

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"listening on {self.address}" if self._grpc else "stopped"
        return f"<mef3lab.Server {state}>"


def _resolver(roots: ServedRoots):
    """The engine's path rule with roots: inside a root this caller may read, or refused.

    Its `confine` checks a recording's files before it is first opened (`ServedRoots.confine`).
    """

    def resolve(client, path):
        return roots.resolve(path, getattr(client, "groups", None))

    resolve.confine = roots.confine
    return resolve


def tls_credentials(config: ServerConfig) -> grpc.ServerCredentials | None:
    """The server's TLS credentials from ``--tls-cert`` and ``--tls-key``.

    Parameters
    ----------
    config : ServerConfig
        The settings; their `tls_cert` and `tls_key` are PEM file paths.

    Returns
    -------
    grpc.ServerCredentials or None
        The credentials, or None when neither file is given (plain TCP).

    Raises
    ------
    ValueError
        Only one of the two files is given.
    OSError
        A file cannot be read.
    """
    if not (config.tls_cert or config.tls_key):
        return None
    if not (config.tls_cert and config.tls_key):
        raise ValueError("TLS needs both --tls-cert and --tls-key")
    with open(config.tls_key, "rb") as k, open(config.tls_cert, "rb") as c:
        return grpc.ssl_server_credentials([(k.read(), c.read())])


def _listen_unix(server: AioServer, path: str, owner_only: bool) -> None:
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


def _stop(server: AioServer, engine: Engine, http: StatusHTTP | None, grace: float | None) -> None:
    """Stop a server in order: the status page goes, health says so, calls drain, readers stop."""
    if http is not None:
        http.stop()
    server.stop(grace)
    engine.shutdown()


def serve(config: ServerConfig, owner_pid: int | None = None) -> int:
    """Run a server in the foreground until SIGTERM or SIGINT, as ``mef3lab serve`` does.

    Once it listens it prints the status page's URLs (`HTTP_PREFIX`), writes the discovery
    file if `config` names one, then prints its address (`READY_PREFIX`): whoever waits for
    that line can connect. On a signal it drains in-flight calls, stops every reader process
    and removes the discovery file.

    Parameters
    ----------
    config : ServerConfig
        The settings.
    owner_pid : int, optional
        Also stop when this process, the parent of this one, is gone.

    Returns
    -------
    int
        The exit code: 0.

    Raises
    ------
    ValueError, OSError
        The server cannot start (see `Server.start`).
    """
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
