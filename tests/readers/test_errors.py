"""Every bad input gets its typed error; damaged files never yield silently wrong data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from mef3lab.errors import (
    Mef3LabError,
    NotAMefSessionError,
    PasswordError,
    RecordingNotFoundError,
    TimeRangeError,
    UnknownChannelError,
)
from mef3lab.readers import open_reader


@pytest.fixture(scope="module")
def reader(recording, engine):
    with open_reader(recording, engine=engine) as r:
        yield r


def test_missing_path(tmp_path, engine):
    with pytest.raises(RecordingNotFoundError, match="no such file"):
        open_reader(tmp_path / "nowhere.mefd", engine=engine)


def test_folder_that_is_not_a_session(tmp_path, engine):
    (tmp_path / "notes").mkdir()
    with pytest.raises(NotAMefSessionError, match="not a MEF 3.0 session"):
        open_reader(tmp_path / "notes", engine=engine)
    (tmp_path / "file.mefd").write_text("not a folder")
    with pytest.raises(NotAMefSessionError):
        open_reader(tmp_path / "file.mefd", engine=engine)


def test_empty_session_folder(tmp_path, engine):
    (tmp_path / "empty.mefd").mkdir()
    with pytest.raises(NotAMefSessionError, match="without any time-series channel"):
        open_reader(tmp_path / "empty.mefd", engine=engine)


def test_channel_folder_without_segments(tmp_path, engine):
    (tmp_path / "hollow.mefd" / "ch1.timd").mkdir(parents=True)
    with pytest.raises(Mef3LabError):
        open_reader(tmp_path / "hollow.mefd", engine=engine)


def test_unknown_channel(reader):
    with pytest.raises(UnknownChannelError, match="'nope'.*8 channels"):
        reader.read("nope")
    with pytest.raises(UnknownChannelError):
        reader.read_raw(["ch000", "nope"], 0, 10)
    with pytest.raises(UnknownChannelError):
        reader.block_envelope("nope")
    with pytest.raises(UnknownChannelError):
        reader.read([])


def test_end_before_start(reader):
    t = reader.info.start_uutc + 10_000_000
    for t0, t1 in [(t, t - 1), (t, t)]:
        with pytest.raises(TimeRangeError, match="ends before it starts"):
            reader.read("ch000", t0, t1)
    with pytest.raises(TimeRangeError):
        reader.read_index("ch000", 10, 5)
    with pytest.raises(TimeRangeError):
        reader.block_envelope("ch000", t, t - 1)


def test_window_wholly_outside(reader):
    start, end = reader.info.start_uutc, reader.info.end_uutc
    for t0, t1 in [(start - 10_000_000, start), (end, end + 10_000_000), (0, 1_000)]:
        with pytest.raises(TimeRangeError, match="wholly outside"):
            reader.read("ch000", t0, t1)


def test_wrong_password(encrypted_recording, engine):
    with pytest.raises(PasswordError, match="password"):
        open_reader(encrypted_recording, "nope", engine=engine)


def test_bad_dtype(reader):
    with pytest.raises(ValueError, match="dtype"):
        reader.read("ch000", dtype="int16")


# -- damaged files, read in a child process (pymef can crash the process on them) ---------

CHILD = r"""
import json, sys
import numpy as np
from mef3lab.errors import Mef3LabError
from mef3lab.readers import open_reader
from mef3lab.testing.synth import plan
path, engine, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
try:
    with open_reader(path, engine=engine) as r:
        g = r.info.rate_groups[0].grid
        got = r.read(None, dtype="float64")
        p = plan(**spec)
        want = np.stack([p.signal(p.index(n)) for n in r.info.names])
        same = got.shape == want.shape and bool(np.array_equal(got, want, equal_nan=True))
        print(json.dumps({"outcome": "data", "correct": same}))
except Mef3LabError as e:
    print(json.dumps({"outcome": "error", "type": type(e).__name__, "message": str(e)}))
"""

SMALL = dict(channels=2, seconds=40.0, gaps=[(12.0, 0.5)], seed=5)


def _truncate_tdat(seg):
    f = seg.with_suffix(".tdat")
    os.truncate(f, f.stat().st_size // 2)


def _garble(ext, start=1024, length=None):
    def damage(seg):
        f = seg.with_suffix(ext)
        b = bytearray(f.read_bytes())
        stop = len(b) if length is None else start + length
        b[start:stop] = (
            np.random.default_rng(0).integers(0, 256, stop - start, dtype=np.uint8).tobytes()
        )
        f.write_bytes(bytes(b))

    return damage


DAMAGES = {
    "truncated-tdat": _truncate_tdat,
    "garbled-tidx": _garble(".tidx"),
    "garbled-tmet": _garble(".tmet"),
    "garbled-tdat": _garble(".tdat"),
    "one-garbled-block": lambda seg: _garble(
        ".tdat", seg.with_suffix(".tdat").stat().st_size // 2, 200
    )(seg),
    "emptied-tdat": lambda seg: os.truncate(seg.with_suffix(".tdat"), 0),
}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    from mef3lab.testing.synth import synthesize

    return synthesize(tmp_path_factory.mktemp("pristine") / "small.mefd", **SMALL)


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_damaged_file_never_reads_as_good_data(pristine, tmp_path, engine, damage):
    copy = tmp_path / "damaged.mefd"
    shutil.copytree(pristine, copy)
    DAMAGES[damage](copy / "ch001.timd" / "ch001-000000.segd" / "ch001-000000.tmet")
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(copy), engine, json.dumps(SMALL)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    # We are still here: whatever the child did, this process survived.
    if proc.returncode != 0:
        # Only a death by signal (SIGSEGV inside pymef) is acceptable; an untyped Python
        # exception would mean a damaged file escaped the mef3lab error hierarchy.
        assert proc.returncode < 0, f"child failed without a mef3lab error:\n{proc.stderr[-2000:]}"
        assert not proc.stdout.strip(), "a crashing child printed a result"
        return
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if result["outcome"] == "error":
        assert result["type"] == "CorruptDataError", result
        assert str(copy) in result["message"]
    else:
        assert result["correct"], (
            f"{engine} returned wrong data for a {damage} file without an error"
        )
