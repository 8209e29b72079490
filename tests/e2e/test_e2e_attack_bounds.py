"""Attacks on a real server: requests whose cost is out of proportion to what they ask for.

Each is refused before the server does the work (or costs no more than its reply), and a
well-behaved client beside the attacker keeps getting the right values.
"""

from __future__ import annotations

import os
import threading
import time

import grpc
import numpy as np
import pytest

from mef3lab.protocol import gRPCMef3Server_pb2 as cpb
from mef3lab.protocol import gRPCMef3Server_pb2_grpc as cpb_grpc
from mef3lab.protocol import mef3lab_pb2 as pb
from mef3lab.protocol import mef3lab_pb2_grpc as pb_grpc
from mef3lab.protocol.wire import CLIENT_ID_KEY, ERROR_KEY
from mef3lab.signal.decimate import minmax_points

from .conftest import assert_same

MD = ((CLIENT_ID_KEY, "attacker"),)


def failure(call) -> tuple[grpc.StatusCode, str | None, str]:
    """(status, mef3lab error name, details) of a call that must fail (streams drained)."""
    with pytest.raises(grpc.RpcError) as err:
        result = call()
        if hasattr(result, "__iter__") and not hasattr(result, "ListFields"):
            list(result)
    e = err.value
    return e.code(), dict(e.trailing_metadata() or ()).get(ERROR_KEY), e.details()


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), MiB."""
    with open(f"/proc/{pid}/status") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))
    return kib / 1024


@pytest.fixture(scope="module")
def bounded(module_launch):
    """A server with a small read limit (1 MiB), as a shared server would set one."""
    return module_launch(max_read_mb=1.0, n_prefetch=0, n_process_workers=1)


def test_an_envelope_whose_reply_exceeds_the_read_limit_is_refused(bounded, recording, reference):
    path = str(recording)
    with grpc.insecure_channel(bounded.address) as channel:
        stub = pb_grpc.Mef3LabStub(channel)
        stub.Open(pb.OpenRequest(path=path), metadata=MD)
        huge = pb.EnvelopeRequest(
            path=path, samples=pb.IndexWindow(start=0, stop=600 * 256), bins=2**40
        )  # before: one bin per sample, 2 x 8 x 153600 float32 = 9.4 MiB built and sent
        code, name, text = failure(lambda: stub.ReadEnvelope(huge, metadata=MD))
        assert (code, name) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "ReadTooLargeError")
        assert "an envelope of" in text and "ask for fewer bins" in text
        ok = list(
            stub.ReadEnvelope(
                pb.EnvelopeRequest(path=path, samples=pb.IndexWindow(start=0, stop=2560), bins=10),
                metadata=MD,
            )
        )
    env = np.frombuffer(b"".join(m.data for m in ok), np.float32).reshape(2, 8, 10)
    direct = reference(recording).read_index(None, 0, 2560).reshape(8, 10, 256)
    np.testing.assert_array_equal(env[1], np.nanmax(direct, axis=2))


def test_a_read_naming_a_channel_a_million_times_is_refused_at_once(
    bounded, connect, recording, reference
):
    path = str(recording)
    victim = connect(bounded, client_id="victim")
    victim.open_file(path)
    want = reference(recording).read_index(["ch001"], 0, 2560)
    wrong, stop = [], threading.Event()

    def read_along():
        while not stop.is_set():
            got = victim.read_index(path, 0, 2560, ["ch001"])
            if not np.array_equal(got, want, equal_nan=True):
                wrong.append(got)

    reader = threading.Thread(target=read_along)
    reader.start()
    try:
        with grpc.insecure_channel(bounded.address) as channel:
            stub = pb_grpc.Mef3LabStub(channel)
            stub.Open(pb.OpenRequest(path=path), metadata=MD)
            names = ["ch000"] * 1_000_000  # before: 7-23 s of CPU for a reply of 4 MB
            huge = pb.ReadRangeRequest(
                path=path, channels=names, samples=pb.IndexWindow(start=0, stop=1)
            )  # 7 MB: refused by its size, before it is parsed
            code, _, text = failure(lambda: stub.ReadRange(huge, metadata=MD))
            assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, text
            names = ["ch000"] * 100_000  # small enough to be parsed: refused by its length
            for request in (
                lambda: stub.ReadRange(
                    pb.ReadRangeRequest(
                        path=path, channels=names, samples=pb.IndexWindow(start=0, stop=1)
                    ),
                    metadata=MD,
                ),
                lambda: stub.ReadEnvelope(
                    pb.EnvelopeRequest(
                        path=path, channels=names, samples=pb.IndexWindow(start=0, stop=2), bins=1
                    ),
                    metadata=MD,
                ),
            ):
                t0 = time.monotonic()
                code, _, text = failure(request)
                assert code == grpc.StatusCode.INVALID_ARGUMENT, text
                assert "at most 1032 channels (repeats included), not 100000" in text
                assert time.monotonic() - t0 < 10.0
            # A repeat within reason is still served, as before.
            rows = list(
                stub.ReadRange(
                    pb.ReadRangeRequest(
                        path=path, channels=["ch001"] * 3, samples=pb.IndexWindow(start=0, stop=10)
                    ),
                    metadata=MD,
                )
            )
            assert list(rows[0].shape) == [3, 10]
    finally:
        stop.set()
        reader.join()
    assert not wrong


def test_refused_segment_sizes_are_never_applied(bounded, recording, reference):
    path = str(recording)
    with grpc.insecure_channel(bounded.address) as channel:
        stub = pb_grpc.Mef3LabStub(channel)
        stub.Open(pb.OpenRequest(path=path), metadata=MD)
        before = stub.SetSegmentSize(pb.SegmentSizeRequest(path=path, seconds=10.0), metadata=MD)
        for seconds in (1e300, 1e9, 2.0**62, float("inf"), float("nan"), 0.5, 2000.0):
            code, _, text = failure(
                lambda s=seconds: stub.SetSegmentSize(
                    pb.SegmentSizeRequest(path=path, seconds=s), metadata=MD
                )
            )
            assert code == grpc.StatusCode.INVALID_ARGUMENT, (seconds, text)
        # 1 MiB of int32 at 256 Hz is 1024 s: 2000 s is refused, 1000 s would be accepted.
        assert "unchanged" in text and "1024 s at 256 Hz" in text
        assert stub.GetSegmentGrid(pb.RecordingRequest(path=path), metadata=MD) == before
        seg = list(stub.ReadSegment(pb.ReadSegmentRequest(path=path, index=3), metadata=MD))
        got = np.frombuffer(b"".join(m.data for m in seg), np.float32).reshape(8, 2560)
        assert_same(got, reference(recording).read_index(None, 7680, 10240))

        legacy = cpb_grpc.gRPCMef3ServerStub(channel)
        md = (("x-mef3io-client-id", "legacy-attacker"),)
        legacy.OpenFile(cpb.OpenFileRequest(file_path=path), metadata=md)
        ok = legacy.SetSignalSegmentSize(
            cpb.SetSignalSegmentRequest(file_path=path, seconds=5), metadata=md
        )
        assert ok.number_of_segments == 120
        bad = legacy.SetSignalSegmentSize(
            cpb.SetSignalSegmentRequest(file_path=path, seconds=2**62), metadata=md
        )
        assert "unchanged" in bad.error_message
        chunks = list(
            legacy.GetSignalSegment(
                cpb.SignalChunkRequest(file_path=path, chunk_idx=119), metadata=md
            )
        )
        assert not chunks[0].error_message
        got = np.frombuffer(chunks[0].array_bytes, np.float64).reshape(chunks[0].shape)
        assert_same(got, reference(recording).read_index(None, 119 * 1280, 120 * 1280, "float64"))


def test_a_display_read_costs_about_its_read(launch, big_recording, reference):
    """`n_points` over a whole recording costs about one read's memory, not several."""
    srv = launch(n_prefetch=0, n_process_workers=1)
    path = str(big_recording)
    with grpc.insecure_channel(srv.address) as channel:
        legacy = cpb_grpc.gRPCMef3ServerStub(channel)
        info = legacy.OpenFile(cpb.OpenFileRequest(file_path=path))
        legacy.SetSignalSegmentSize(cpb.SetSignalSegmentRequest(file_path=path, seconds=900))
        t0, t1 = info.start_uutc, info.end_uutc
        list(  # a plain read of it all: the cache's pages and one read are counted already
            legacy.GetSignalRange(
                cpb.SignalRangeRequest(file_path=path, start_uutc=t0, end_uutc=t1)
            )
        )
        before = peak_rss_mb(srv.pid)
        chunks = list(
            legacy.GetSignalRange(
                cpb.SignalRangeRequest(file_path=path, start_uutc=t0, end_uutc=t1, n_points=2000)
            )
        )
        grown = peak_rss_mb(srv.pid) - before
    assert not chunks[0].error_message
    got = np.concatenate(
        [np.frombuffer(c.array_bytes, np.float32).reshape(c.shape) for c in chunks], axis=1
    )
    direct = reference(big_recording).read(None, t0, t1).astype(np.float32)
    assert_same(got, minmax_points(direct, 2000))
    read_mb = direct.nbytes / 2**20  # 64 channels x 900 s x 256 Hz float32: 56 MiB
    # The display read holds the window once (as float32) while it reduces it, and little more.
    assert grown < 1.5 * read_mb, f"peak memory grew {grown:.0f} MiB for a {read_mb:.0f} MiB read"


