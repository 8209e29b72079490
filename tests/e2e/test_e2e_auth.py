"""A real server with static tokens: who gets in, what each user sees, and where it may listen."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

import mef3lab
from mef3lab.client import Mef3Client
from mef3lab.errors import AuthenticationError, NotOpenError
from mef3lab.protocol import mef3lab_pb2, mef3lab_pb2_grpc

from .conftest import assert_same, clean_env

TOKENS = {"alice": "alice-token-7f3a", "bob": "bob-token-91c2"}
ENV_TOKEN = "env-token-55d0"


@pytest.fixture(scope="module")
def token_file(tmp_path_factory):
    f = tmp_path_factory.mktemp("auth") / "tokens"
    f.write_text("".join(f"{user} {token}\n" for user, token in TOKENS.items()))
    return f


@pytest.fixture(scope="module")
def guarded(module_launch, token_file, tmp_path_factory):
    sock = tmp_path_factory.mktemp("sock") / "mef3lab.sock"
    return module_launch(
        env=clean_env(MEF3LAB_TOKEN=ENV_TOKEN),
        n_process_workers=1,
        n_prefetch=0,
        token_file=str(token_file),
        unix_socket=str(sock),
    )


def test_missing_or_wrong_tokens_are_unauthenticated(guarded, recording):
    for token in (None, "alice-token-7f3b", "Bearer", TOKENS["alice"][:-1]):
        with (
            Mef3Client(guarded.address, token=token) as c,
            pytest.raises(AuthenticationError, match="needs a token|not accepted"),
        ):
            c.open_file(str(recording))
    # Not even a hint about paths without a token.
    with grpc.insecure_channel(guarded.address) as channel:
        stub = mef3lab_pb2_grpc.Mef3LabStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.GetStats(mef3lab_pb2.StatsRequest(), timeout=30)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_the_health_check_stays_open(guarded):
    with grpc.insecure_channel(guarded.address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=30
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("token", [TOKENS["alice"], ENV_TOKEN])
def test_a_valid_token_reads_what_a_direct_read_reads(guarded, recording, reference, token):
    with Mef3Client(guarded.address, token=token) as c:
        c.open_file(str(recording))
        assert_same(
            c.read_index(str(recording), 5000, 9000, ["ch001", "ch006"]),
            reference(recording).read_index(["ch001", "ch006"], 5000, 9000),
        )


def test_client_and_open_recording_take_the_token_from_the_environment(
    guarded, recording, reference, token_file, monkeypatch
):
    monkeypatch.delenv("MEF3LAB_TOKEN", raising=False)
    monkeypatch.setenv("MEF3LAB_TOKEN_FILE", str(token_file))  # its first token: alice's
    with Mef3Client(guarded.address) as c:
        assert c.open_file(str(recording)).names == reference(recording).info.names
    monkeypatch.delenv("MEF3LAB_TOKEN_FILE")
    monkeypatch.setenv("MEF3LAB_TOKEN", TOKENS["bob"])
    ds = mef3lab.open_recording(recording, address=guarded.address)
    try:
        assert_same(
            ds.signal.isel(time=slice(0, 2048)).values,
            reference(recording).read_index(None, 0, 2048),
        )
    finally:
        ds.close()


def test_users_never_see_each_others_recordings_even_with_the_same_client_id(
    guarded, recording, reference
):
    with (
        Mef3Client(guarded.address, token=TOKENS["alice"], client_id="shared") as alice,
        Mef3Client(guarded.address, token=TOKENS["bob"], client_id="shared") as bob,
    ):
        alice.open_file(str(recording))
        alice.set_signal_chunk_size(str(recording), 10)
        assert alice.list_open_files() == [str(recording)]
        assert bob.list_open_files() == []
        with pytest.raises(NotOpenError):
            bob.read_index(str(recording), 0, 10)
        bob.open_file(str(recording))
        assert (
            bob.segment_grid(str(recording)).seconds == 300
        )  # the server's default, not alice's 10 s
        alice.close_file(str(recording))
        assert bob.list_open_files() == [str(recording)]
        assert_same(
            bob.read_index(str(recording), 0, 512), reference(recording).read_index(None, 0, 512)
        )
        bob.close_file(str(recording))


def test_the_unix_socket_needs_the_token_too(guarded, recording):
    sock = guarded.config.unix_socket
    assert stat.S_ISSOCK(os.stat(sock).st_mode)
    with pytest.raises(AuthenticationError):
        Mef3Client(f"unix:{sock}", token=None).open_file(str(recording))
    with Mef3Client(f"unix:{sock}", token=TOKENS["bob"]) as c:
        assert c.open_file(str(recording)).names


def test_without_auth_the_unix_socket_is_owner_only(launch, tmp_path, recording):
    sock = tmp_path / "open.sock"
    srv = launch(n_process_workers=1, unix_socket=str(sock))
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
    with Mef3Client(f"unix:{sock}") as c:
        assert c.open_file(str(recording)).names
    assert srv.running


def test_serving_beyond_localhost_without_auth_refuses_to_start():
    out = subprocess.run(
        [sys.executable, "-m", "mef3lab", "serve", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )
    assert (
        out.returncode == 2 and "refusing to listen on 0.0.0.0 without authentication" in out.stderr
    )
    assert "--insecure-public" in out.stderr
