"""A real JupyterHub for the benchmarks, its users and their tokens, and a mef3lab server that
checks those tokens with it (``--hub-auth``).

The hub (DummyAuthenticator, its configurable-http-proxy) listens on 127.0.0.1 only and
knows mef3lab as an external service; users and their API tokens are made through its
REST API, as an admin would. `hub_server` runs ``mef3lab serve --hub-auth`` from this
tree or from another checkout of mef3lab (to measure the code of another commit with
the same benchmark). Everything started here is stopped on leaving.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mef3lab.server.config import OWNER_PID_ENV, ServerConfig

SERVICE = "mef3lab"
REPO = Path(__file__).resolve().parents[1]

HUB_CONFIG = """
c = get_config()  # noqa
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {proxy_port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.command = [{chp!r}]
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.db_url = "sqlite:///{workdir}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{workdir}/cookie_secret"
c.JupyterHub.pid_file = "{workdir}/jupyterhub.pid"
c.JupyterHub.log_level = "WARN"
c.JupyterHub.services = [
    {{"name": {service!r}, "api_token": {service_token!r}}},
    {{"name": "bench-admin", "api_token": {admin_token!r}}},
]
c.JupyterHub.load_roles = [
    {{"name": "user", "scopes": ["self", "access:services!service={service}"]}},
    {{"name": "bench-admin", "scopes": ["admin:users", "tokens"], "services": ["bench-admin"]}},
]
"""


def free_port() -> int:
    """A TCP port of 127.0.0.1 nobody listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proxy_command() -> str:
    """configurable-http-proxy: on PATH, or installed from npm into a cache folder once.

    Raises
    ------
    RuntimeError
        It is not on PATH and there is no npm to fetch it with.
    """
    found = shutil.which("configurable-http-proxy")
    if found:
        return found
    cache = Path(tempfile.gettempdir()) / "mef3lab-test-deps" / "configurable-http-proxy"
    binary = cache / "node_modules" / ".bin" / "configurable-http-proxy"
    if binary.exists():
        return str(binary)
    if not shutil.which("npm"):
        raise RuntimeError(
            "configurable-http-proxy is not on PATH and npm (apt-get install npm) is not there "
            "to fetch it: the hub cannot run without it"
        )
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(cache)]
        + ["configurable-http-proxy@5"],
        check=True,
        timeout=300,
        capture_output=True,
    )
    return str(binary)


@dataclass(frozen=True)
class Hub:
    """A running hub: its API and the tokens of the mef3lab service and of an admin."""

    port: int
    service_token: str
    admin_token: str

    @property
    def api_url(self) -> str:
        """The hub's REST API (``http://127.0.0.1:PORT/hub/api``)."""
        return f"http://127.0.0.1:{self.port}/hub/api"

    def api(self, method: str, path: str, body: dict | None = None):
        """A call of the hub's REST API as its admin service; the decoded JSON reply."""
        request = urllib.request.Request(
            self.api_url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {self.admin_token}"},
        )
        with urllib.request.urlopen(request, timeout=60) as reply:
            return json.loads(reply.read() or b"null")

    def user_tokens(self, n: int, prefix: str = "reader") -> list[str]:
        """`n` new hub users (``PREFIX-0``, ...), and an API token of each, as an admin makes
        them.
        """
        names = [f"{prefix}-{i}" for i in range(n)]
        self.api("POST", "/users", {"usernames": names})
        return [
            self.api("POST", f"/users/{name}/tokens", {"note": "mef3lab benchmark"})["token"]
            for name in names
        ]

    def service_env(self) -> dict[str, str]:
        """What a hub gives its service's process: the service's token, the API, its name."""
        return {
            "JUPYTERHUB_API_TOKEN": self.service_token,
            "JUPYTERHUB_API_URL": self.api_url,
            "JUPYTERHUB_SERVICE_NAME": SERVICE,
        }