@pytest.fixture(scope="module")
def one_long_channel(tmp_path_factory):
    """One channel, 2 h at 2048 Hz: 56 MiB as float32, in a single read."""
    from mef3lab.testing.synth import synthesize

    return synthesize(
        tmp_path_factory.mktemp("long") / "long.mefd",
        channels=1,
        fs=2048.0,
        seconds=7200.0,
        gaps=1,
        annotations=False,
        seed=4,
    )


def test_a_display_read_of_one_long_channel_costs_less_than_its_read(
    launch, one_long_channel, reference
):
    """Before: 7.2x the read (the whole window converted, then int64 positions of every sample)."""
    srv = launch(n_prefetch=0, n_process_workers=1)
    path = str(one_long_channel)
    with grpc.insecure_channel(srv.address) as channel:
        legacy = cpb_grpc.gRPCMef3ServerStub(channel)
        info = legacy.OpenFile(cpb.OpenFileRequest(file_path=path))
        legacy.SetSignalSegmentSize(cpb.SetSignalSegmentRequest(file_path=path, seconds=1024))
        window = dict(file_path=path, start_uutc=info.start_uutc, end_uutc=info.end_uutc)
        plain = list(legacy.GetSignalRange(cpb.SignalRangeRequest(**window)))
        read_mb = sum(len(c.array_bytes) for c in plain) / 2**20
        del plain
        before = peak_rss_mb(srv.pid)
        chunks = list(legacy.GetSignalRange(cpb.SignalRangeRequest(**window, n_points=3000)))
        grown = peak_rss_mb(srv.pid) - before
    assert not chunks[0].error_message
    got = np.frombuffer(chunks[0].array_bytes, np.float32).reshape(chunks[0].shape)
    direct = reference(one_long_channel).read(None, info.start_uutc, info.end_uutc)
    assert_same(got, minmax_points(direct.astype(np.float32), 3000))
    assert read_mb > 50
    # Reduced a few columns at a time: the window is never converted whole.
    assert grown < 1.0 * read_mb, f"peak memory grew {grown:.0f} MiB for a {read_mb:.0f} MiB read"


def test_the_cache_budget_fits_dev_shm(launch, connect, recording):
    """The segments live in /dev/shm (64 MB in a default container): the budget never exceeds it."""
    st = os.statvfs("/dev/shm")
    shm = st.f_blocks * st.f_frsize
    srv = launch(cache_mb=4 * shm / 2**20, n_process_workers=1, n_prefetch=0)  # before: taken as is
    c = connect(srv)
    c.open_file(str(recording))
    c.read_index(str(recording), 0, 2560)
    budget = c.stats()["cache_budget_bytes"]
    assert 0 < budget <= shm * 3 // 4
