"""Bad input: the right gRPC status and mef3lab exception, a clear message; the server serves on."""

from __future__ import annotations

import math

import grpc
import numpy as np
import pytest

from mef3lab.errors import (
    NotAMefSessionError,
    NotOpenError,
    PasswordError,
    ReadTooLargeError,
    RecordingNotFoundError,
    SegmentIndexError,
    TimeRangeError,
    UnknownChannelError,
)
from mef3lab.protocol import mef3lab_pb2 as pb
from mef3lab.protocol import mef3lab_pb2_grpc as pb_grpc
from mef3lab.protocol.wire import CLIENT_ID_KEY, ERROR_KEY

from .conftest import assert_same

US = 1_000_000


@pytest.fixture(scope="module")
def good(server, recording, reference):
    """`good(client)`: a correct read still works on `client` (the server kept serving)."""
    want = reference(recording).read_index(["ch003", "ch001"], 5000, 9000)

    def check(client):
        if str(recording.resolve()) not in client.list_open_files():
            client.open_file(recording)
        assert_same(client.read_index(recording, 5000, 9000, ["ch003", "ch001"]), want)

    return check


@pytest.fixture
def client(connect, server):
    return connect(server)


def test_missing_path(client, good, tmp_path):
    missing = tmp_path / "nowhere.mefd"
    with pytest.raises(RecordingNotFoundError, match="no such file or folder") as err:
        client.open_file(missing)
    assert str(missing) in str(err.value)
    assert client.list_open_files() == []
    good(client)


@pytest.mark.parametrize("kind", ["plain folder", "mefd without channels", "file"])
def test_not_a_mef_session(client, good, tmp_path, kind):
    if kind == "plain folder":
        path = tmp_path / "photos"
        path.mkdir()
        (path / "a.jpg").write_bytes(b"\xff\xd8")
    elif kind == "mefd without channels":
        path = tmp_path / "empty.mefd"
        path.mkdir()
    else:
        path = tmp_path / "notes.mefd"
        path.write_text("not a session")
    with pytest.raises(NotAMefSessionError, match="MEF 3.0 session|time-series channel") as err:
        client.open_file(path)
    assert path.name in str(err.value)
    good(client)


def test_unknown_channel(client, good, recording):
    client.open_file(recording)
    start = client.info(recording).start_uutc
    reads = [
        lambda: client.read_index(recording, 0, 10, ["ch001", "Fp1"]),
        lambda: client.read_range(recording, start, start + US, ["Fp1"]),
        lambda: client.get_signal_segment(recording, 0, channels=["Fp1"]),
        lambda: client.read_raw(recording, 0, 10, ["Fp1"]),
        lambda: client.read_envelope(recording, start, start + US, 10, ["Fp1"]),
        lambda: client.set_active_channels(recording, ["Fp1"]),
    ]
    for read in reads:
        with pytest.raises(UnknownChannelError, match="'Fp1'") as err:
            read()
        assert "ch000" in str(err.value)  # it says which channels there are
        good(client)


def test_segment_index_out_of_range(client, good, recording):
    client.open_file(recording)
    client.set_signal_chunk_size(recording, 60.0)  # 10 segments
    for index in (10, 11, -1, 2**40):
        with pytest.raises(SegmentIndexError, match=r"indices 0\.\.9") as err:
            client.get_signal_segment(recording, index)
        assert f"segment {index} does not exist" in str(err.value)
        good(client)
    assert client.get_signal_segment(recording, 9).shape == (8, 15360)


