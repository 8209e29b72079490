"""The engine with a recording that grows or is written again on disk (MefWriter).

A grown recording: open views keep their extent and read it unchanged; a new open, and an
open again, see the new samples, equal to a direct read. A replaced one: its cached rows
are dropped, its old views' reads are refused with RecordingChangedError, a new open reads
the new values.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from _growing import FS, NAMES, rewrite, write

from mef3lab.errors import RecordingChangedError
from mef3lab.readers import open_reader
from mef3lab.server.config import ServerConfig
from mef3lab.server.core import recordings
from mef3lab.server.core.engine import Engine


@pytest.fixture
def engine(monkeypatch):
    monkeypatch.setattr(recordings, "CHANGE_CHECK_S", 0.0)  # every read looks
    e = Engine(ServerConfig(n_process_workers=0, n_prefetch=0, segment_seconds=20.0))
    yield e
    e.shutdown()


@pytest.fixture
def session(tmp_path):
    return write(tmp_path / "monitor.mefd", 0, 60)


def direct(path, k0: int, k1: int) -> np.ndarray:
    with open_reader(path, engine="mef3io") as r:
        return r.read_index(list(NAMES), k0, k1)


def test_a_grown_recording_keeps_old_views_and_shows_new_opens_the_rest(engine, session):
    path = str(session)
    assert engine.open("old", path).rate_groups[0].grid.n_samples == int(60 * FS)
    before = engine.read_index("old", path, None, 0, int(60 * FS)).data
    np.testing.assert_array_equal(before, direct(session, 0, int(60 * FS)))

    write(session, 60, 120)
    n = int(120 * FS)
    assert engine.open("new", path).rate_groups[0].grid.n_samples == n
    np.testing.assert_array_equal(
        engine.read_index("new", path, None, 0, n).data, direct(session, 0, n)
    )
    # the old view: its extent, its values, from its cached rows and the reopened readers
    assert engine.info("old", path).rate_groups[0].grid.n_samples == int(60 * FS)
    np.testing.assert_array_equal(
        engine.read_index("old", path, None, 0, int(60 * FS)).data, before
    )
    tail = engine.read_index("old", path, None, int(60 * FS) - 10, int(60 * FS) + 10).data
    assert np.isnan(tail[:, 10:]).all()  # past its extent: a gap, as before
    # opening again is the refresh
    assert engine.open("old", path).rate_groups[0].grid.n_samples == n
    np.testing.assert_array_equal(
        engine.read_index("old", path, None, int(60 * FS), n).data, direct(session, int(60 * FS), n)
    )
    assert engine.stats()["open_recordings"] == 1  # the first opening went with its last view


def test_a_replaced_recording_drops_its_rows_and_refuses_old_views(engine, session):
    path, n = str(session), int(60 * FS)
    engine.open("old", path)
    engine.read_index("old", path, None, 0, n)
    cached = engine.stats()["cache_entries"]
    assert cached > 0

    rewrite(session, 30, gain=3.0)
    with pytest.raises(RecordingChangedError, match="changed on disk.*reopen it"):
        engine.read_index("old", path, None, 0, 100)
    assert engine.stats()["cache_entries"] == 0
    with pytest.raises(RecordingChangedError):  # and stays refused
        engine.read_segment("old", path, 0)

    m = int(30 * FS)
    assert engine.open("new", path).rate_groups[0].grid.n_samples == m
    np.testing.assert_array_equal(
        engine.read_index("new", path, None, 0, m).data, direct(session, 0, m)
    )
    assert engine.open("old", path).rate_groups[0].grid.n_samples == m
    np.testing.assert_array_equal(
        engine.read_index("old", path, None, 0, m).data, direct(session, 0, m)
    )


def test_a_replacement_found_on_open_is_not_served_from_the_cache(engine, session):
    path, n = str(session), int(20 * FS)
    engine.open("a", path)
    first = engine.read_index("a", path, None, 0, n).data
    rewrite(session, 60, gain=-1.0)
    engine.open("b", path)  # finds it first
    got = engine.read_index("b", path, None, 0, n).data
    np.testing.assert_array_equal(got, direct(session, 0, n))
    assert not np.array_equal(got, first)
    with pytest.raises(RecordingChangedError):
        engine.read_index("a", path, None, 0, n)


def test_a_read_finding_the_files_damaged_is_told_they_were_replaced(engine, session, monkeypatch):
    """Before the next look (a second), the old index meets the new data: not 'damaged'."""
    monkeypatch.setattr(recordings, "CHANGE_CHECK_S", 3600.0)
    path = str(session)
    engine.open("old", path)
    engine.read_segment("old", path, 0)
    rewrite(session, 60, gain=-5.0)
    with pytest.raises(RecordingChangedError, match="changed on disk"):
        engine.read_segment("old", path, 2)  # uncached: its old block offsets miss the new data
    assert engine.stats()["cache_entries"] == 0


def test_a_channel_swapped_for_a_link_out_of_the_roots_says_so(tmp_path, monkeypatch):
    """Replaced by a link that leaves the served roots: refused as not served, not only changed."""
    from mef3lab.errors import PathNotServedError
    from mef3lab.server.core.roots import ServedRoots

    monkeypatch.setattr(recordings, "CHANGE_CHECK_S", 0.0)
    root = tmp_path / "lab"
    session = write(root / "pt.mefd", 0, 30)
    outside = write(tmp_path / "secret.mefd", 0, 30, gain=9.0)
    roots = ServedRoots.parse([f"lab={root}"])

    def resolve(client, path):
        return roots.resolve(path)

    resolve.confine = roots.confine
    engine = Engine(ServerConfig(n_process_workers=0, n_prefetch=0), resolve=resolve)
    try:
        engine.open("c", "lab/pt.mefd")
        engine.read_index("c", "lab/pt.mefd", ["A1"], 0, 256)
        shutil.rmtree(session / "A2.timd")
        (session / "A2.timd").symlink_to(outside / "A2.timd")
        with pytest.raises(PathNotServedError, match="A2.timd"):
            engine.read_index("c", "lab/pt.mefd", ["A1"], 0, 256)
    finally:
        engine.shutdown()


def test_refreshing_a_growing_recording_keeps_one_set_of_block_bounds(engine, session):
    """Where a cold segment may be cut is asked once per opening, not kept for every extent."""
    path = str(session)
    engine.open("c", path)
    for k in range(1, 6):
        write(session, 60 + 10 * (k - 1), 60 + 10 * k)
        n = engine.open("c", path).rate_groups[0].grid.n_samples  # the refresh
        rec = engine.open_recordings.recording("c", path)
        group = rec.info.rate_groups[0]
        bounds = engine._bounds(rec, group, NAMES, 0, n)  # as a cold read in parts asks
        assert bounds[0] == 0 and bounds[-1] == n and len(bounds) > 2
        np.testing.assert_array_equal(
            engine.read_index("c", path, None, n - 300, n).data, direct(session, n - 300, n)
        )
        assert len(engine._bounds_of) == 1
