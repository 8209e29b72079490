"""A client's deadline or cancel stops the server-side read, on both APIs.

On a real server and a real socket. The read hangs in a real reader process (the test
engine's ``hang-on-read`` marker). When the only reader waiting for it goes (deadline or
cancel), that process is killed and replaced at once, long before the server's read
timeout; when another client still waits for the same channel-segment load, the load goes
on and that client gets its data.
"""

from __future__ import annotations

import threading
import time

import grpc
import numpy as np
import psutil
import pytest

from mef3lab.client import Mef3Client
from mef3lab.errors import ServerUnavailableError
from mef3lab.protocol import gRPCMef3Server_pb2 as cpb
from mef3lab.protocol import gRPCMef3Server_pb2_grpc as cpb_grpc
from mef3lab.protocol import mef3lab_pb2 as pb
from mef3lab.protocol import mef3lab_pb2_grpc as pb_grpc
from mef3lab.readers import open_reader
from mef3lab.server.app import Server

try:
    from .. import _pool_engines as misbehaving
    from .._pool_helpers import gone, hang_pid
except ImportError:
    import _pool_engines as misbehaving
    from _pool_helpers import gone, hang_pid


@pytest.fixture
def server():
    """Every recording opens with the hanging engine (the old API cannot choose one); the read
    timeout is far away, so whatever stops a read here is its caller."""
    engines = tuple(
        f"{name}={target.replace(':', '.')}" for name, target in misbehaving.SPEC.items()
    )
    with Server(
        port=0,
        n_process_workers=2,
        reader_engine=engines,
        engine=misbehaving.ENGINE,
        read_timeout_s=120,
        n_prefetch=0,
        log_level="WARNING",
    ) as srv:
        yield srv


def aborted(server, expected: int) -> bool:
    """Whether the pool has counted `expected` aborted reads.

    It counts a death just after it happens.
    """
    deadline = time.monotonic() + 5
    while server.engine.pool.stats()["aborted"] != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return server.engine.pool.stats()["aborted"] == expected


def test_a_deadline_on_the_own_api_frees_the_reader_process(server, hung):
    with Mef3Client(server.address, timeout=60) as c:
        c.open_file(str(hung))  # reader processes may still be starting: no short deadline here
        c.timeout = 1.5
        t0 = time.monotonic()
        with pytest.raises(ServerUnavailableError, match="did not answer in time"):
            c.read_index(str(hung), 0, 100)
        pid = hang_pid(hung)
        assert gone([pid]) and time.monotonic() - t0 < 10  # not the 120 s read timeout
        assert aborted(server, 1)
        (hung / "hang-on-read").unlink()
        c.timeout = 30
        with open_reader(hung, engine="mef3io") as direct:
            np.testing.assert_array_equal(
                c.read_index(str(hung), 0, 100), direct.read_index(["ch000", "ch001"], 0, 100)
            )


def test_a_cancelled_stream_on_the_own_api_frees_the_reader_process(server, hung):
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.Mef3LabStub(channel)
        stub.Open(pb.OpenRequest(path=str(hung)), timeout=30)
        call = stub.ReadSegment(pb.ReadSegmentRequest(path=str(hung), index=0), timeout=60)
        pid = hang_pid(hung)
        call.cancel()
        with pytest.raises(grpc.RpcError) as err:
            list(call)
        assert err.value.code() == grpc.StatusCode.CANCELLED
        assert gone([pid])
        assert aborted(server, 1)


def test_a_deadline_and_a_cancel_on_the_old_api_free_the_reader_process(server, hung):
    with grpc.insecure_channel(server.address) as channel:
        stub = cpb_grpc.gRPCMef3ServerStub(channel)
        assert not stub.OpenFile(cpb.OpenFileRequest(file_path=str(hung)), timeout=30).error_message
        with pytest.raises(grpc.RpcError) as err:
            list(
                stub.GetSignalSegment(
                    cpb.SignalChunkRequest(file_path=str(hung), chunk_idx=0), timeout=1.5
                )
            )
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        first = hang_pid(hung)
        assert gone([first])
        (hung / "hang-on-read").write_text("")  # the next read hangs (and writes its pid) again
        call = stub.GetSignalSegment(
            cpb.SignalChunkRequest(file_path=str(hung), chunk_idx=0), timeout=60
        )
        second = hang_pid(hung)
        assert second != first
        call.cancel()
        assert gone([second])
        assert aborted(server, 2)


def test_a_load_another_client_waits_for_goes_on(server, hung):
    with (
        Mef3Client(server.address, timeout=60) as quitter,
        Mef3Client(server.address, timeout=60) as patient,
    ):
        quitter.open_file(str(hung))
        patient.open_file(str(hung))
        quitter.timeout = 1.5
        got = []
        thread = threading.Thread(target=lambda: got.append(patient.read_index(str(hung), 0, 100)))
        thread.start()
        pid = hang_pid(hung)
        time.sleep(0.3)  # the patient client's read is waiting for the load
        with pytest.raises(ServerUnavailableError):
            quitter.read_index(str(hung), 0, 100)  # joins the same load, then gives up
        time.sleep(1.0)
        assert psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        assert aborted(server, 0)
        (hung / "hang-on-read").unlink()
        thread.join(30)
        with open_reader(hung, engine="mef3io") as direct:
            np.testing.assert_array_equal(got[0], direct.read_index(["ch000", "ch001"], 0, 100))
