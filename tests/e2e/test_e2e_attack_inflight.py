"""Attacks on a real server: one user asking many huge reads at once, and left unread.

Each read is charged its full size to its caller's identity from before it starts until its
call ends (`--max-bytes-in-flight-mb`); beyond the limit a read is refused with
RESOURCE_EXHAUSTED, while another user's reads, huge ones too, are served as before. Before,
only the number of calls was bounded: 64 unread reads of one user held 64 replies' worth of
decoded samples.
"""

from __future__ import annotations

import statistics
import time

import grpc
import numpy as np

from mef3lab.client import Mef3Client
from mef3lab.protocol import mef3lab_pb2 as pb
from mef3lab.protocol import mef3lab_pb2_grpc as pb_grpc
from mef3lab.testing.attacks import STALLING

from .conftest import assert_same, clean_env

TOKENS = {"mallory": "mallory-token-40c2", "alice": "alice-token-9e1d"}


def victim_latencies(client: Mef3Client, path: str, want: np.ndarray, n: int = 15) -> list[float]:
    """`n` small reads of `path` (compared with `want`), each one's seconds."""
    out = []
    for i in range(n):
        k0 = (i * 2560) % (want.shape[1] - 2560)
        t0 = time.monotonic()
        got = client.read_index(path, k0, k0 + 2560, ["ch000", "ch001", "ch002", "ch003"])
        out.append(time.monotonic() - t0)
        assert_same(got, want[:4, k0 : k0 + 2560])
    return out


def test_one_users_huge_reads_in_flight_are_bounded_and_others_keep_their_latency(
    launch, big_recording, reference, tmp_path
):
    tokens = tmp_path / "tokens"
    tokens.write_text("".join(f"{user} {token}\n" for user, token in TOKENS.items()))
    srv = launch(
        env=clean_env(),
        token_file=str(tokens),
        max_bytes_in_flight_mb=128,
        n_process_workers=2,
        n_prefetch=0,
    )
    path = str(big_recording)
    want = reference(big_recording).read_index(None, 0, 230400)
    whole_mb = want.nbytes / 2**20  # 64 channels x 900 s x 256 Hz, float32: 56 MiB
    alice = Mef3Client(srv.address, token=TOKENS["alice"], timeout=120)
    try:
        alice.open_file(path)
        assert_same(alice.read_index(path, 0, 230400), want)  # decoded once: cached from now on
        quiet = victim_latencies(alice, path, want)

        md = (("authorization", f"Bearer {TOKENS['mallory']}"),)
        channel = grpc.insecure_channel(srv.address, options=STALLING)
        stub = pb_grpc.Mef3LabStub(channel)
        stub.Open(pb.OpenRequest(path=path), metadata=md, timeout=60)
        whole = pb.ReadRangeRequest(path=path, samples=pb.IndexWindow(start=0, stop=230400))
        streams = [stub.ReadRange(whole, metadata=md) for _ in range(8)]
        held, refused = [], []
        for stream in streams:
            try:
                next(stream)  # the read started and holds its reply; the rest is left unread
                held.append(stream)
            except grpc.RpcError as err:
                refused.append((err.code(), err.details()))
        try:
            assert len(held) == int(128 // whole_mb) == 2
            assert {code for code, _ in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
            assert "limit of 128 MiB per user" in refused[0][1]
            # Another user is not affected: a read as huge, and small reads at their usual pace.
            assert_same(alice.read_index(path, 0, 230400), want)
            attacked = victim_latencies(alice, path, want)
        finally:
            for stream in held:
                stream.cancel()
        # What the cancelled reads held is given back: the same user reads again.
        again = list(stub.ReadRange(whole, metadata=md, timeout=120))
        assert sum(len(m.data) for m in again) == want.nbytes
        channel.close()
    finally:
        alice.shutdown()
    print(
        f"victim p50 quiet {statistics.median(quiet) * 1e3:.1f} ms, "
        f"with huge reads of another user held {statistics.median(attacked) * 1e3:.1f} ms"
    )
    assert statistics.median(attacked) < 5 * statistics.median(quiet) + 0.05
