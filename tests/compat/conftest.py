"""Compatibility tests: the lab's clients (generated here from the spec) against a real server.

`spec` compiles tests/compat/spec/gRPCMef3Server.proto with grpc_tools.protoc into a
temporary package whose descriptors live in a private pool, so it never clashes with
mef3lab's own generated module if another test imported it. `server` runs the real
server in a subprocess on a free port (the same entry point `serve` uses) and always
stops it: SIGTERM, then kill; the test asserts it exited.
"""

from __future__ import annotations

import importlib
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import grpc
import numpy as np
import pytest
from grpc_tools import protoc

SPEC = Path(__file__).parent / "spec" / "gRPCMef3Server.proto"
ID_KEY = "x-mef3io-client-id"
MAX_MESSAGE = int(2.5 * 2**20)

SERVE = """
import sys
from mef3lab.server.app import serve
from mef3lab.server.config import ServerConfig
sys.exit(serve(ServerConfig.from_env(host="127.0.0.1", port=0)))
"""


@pytest.fixture(scope="session")
def spec(tmp_path_factory) -> SimpleNamespace:
    """`pb` (messages) and `grpc` (stub) modules generated from the spec's proto."""
    out = tmp_path_factory.mktemp("spec_client")
    pkg = out / "compat_spec_client"
    pkg.mkdir()
    args = [
        "protoc",
        f"-I{SPEC.parent}",
        f"--python_out={pkg}",
        f"--grpc_python_out={pkg}",
        SPEC.name,
    ]
    assert protoc.main(args) == 0, "protoc failed on the spec proto"
    (pkg / "__init__.py").write_text("")
    pb2, pb2_grpc = pkg / "gRPCMef3Server_pb2.py", pkg / "gRPCMef3Server_pb2_grpc.py"
    # A private descriptor pool: the spec's messages (no package) must not meet mef3lab's.
    pb2.write_text(
        pb2.read_text().replace("_descriptor_pool.Default()", "_descriptor_pool.DescriptorPool()")
    )
    pb2_grpc.write_text(
        re.sub(
            r"^import gRPCMef3Server_pb2 as",
            "from . import gRPCMef3Server_pb2 as",
            pb2_grpc.read_text(),
            flags=re.M,
        )
    )
    sys.path.insert(0, str(out))
    try:
        return SimpleNamespace(
            pb=importlib.import_module("compat_spec_client.gRPCMef3Server_pb2"),
            grpc=importlib.import_module("compat_spec_client.gRPCMef3Server_pb2_grpc"),
        )
    finally:
        sys.path.remove(str(out))


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """Address of a mef3lab server running in its own process (1 reader process)."""
    log = tmp_path_factory.mktemp("server") / "stderr.log"
    env = dict(
        os.environ, N_PROCESS_WORKERS="1", N_PREFETCH="1", LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1"
    )
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVE], stdout=subprocess.PIPE, stderr=err, env=env
        )
    try:
        address = _listening_address(proc, log, timeout=60)
        yield SimpleNamespace(address=address, proc=proc, log=log)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
            pytest.fail(f"the server did not stop on SIGTERM; killed it (log: {log})")
        proc.stdout.close()
    assert code == 0, f"the server exited with {code}: {log.read_text()[-2000:]}"


def _listening_address(proc: subprocess.Popen, log: Path, timeout: float) -> str:
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    buf = b""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"the server died at start ({proc.returncode}): {log.read_text()[-2000:]}"
            )
        if sel.select(timeout=0.2):
            chunk = os.read(proc.stdout.fileno(), 4096)
            buf += chunk
            m = re.search(rb"listening on (\S+)", buf)
            if m:
                return m.group(1).decode()
    raise RuntimeError(
        f"the server did not report its address within {timeout} s: {log.read_text()[-2000:]}"
    )


@dataclass
class Reply:
    """A reassembled data stream: the messages as sent and their concatenation."""

    messages: list
    array: np.ndarray | None
    error: str


class Client:
    """What the lab's clients do, on the spec's generated stub (one gRPC connection each)."""

    def __init__(
        self,
        spec: SimpleNamespace,
        address: str,
        client_id: str | None = None,
        metadata: tuple = (),
    ) -> None:
        # A local subchannel pool: one connection per Client, like clients in separate processes.
        self.channel = grpc.insecure_channel(
            address, options=[("grpc.use_local_subchannel_pool", 1)]
        )
        self.stub = spec.grpc.gRPCMef3ServerStub(self.channel)
        self.pb = spec.pb
        self.metadata = (((ID_KEY, client_id),) if client_id else ()) + tuple(metadata)

    def __getattr__(self, rpc: str):
        """`client.OpenFile(pb.OpenFileRequest(...))` with this client's metadata."""
        if rpc.startswith("_"):
            raise AttributeError(rpc)
        method = getattr(self.stub, rpc)
        return lambda request, **kw: method(request, metadata=self.metadata, timeout=60, **kw)

    def open(self, path, **kw):
        return self.OpenFile(self.pb.OpenFileRequest(file_path=str(path), **kw))

    def segment(self, path, index) -> Reply:
        return collect(
            self.GetSignalSegment(self.pb.SignalChunkRequest(file_path=str(path), chunk_idx=index))
        )

    def range(self, path, channels, t0, t1, n_points=None) -> Reply:
        req = self.pb.SignalRangeRequest(
            file_path=str(path), channel_names=channels, start_uutc=int(t0), end_uutc=int(t1)
        )
        if n_points is not None:
            req.n_points = n_points
        return collect(self.GetSignalRange(req))

    def close(self) -> None:
        self.channel.close()


def collect(stream) -> Reply:
    """Reassemble as their clients do: stop at an error message, else concatenate along axis 1."""
    messages, arrays = [], []
    for msg in stream:
        messages.append(msg)
        if msg.error_message:
            return Reply(messages, None, msg.error_message)
        arrays.append(np.frombuffer(msg.array_bytes, dtype=msg.dtype).reshape(tuple(msg.shape)))
    return Reply(messages, np.concatenate(arrays, axis=1) if arrays else None, "")


@pytest.fixture
def make_client(spec, server):
    """`make_client(client_id=None, metadata=())`: a new connection to the server, closed after."""
    made = []

    def make(client_id=None, metadata=()):
        c = Client(spec, server.address, client_id, metadata)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture(scope="session")
def reader():
    """`reader(path, password=None)`: mef3lab's own direct reader (pymef), cached per path."""
    from mef3lab.readers import open_reader

    opened = {}

    def get(path, password=None):
        key = (str(path), password)
        if key not in opened:
            opened[key] = open_reader(path, password, "pymef")
        return opened[key]

    yield get
    for r in opened.values():
        r.close()
