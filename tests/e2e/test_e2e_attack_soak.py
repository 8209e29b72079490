"""The soak, short: well-behaved clients (every reply compared with a direct read) while
attackers take turns at the attacks of the other ``test_e2e_attack_*`` modules.

Stalled streams, a read naming one channel a million times, an envelope of a billion bins,
a segment size of 1e300 and half-sent HTTP requests run one after the other for the whole
time; the victims must see no error and no wrong sample, and the server's peak memory may
exceed that of the same load without attackers (measured first, on the same server) only by
what the attacks are allowed to hold: the stalled streams' unsent messages and one parsed
request. The victims' p50/p99 are printed beside those of the quiet run.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest

from mef3lab.protocol import mef3lab_pb2 as pb
from mef3lab.protocol import mef3lab_pb2_grpc as pb_grpc
from mef3lab.protocol.wire import CLIENT_ID_KEY

from .test_e2e_attack_streams import release, stall

REPO = str(Path(__file__).resolve().parents[2])
if REPO not in sys.path:  # `benchmarks` is a folder of the repository, not an installed package
    sys.path.insert(0, REPO)

from benchmarks.load import drive, whole_recording  # noqa: E402

pytestmark = pytest.mark.slow

CLIENTS, SECONDS, TURN_S = 20, 20.0, 2.0
#: What the attacks may hold beyond a quiet run: 8 stalled streams' unsent messages (and
#: gRPC's buffers for them), and a parsed request of a million names.
ATTACK_ALLOWANCE_MB = 256.0
MD = ((CLIENT_ID_KEY, "soak-attacker"),)


def attacks(address: str, http_url: str, path: str):
    """Each attack as a function that runs it once (refusals are what it should get)."""

    def stalled_streams():
        stalled = stall(address, path, 8)
        time.sleep(TURN_S)
        release(stalled)

    def refused(call):
        try:
            result = call()
            if hasattr(result, "__iter__") and not hasattr(result, "ListFields"):
                list(result)
        except grpc.RpcError as err:
            assert err.code() in (
                grpc.StatusCode.INVALID_ARGUMENT,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
            ), err
        else:
            raise AssertionError("an attack was served")

    def bad_requests():
        with grpc.insecure_channel(address) as channel:
            stub = pb_grpc.Mef3LabStub(channel)
            stub.Open(pb.OpenRequest(path=path), metadata=MD)
            t0 = time.monotonic()
            while time.monotonic() - t0 < TURN_S:
                window = pb.IndexWindow(start=0, stop=10)
                refused(
                    lambda w=window: stub.ReadRange(
                        pb.ReadRangeRequest(path=path, channels=["ch000"] * 1_000_000, samples=w),
                        metadata=MD,
                    )
                )
                refused(
                    lambda: stub.ReadEnvelope(
                        pb.EnvelopeRequest(
                            path=path, samples=pb.IndexWindow(start=0, stop=150_000), bins=10**9
                        ),
                        metadata=MD,
                    )
                )
                refused(
                    lambda: stub.SetSegmentSize(
                        pb.SegmentSizeRequest(path=path, seconds=1e300), metadata=MD
                    )
                )

    def half_sent_http():
        host, port = http_url.split("//")[1].rstrip("/").rsplit(":", 1)
        held = []
        for _ in range(64):
            s = socket.create_connection((host, int(port)), source_address=("127.0.0.2", 0))
            s.sendall(b"GET /api/status HTTP/1.1\r\nHost: x\r\n")
            held.append(s)
        time.sleep(TURN_S)
        for s in held:
            s.close()

    return [stalled_streams, bad_requests, half_sent_http]


def test_victims_read_right_while_attackers_take_turns(module_launch, recording):
    srv = module_launch(
        n_process_workers=2,
        n_prefetch=1,
        segment_seconds=30.0,
        max_read_mb=4.0,  # an envelope of one bin per sample is 9.4 MiB: refused
        http_port=0,
        stream_write_timeout_s=5.0,
    )
    reference = whole_recording(recording)
    quiet = drive(srv.address, str(recording), reference, srv.pid, CLIENTS, SECONDS / 2, 30.0, 4.0)
    assert not quiet.failures, quiet.failures[:5]
    stop, errors = threading.Event(), []

    def attack_in_turn():
        turns = attacks(srv.address, srv.http_urls[0], str(recording))
        i = 0
        while not stop.is_set():
            try:
                turns[i % len(turns)]()
            except Exception as exc:  # noqa: BLE001 - shown by the assertion below
                errors.append(f"{turns[i % len(turns)].__name__}: {exc!r}")
            i += 1

    attacker = threading.Thread(target=attack_in_turn)
    attacker.start()
    try:
        result = drive(srv.address, str(recording), reference, srv.pid, CLIENTS, SECONDS, 30.0, 4.0)
    finally:
        stop.set()
        attacker.join()
    for name, r in (("quiet", quiet), ("under attack", result)):
        print(
            f"\n{CLIENTS} clients {name}, {r.seconds:.1f} s: {r.calls} calls, "
            f"p50 {r.p(50):.1f} ms, p99 {r.p(99):.1f} ms; server RSS peak {r.rss_peak_mb:.0f} MB"
        )
    assert not errors, errors[:5]
    assert not result.failures, result.failures[:5]
    assert len(result.latencies_ms) >= CLIENTS
    assert result.rss_peak_mb <= quiet.rss_peak_mb + ATTACK_ALLOWANCE_MB
