"""A recording that grows or is written again while it is open, through a real server and embedded.

MefWriter writes 60 s; clients open and read it; MefWriter appends 60 s. An open view keeps
its extent and values; a new open, and a refresh, see all 120 s, equal sample for sample to
a direct read. Then the recording is written again with other values at the same path: the
server drops its cached rows, an old view's read fails with FAILED_PRECONDITION ("changed on
disk ... reopen it"), and a new open reads the new values.
"""

from __future__ import annotations

import threading
import time

import grpc
import numpy as np
import pytest
from _growing import FS, NAMES, rewrite, write

import mef3lab
from mef3lab.errors import RecordingChangedError
from mef3lab.protocol import mef3lab_pb2 as pb
from mef3lab.protocol import mef3lab_pb2_grpc as pb_grpc
from mef3lab.protocol.wire import CLIENT_ID_KEY, ERROR_KEY
from mef3lab.readers import open_reader

from .conftest import assert_same

#: Longer than the server's and the embedded source's pause between two looks at the files.
LOOK = 1.2


def direct(path, k0: int, k1: int, dtype: str = "float32") -> np.ndarray:
    with open_reader(path, engine="mef3io") as r:
        return r.read_index(list(NAMES), k0, k1, dtype)


@pytest.fixture
def session(tmp_path):
    return write(tmp_path / "monitor.mefd", 0, 60)


def test_a_growing_then_replaced_recording_through_a_server(launch, connect, session):
    srv = launch(n_process_workers=2, n_prefetch=1, segment_seconds=20.0)
    path, n = str(session), int(60 * FS)
    old, other = connect(srv, "old"), connect(srv, "other")
    assert old.open_file(path).rate_groups[0].grid.n_samples == n
    before = old.read_index(path, 0, n)
    assert_same(before, direct(session, 0, n))

    write(session, 60, 120)
    m = int(120 * FS)
    assert other.open_file(path).rate_groups[0].grid.n_samples == m
    assert_same(other.read_index(path, 0, m), direct(session, 0, m))
    # the open view: its extent and values, and a gap past them
    assert old.info(path).rate_groups[0].grid.n_samples == n
    assert_same(old.read_index(path, 0, n), before)
    assert np.isnan(old.read_index(path, n, n + 256)).all()
    # the refresh
    assert old.refresh(path).rate_groups[0].grid.n_samples == m
    assert_same(old.read_index(path, n, m), direct(session, n, m))
    assert old.stats()["open_recordings"] == 1

    assert old.stats()["cache_entries"] > 0
    md = ((CLIENT_ID_KEY, "raw"),)
    channel = grpc.insecure_channel(srv.address)
    raw = pb_grpc.Mef3LabStub(channel)
    raw.Open(pb.OpenRequest(path=path), metadata=md)
    rewrite(session, 30, gain=-2.0)
    time.sleep(LOOK)
    with pytest.raises(RecordingChangedError, match="changed on disk.*reopen it"):
        old.read_index(path, 0, 512)
    with pytest.raises(grpc.RpcError) as err:
        list(raw.ReadSegment(pb.ReadSegmentRequest(path=path, index=0), metadata=md))
    channel.close()
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert dict(err.value.trailing_metadata())[ERROR_KEY] == "RecordingChangedError"
    assert old.stats()["cache_entries"] == 0  # nothing of the old files is kept
    with pytest.raises(RecordingChangedError):
        other.read_index(path, 0, 512)
    k = int(30 * FS)
    third = connect(srv, "third")
    assert third.open_file(path).rate_groups[0].grid.n_samples == k
    assert_same(third.read_index(path, 0, k), direct(session, 0, k))
    assert old.refresh(path).rate_groups[0].grid.n_samples == k
    assert_same(old.read_index(path, 0, k), direct(session, 0, k))


@pytest.mark.parametrize("where", ["embedded", "server"])
def test_open_recording_refreshes_a_growing_recording(launch, session, where):
    address = launch(n_process_workers=2).address if where == "server" else False
    n, m = int(60 * FS), int(120 * FS)
    rec = mef3lab.open_recording(session, address=address)
    first = rec.signal.values
    assert_same(first, direct(session, 0, n))

    write(session, 60, 120)
    time.sleep(LOOK)
    assert_same(rec.signal.values, first)  # the open Dataset keeps its extent and values
    new = rec.mef3.refresh()
    assert new.sizes["time"] == m and list(new.channel.values) == list(NAMES)
    assert new.signal.chunks is not None
    assert_same(new.signal.values, direct(session, 0, m))
    assert float(new.time[-1]) == pytest.approx((m - 1) / FS)

    rewrite(session, 30, gain=3.0)
    time.sleep(LOOK)
    with pytest.raises(RecordingChangedError, match="reopen it"):
        new.signal.isel(time=slice(0, 256)).load()
    newest = new.mef3.refresh()
    assert_same(newest.signal.values, direct(session, 0, int(30 * FS)))
    for ds in (rec, new, newest):
        ds.close()


def test_a_client_follows_a_recording_being_written(launch, connect, session):
    """Refreshing while MefWriter appends every 50 ms: no damaged channel, no wrong value."""
    srv = launch(n_process_workers=2, n_prefetch=1)
    path = str(session)
    c = connect(srv, "follower")
    c.open_file(path)
    done = threading.Event()

    def monitor():
        for k in range(6, 30):
            write(session, 10 * k, 10 * (k + 1))
            time.sleep(0.05)
        done.set()

    seen = []
    writer = threading.Thread(target=monitor)
    writer.start()
    try:
        while not done.is_set():
            info = c.refresh(path)
            assert info.damaged == {}
            n = info.rate_groups[0].grid.n_samples
            seen.append((n, c.read_index(path, max(0, n - 1024), n)))
    finally:
        writer.join()
    final = direct(session, 0, int(300 * FS))
    assert len({n for n, _ in seen}) > 3  # it grew while followed
    compared = 0
    for n, got in seen:
        # a channel the writer has not reached yet ends earlier: NaN after its end, no holes
        for row, want in zip(got, final[:, max(0, n - 1024) : n], strict=True):
            k = int(np.flatnonzero(~np.isnan(row))[-1]) + 1 if not np.isnan(row).all() else 0
            assert not np.isnan(row[:k]).any()
            np.testing.assert_array_equal(row[:k], want[:k])
            compared += k
    assert compared > sum(got.size for _, got in seen) / 2
