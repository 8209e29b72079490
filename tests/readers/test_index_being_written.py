"""A recording a writer is appending to opens with the blocks that are complete.

MefWriter writes 60 s, then appends 60 s to a copy. Between writing the new index entries
and rewriting the headers, the appended copy's `.tidx` is longer than its header declares
(by whole entries, and by part of one); after the index's header and before the metadata,
the index declares more blocks than the `.tmet` counts. Those states, rebuilt from the two
copies, open undamaged on every engine with the first 60 s, equal sample for sample to the
first copy; and opening again and again while MefWriter appends never finds a channel
damaged.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from _growing import FS, NAMES, write

from mef3lab.readers import open_reader
from mef3lab.readers.salvage import SHADOW_PREFIX


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    """(the first 60 s, the same with 60 s appended), as MefWriter left them."""
    root = tmp_path_factory.mktemp("appending")
    first = root / "first.mefd"
    write(first, 0, 60)
    grown = shutil.copytree(first, root / "grown.mefd")
    write(grown, 60, 120)
    return first, grown


def mid_append(first, grown, dest, cut: int | None):
    """`grown` as it is before its metadata is rewritten: `first`'s metadata, `grown`'s data,
    and its index entries less the last `cut` bytes under `first`'s index header (None: the
    whole index, its header rewritten already).
    """
    path = shutil.copytree(grown, dest)
    for tidx in path.glob("*.timd/*.segd/*.tidx"):
        old = first / tidx.relative_to(path)
        if cut is not None:
            body = tidx.read_bytes()[1024 : len(tidx.read_bytes()) - cut]
            tidx.write_bytes(old.read_bytes()[:1024] + body)
        tmet = old.with_suffix(".tmet")
        shutil.copyfile(tmet, tidx.with_suffix(".tmet"))
    return path


@pytest.mark.parametrize("engine", ["numba", "mef3io", "pymef"])
@pytest.mark.parametrize(
    "cut", [0, 30, None], ids=["whole-entries", "partial-entry", "metadata-behind"]
)
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
    assert (path / "A1.timd").is_dir()  # the recording itself is untouched


def test_opening_while_mef_writer_appends_never_finds_damage(tmp_path):
    """Opens of a recording MefWriter appends to (every 50 ms) see complete blocks only."""
    path = write(tmp_path / "live.mefd", 0, 10)
    done = threading.Event()

    def monitor():
        for k in range(1, 25):
            write(path, 10 * k, 10 * (k + 1))
            time.sleep(0.05)
        done.set()

    seen = []
    writer = threading.Thread(target=monitor)
    writer.start()
    try:
        while not done.is_set():
            with open_reader(path, engine="numba") as r:
                assert r.info.damaged == {} and r.info.names == NAMES
                n = r.info.rate_groups[0].grid.n_samples
                seen.append((n, r.read_index(list(NAMES), 0, n)))
    finally:
        writer.join()
    with open_reader(path, engine="mef3io") as r:
        final = r.read_index(list(NAMES), 0, r.info.rate_groups[0].grid.n_samples)
    assert len({n for n, _ in seen}) > 3  # it grew while opened
    for n, got in seen:
        # a channel the writer has not reached yet ends earlier: NaN after its end, no holes
        for row, want in zip(got, final[:, :n], strict=True):
            k = int(np.flatnonzero(~np.isnan(row))[-1]) + 1 if not np.isnan(row).all() else 0
            assert not np.isnan(row[:k]).any() and k >= n - int(10 * FS)
            np.testing.assert_array_equal(row[:k], want[:k])


@pytest.mark.parametrize("engine", ["numba", "mef3io"])
def test_a_metadata_file_being_rewritten_is_waited_for(copies, tmp_path, engine):
    """A writer truncates a .tmet and writes it again: an open meanwhile waits for it."""
    path = shutil.copytree(copies[0], tmp_path / "rewriting.mefd")
    tmet = next(path.glob("A2.timd/*.segd/*.tmet"))
    whole = tmet.read_bytes()
    tmet.write_bytes(b"")
    later = threading.Timer(0.12, tmet.write_bytes, (whole,))
    later.start()
    try:
        with open_reader(path, engine=engine) as r:
            assert r.info.damaged == {} and r.info.names == NAMES
    finally:
        later.join()
