"""A recording a writer is appending to opens with the blocks its index headers declare.

MefWriter writes 60 s, then appends 60 s to a copy. Between writing the new index entries
and rewriting the headers, the appended copy's `.tidx` is longer than its header declares
(by whole entries, and by part of one); that state, rebuilt from the two copies, opens
undamaged on every engine with the first 60 s, equal sample for sample to the first copy.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from mef3lab.readers import open_reader
from mef3lab.readers.salvage import SHADOW_PREFIX

FS = 256.0
START = 1_700_000_000_000_000
NAMES = ("Fp1", "Fp2")


def values(i: int, a: float, b: float) -> np.ndarray:
    t = np.arange(int(a * FS), int(b * FS)) / FS
    return np.round(30 * np.sin(2 * np.pi * (4 + i) * t) + 5 * i, 2)


def write(path, a: float, b: float) -> None:
    """Seconds [a, b) of every channel, written (or appended) by MefWriter."""
    from mef_tools.io import MefWriter

    w = MefWriter(str(path), overwrite=False)
    w.data_units = "uV"
    for i, name in enumerate(NAMES):
        w.write_data(values(i, a, b), name, START + int(a * 1e6), FS, precision=2)
    del w


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    """(the first 60 s, the same with 60 s appended), as MefWriter left them."""
    root = tmp_path_factory.mktemp("appending")
    first = root / "first.mefd"
    write(first, 0, 60)
    grown = shutil.copytree(first, root / "grown.mefd")
    write(grown, 60, 120)
    return first, grown


def mid_append(first, grown, dest, cut: int):
    """`grown` as it is before its headers are rewritten: `first`'s headers and metadata,
    `grown`'s data, and its index entries less the last `cut` bytes.
    """
    path = shutil.copytree(grown, dest)
    for tidx in path.glob("*.timd/*.segd/*.tidx"):
        old = first / tidx.relative_to(path)
        body = tidx.read_bytes()[1024 : len(tidx.read_bytes()) - cut]
        tidx.write_bytes(old.read_bytes()[:1024] + body)
        tmet = old.with_suffix(".tmet")
        shutil.copyfile(tmet, tidx.with_suffix(".tmet"))
    return path


@pytest.mark.parametrize("engine", ["numba", "mef3io", "pymef"])
@pytest.mark.parametrize("cut", [0, 30], ids=["whole-entries", "partial-entry"])
def test_an_index_being_appended_opens_with_its_declared_entries(copies, tmp_path, engine, cut):
    first, grown = copies
    path = mid_append(first, grown, tmp_path / "writing.mefd", cut)
    tidx = next(path.glob("*.timd/*.segd/*.tidx"))
    assert tidx.stat().st_size > next(first.glob("*.timd/*.segd/*.tidx")).stat().st_size
    with open_reader(first, engine="mef3io") as r:
        want = r.read_index(list(NAMES), 0, r.info.rate_groups[0].grid.n_samples)
    with open_reader(path, engine=engine) as r:
        assert r.info.damaged == {} and r.info.names == NAMES
        assert r.info.rate_groups[0].grid.n_samples == want.shape[1] == int(60 * FS)
        got = r.read_index(list(NAMES), 0, want.shape[1])
    np.testing.assert_array_equal(got, want.astype(got.dtype))


def test_its_shadow_is_removed_with_the_reader(copies, tmp_path):
    path = mid_append(*copies, tmp_path / "writing.mefd", 30)

    def mine() -> set:
        return set(Path(tempfile.gettempdir()).glob(f"{SHADOW_PREFIX}{os.getpid()}-*"))

    before = mine()
    with open_reader(path, engine="mef3io"):
        assert mine() - before
    assert mine() == before
    assert (path / "Fp1.timd").is_dir()  # the recording itself is untouched
