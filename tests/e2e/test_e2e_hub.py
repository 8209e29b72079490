"""A real JupyterHub (DummyAuthenticator, its configurable-http-proxy) running mef3lab as a managed
service with ``--hub-auth``: hub-issued tokens get in as their user, made-up ones do not, and a
root limited to a hub group is closed to users outside it.

`configurable-http-proxy` comes from the npm registry, installed once into a cache folder
when it is not on PATH. Everything listens on 127.0.0.1 only; the hub, its proxy and the
mef3lab service are all stopped afterwards, and the test checks none of them is left.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import psutil
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mef3lab.client import Mef3Client
from mef3lab.client.credentials import bearer
from mef3lab.errors import AuthenticationError, PathNotServedError
from mef3lab.protocol import gRPCMef3Server_pb2 as cpb
from mef3lab.protocol import gRPCMef3Server_pb2_grpc as cpb_grpc

from .conftest import alive, assert_same, clean_env, wait_for

pytestmark = pytest.mark.slow

ADMIN_TOKEN = "test-admin-token-3b9e"

README = Path(__file__).parents[2] / "README.md"
SNIPPET_START = "# jupyterhub_config.py: mef3lab as a managed hub service"

#: The test's own hub settings: loopback ports, a work folder, DummyAuthenticator, a token to
#: issue user tokens with.
HUB_CONFIG = """
import os, sys
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
# Creates both users.
c.JupyterHub.load_groups = {{"neuro": {{"users": ["alice"]}}, "students": {{"users": ["bob"]}}}}
# Real single-user servers, as this process's user, in the work folder (root needs --allow-root).
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = "{workdir}/home/{{username}}"
c.Spawner.cmd = [sys.executable, "-m", "jupyterhub.singleuser"]
c.Spawner.args = ["--allow-root"] if os.getuid() == 0 else []
c.Spawner.start_timeout = c.Spawner.http_timeout = 120
"""
#: After the README's snippet: a small service, stopped with its hub, and the test's admin service.
HUB_CONFIG_AFTER = """
c.JupyterHub.services[0]["command"] += ["--n-process-workers", "1", "--n-prefetch", "0"]
c.JupyterHub.services[0]["environment"] = {{"MEF3LAB_OWNER_PID": str(os.getpid())}}
c.JupyterHub.services.append({{"name": "tester", "api_token": "{admin_token}"}})
c.JupyterHub.load_roles.append({{"name": "tester", "scopes": ["admin:users", "tokens", "servers"],
                                 "services": ["tester"]}})
"""


def readme_snippet() -> str:
    """The jupyterhub_config.py lines the README gives, as written there."""
    text = README.read_text()
    start = text.index(SNIPPET_START)
    return text[start : text.index("```", start)]


def kernel_token_scopes() -> list[str]:
    """What the README's snippet gives a kernel's JUPYTERHUB_API_TOKEN."""
    from traitlets.config import Config

    c = Config()
    exec(readme_snippet(), {"c": c})
    return list(c.Spawner.server_token_scopes)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proxy_command() -> str:
    """configurable-http-proxy: on PATH, or installed from npm into a cache folder once."""
    found = shutil.which("configurable-http-proxy")
    if found:
        return found
    if not shutil.which("npm"):  # a hub without its proxy cannot run: say so, never skip quietly
        pytest.fail(
            "configurable-http-proxy is not on PATH and npm (apt-get install npm) is not there "
            "to fetch it"
        )
    cache = Path(tempfile.gettempdir()) / "mef3lab-test-deps" / "configurable-http-proxy"
    binary = cache / "node_modules" / ".bin" / "configurable-http-proxy"
    if not binary.exists():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "npm",
                "install",
                "--no-audit",
                "--no-fund",
                "--silent",
                "--prefix",
                str(cache),
                "configurable-http-proxy@5",
            ],
            check=True,
            timeout=300,
            capture_output=True,
        )
    return str(binary)


def hub_api(hub_port: int, method: str, path: str, body: dict | None = None):
    request = urllib.request.Request(
        f"http://127.0.0.1:{hub_port}/hub/api{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"token {ADMIN_TOKEN}"},
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read() or b"null")


def routed(proxy_port: int) -> bool:
    """Whether the hub's proxy reaches the service yet (its route comes after the service)."""
    url = f"http://127.0.0.1:{proxy_port}/services/mef3lab/healthz"
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return reply.status == 200
    except OSError:  # urllib's HTTPError (404 before the route) and refused connections alike
        return False


def serving(address: str) -> bool:
    try:
        with grpc.insecure_channel(address) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=2
            )
        return reply.status == health_pb2.HealthCheckResponse.SERVING
    except grpc.RpcError:
        return False