def test_time_ranges_that_end_before_they_start(client, good, recording):
    client.open_file(recording)
    t = client.info(recording).start_uutc + 10 * US
    bad = [
        lambda: client.read_range(recording, t, t),
        lambda: client.read_range(recording, t, t - 1),
        lambda: client.read_index(recording, 500, 499),
        lambda: client.read_envelope(recording, t + US, t, 10),
        lambda: client.read_envelope(recording, t, t + US, 0),
        lambda: client.read_range(
            recording, t - 10**9, t - 9 * 10**8
        ),  # wholly before the recording
        lambda: client.set_signal_chunk_size(recording, 0.0),
        lambda: client.set_signal_chunk_size(recording, -5.0),
        lambda: client.set_signal_chunk_size(recording, math.nan),
    ]
    for read in bad:
        with pytest.raises(TimeRangeError):
            read()
        good(client)


def test_read_too_large(launch, connect, recording, reference):
    srv = launch(max_read_mb=0.05, n_prefetch=0)  # 51 KiB: 8 channels x 1600 float32 samples
    c = connect(srv)
    c.open_file(recording)
    c.set_signal_chunk_size(recording, 5.0)  # 8 x 1280 x 4 B = 40 KiB per segment
    start = c.info(recording).start_uutc
    for read in [
        lambda: c.read_index(recording, 0, 2000),
        lambda: c.read_index(recording, 0, 1000, dtype="float64"),
        lambda: c.read_range(recording, start, start + 10 * US),
    ]:
        with pytest.raises(ReadTooLargeError, match="exceeds the server's limit") as err:
            read()
        assert "smaller windows" in str(err.value)
        assert_same(
            c.get_signal_segment(recording, 3), reference(recording).read_index(None, 3840, 5120)
        )
    # An envelope's reply is small: a window far larger than the limit is fine, segment by segment.
    env = c.read_envelope(recording, start, start + 60 * US, 6)
    direct = reference(recording).read(None, start, start + 60 * US)
    np.testing.assert_array_equal(env[1], np.nanmax(direct.reshape(8, 6, -1), axis=2))
    c.set_signal_chunk_size(recording, 10.0)  # segments now larger than the limit
    with pytest.raises(ReadTooLargeError):
        c.get_signal_segment(recording, 0)
    assert_same(
        c.get_signal_segment(recording, 0, channels=["ch000"]),
        reference(recording).read_index(["ch000"], 0, 2560),
    )


def test_wrong_password(client, good, encrypted_recording, passwords):
    for password in (None, "", "wrong", passwords.level2 + "x"):
        with pytest.raises(PasswordError):
            client.open_file(encrypted_recording, password)
        good(client)
    assert str(encrypted_recording.resolve()) not in client.list_open_files()


def test_reads_of_a_recording_not_opened(client, good, recording, mixed_rate_recording):
    path = mixed_rate_recording
    for op in [
        lambda: client.read_index(path, 0, 10),
        lambda: client.get_signal_segment(path, 0),
        lambda: client.read_range(path, 0, 10),
        lambda: client.read_raw(path, 0, 10),
        lambda: client.read_envelope(path, 0, 10, 5),
        lambda: client.info(path),
        lambda: client.segment_grid(path),
        lambda: client.set_signal_chunk_size(path, 5.0),
        lambda: client.prefetch(path, 0, 10),
    ]:
        with pytest.raises(NotOpenError, match="not open for this client") as err:
            op()
        assert str(path) in str(err.value)
        good(client)
    assert client.close_file(path) is False


# -- the statuses on the wire --------------------------------------------------------------------
@pytest.fixture
def stub(server):
    channel = grpc.insecure_channel(server.address)
    yield pb_grpc.Mef3LabStub(channel)
    channel.close()


def status_of(call):
    """(status code, mef3lab error name) of a failing call (streams are drained)."""
    with pytest.raises(grpc.RpcError) as err:
        result = call()
        if hasattr(result, "__iter__") and not hasattr(result, "ListFields"):
            list(result)
    return err.value.code(), dict(err.value.trailing_metadata() or ()).get(ERROR_KEY)


