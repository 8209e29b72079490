"""`make walkthrough` (``mef3lab walkthrough``): the terminal walkthrough, end to end."""

from __future__ import annotations

import re
import subprocess
import sys

import psutil
import pytest


@pytest.mark.slow  # writes a 1-hour 64-channel recording (~6 s)
def test_demo_generates_serves_reads_and_stops(tmp_path):
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mef3lab",
            "walkthrough",
            "--once",
            "--port",
            "0",
            "--data",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "channels     64 at 256 Hz" in out and "duration     60.0 min" in out
    for line in ("segment 0 (cold: decoded)", "segment 0 (warm: cache)", "segment 1 (prefetched)"):
        assert line in out
    # The warm read is a hit; the prefetched one is a hit, or joins the prefetch still under way
    # (a busy machine), which counts as a miss but decodes nothing again.
    hits, misses, prefetches = map(
        int, re.search(r"(\d+) hits, (\d+) misses, (\d+) prefetches", out).groups()
    )
    assert hits >= 1 and hits + misses == 3 and prefetches >= 1, out
    assert f"mef3lab.open_recording('{tmp_path / 'demo.mefd'}'" in out
    assert {
        p.pid for p in psutil.Process().children(recursive=True)
    } == before  # the server is gone
