"""The interface itself: the proto, every RPC, the wire's data (values, dtype, times, chunks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[2]
SPEC = Path(__file__).parent / "spec" / "gRPCMef3Server.proto"
MAX_MESSAGE = int(2.5 * 2**20)  # what the lab's clients were promised per message
S = 1_000_000  # µs per second


def _descriptor(proto: Path, out: Path):
    from google.protobuf import descriptor_pb2

    target = out / (proto.stem + ".pb")
    assert (
        protoc.main(["protoc", f"-I{proto.parent}", f"--descriptor_set_out={target}", proto.name])
        == 0
    )
    fds = descriptor_pb2.FileDescriptorSet.FromString(target.read_bytes())
    (f,) = fds.file
    messages = {
        m.name: sorted((x.number, x.name, x.type, x.label, x.proto3_optional) for x in m.field)
        for m in f.message_type
    }
    methods = {
        (s.name, r.name): (r.input_type, r.output_type, r.client_streaming, r.server_streaming)
        for s in f.service
        for r in s.method
    }
    return f.package, f.syntax, messages, methods


def test_mef3lab_proto_is_the_spec(tmp_path):
    """proto/compat (what the server is generated from) equals the spec, field for field."""
    served = _descriptor(ROOT / "proto" / "compat" / "gRPCMef3Server.proto", tmp_path)
    assert served == _descriptor(SPEC, tmp_path)
    package, syntax, _, methods = served
    assert package == "" and syntax == "proto3" and len(methods) == 11


def test_health_reports_the_service(server):
    import grpc

    with grpc.insecure_channel(server.address) as ch:
        status = health_pb2_grpc.HealthStub(ch).Check(
            health_pb2.HealthCheckRequest(service="gRPCMef3Server")
        )
    assert status.status == health_pb2.HealthCheckResponse.SERVING


def test_open_info_list_close(make_client, recording, reader):
    c = make_client()
    info = reader(recording).info
    spelled = str(recording) + "/"  # the client's own spelling comes back in ListOpenFiles
    r = c.open(spelled)
    assert r.file_opened and not r.HasField("error_message") and r.file_path == spelled
    assert r.number_of_channels == 8 and list(r.channel_names) == list(info.names)
    assert r.channel_sampling_rates == pytest.approx([ch.fs for ch in info.channels])
    assert list(r.channel_served_sampling_rates) == [ch.fs for ch in info.channels]
    assert list(r.channel_start_uutc) == [ch.start_uutc for ch in info.channels]
    assert list(r.channel_end_uutc) == [ch.end_uutc for ch in info.channels]
    assert (r.start_uutc, r.end_uutc) == (info.start_uutc, info.end_uutc)
    assert r.duration_s == pytest.approx(600.0) and not r.HasField("cache_fs")
    again = c.open(spelled)  # opening again is a normal open
    assert again.file_opened and not again.HasField("error_message")
    assert c.FileInfo(c.pb.FileInfoRequest(file_path=spelled)) == r
    assert list(c.ListOpenFiles(c.pb.ListOpenFilesRequest()).file_paths) == [spelled]

    closed = c.CloseFile(c.pb.FileInfoRequest(file_path=spelled))
    assert not closed.file_opened and not closed.error_message
    assert list(c.ListOpenFiles(c.pb.ListOpenFilesRequest()).file_paths) == []
    after = c.FileInfo(c.pb.FileInfoRequest(file_path=spelled))
    assert not after.file_opened and after.file_path == spelled


def test_segments_are_float64_on_the_grid_across_gaps(make_client, recording, reader):
    c = make_client()
    c.open(recording)
    path = str(recording)
    r = c.SetSignalSegmentSize(c.pb.SetSignalSegmentRequest(file_path=path, seconds=180))
    assert r.number_of_segments == 4 and not r.error_message
    assert c.GetNumberOfSegments(c.pb.FileInfoRequest(file_path=path)).number_of_segments == 4
    assert list(
        c.GetActiveChannels(c.pb.GetActiveChannelsRequest(file_path=path)).active_channels
    ) == [f"ch{i:03d}" for i in range(8)]
    rd = reader(recording)
    names = list(rd.info.names)
    grid = rd.info.group_of(names).grid
    length = 180 * 256
    for index in (
        0,
        1,
        3,
    ):  # 0 spans the 0.4 s and 3 s gaps, 1 the 20 s gap, 3 is the short last one
        k0, k1 = index * length, min((index + 1) * length, grid.n_samples)
        rep = c.segment(path, index)
        assert not rep.error
        np.testing.assert_array_equal(rep.array, rd.read_index(names, k0, k1, "float64"))
        assert _contiguous(rep.messages, grid, k0, k1, "float64", names, 256.0)
    assert len(c.segment(path, 0).messages) > 1  # 2.9 MB: split along time
    assert np.isnan(
        c.segment(path, 1).array[:, (333 - 180) * 256 + 100]
    ).all()  # the 20 s gap is NaN


def _contiguous(messages, grid, k0, k1, dtype, names, fs) -> bool:
    """Each message a (channels, n_i) block with exact grid times; together exactly [k0, k1)."""
    k = k0
    for m in messages:
        n = m.shape[1]
        assert (
            list(m.shape) == [len(names), n]
            and len(m.array_bytes) == len(names) * n * np.dtype(dtype).itemsize
        )
        assert len(m.array_bytes) <= MAX_MESSAGE and m.dtype == dtype and m.fs == fs
        assert list(m.channel_names) == list(names)
        assert (m.start_uutc, m.end_uutc) == (grid.uutc_of(k), grid.uutc_of(k + n))
        k += n
    return k == k1


def test_range_reads_float32_subset_in_any_order(make_client, recording, reader):
    c = make_client("range-reader")
    c.open(recording)
    rd = reader(recording)
    t_start = rd.info.start_uutc
    names = ["ch005", "ch001", "ch006"]
    grid = rd.info.group_of(names).grid
    t0, t1 = t_start + 140 * S + 123, t_start + 200 * S  # across the 3 s gap, off the grid
    first = c.range(recording, names, t0, t1)
    expected = rd.read(names, t0, t1, "float32")
    np.testing.assert_array_equal(first.array, expected)
    assert np.isnan(first.array[:, (151 - 140) * 256]).all()
    k0, k1 = grid.indices(t0, t1)
    assert _contiguous(first.messages, grid, k0, k1, "float32", names, 256.0)
    again = c.range(
        recording, names[::-1], t0, t1
    )  # the same segments from the cache, rows reversed
    np.testing.assert_array_equal(again.array, expected[::-1])

    everything = c.range(recording, [], t_start, t_start + 300 * S)  # 2.4 MB: several messages
    assert len(everything.messages) > 1
    assert list(everything.messages[0].channel_names) == list(rd.info.names)
    np.testing.assert_array_equal(
        everything.array, rd.read(None, t_start, t_start + 300 * S, "float32")
    )
    assert _contiguous(everything.messages, grid, 0, 300 * 256, "float32", rd.info.names, 256.0)


def test_n_points_keeps_every_slice_min_and_max(make_client, recording, reader):
    c = make_client("display")
    c.open(recording)
    rd = reader(recording)
    names = ["ch003", "ch000"]
    t0, t1 = rd.info.start_uutc + 300 * S, rd.info.start_uutc + 400 * S  # holds the 20 s gap
    rep = c.range(recording, names, t0, t1, n_points=1001)
    full = rd.read(names, t0, t1, "float32")
    assert rep.array.shape == (2, 1000) and rep.array.dtype == np.float32
    assert rep.messages[0].fs == pytest.approx(1000 / 100)
    assert (rep.messages[0].start_uutc, rep.messages[-1].end_uutc) == (t0, t1)
    edges = (np.arange(500) * full.shape[1]) // 500
    with np.errstate(invalid="ignore"):
        lo, hi = np.fmin.reduceat(full, edges, axis=1), np.fmax.reduceat(full, edges, axis=1)
    pairs = rep.array.reshape(2, 500, 2)
    np.testing.assert_array_equal(np.fmin(pairs[..., 0], pairs[..., 1]), lo)
    np.testing.assert_array_equal(np.fmax(pairs[..., 0], pairs[..., 1]), hi)
    assert np.isnan(rep.array[:, 400]).all()  # the gap stays visible
    short = c.range(recording, names, t0, t0 + S, n_points=1000)  # fewer samples: unchanged
    np.testing.assert_array_equal(short.array, rd.read(names, t0, t0 + S, "float32"))
    assert short.messages[0].fs == 256.0


def test_envelope_per_block_in_request_order(make_client, recording, reader):
    c = make_client()
    c.open(recording)
    rd = reader(recording)
    t0, t1 = rd.info.start_uutc + 100 * S, rd.info.start_uutc + 200 * S
    req = c.pb.EnvelopeRequest(
        file_path=str(recording), channel_names=["ch004", "ch002"], start_uutc=t0, end_uutc=t1
    )
    msgs = list(c.GetEnvelope(req))
    assert [m.channel_name for m in msgs] == ["ch004", "ch002"]
    for m in msgs:
        want = rd.block_envelope(m.channel_name, t0, t1)
        assert not m.error_message and len(m.start_uutc) > 0
        np.testing.assert_array_equal(np.array(m.start_uutc), want["start_uutc"])
        np.testing.assert_array_equal(np.array(m.end_uutc), want["end_uutc"])
        np.testing.assert_array_equal(np.array(m.min), want["min"])
        np.testing.assert_array_equal(np.array(m.max), want["max"])
    every = list(c.GetEnvelope(c.pb.EnvelopeRequest(file_path=str(recording))))
    assert [m.channel_name for m in every] == list(rd.info.names)
    assert len(every[0].start_uutc) == len(rd.block_envelope("ch000")["start_uutc"])
