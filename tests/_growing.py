"""A recording as monitoring leaves it: written by MefWriter, appended to, or written again.

Two channels at 256 Hz; `write` appends when the session exists (MefWriter's own append),
`rewrite` writes it again with other values in a new folder moved in at the same path.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

FS = 256.0
START = 1_700_000_000_000_000
NAMES = ("A1", "A2")


def values(i: int, a: float, b: float, gain: float = 1.0) -> np.ndarray:
    """Channel `i`'s seconds [a, b) as written (µV, two decimals)."""
    t = np.arange(int(a * FS), int(b * FS)) / FS
    return np.round(gain * 20 * np.sin(2 * np.pi * (3 + i) * t) + 7 * i, 2)


def write(path: Path, a: float, b: float, gain: float = 1.0) -> Path:
    """Seconds [a, b) of every channel, written by MefWriter (appended if `path` exists)."""
    from mef_tools.io import MefWriter

    w = MefWriter(str(path), overwrite=False)
    w.data_units = "uV"
    for i, name in enumerate(NAMES):
        w.write_data(values(i, a, b, gain), name, START + int(a * 1e6), FS, precision=2)
    del w
    return path


def rewrite(path: Path, seconds: float, gain: float) -> Path:
    """`path` written again: `seconds` of other values, in a new folder moved in its place."""
    new = write(path.with_name(path.stem + "-new.mefd"), 0, seconds, gain)
    shutil.rmtree(path)
    os.rename(new, path)
    return path
