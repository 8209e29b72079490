"""The lab's old clients against a server with a static token, given it by the documented line.

The original client is the spec's generated stub (`Client` in conftest); the successor is its
real PyPI package, `mef3io-server`, whose pins (grpcio 1.81, protobuf 6) cannot live in this
environment: its wheel is installed without dependencies into a cache folder and run in a
subprocess (its generated code loads under this protobuf; the client needs nothing else).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import grpc
import numpy as np
import pytest

import mef3lab.client.credentials
from mef3lab.server.process import ServerProcess
from tests.compat.conftest import Client

TOKEN = "lab-token-0c1d"
SUCCESSOR = "mef3io-server==3.1.0"
#: The statement the README gives for the lab's clients, as it is written there (in a list item).
ONE_LINE = (
    "client.stub = type(client.stub)"
    "(grpc.intercept_channel(client.channel, mef3lab.client.credentials.bearer()))"
)


@pytest.fixture(scope="module")
def guarded():
    with ServerProcess(
        n_process_workers=1, n_prefetch=0, env=dict(os.environ, MEF3LAB_TOKEN=TOKEN)
    ) as srv:
        yield srv
    assert srv.proc.returncode == 0


@pytest.fixture(scope="session")
def successor_package() -> Path:
    """A folder holding the `mef3io_server` package (installed once, then reused)."""
    target = Path(tempfile.gettempdir()) / "mef3lab-test-deps" / SUCCESSOR.replace("==", "-")
    if not (target / "mef3io_server" / "client.py").exists():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--target",
                str(target),
                SUCCESSOR,
            ],
            check=True,
            timeout=300,
            capture_output=True,
        )
    return target


def test_the_original_client_with_the_interceptor(spec, guarded, recording, reader, monkeypatch):
    client = Client(spec, guarded.address)
    try:
        with pytest.raises(grpc.RpcError) as err:
            client.open(recording)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        monkeypatch.setenv("MEF3LAB_TOKEN", TOKEN)
        client.stub = type(client.stub)(
            grpc.intercept_channel(client.channel, mef3lab.client.credentials.bearer())
        )
        assert client.open(recording).file_opened
        t0 = reader(recording).info.start_uutc
        reply = client.range(recording, ["ch002", "ch005"], t0, t0 + 4_000_000)
        assert not reply.error
        np.testing.assert_array_equal(
            reply.array, reader(recording).read_index(["ch002", "ch005"], 0, 1024)
        )
    finally:
        client.close()


SUCCESSOR_SCRIPT = """
import json, sys
import grpc, numpy as np
import mef3lab.client.credentials
from mef3io_server.client import Mef3Client

address, path, t0, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
with_token = sys.argv[5] == "1"
client = Mef3Client(address)
if with_token:
    {line}
try:
    info = client.open_file(path)
except grpc.RpcError as err:
    print(json.dumps({{"code": err.code().name}}))
    sys.exit(0)
reply = client.get_signal_range(path, ["ch004", "ch000"], t0, t0 + 4_000_000)
np.save(out, reply["array"])
print(json.dumps({{"opened": info["file_opened"], "error": reply["error_message"]}}))
client.shutdown()
"""


@pytest.mark.parametrize("with_token", [False, True])
def test_the_successors_pypi_client_with_the_interceptor(
    guarded, recording, reader, successor_package, tmp_path, with_token
):
    assert (
        ONE_LINE in (Path(__file__).parents[2] / "README.md").read_text()
    )  # what users are told to write
    out = tmp_path / "range.npy"
    script = SUCCESSOR_SCRIPT.format(line=ONE_LINE)
    env = {"PYTHONPATH": str(successor_package), "MEF3LAB_TOKEN": TOKEN, "PATH": "/usr/bin:/bin"}
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            guarded.address,
            str(recording),
            str(reader(recording).info.start_uutc),
            str(out),
            "1" if with_token else "0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    if not with_token:
        assert result == {"code": "UNAUTHENTICATED"}
        return
    assert result["opened"] and not result["error"]
    np.testing.assert_array_equal(
        np.load(out), reader(recording).read_index(["ch004", "ch000"], 0, 1024)
    )
