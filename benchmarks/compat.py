"""Table B: the same access pattern through the lab's legacy `gRPCMef3Server` API.

What the old clients do, on the generated stubs: OpenFile, SetSignalSegmentSize,
then GetSignalSegment after GetSignalSegment, concatenating each streamed reply's
`array_bytes` along axis 1. The legacy API sends float64, so the baseline here is the
direct read in float64 too.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import numpy as np

from mef3lab.protocol import gRPCMef3Server_pb2 as pb
from mef3lab.protocol import gRPCMef3Server_pb2_grpc as pb_grpc

from .common import Direct, Params, check_same, sequence, server
from .report import Table, Target, best, repeat

CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 2**20),
    ("grpc.use_local_subchannel_pool", 1),
]


class LegacyClient:
    """The old segment client, reduced to what the access pattern uses."""

    def __init__(self, address: str) -> None:
        self.channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
        self.stub = pb_grpc.gRPCMef3ServerStub(self.channel)

    def open(self, path: str, segment_s: int) -> int:
        reply = self.stub.OpenFile(pb.OpenFileRequest(file_path=path), timeout=60)
        if reply.error_message:
            raise RuntimeError(reply.error_message)
        reply = self.stub.SetSignalSegmentSize(
            pb.SetSignalSegmentRequest(file_path=path, seconds=segment_s), timeout=60
        )
        if reply.error_message:
            raise RuntimeError(reply.error_message)
        return reply.number_of_segments

    def segment(self, path: str, index: int) -> np.ndarray:
        parts = []
        for msg in self.stub.GetSignalSegment(
            pb.SignalChunkRequest(file_path=path, chunk_idx=index), timeout=300
        ):
            if msg.error_message:
                raise RuntimeError(msg.error_message)
            parts.append(np.frombuffer(msg.array_bytes, dtype=msg.dtype).reshape(tuple(msg.shape)))
        return np.concatenate(parts, axis=1)

    def close(self) -> None:
        self.channel.close()


def run(path: Path, params: Params, log=print) -> Table:
    n, w = params.n_segments, params.work_s
    table = Table(
        "B",
        f"Legacy gRPCMef3Server API: SetSignalSegmentSize({params.segment_s}) + {n} × "
        f"GetSignalSegment, {w:g} s of work after each (float64)",
    )
    seq = list(range(n))
    with Direct(path, params) as direct:
        log("B1 direct read, float64 ...")
        runs = [
            sequence(lambda i: direct.segment(i, "float64"), seq, w) for _ in range(params.repeat)
        ]
        base, want = best(t for t, _ in runs), runs[0][1]
    table.add(
        "1. direct pymef read, float64 (baseline)", base, "s", 1.0, samples=[t for t, _ in runs]
    )

    def legacy(**config) -> float:
        with server(params, **config) as srv:
            client = LegacyClient(srv.address)
            try:
                client.open(str(path), params.segment_s)
                seconds, got = sequence(lambda i: client.segment(str(path), i), seq, w)
            finally:
                client.close()
        for i in got:
            check_same(f"legacy GetSignalSegment {i}", got[i], want[i])
        return seconds

    for label, config, target in [
        ("2. legacy API, no prefetch", dict(n_prefetch=0), None),
        (
            f"3. legacy API, prefetch {params.n_prefetch}, {params.workers} readers",
            {},
            Target("ratio", "<=", 0.5),
        ),
    ]:
        log(f"B{label[0]} {label[3:]} ...")
        s = repeat(params.repeat, lambda config=config: legacy(**config))
        table.add(label, best(s), "s", best(s) / base, target, samples=s)
    table.notes.append(f"times are the best of {params.repeat}; every row starts its own server.")
    return table
