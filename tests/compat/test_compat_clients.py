"""Per-client state: ids (the successor) and connections (the original), one cache, one engine."""

from __future__ import annotations

import numpy as np
import pytest

from mef3lab.client import Mef3Client

S = 1_000_000


def _setup(c, path, seconds, channels):
    r = c.open(path)
    assert r.file_opened and not r.HasField("error_message")  # also when another client has it open
    n = c.SetSignalSegmentSize(c.pb.SetSignalSegmentRequest(file_path=str(path), seconds=seconds))
    active = c.SetActiveChannels(
        c.pb.SetActiveChannelsRequest(file_path=str(path), channel_names=channels)
    )
    assert not active.error_message and list(active.active_channels) == channels
    return n.number_of_segments


def _check(c, path, rd, index, seconds, channels):
    grid = rd.info.group_of(channels).grid
    k0 = index * seconds * 256
    k1 = min(k0 + seconds * 256, grid.n_samples)
    rep = c.segment(path, index)
    assert not rep.error, rep.error
    assert list(rep.messages[0].channel_names) == channels
    assert rep.messages[0].start_uutc == grid.uutc_of(k0)
    np.testing.assert_array_equal(rep.array, rd.read_index(channels, k0, k1, "float64"))


@pytest.mark.parametrize("identity", ["client ids", "connections"])
def test_two_clients_keep_their_own_segments_and_channels(make_client, recording, reader, identity):
    if identity == "client ids":  # the successor's client: metadata on one shared connection
        a = make_client("alice")
        b = make_client("bob")
        b.channel.close()
        b.channel, b.stub = a.channel, a.stub
    else:  # the original client: no id, one connection each
        a, b = make_client(), make_client()
    rd = reader(recording)
    path = str(recording)
    assert _setup(a, path, 180, ["ch007", "ch002"]) == 4
    assert _setup(b, path, 7, ["ch001"]) == 86
    for _ in range(2):  # interleaved, and again from the cache
        _check(a, path, rd, 0, 180, ["ch007", "ch002"])
        _check(b, path, rd, 3, 7, ["ch001"])
        _check(a, path, rd, 3, 180, ["ch007", "ch002"])
        _check(b, path, rd, 85, 7, ["ch001"])
    assert a.GetNumberOfSegments(a.pb.FileInfoRequest(file_path=path)).number_of_segments == 4
    assert list(
        b.GetActiveChannels(b.pb.GetActiveChannelsRequest(file_path=path)).active_channels
    ) == ["ch001"]

    assert not b.CloseFile(b.pb.FileInfoRequest(file_path=path)).file_opened
    assert list(b.ListOpenFiles(b.pb.ListOpenFilesRequest()).file_paths) == []
    assert list(a.ListOpenFiles(a.pb.ListOpenFilesRequest()).file_paths) == [path]
    _check(a, path, rd, 1, 180, ["ch007", "ch002"])  # b's close changed nothing for a
    assert "not open" in b.segment(path, 0).error
    a.CloseFile(a.pb.FileInfoRequest(file_path=path))


def test_reordered_active_channels_on_a_cache_hit(make_client, recording, reader, server):
    """The old server's bug: after SetActiveChannels, a cached segment kept the old row order."""
    c = make_client("reorder")
    rd = reader(recording)
    path = str(recording)
    _setup(c, path, 60, ["ch003", "ch000", "ch006"])
    _check(c, path, rd, 2, 60, ["ch003", "ch000", "ch006"])
    with Mef3Client(
        server.address
    ) as own:  # mef3lab's own API on the same port sees the same engine
        before = own.stats()
        c.SetActiveChannels(
            c.pb.SetActiveChannelsRequest(file_path=path, channel_names=["ch006", "ch003", "ch000"])
        )
        _check(c, path, rd, 2, 60, ["ch006", "ch003", "ch000"])
        after = own.stats()
    assert after["hits"] > before["hits"] and after["misses"] == before["misses"]
    t0 = rd.info.start_uutc
    assert c.range(path, [], t0, t0 + S).array.shape == (
        8,
        256,
    )  # range reads ignore the active channels
    reset = c.SetActiveChannels(c.pb.SetActiveChannelsRequest(file_path=path, channel_names=[]))
    assert list(reset.active_channels) == list(rd.info.names)
    c.CloseFile(c.pb.FileInfoRequest(file_path=path))


def test_range_reads_of_two_clients_do_not_mix(make_client, recording, reader):
    a, b = make_client("viewer-1"), make_client("viewer-2")
    rd = reader(recording)
    for c in (a, b):
        c.open(recording)
    t0 = rd.info.start_uutc + 55 * S
    ra = a.range(recording, ["ch000", "ch007"], t0, t0 + 10 * S)
    rb = b.range(recording, ["ch007", "ch000"], t0, t0 + 10 * S)
    np.testing.assert_array_equal(ra.array, rb.array[::-1])
    np.testing.assert_array_equal(ra.array, rd.read(["ch000", "ch007"], t0, t0 + 10 * S, "float32"))
    a.CloseFile(a.pb.FileInfoRequest(file_path=str(recording)))
    assert not b.range(recording, ["ch001"], t0, t0 + S).error


def test_legacy_float64_and_own_float32_reads_share_cached_channels(
    make_client, recording, reader, server
):
    """One cache representation (int32 counts) for every dtype and API: the legacy float64 read of
    a segment decodes only the channel the own API's float32 read of it did not."""
    rd = reader(recording)
    path = str(recording)
    last = 9  # of 10 one-minute segments: no readahead after it to blur the count
    with Mef3Client(server.address, client_id="own-float32") as own:
        own.open_file(path)
        own.set_signal_chunk_size(path, 60)
        np.testing.assert_array_equal(
            own.get_signal_segment(path, last, channels=["ch001", "ch004"]),
            rd.read_index(["ch001", "ch004"], last * 60 * 256, 600 * 256),
        )
        before = own.stats()
        c = make_client("legacy-float64")
        _setup(c, path, 60, ["ch004", "ch006", "ch001"])
        _check(c, path, rd, last, 60, ["ch004", "ch006", "ch001"])
        after = own.stats()
        own.close_file(path)
    assert after["decoded_samples"] - before["decoded_samples"] == 60 * 256  # ch006 only
    c.CloseFile(c.pb.FileInfoRequest(file_path=path))