@pytest.fixture(scope="module")
def hub(tmp_path_factory, recording):
    """A running hub + proxy + mef3lab service; yields (mef3lab address, hub port, served roots)."""
    work = tmp_path_factory.mktemp("hub")
    eeg, ieeg = work / "eeg", work / "ieeg"
    eeg.mkdir()
    shutil.copytree(recording, eeg / "sub-01.mefd")
    shutil.copytree(recording, ieeg / "pt-01.mefd")
    ports = dict(
        proxy_port=free_port(),
        hub_port=free_port(),
        proxy_api_port=free_port(),
        port=free_port(),
        http_port=free_port(),
    )
    config = work / "jupyterhub_config.py"
    snippet = (
        readme_snippet()
        .replace('["mef3lab", "serve"', '[sys.executable, "-m", "mef3lab", "serve"')
        .replace('"50051"', f'"{ports["port"]}"')
        .replace("50052", str(ports["http_port"]))
        .replace("=/data/eeg", f"={eeg}")
        .replace("=/data/ieeg", f"={ieeg}")
    )
    config.write_text(
        HUB_CONFIG.format(**ports, chp=proxy_command(), workdir=work)
        + snippet
        + HUB_CONFIG_AFTER.format(admin_token=ADMIN_TOKEN)
    )
    env = clean_env(CONFIGPROXY_AUTH_TOKEN="proxy-token-for-tests")
    env.pop("JUPYTERHUB_API_TOKEN", None)
    with open(work / "hub.log", "wb") as log:  # the hub writes to its own copy of the file
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(config)],
            cwd=work,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    address = f"127.0.0.1:{ports['port']}"
    family: set[int] = {proc.pid}
    try:

        def up():
            if proc.poll() is not None:
                pytest.fail(
                    f"the hub exited ({proc.returncode}):\n{(work / 'hub.log').read_text()[-4000:]}"
                )
            family.update(p.pid for p in psutil.Process(proc.pid).children(recursive=True))
            return serving(address) and routed(ports["proxy_port"])

        wait_for(up, timeout=120, interval=0.5, what="the hub and its mef3lab service")
        family.update(p.pid for p in psutil.Process(proc.pid).children(recursive=True))
        yield address, ports["hub_port"], (eeg, ieeg), ports["proxy_port"]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
            pytest.fail("the hub did not stop on SIGTERM")
        wait_for(
            lambda: not alive(family),
            timeout=20,
            what=f"hub, proxy and mef3lab ({sorted(family)}) to exit",
        )
    assert code == 0, (work / "hub.log").read_text()[-4000:]


def token_for(hub_port: int, user: str, scopes: list[str] | None = None) -> str:
    body = {"note": "mef3lab test"} | ({"scopes": scopes} if scopes else {})
    return hub_api(hub_port, "POST", f"/users/{user}/tokens", body)["token"]


def test_a_hub_token_reads_as_its_user(hub, reference, recording, monkeypatch):
    address, hub_port, (eeg, ieeg), _ = hub
    alice = token_for(hub_port, "alice")
    with Mef3Client(address, token=alice) as c:
        assert c.list_recordings() == [("eeg", False), ("ieeg", False)]
        c.open_file("ieeg/pt-01.mefd")
        assert_same(
            c.read_index("ieeg/pt-01.mefd", 2000, 6000, ["ch002", "ch007"]),
            reference(recording).read_index(["ch002", "ch007"], 2000, 6000),
        )
    # A kernel's own token, with the scopes the README gives it, sent without any setting.
    monkeypatch.delenv("MEF3LAB_TOKEN", raising=False)
    monkeypatch.delenv("MEF3LAB_TOKEN_FILE", raising=False)
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", token_for(hub_port, "alice", kernel_token_scopes()))
    with Mef3Client(address) as c:
        c.open_file("eeg/sub-01.mefd")
        assert_same(
            c.read_index("eeg/sub-01.mefd", 0, 1000), reference(recording).read_index(None, 0, 1000)
        )
        assert c.list_open_files() == [str(eeg / "sub-01.mefd")]


def test_a_made_up_token_is_unauthenticated(hub):
    address, hub_port, _, _ = hub
    no_access = token_for(
        hub_port, "alice", ["read:users:groups!user"]
    )  # real, but not for this service
    for token in ("made-up-token", None, no_access):
        with Mef3Client(address, token=token) as c, pytest.raises(AuthenticationError):
            c.list_recordings()


