"""The HTTP side of a server with tokens, over real sockets: the status page, ``/api/status`` and
``/metrics`` need the gRPC side's token, and a user sees only their own recordings.

The server's own user on its Unix socket needs no token and sees everything, as before.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from email.message import Message

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mef3lab.client import Mef3Client
from mef3lab.server.app import Server
from mef3lab.testing.synth import synthesize

try:
    from .test_http import _get_unix
except ImportError:
    from test_http import _get_unix

TOKENS = {"alice": "alice-token-5f1c", "bob": "bob-token-9d2e"}
ROUTES = ("/", "/api/status", "/metrics")


@pytest.fixture(scope="module")
def two_users(tmp_path_factory):
    """A server with static tokens; alice has one recording open, bob another."""
    folder = tmp_path_factory.mktemp("http-auth")
    token_file = folder / "tokens"
    token_file.write_text("".join(f"{user} {token}\n" for user, token in TOKENS.items()))
    paths = {
        user: str(
            synthesize(
                folder / f"{user}-rec.mefd", channels=2, fs=256.0, seconds=10.0, gaps=0, seed=i
            )
        )
        for i, user in enumerate(TOKENS)
    }
    with Server(
        port=0,
        http_port=0,
        http_socket=str(folder / "http.sock"),
        n_process_workers=1,
        token_file=str(token_file),
        log_level="WARNING",
    ) as srv:
        clients = [Mef3Client(srv.address, token=TOKENS[user]) for user in TOKENS]
        try:
            for c, user in zip(clients, TOKENS, strict=True):
                c.open_file(paths[user])
            yield srv, paths
        finally:
            for c in clients:
                c.shutdown()


def get(url: str, authorization: str | None = None) -> tuple[int, Message, bytes]:
    request = urllib.request.Request(
        url, headers={"Authorization": authorization} if authorization else {}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.headers, reply.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    "authorization", [None, "Bearer made-up-token", "Basic YWxpY2U6eA==", "Bearer "]
)
def test_every_page_needs_a_valid_token(two_users, route, authorization):
    srv, paths = two_users
    code, headers, body = get(srv.http_urls[0] + route.lstrip("/"), authorization)
    assert code == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    assert "token" in json.loads(body)["error"]
    assert not any(p in body.decode() for p in paths.values())


@pytest.mark.parametrize("user", list(TOKENS))
def test_a_user_sees_only_their_own_recordings(two_users, user):
    srv, paths = two_users
    other = next(u for u in TOKENS if u != user)
    scheme = "Bearer" if user == "alice" else "token"  # JupyterHub's own spelling works too
    code, _, body = get(srv.http_urls[0] + "api/status", f"{scheme} {TOKENS[user]}")
    s = json.loads(body)
    assert code == 200 and s["paths_shown"]
    assert [r["path"] for r in s["recordings"]] == [paths[user]]
    code, _, page = get(srv.http_urls[0], f"Bearer {TOKENS[user]}")
    assert code == 200 and paths[user] in page.decode() and paths[other] not in page.decode()


def test_metrics_with_a_token(two_users):
    srv, paths = two_users
    code, headers, body = get(srv.http_urls[0] + "metrics", f"Bearer {TOKENS['bob']}")
    assert code == 200 and headers["Content-Type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert families["mef3lab_open_recordings"].samples[0].value == 2
    assert not any(p in body.decode() for p in paths.values())


def test_the_owner_on_the_unix_socket_needs_no_token_and_sees_everything(two_users):
    srv, paths = two_users
    code, _, body = _get_unix(srv.config.http_socket, "/api/status")
    assert code == 200 and sorted(r["path"] for r in json.loads(body)["recordings"]) == sorted(
        paths.values()
    )
    for route in ROUTES:
        assert _get_unix(srv.config.http_socket, route)[0] == 200
