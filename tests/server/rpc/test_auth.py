"""Authentication pieces on their own: token files, which token a client sends, and when a
server refuses to start.
"""

from __future__ import annotations

import contextlib
import os

import pytest

from mef3lab.client import credentials
from mef3lab.errors import ServerUnavailableError
from mef3lab.protocol import mef3lab_pb2
from mef3lab.server.config import ServerConfig
from mef3lab.server.rpc.auth import (
    Caller,
    StaticTokens,
    authenticator_for,
    bearer_token,
    check_exposure,
)


def test_token_file_lines_name_users(tmp_path):
    f = tmp_path / "tokens"
    f.write_text("# lab tokens\nalice s3cret-a\n\ns3cret-anon   # a comment\n")
    tokens = StaticTokens.load(str(f), token="from-env")
    assert tokens.authenticate("s3cret-a") == Caller("alice")
    assert tokens.authenticate("s3cret-anon") == Caller("token-2")
    assert tokens.authenticate("from-env") == Caller("token")
    for wrong in ("s3cret", "s3cret-a ", "", "S3CRET-A"):
        assert tokens.authenticate(wrong) is None


@pytest.mark.parametrize(
    "text, message", [("", "holds no token"), ("a b c\n", "TOKEN or USER TOKEN")]
)
def test_bad_token_files_are_explained(tmp_path, text, message):
    (tmp_path / "t").write_text(text)
    with pytest.raises(ValueError, match=message):
        StaticTokens.load(str(tmp_path / "t"))


def test_bearer_metadata():
    assert bearer_token([("authorization", "Bearer abc")]) == "abc"
    assert bearer_token([("authorization", "bearer  abc ")]) == "abc"
    assert bearer_token([("authorization", "Basic abc"), ("x", "y")]) == ""
    assert bearer_token(None) == ""


def test_which_token_a_client_sends(tmp_path):
    f = tmp_path / "tok"
    f.write_text("# mine\nalice t-file\n")
    assert credentials.token_from_env({}) is None
    assert credentials.token_from_env({"JUPYTERHUB_API_TOKEN": "t-hub"}) == "t-hub"
    assert (
        credentials.token_from_env({"JUPYTERHUB_API_TOKEN": "t-hub", "MEF3LAB_TOKEN_FILE": str(f)})
        == "t-file"
    )
    assert (
        credentials.token_from_env({"MEF3LAB_TOKEN": "t-env", "MEF3LAB_TOKEN_FILE": str(f)})
        == "t-env"
    )


def test_bearer_needs_a_token(monkeypatch):
    for var in ("MEF3LAB_TOKEN", "MEF3LAB_TOKEN_FILE", "JUPYTERHUB_API_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ValueError, match="no token"):
        credentials.bearer()


@pytest.mark.parametrize(
    "host, auth, public, ok",
    [
        ("127.0.0.1", False, False, True),
        ("localhost", False, False, True),
        ("::1", False, False, True),
        ("0.0.0.0", False, False, False),
        ("192.0.2.7", False, False, False),
        ("0.0.0.0", True, False, True),
        ("0.0.0.0", False, True, True),
    ],
)
def test_listening_beyond_localhost_needs_auth(host, auth, public, ok):
    config = ServerConfig(host=host, insecure_public=public)
    if ok:
        check_exposure(config, auth)
    else:
        with pytest.raises(ValueError, match="without authentication"):
            check_exposure(config, auth)


def test_settings_that_contradict_each_other(tmp_path):
    with pytest.raises(ValueError, match="exclude each other"):
        authenticator_for(ServerConfig(hub_auth=True), {"MEF3LAB_TOKEN": "x"})
    with pytest.raises(ValueError, match="needs --hub-auth"):
        authenticator_for(ServerConfig(allow_group=("a=b",)), {})
    with pytest.raises(ValueError, match="JUPYTERHUB_API_TOKEN"):
        authenticator_for(ServerConfig(hub_auth=True), {})
    assert authenticator_for(ServerConfig(), {}) is None


def test_a_slow_token_check_holds_up_only_its_own_call(monkeypatch, recording):
    """Tokens are checked in the handler's thread: while the hub is slow to answer for one
    call, other calls are served (a check in intercept_service would stall every connection)."""
    import threading

    from mef3lab.client import Mef3Client
    from mef3lab.server import app

    release, waiting = threading.Event(), threading.Event()

    class SlowForOne:
        def authenticate(self, token):
            if token == "slow":
                waiting.set()
                release.wait(60)
            return Caller(token)

        def known(self, token):
            return False, None  # every token is asked about

    monkeypatch.setattr(app, "authenticator_for", lambda config: SlowForOne())
    with app.Server(port=0, n_process_workers=0) as server:
        slow = Mef3Client(server.address, token="slow")
        pending = slow._stub.ListOpen.future(
            mef3lab_pb2.ListOpenRequest(), metadata=slow._metadata, timeout=60
        )
        try:
            assert waiting.wait(30)
            with Mef3Client(server.address, token="fast") as fast:
                assert fast.open_file(str(recording)).names  # served while the slow check waits
            assert not pending.done()
        finally:
            release.set()
        assert list(pending.result().paths) == []
        slow.shutdown()


def test_a_hub_that_does_not_answer_is_unavailable_not_a_wrong_token():
    import socket

    from mef3lab.errors import ServerUnavailableError
    from mef3lab.server.rpc.auth import HubTokens

    with socket.socket() as s:  # bound, never listening: connections to it are refused
        s.bind(("127.0.0.1", 0))
        hub = HubTokens(
            api_token="service-token", api_url=f"http://127.0.0.1:{s.getsockname()[1]}/hub/api"
        )
        with pytest.raises(
            ServerUnavailableError, match="could not check the token with JupyterHub"
        ):
            hub.authenticate("some-user-token")


def test_hub_questions_leave_no_descriptors_behind():
    """Each question ran on a loop of its own and left HubAuth's client of that loop open."""
    from mef3lab.server.rpc.auth import HubTokens

    tokens = HubTokens(api_url="http://127.0.0.1:9/hub/api", api_token="x" * 32, timeout_s=2.0)

    def fds():
        return len(os.listdir("/proc/self/fd"))

    with contextlib.suppress(ServerUnavailableError):
        tokens.authenticate("warm-up")
    before = fds()
    for i in range(40):
        with contextlib.suppress(ServerUnavailableError):
            tokens.authenticate(f"made-up-{i}")
    assert fds() - before < 10