def test_the_lab_clients_api_knows_the_hub_user_too(hub, reference, recording):
    """The lab's old clients (with the README's interceptor line) are the same user, same groups."""
    address, hub_port, (eeg, ieeg), _ = hub
    for user, opens in (("alice", True), ("bob", False)):
        channel = grpc.intercept_channel(
            grpc.insecure_channel(address), bearer(token_for(hub_port, user))
        )
        try:
            stub = cpb_grpc.gRPCMef3ServerStub(channel)
            reply = stub.OpenFile(cpb.OpenFileRequest(file_path="ieeg/pt-01.mefd"), timeout=30)
            assert reply.file_opened == opens, reply.error_message
            if not opens:
                assert "not in a folder this server serves you" in reply.error_message
        finally:
            channel.close()


def test_a_user_outside_a_roots_group_is_denied_it(hub, reference, recording):
    address, hub_port, (eeg, ieeg), _ = hub
    with Mef3Client(address, token=token_for(hub_port, "bob")) as bob:
        assert bob.list_recordings() == [("eeg", False)]
        for name in ("ieeg/pt-01.mefd", str(ieeg / "pt-01.mefd")):
            with pytest.raises(PathNotServedError):
                bob.open_file(name)
        with pytest.raises(PathNotServedError):
            bob.list_recordings("ieeg")
        bob.open_file("eeg/sub-01.mefd")
        assert_same(
            bob.read_index("eeg/sub-01.mefd", 0, 500), reference(recording).read_index(None, 0, 500)
        )
        assert bob.list_open_files() == [str(eeg / "sub-01.mefd")]  # not alice's


def spawned_server_env(hub_port: int, user: str) -> dict[str, str]:
    """The environment the hub gave `user`'s running single-user server (its kernels inherit it)."""
    for p in psutil.process_iter(["cmdline"]):
        try:
            if "jupyterhub.singleuser" in " ".join(p.info["cmdline"] or ()):
                env = p.environ()
                if env.get("JUPYTERHUB_USER") == user and f":{hub_port}/" in env.get(
                    "JUPYTERHUB_API_URL", ""
                ):
                    return env
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    raise AssertionError(f"no single-user server of {user} is running")


def test_a_spawned_servers_own_token_reads_with_no_setting(hub, reference, recording, monkeypatch):
    """A real single-user server, spawned by the hub with the README's server_token_scopes: the
    JUPYTERHUB_API_TOKEN it (and so every kernel it starts) has is all a client needs."""
    address, hub_port, (eeg, ieeg), _ = hub
    hub_api(hub_port, "POST", "/users/alice/server")
    try:
        wait_for(
            lambda: (hub_api(hub_port, "GET", "/users/alice")["servers"].get("") or {}).get(
                "ready"
            ),
            timeout=120,
            interval=0.5,
            what="alice's single-user server",
        )
        env = spawned_server_env(hub_port, "alice")
        for name in ("MEF3LAB_TOKEN", "MEF3LAB_TOKEN_FILE"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("JUPYTERHUB_API_TOKEN", env["JUPYTERHUB_API_TOKEN"])
        with Mef3Client(address) as c:
            assert (
                "ieeg",
                False,
            ) in c.list_recordings()  # alice's group reaches through this token too
            c.open_file("ieeg/pt-01.mefd")
            assert_same(
                c.read_index("ieeg/pt-01.mefd", 100, 900, ["ch001"]),
                reference(recording).read_index(["ch001"], 100, 900),
            )
    finally:
        hub_api(hub_port, "DELETE", "/users/alice/server")
        wait_for(
            lambda: not hub_api(hub_port, "GET", "/users/alice")["servers"],
            timeout=60,
            interval=0.5,
            what="alice's single-user server to stop",
        )


def test_the_status_page_through_the_hub_needs_a_token_and_shows_only_ones_own(hub):
    """<hub>/services/mef3lab/ reaches the service's status page: with a hub token a user sees the
    recordings they have open (paths included) and nobody else's; without one, 401."""
    address, hub_port, (eeg, ieeg), proxy_port = hub
    tokens = {user: token_for(hub_port, user) for user in ("alice", "bob")}
    opened = {"alice": "ieeg/pt-01.mefd", "bob": "eeg/sub-01.mefd"}
    clients = [Mef3Client(address, token=tokens[user]) for user in opened]
    try:
        for c, name in zip(clients, opened.values(), strict=True):
            c.open_file(name)
        url = f"http://127.0.0.1:{proxy_port}/services/mef3lab/api/status"
        seen = {}
        for user, token in tokens.items():
            request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
            with urllib.request.urlopen(request, timeout=30) as reply:
                seen[user] = {r["path"] for r in json.loads(reply.read())["recordings"]}
        assert str(ieeg / "pt-01.mefd") in seen["alice"]
        assert (
            str(eeg / "sub-01.mefd") in seen["bob"] and str(ieeg / "pt-01.mefd") not in seen["bob"]
        )
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(url, timeout=30)
        assert err.value.code == 401
    finally:
        for c in clients:
            c.shutdown()
