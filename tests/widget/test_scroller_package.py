"""The scroller's front end ships in the package: a built wheel holds its ES module and CSS."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_wheel_ships_the_front_end(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next(tmp_path.glob("mef3lab-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in ("scroller.js", "scroller.css", "scroller.py"):
        assert f"mef3lab/widget/{f}" in names


def test_the_widget_points_at_the_shipped_module():
    from mef3lab.widget import Scroller

    shipped = Path(__file__).resolve().parents[2] / "mef3lab" / "widget"
    assert str(Scroller._esm) == (shipped / "scroller.js").read_text()  # anywidget reads the file
    assert str(Scroller._css) == (shipped / "scroller.css").read_text()