@contextlib.contextmanager
def jupyterhub(log=print) -> Iterator[Hub]:
    """A JupyterHub and its proxy on loopback ports, in a temporary folder; stopped on leaving.

    Raises
    ------
    RuntimeError
        The hub exited or did not answer within two minutes (its log ends the message).
    """
    with tempfile.TemporaryDirectory(prefix="mef3lab-bench-hub-") as tmp:
        work = Path(tmp)
        hub = Hub(free_port(), secrets.token_hex(16), secrets.token_hex(16))
        (work / "jupyterhub_config.py").write_text(
            HUB_CONFIG.format(
                proxy_port=free_port(),
                hub_port=hub.port,
                proxy_api_port=free_port(),
                chp=proxy_command(),
                workdir=work,
                service=SERVICE,
                service_token=hub.service_token,
                admin_token=hub.admin_token,
            )
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTERHUB_")}
        env["CONFIGPROXY_AUTH_TOKEN"] = secrets.token_hex(16)
        log("starting JupyterHub ...")
        with open(work / "hub.log", "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", "-f", str(work / "jupyterhub_config.py")],
                cwd=work,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            deadline = time.monotonic() + 120
            while not _answers(hub.api_url + "/"):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"JupyterHub did not start (exit code {proc.poll()}):\n"
                        + (work / "hub.log").read_text()[-3000:]
                    )
                time.sleep(0.5)
            yield hub
        finally:
            _stop(proc, 60)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5):
            return True
    except (urllib.error.URLError, OSError):
        return False


def _stop(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM (a hub stops its proxy, a server its readers), then SIGKILL to its group."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


@dataclass(frozen=True)
class HubServer:
    """A running ``mef3lab serve`` (``--hub-auth``): its gRPC address and process id."""

    address: str
    pid: int


def service_process_env(hub: Hub | None) -> dict[str, str]:
    """This process's environment without mef3lab's settings or a hub's, plus what `hub`
    gives its service (a server started with it runs with exactly the settings it is given).
    """
    own = {f.name.upper() for f in fields(ServerConfig)}
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in own and not k.startswith(("MEF3LAB_", "JUPYTERHUB_"))
    }
    env.update(hub.service_env() if hub else {}, PYTHONUNBUFFERED="1")
    return env


@contextlib.contextmanager
def hub_server(
    hub: Hub | None, tree: Path | None = None, workers: int = 2, prefetch: int = 1
) -> Iterator[HubServer]:
    """``mef3lab serve --hub-auth`` as `hub`'s service, with only the flags every version has.

    Parameters
    ----------
    hub : Hub or None
        The hub whose tokens it checks; None: the same server without authentication.
    tree : Path, optional
        A checkout of mef3lab to run the server of (on ``PYTHONPATH``, before this one);
        default: the installed mef3lab.
    workers, prefetch : int
        Its reader processes and segments read ahead.

    Raises
    ------
    RuntimeError
        The server exited or did not answer its health check within a minute.
    """
    env = service_process_env(hub)
    env[OWNER_PID_ENV] = str(os.getpid())  # the server stops if this process dies
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree), env.get("PYTHONPATH")]))
    port = free_port()
    cmd = [sys.executable, "-m", "mef3lab", "serve", *(["--hub-auth"] if hub else [])]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--n-process-workers", str(workers)]
    cmd += ["--n-prefetch", str(prefetch), "--log-level", "WARNING"]
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(
            cmd,
            cwd=tree or REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=out,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        address = f"127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while not _serving(address):
                if proc.poll() is not None or time.monotonic() > deadline:
                    out.seek(0)
                    raise RuntimeError(
                        f"the mef3lab server did not start (exit code {proc.poll()}): "
                        + out.read().decode(errors="replace")[-2000:]
                    )
                time.sleep(0.2)
            yield HubServer(address, proc.pid)
        finally:
            _stop(proc, 20)


def _serving(address: str) -> bool:
    try:
        with grpc.insecure_channel(address) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=2
            )
        return reply.status == health_pb2.HealthCheckResponse.SERVING
    except grpc.RpcError:
        return False