def test_grpc_status_codes(stub, launch, recording, encrypted_recording, tmp_path):
    md = ((CLIENT_ID_KEY, "raw-grpc"),)
    path = str(recording)
    assert status_of(
        lambda: stub.Open(pb.OpenRequest(path=str(tmp_path / "x.mefd")), metadata=md)
    ) == (grpc.StatusCode.NOT_FOUND, "RecordingNotFoundError")
    assert status_of(lambda: stub.Open(pb.OpenRequest(path=str(tmp_path)), metadata=md)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "NotAMefSessionError",
    )
    assert status_of(
        lambda: stub.Open(pb.OpenRequest(path=str(encrypted_recording), password="no"), metadata=md)
    ) == (grpc.StatusCode.PERMISSION_DENIED, "PasswordError")
    assert status_of(
        lambda: stub.ReadSegment(pb.ReadSegmentRequest(path=path, index=0), metadata=md)
    ) == (grpc.StatusCode.FAILED_PRECONDITION, "NotOpenError")
    stub.Open(pb.OpenRequest(path=path), metadata=md)
    assert status_of(
        lambda: stub.ReadSegment(pb.ReadSegmentRequest(path=path, index=99), metadata=md)
    ) == (grpc.StatusCode.OUT_OF_RANGE, "SegmentIndexError")
    window = pb.TimeWindow(start_uutc=10**15 + 5, end_uutc=10**15)
    assert status_of(
        lambda: stub.ReadRange(pb.ReadRangeRequest(path=path, time=window), metadata=md)
    ) == (grpc.StatusCode.INVALID_ARGUMENT, "TimeRangeError")
    assert status_of(lambda: stub.ReadRange(pb.ReadRangeRequest(path=path), metadata=md)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "TimeRangeError",
    )  # no window at all
    req = pb.ReadRangeRequest(
        path=path, channels=["nope"], samples=pb.IndexWindow(start=0, stop=10)
    )
    assert status_of(lambda: stub.ReadRange(req, metadata=md)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "UnknownChannelError",
    )
    assert stub.Close(pb.RecordingRequest(path=path), metadata=md).closed

    tiny = launch(max_read_mb=0.01, n_prefetch=0)
    with grpc.insecure_channel(tiny.address) as channel:
        tiny_stub = pb_grpc.Mef3LabStub(channel)
        tiny_stub.Open(pb.OpenRequest(path=path), metadata=md)
        req = pb.ReadRangeRequest(path=path, samples=pb.IndexWindow(start=0, stop=100_000))
        assert status_of(lambda: tiny_stub.ReadRange(req, metadata=md)) == (
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "ReadTooLargeError",
        )
        ok = list(
            tiny_stub.ReadRange(
                pb.ReadRangeRequest(path=path, samples=pb.IndexWindow(start=0, stop=100)),
                metadata=md,
            )
        )
        assert list(ok[0].shape) == [8, 100]


def test_unknown_sample_type_is_an_invalid_argument(stub, recording):
    md = ((CLIENT_ID_KEY, "raw-grpc-dtype"),)
    stub.Open(pb.OpenRequest(path=str(recording)), metadata=md)
    for req in (
        pb.ReadSegmentRequest(path=str(recording), index=0, dtype=17),
        pb.ReadRangeRequest(
            path=str(recording), dtype=17, samples=pb.IndexWindow(start=0, stop=10)
        ),
        pb.PrefetchRequest(path=str(recording), dtype=17, samples=pb.IndexWindow(start=0, stop=10)),
    ):
        call = getattr(stub, type(req).__name__.removesuffix("Request"))
        with pytest.raises(grpc.RpcError) as err:
            reply = call(req, metadata=md)
            list(reply) if hasattr(reply, "__iter__") else None
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
        assert "unknown sample type 17" in err.value.details()
    ok = list(
        stub.ReadSegment(
            pb.ReadSegmentRequest(path=str(recording), index=0, dtype=pb.FLOAT64), metadata=md
        )
    )
    assert ok[0].dtype == pb.FLOAT64
