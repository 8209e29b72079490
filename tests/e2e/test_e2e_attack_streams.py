"""Attacks on a real server: reply streams started and never read.

The attacker opens many `ReadSegment` streams and reads one message of each; a
well-behaved client beside it reads (values compared) and the health check answers, in
good time, while the attacker stalls; the server's threads do not grow with the stalled
streams; a stream nobody reads ends at its write deadline; and one user's streams count
against that user only.
"""

from __future__ import annotations

import time

import grpc
import psutil
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mef3lab.client import Mef3Client
from mef3lab.protocol import mef3lab_pb2 as pb
from mef3lab.protocol import mef3lab_pb2_grpc as pb_grpc
from mef3lab.testing.attacks import release, stall

from .conftest import assert_same, clean_env

TOKENS = {"mallory": "mallory-token-1b9e", "alice": "alice-token-7f3a"}


def health_latency(address: str) -> float:
    with grpc.insecure_channel(address) as channel:
        t0 = time.monotonic()
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=5
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        return time.monotonic() - t0


def test_stalled_streams_hold_no_thread_and_stop_nobody(launch, big_recording, reference):
    # Before: 16 stalled streams took every one of the server's 16 threads; every other call,
    # the health check too, waited until the attacker let go (DEADLINE_EXCEEDED).
    srv = launch(grpc_threads=4, n_process_workers=1, n_prefetch=0)
    path = str(big_recording)
    server = psutil.Process(srv.pid)
    victim = Mef3Client(srv.address, client_id="victim", timeout=60)
    try:
        victim.open_file(path)
        want = reference(big_recording).read_index(["ch003", "ch040"], 1000, 3000)
        assert_same(victim.read_index(path, 1000, 3000, ["ch003", "ch040"]), want)
        threads_before = server.num_threads()
        stalled = stall(srv.address, path, 16)  # each segment: 64 ch x 300 s x 256 Hz, 19 MiB
        try:
            time.sleep(1.0)  # every stream is blocked on its client by now
            assert health_latency(srv.address) < 2.0
            t0 = time.monotonic()
            assert_same(victim.read_index(path, 1000, 3000, ["ch003", "ch040"]), want)
            assert_same(
                victim.read_index(path, 200_000, 201_000, ["ch010"]),
                reference(big_recording).read_index(["ch010"], 200_000, 201_000),
            )
            assert time.monotonic() - t0 < 20.0
            grown = server.num_threads() - threads_before
            assert grown <= 4, f"the server's threads grew by {grown} with 16 stalled streams"
        finally:
            release(stalled)
    finally:
        victim.shutdown()


def test_a_stream_nobody_reads_ends_at_its_write_deadline(launch, big_recording):
    srv = launch(stream_write_timeout_s=2.0, n_process_workers=1, n_prefetch=0)
    stalled = stall(srv.address, str(big_recording), 1)
    try:
        time.sleep(4.0)
        _, stream = stalled[0]
        with pytest.raises(grpc.RpcError) as err:
            for _ in stream:  # what was buffered, then the end
                pass
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert "was not read for 2 s" in err.value.details()
    finally:
        release(stalled)


def test_one_users_calls_count_against_that_user_only(launch, big_recording, tmp_path, reference):
    tokens = tmp_path / "tokens"
    tokens.write_text("".join(f"{user} {token}\n" for user, token in TOKENS.items()))
    srv = launch(
        env=clean_env(),
        token_file=str(tokens),
        max_calls_per_client=4,
        n_process_workers=1,
        n_prefetch=0,
    )
    path = str(big_recording)
    stalled = stall(srv.address, path, 4, TOKENS["mallory"])
    try:
        with grpc.insecure_channel(srv.address) as channel, pytest.raises(grpc.RpcError) as err:
            pb_grpc.Mef3LabStub(channel).GetStats(
                pb.StatsRequest(),
                metadata=(("authorization", f"Bearer {TOKENS['mallory']}"),),
                timeout=10,
            )
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "4 calls in progress" in err.value.details()
        with Mef3Client(srv.address, token=TOKENS["alice"], timeout=60) as alice:
            alice.open_file(path)
            assert_same(
                alice.read_index(path, 0, 2560, ["ch001"]),
                reference(big_recording).read_index(["ch001"], 0, 2560),
            )
    finally:
        release(stalled)
