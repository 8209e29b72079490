"""Salvage shadow folders (``mef3lab-salvage-<pid>-*``) never outlive the reader that made them.

A reader process killed mid-read cannot remove its own: the pool removes them when it sees
the death, and a new pool removes those of processes that no longer run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest

from mef3lab.errors import CorruptDataError
from mef3lab.readers import open_reader
from mef3lab.server.pool import ReaderPool, ReadRequest
from mef3lab.testing.damage import damaged_copy

try:
    from .. import _pool_engines as misbehaving
    from .._pool_helpers import hang_pid
except ImportError:
    import _pool_engines as misbehaving
    from _pool_helpers import hang_pid


def shadows(pid: int | str = "*") -> list[Path]:
    return sorted(Path(tempfile.gettempdir()).glob(f"mef3lab-salvage-{pid}-*"))


@pytest.fixture
def salvaged(small, tmp_path) -> Path:
    """`small` with ch001's `.tmet` cut in half: it opens through a salvage shadow."""
    return damaged_copy(small, tmp_path / "salvaged.mefd", "tmet-truncated-half", "ch001")


def test_a_reader_killed_mid_read_leaves_no_salvage_folder(engine_pool, salvaged, small):
    (salvaged / "hang-on-read").touch()
    doomed = engine_pool.submit(
        ReadRequest(salvaged, None, misbehaving.ENGINE, ("ch000", "ch002"), 0, 5000)
    )
    pid = hang_pid(salvaged)
    assert shadows(pid), "the reader opened the damaged recording without a shadow"
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(CorruptDataError, match=r"signal 9: SIGKILL"):
        doomed.result(timeout=10)
    assert shadows(pid) == []
    # The next reader salvages again and reads what a direct read of the intact copy reads.
    (salvaged / "hang-on-read").unlink()
    with open_reader(small, engine="mef3io") as direct:
        want = direct.read_index(["ch000", "ch002"], 0, 5000)
    got = engine_pool.submit(
        ReadRequest(salvaged, None, misbehaving.ENGINE, ("ch000", "ch002"), 0, 5000)
    ).result(timeout=30)
    np.testing.assert_array_equal(got.array, want)


def test_closing_the_pool_mid_read_leaves_no_salvage_folder(salvaged):
    (salvaged / "hang-on-read").touch()
    with ReaderPool(1, engines=misbehaving.SPEC) as pool:
        fut = pool.submit(ReadRequest(salvaged, None, misbehaving.ENGINE, ("ch000",), 0, 100))
        pid = hang_pid(salvaged)
        assert shadows(pid)
    assert fut.exception(timeout=10) is not None and shadows(pid) == []


def test_a_new_pool_removes_the_shadows_of_dead_processes(salvaged):
    # A real process salvages the recording and is killed before it can clean up.
    script = textwrap.dedent(
        f"""
        import os, signal
        from mef3lab.readers import open_reader
        r = open_reader({str(salvaged)!r}, engine="mef3io")
        assert "ch001" in r.info.damaged
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    dead = subprocess.Popen([sys.executable, "-c", script])
    assert dead.wait(60) == -signal.SIGKILL
    assert shadows(dead.pid), "the killed process left no shadow to clean up"
    with open_reader(salvaged, engine="mef3io"):  # this process's own: kept
        mine = shadows(os.getpid())
        assert mine
        with ReaderPool(1):
            assert shadows(dead.pid) == []
            assert all(p.exists() for p in mine)
