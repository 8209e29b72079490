"""Attacks on a real server's HTTP side, and what Docker and operators rely on there.

Half-sent requests hold no thread and are dropped after a timeout, the connections one
server keeps are capped, ``/healthz`` answers without a token while every other page wants
one, the status port speaks TLS when the gRPC port does, and ``--host`` is logged and
parsed as given.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

from mef3lab.client import Mef3Client
from mef3lab.server.http.server import IDLE_TIMEOUT_S, MAX_CONNECTIONS_PER_HOST

from ._pki import write_pki
from .conftest import assert_same, clean_env

TOKEN = "http-token-3c71"


def get(url: str, token: str | None = None, context=None) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, headers={"Authorization": f"Bearer {token}"} if token else {}
    )
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A CA's certificate, and a server certificate and key it signed (for 127.0.0.1)."""
    return write_pki(tmp_path_factory.mktemp("http-pki"))


def dropped(s: socket.socket, wait: float = 1.0) -> bool:
    """Whether the server has closed this connection (within `wait` seconds; 0: now)."""
    s.settimeout(wait)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except (TimeoutError, BlockingIOError):
        return False


@pytest.fixture
def guarded(launch):
    return launch(
        env=clean_env(MEF3LAB_TOKEN=TOKEN), http_port=0, n_process_workers=1, n_prefetch=0
    )


def test_half_sent_requests_hold_nothing_and_are_dropped(guarded, recording, reference):
    # Before: ~1,000 of these held a thread and a descriptor each, forever, and authentication
    # came only after the whole request.
    url = guarded.http_urls[0]
    host, port = url.split("//")[1].rstrip("/").rsplit(":", 1)
    server = psutil.Process(guarded.pid)
    threads, fds = server.num_threads(), server.num_fds()
    slow = []
    for _ in range(MAX_CONNECTIONS_PER_HOST + 100):  # from 127.0.0.2; the victim is 127.0.0.1
        s = socket.create_connection((host, int(port)), source_address=("127.0.0.2", 0))
        s.sendall(b"GET /api/status HTTP/1.1\r\nHost: x\r\nAuthoriz")  # and never the rest
        slow.append(s)
    try:
        time.sleep(1.0)
        assert server.num_threads() <= threads + 2
        assert server.num_fds() <= fds + MAX_CONNECTIONS_PER_HOST  # the rest closed at once
        assert get(url + "healthz") == (200, b"ok\n")
        code, body = get(url + "api/status", TOKEN)
        assert code == 200 and b'"version"' in body
        with Mef3Client(guarded.address, token=TOKEN, timeout=30) as c:  # gRPC is unaffected
            c.open_file(str(recording))
            assert_same(
                c.read_index(str(recording), 0, 256), reference(recording).read_index(None, 0, 256)
            )
        deadline, pending = time.monotonic() + IDLE_TIMEOUT_S + 2, slow
        while pending and time.monotonic() < deadline:
            time.sleep(0.25)
            pending = [s for s in pending if not dropped(s, wait=0.0)]
        held = len(pending)
        assert held == 0, f"{held} half-sent requests still held after {IDLE_TIMEOUT_S:g} s"
    finally:
        for s in slow:
            s.close()


def test_healthz_needs_no_token_and_says_nothing_else(guarded):
    url = guarded.http_urls[0]
    assert get(url + "healthz") == (200, b"ok\n")
    for route in ("", "api/status", "metrics"):
        assert get(url + route)[0] == 401
    assert get(url + "api/status", TOKEN)[0] == 200


def test_the_status_port_speaks_tls_when_grpc_does(launch, certificate):
    srv = launch(
        env=clean_env(MEF3LAB_TOKEN=TOKEN),
        http_port=0,
        tls_cert=str(certificate / "server.pem"),
        tls_key=str(certificate / "server.key"),
        n_process_workers=1,
    )
    (url,) = srv.http_urls
    assert url.startswith("https://")
    trusted = ssl.create_default_context(cafile=str(certificate / "ca.pem"))
    assert get(url + "healthz", context=trusted) == (200, b"ok\n")
    assert get(url + "api/status", TOKEN, context=trusted)[0] == 200
    with pytest.raises((urllib.error.URLError, ConnectionError)):  # before: plain HTTP
        get(url.replace("https://", "http://") + "api/status", TOKEN)


def test_the_host_is_logged_as_given_and_an_ipv6_host_in_brackets_works(launch, recording):
    public = launch(env=clean_env(MEF3LAB_TOKEN=TOKEN), host="0.0.0.0", port=0, n_process_workers=1)
    with open(public.log_path) as f:
        assert "listening on 0.0.0.0:" in f.read()  # before: "on 127.0.0.1"
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    ipv6 = launch(host="[::1]", port=0, http_port=0, n_process_workers=1)  # before: a traceback
    assert ipv6.address.startswith("[::1]:") and ipv6.http_urls[0].startswith("http://[::1]:")
    with Mef3Client(ipv6.address, timeout=30) as c:
        assert c.open_file(str(recording)).names
    assert get(ipv6.http_urls[0] + "healthz") == (200, b"ok\n")


def dockerfile_healthcheck() -> list[str]:
    """The Dockerfile's HEALTHCHECK command (its exec form), as a list of arguments."""
    dockerfile = Path(__file__).parents[2] / "Dockerfile"
    (line,) = [x for x in dockerfile.read_text().splitlines() if x.startswith("HEALTHCHECK")]
    return json.loads(line.split(" CMD ", 1)[1])


def test_the_dockerfile_healthcheck_follows_the_servers_tls(launch, certificate, tmp_path):
    # Before: http://127.0.0.1:8080/healthz whatever the settings: unhealthy forever with TLS on.
    command = dockerfile_healthcheck()
    assert command[0] == "mef3lab"
    run = [sys.executable, "-m", "mef3lab", *command[1:]]
    tls = dict(TLS_CERT=str(certificate / "server.pem"), TLS_KEY=str(certificate / "server.key"))
    for extra in ({}, tls):
        port = free_port()
        # As in the image: settings by variable, the server listening beyond localhost.
        env = clean_env(HOST="0.0.0.0", HTTP_PORT=str(port), MEF3LAB_TOKEN=TOKEN, **extra)
        probe = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60)
        assert probe.returncode == 1 and "did not answer" in probe.stderr  # nobody listens yet
        launch(env=env, port=0, n_process_workers=1, n_prefetch=0)
        probe = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60)
        scheme = "https" if extra else "http"
        assert probe.returncode == 0, probe.stderr
        assert f"{scheme}://127.0.0.1:{port}/healthz" in probe.stdout
    # A certificate the server does not serve is not trusted: the check fails, it does not pass.
    env["TLS_CERT"] = str(certificate / "other-ca.pem")
    probe = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60)
    assert probe.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in probe.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
