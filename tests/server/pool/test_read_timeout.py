"""The per-read decode timeout and `ReaderPool.abort`, on real reader processes really killed.

A hung decoder (the test engine's ``hang-on-read`` marker) is killed after `read_timeout_s`
and replaced; its request fails with `ReadTimeoutError` naming the recording; the pool
(and a real server on a real socket) keeps serving every other read meanwhile.
"""

from __future__ import annotations

import threading
import time

import grpc
import numpy as np
import psutil
import pytest

from mef3lab.client import Mef3Client
from mef3lab.errors import CancelledError, ReadTimeoutError
from mef3lab.readers import open_reader
from mef3lab.server.app import Server
from mef3lab.server.pool import ReaderPool, ReadRequest

try:
    from .. import _pool_engines as misbehaving
    from .._pool_helpers import gone, hang_pid, wait_for
except ImportError:
    import _pool_engines as misbehaving
    from _pool_helpers import gone, hang_pid, wait_for

TIMEOUT_S = 2.0


def test_a_hung_decode_is_killed_after_the_timeout_and_the_pool_reads_on(hung, recording):
    with ReaderPool(2, engines=misbehaving.SPEC, read_timeout_s=TIMEOUT_S) as p:
        wait_for(lambda: p.stats()["warm"] == 2, timeout=60)  # the clock runs from then
        t0 = time.monotonic()
        stuck = p.submit(ReadRequest(hung, None, misbehaving.ENGINE, ("ch000",), 0, 100))
        pid = hang_pid(hung)
        good = p.submit(ReadRequest(recording, None, "mef3io", ("ch000", "ch001"), 0, 500))
        with open_reader(recording, engine="mef3io") as direct:
            np.testing.assert_array_equal(
                good.result(timeout=30).array, direct.read_index(["ch000", "ch001"], 0, 500)
            )
        with pytest.raises(
            ReadTimeoutError, match=f"{hung}.*within the server's read timeout of 2 s"
        ):
            stuck.result(timeout=30)
        assert TIMEOUT_S <= time.monotonic() - t0 < TIMEOUT_S + 5
        assert gone([pid])
        stats = p.stats()  # counted before the failure is delivered
        assert (stats["timeouts"], stats["crashes"]) == (1, 0)
        (hung / "hang-on-read").unlink()
        assert p.submit(ReadRequest(hung, None, misbehaving.ENGINE, ("ch000",), 0, 100)).result(
            timeout=30
        ).shape == (1, 100)
        assert p.stats()["alive"] == 2 and pid not in p.stats()["pids"]


def test_a_decode_within_the_timeout_is_left_alone(hung):
    with ReaderPool(1, engines=misbehaving.SPEC, read_timeout_s=30) as p:
        fut = p.submit(ReadRequest(hung, None, misbehaving.ENGINE, ("ch001",), 0, 10))
        pid = hang_pid(hung)
        time.sleep(0.5)
        (hung / "hang-on-read").unlink()  # the decode finishes, slowly
        assert fut.result(timeout=30).shape == (1, 10)
        assert psutil.pid_exists(pid) and p.stats()["timeouts"] == 0


def test_abort_kills_a_running_read_and_cancels_a_queued_one(hung, recording):
    with ReaderPool(1, engines=misbehaving.SPEC) as p:
        running = p.submit(ReadRequest(hung, None, misbehaving.ENGINE, ("ch000",), 0, 10))
        pid = hang_pid(hung)
        queued = p.submit(ReadRequest(recording, None, "mef3io", ("ch000",), 0, 10))
        p.abort(queued)
        assert queued.cancelled()
        p.abort(running)
        with pytest.raises(CancelledError, match="nobody waits for it"):
            running.result(timeout=30)
        assert gone([pid])
        assert p.stats()["aborted"] == 1 and p.stats()["crashes"] == 0
        assert p.submit(ReadRequest(recording, None, "mef3io", ("ch000",), 0, 10)).result(
            timeout=30
        ).shape == (1, 10)


def test_a_hung_open_is_killed_after_the_timeout_too(hung):
    (hung / "hang-on-read").rename(hung / "hang-on-open")
    with ReaderPool(1, engines=misbehaving.SPEC, read_timeout_s=TIMEOUT_S) as p:
        with pytest.raises(ReadTimeoutError, match=f"opening {hung}"):
            p.info(hung, None, misbehaving.ENGINE)
        (hung / "hang-on-open").unlink()
        assert p.info(hung, None, misbehaving.ENGINE).names == ("ch000", "ch001")


@pytest.fixture
def server():
    engines = tuple(
        f"{name}={target.replace(':', '.')}" for name, target in misbehaving.SPEC.items()
    )
    with Server(
        port=0,
        n_process_workers=2,
        reader_engine=engines,
        read_timeout_s=TIMEOUT_S,
        n_prefetch=0,
        log_level="WARNING",
    ) as srv:
        yield srv


def test_the_server_answers_a_hung_read_within_the_timeout_and_serves_everyone_else(
    server, hung, recording
):
    with Mef3Client(server.address) as stuck, Mef3Client(server.address) as other:
        stuck.open_file(str(hung), engine=misbehaving.ENGINE)
        other.open_file(str(recording))
        failures = []

        def read_stuck():
            try:
                stuck.read_index(str(hung), 0, 100)
            except Exception as exc:  # noqa: BLE001 - what the client raised is the point
                failures.append((exc, time.monotonic()))

        t0 = time.monotonic()
        thread = threading.Thread(target=read_stuck)
        thread.start()
        pid = hang_pid(hung)
        with open_reader(recording, engine="mef3io") as direct:
            expected = direct.read_index(["ch000", "ch001"], 0, 1000)
        for _ in range(3):  # served meanwhile, by the other reader process
            np.testing.assert_array_equal(
                other.read_index(str(recording), 0, 1000, channels=["ch000", "ch001"]), expected
            )
        thread.join(30)
        ((exc, when),) = failures
        assert isinstance(exc, ReadTimeoutError) and str(hung) in str(exc)
        assert when - t0 < TIMEOUT_S + 5
        assert gone([pid])
        assert other.stats()["worker_restarts"] == 1
        (hung / "hang-on-read").unlink()
        assert stuck.read_index(str(hung), 0, 100).shape == (2, 100)  # not cached as an error


def test_a_hung_read_is_deadline_exceeded_on_the_wire(server, hung):
    from mef3lab.protocol import mef3lab_pb2 as pb
    from mef3lab.protocol import mef3lab_pb2_grpc as pb_grpc

    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.Mef3LabStub(channel)
        stub.Open(pb.OpenRequest(path=str(hung), engine=misbehaving.ENGINE), timeout=30)
        with pytest.raises(grpc.RpcError) as err:
            list(stub.ReadSegment(pb.ReadSegmentRequest(path=str(hung), index=0), timeout=30))
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "read timeout of 2 s" in err.value.details() and str(hung) in err.value.details()
