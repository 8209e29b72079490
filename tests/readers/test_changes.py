"""A recording's files compared with a snapshot: unchanged, grown (MefWriter appended), replaced.

Sessions are written by mef_tools' MefWriter: appending keeps every file and makes the index
and data longer; writing the recording again (a new folder moved in, or the files
rewritten in place with other values) is a replacement.
"""

from __future__ import annotations

import errno
import os
import resource
import shutil
import time

import pytest
from _growing import write

from mef3lab.readers.changes import GROWN, REPLACED, ChangeWatch, Snapshot, fingerprint


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("changes")
    write(root / "base.mefd", 0, 30)
    write(root / "other.mefd", 0, 30, gain=2.0)
    return root


@pytest.fixture
def session(written, tmp_path):
    return shutil.copytree(written / "base.mefd", tmp_path / "rec.mefd")


def test_the_fingerprint_lists_every_sample_file(session):
    files = fingerprint(session)
    assert [f[0].rsplit(".", 1)[1] for f in files] == ["tdat", "tidx", "tmet"] * 2
    assert files == fingerprint(session) and fingerprint(session / "missing") == ()


def test_an_untouched_recording_is_unchanged(session):
    assert Snapshot.take(session).change() is None


def test_an_append_is_growth(session):
    snap = Snapshot.take(session)
    write(session, 30, 60)
    assert snap.change() == GROWN
    assert Snapshot.take(session).change() is None


def test_a_folder_moved_in_is_a_replacement(session, written):
    snap = Snapshot.take(session)
    new = shutil.copytree(written / "other.mefd", session.parent / "new.mefd")
    shutil.rmtree(session)
    os.rename(new, session)
    assert snap.change() == REPLACED


def test_files_rewritten_in_place_with_other_values_are_a_replacement(session, written):
    snap = Snapshot.take(session)
    for name, *_ in snap.files:
        (session / name).write_bytes((written / "other.mefd" / name).read_bytes())
    assert [f[3] for f in fingerprint(session)] == [f[3] for f in snap.files]  # same inodes
    assert snap.change() == REPLACED


def test_a_shortened_or_removed_file_is_a_replacement(session):
    snap = Snapshot.take(session)
    tidx = next(session.glob("A1.timd/*.segd/*.tidx"))
    os.truncate(tidx, tidx.stat().st_size - 56)
    assert snap.change() == REPLACED
    snap = Snapshot.take(session)
    tidx.unlink()
    assert snap.change() == REPLACED


def test_metadata_rewritten_in_place_is_no_replacement(session):
    """A writer rewrites a .tmet as it appends: empty for a moment, then whole again."""
    snap = Snapshot.take(session)
    tmet = next(session.glob("A1.timd/*.segd/*.tmet"))
    whole = tmet.read_bytes()
    with tmet.open("r+b") as f:
        f.truncate(0)
        assert snap.change() == GROWN
        f.write(whole)
    assert snap.change() in (None, GROWN)


def test_the_watch_compares_at_most_once_per_interval_and_a_replacement_sticks(session, written):
    watch = ChangeWatch(Snapshot.take(session), interval=60.0)
    write(session, 30, 60)
    assert watch.check() is None  # within the interval: not compared
    assert watch.check(force=True) == GROWN
    shutil.rmtree(session)
    shutil.copytree(written / "other.mefd", session)
    assert watch.check(force=True) == REPLACED
    watch.interval = 0.0
    time.sleep(0.01)
    assert watch.check() == REPLACED


def test_a_pipe_in_place_of_a_file_is_a_replacement_and_hangs_nothing(session):
    snap = Snapshot.take(session)
    tdat = next(session.glob("A2.timd/*.segd/*.tdat"))
    tdat.unlink()
    os.mkfifo(tdat)
    assert snap.change() == REPLACED
    assert Snapshot.take(session).probes[str(tdat.relative_to(session))] == (b"", b"")


def test_a_look_that_fails_for_want_of_file_descriptors_judges_nothing(session):
    """Out of file descriptors (a server under a flood of connections), the files cannot be
    listed: that is no sign of a replacement, and the next look decides.
    """
    watch = ChangeWatch(Snapshot.take(session), interval=0.0)
    held = []
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 4096), hard))
    try:
        with pytest.raises(OSError) as exhausted:
            while True:
                held.append(os.open(os.devnull, os.O_RDONLY))
        assert exhausted.value.errno == errno.EMFILE
        assert watch.check() is None
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert watch.check() is None  # descriptors back: still unchanged
    shutil.rmtree(next(session.glob("*.timd")))
    assert watch.check() == REPLACED  # a channel really gone is seen at the next look
