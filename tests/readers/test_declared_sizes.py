"""Index and metadata files are checked against the size they declare before any decoder reads them.

A sparse 1 GiB `.tidx` (a few KiB on disk) used to open as undamaged and cost every reader
process gigabytes; now its channel opens as damaged, with the sizes in the reason, and the
other channels read exactly as the intact copy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mef3lab.readers import open_reader
from mef3lab.testing.synth import synthesize

VICTIM = "ch001"
#: About 1 GiB, a whole number of index entries (as a reader that trusts the file size wants).
GIB = 1024 + 56 * ((1 << 30) // 56)


@pytest.fixture(scope="module")
def intact(tmp_path_factory):
    """3 channels x 256 Hz x 30 s, and every channel as mef3io reads it (the reference)."""
    path = synthesize(
        tmp_path_factory.mktemp("intact") / "intact.mefd", channels=3, fs=256.0, seconds=30.0
    )
    import mef3io

    with mef3io.Reader(str(path), "") as r:
        reference = {
            n: np.atleast_2d(r.read([n], r.info(n)["start_time"], r.info(n)["end_time"] + 1))
            for n in r.channels
        }
    return path, reference


def swollen(intact, tmp_path, ext: str):
    """A copy whose VICTIM's `ext` file is extended, sparse, to `GIB` bytes."""
    path = shutil.copytree(intact, tmp_path / "swollen.mefd")
    (target,) = (path / f"{VICTIM}.timd").glob(f"*.segd/*{ext}")
    os.truncate(target, GIB)
    assert target.stat().st_blocks * 512 < 1 << 20  # sparse: it costs the disk nothing
    return path


@pytest.mark.parametrize("engine", ["numba", "mef3io", "pymef"])
@pytest.mark.parametrize("ext", [".tidx", ".tmet"])
def test_a_sparse_huge_file_opens_as_damaged(intact, tmp_path, engine, ext):
    path = swollen(intact[0], tmp_path, ext)
    with open_reader(path, None, engine) as r:
        why = r.info.damaged[VICTIM]
        assert f"is {GIB} bytes, but" in why and ext in why, why
        assert VICTIM not in r.info.names and "mef3lab-salvage" not in why
        for name in r.info.names:
            got = r.read_index([name], 0, intact[1][name].shape[1])
            np.testing.assert_array_equal(got, intact[1][name].astype(got.dtype))


def test_opening_it_does_not_cost_the_declared_size(intact, tmp_path):
    """A fresh process's peak memory opening the swollen copy stays near the intact one's."""
    path = swollen(intact[0], tmp_path, ".tidx")
    script = textwrap.dedent(
        """
        import resource, sys
        from mef3lab.readers import open_reader
        with open_reader(sys.argv[1], engine="mef3io") as r:
            r.read_index(list(r.info.names), 0, 1000)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
        """
    )

    def peak(p) -> int:
        out = subprocess.run(
            [sys.executable, "-c", script, str(p)], capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        return int(out.stdout.split()[-1])

    base, swelled = peak(intact[0]), peak(path)
    assert swelled < base + GIB // 8, (base, swelled)
