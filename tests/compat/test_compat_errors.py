"""Errors travel in `error_message` with a clear text and an OK status; the server serves on."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from mef3lab.testing.synth import synthesize

S = 1_000_000


@pytest.fixture
def opened(make_client, recording):
    c = make_client("errors")
    assert c.open(recording).file_opened
    yield c, str(recording)
    c.CloseFile(c.pb.FileInfoRequest(file_path=str(recording)))


def _still_serving(c, path, reader):
    rd = reader(path)
    t0 = rd.info.start_uutc + 10 * S
    rep = c.range(path, ["ch002"], t0, t0 + S)
    assert not rep.error
    np.testing.assert_array_equal(rep.array, rd.read(["ch002"], t0, t0 + S, "float32"))


def test_open_errors(make_client, tmp_path, recording, reader):
    c = make_client()
    missing = c.open(tmp_path / "nowhere.mefd")
    assert not missing.file_opened and "no such file" in missing.error_message
    (tmp_path / "folder.mefd").mkdir()
    empty = c.open(tmp_path / "folder.mefd")
    assert not empty.file_opened and "time-series channel" in empty.error_message
    refused = c.open(recording, cache_fs=64.0)
    assert not refused.file_opened and "cache_fs" in refused.error_message
    assert list(c.ListOpenFiles(c.pb.ListOpenFilesRequest()).file_paths) == []
    response, call = c.stub.OpenFile.with_call(
        c.pb.OpenFileRequest(file_path=str(tmp_path / "x.mefd"))
    )
    assert call.code() == grpc.StatusCode.OK and "no such file" in response.error_message
    assert ("x-mef3lab-error", "RecordingNotFoundError") in call.trailing_metadata()
    c.open(recording)
    _still_serving(c, recording, reader)


def test_unknown_channels(opened, reader):
    c, path = opened
    t0 = reader(path).info.start_uutc
    assert "no channel 'nope'" in c.range(path, ["ch001", "nope"], t0, t0 + S).error
    c.SetActiveChannels(
        c.pb.SetActiveChannelsRequest(file_path=path, channel_names=["ch004", "ch001"])
    )
    bad = c.SetActiveChannels(
        c.pb.SetActiveChannelsRequest(file_path=path, channel_names=["ch000", "x1", "x2"])
    )
    assert "'x1', 'x2'" in bad.error_message and "unchanged" in bad.error_message
    assert list(bad.active_channels) == ["ch004", "ch001"]
    assert list(
        c.GetActiveChannels(c.pb.GetActiveChannelsRequest(file_path=path)).active_channels
    ) == ["ch004", "ch001"]
    env = list(c.GetEnvelope(c.pb.EnvelopeRequest(file_path=path, channel_names=["ch000", "nope"])))
    assert len(env) == 1 and "no channel 'nope'" in env[0].error_message
    _still_serving(c, path, reader)


def test_segment_and_time_errors(opened, reader):
    c, path = opened
    t0 = reader(path).info.start_uutc
    assert (
        c.SetSignalSegmentSize(
            c.pb.SetSignalSegmentRequest(file_path=path, seconds=60)
        ).number_of_segments
        == 10
    )
    for index in (10, -1):
        err = c.segment(path, index).error
        assert f"segment {index} does not exist" in err and "10 segments" in err
    bad_size = c.SetSignalSegmentSize(c.pb.SetSignalSegmentRequest(file_path=path, seconds=0))
    assert "at least 1 s" in bad_size.error_message
    assert c.GetNumberOfSegments(c.pb.FileInfoRequest(file_path=path)).number_of_segments == 10
    assert "ends before it starts" in c.range(path, ["ch000"], t0 + 2 * S, t0 + S).error
    assert "outside the recording" in c.range(path, ["ch000"], t0 - 20 * S, t0 - 10 * S).error
    assert "n_points" in c.range(path, ["ch000"], t0, t0 + S, n_points=1).error
    env = list(c.GetEnvelope(c.pb.EnvelopeRequest(file_path=path, start_uutc=t0 + S, end_uutc=t0)))
    assert "ends before it starts" in env[0].error_message
    _still_serving(c, path, reader)


def test_reads_of_a_file_not_opened(make_client, recording, reader):
    c = make_client()
    path = str(recording)
    assert "not open" in c.segment(path, 0).error and "OpenFile" in c.segment(path, 0).error
    assert "not open" in c.range(path, [], 0, 1).error
    assert (
        "not open"
        in c.SetSignalSegmentSize(
            c.pb.SetSignalSegmentRequest(file_path=path, seconds=5)
        ).error_message
    )
    assert (
        "not open"
        in c.GetActiveChannels(c.pb.GetActiveChannelsRequest(file_path=path)).error_message
    )
    assert list(c.GetEnvelope(c.pb.EnvelopeRequest(file_path=path)))[0].error_message
    assert not c.FileInfo(c.pb.FileInfoRequest(file_path=path)).file_opened
    assert (
        list(c.ListOpenFiles(c.pb.ListOpenFilesRequest()).file_paths) == []
    )  # nothing opened behind its back


def test_encrypted_session(make_client, encrypted_recording, passwords, reader):
    plain = make_client()
    r = plain.open(encrypted_recording)
    assert (
        not r.file_opened
        and "encrypted" in r.error_message
        and "x-mef3lab-password" in r.error_message
    )
    c = make_client(metadata=(("x-mef3lab-password", passwords.level2),))
    assert c.open(encrypted_recording).file_opened
    rd = reader(encrypted_recording, passwords.level2)
    t0 = rd.info.start_uutc + 19 * S
    rep = c.range(encrypted_recording, ["ch001"], t0, t0 + 2 * S)
    np.testing.assert_array_equal(rep.array, rd.read(["ch001"], t0, t0 + 2 * S, "float32"))
    assert not plain.open(
        encrypted_recording
    ).file_opened  # another client must bring its own password


def test_damaged_session_is_an_error_every_time(make_client, tmp_path, reader):
    path = synthesize(
        tmp_path / "damaged.mefd", channels=2, fs=256.0, seconds=30, gaps=0, annotations=False
    )
    (tdat,) = (path / "ch001.timd").glob("*/*.tdat")
    size = tdat.stat().st_size
    with open(tdat, "r+b") as f:  # the index stays, the compressed blocks become noise
        f.seek(2000)
        f.write(np.random.default_rng(0).bytes(size - 3000))
    c = make_client()
    assert c.open(path).file_opened
    t0 = reader(path).info.start_uutc
    for _ in range(2):  # never cached as NaN
        err = c.range(path, ["ch001"], t0, t0 + 20 * S).error
        assert "damaged" in err and "ch001" in err
    good = c.range(path, ["ch000"], t0, t0 + 20 * S)
    np.testing.assert_array_equal(
        good.array, reader(path).read(["ch000"], t0, t0 + 20 * S, "float32")
    )
