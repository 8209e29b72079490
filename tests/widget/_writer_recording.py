"""An iEEG recording written with mef_tools' MefWriter, as an amplifier leaves it.

Depth-electrode names (no 10-20 names, so a scalp chain is refused) and one long name; a DC
offset on every channel (up to -1043 µV) and a settling transient in the first half second
(thousands of µV) before an alpha-band signal of tens of µV (a helper module, imported by name).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FS = 512.0
SECONDS = 120.0
START_UUTC = 1_705_305_600_000_000
CHANNELS = ("LB1", "LB2", "LB3", "LB4", "RA1", "RA2", "Left-Right_Central")
OFFSETS = (-1043.0, 250.0, 0.0, 600.0, -300.0, 80.0, 1500.0)
#: µV: the rhythm's amplitude (the settling transient is 100 times more).
AMPLITUDE = 40.0


def signal(i: int) -> np.ndarray:
    """Channel i as written, in µV (two decimals)."""
    n = int(SECONDS * FS)
    t = np.arange(n) / FS
    rng = np.random.default_rng(100 + i)
    x = AMPLITUDE * np.sin(2 * np.pi * (9 + i) * t) + rng.normal(0, 8, n)
    x += OFFSETS[i] + 100 * AMPLITUDE * np.exp(-t / 0.1)  # the amplifier settling
    return np.round(x, 2)


def write(path: Path) -> Path:
    """The recording at `path` (a .mefd folder), written by MefWriter."""
    from mef_tools.io import MefWriter

    w = MefWriter(str(path), overwrite=True, password1=None, password2=None)
    w.data_units = "uV"
    end = START_UUTC + int(SECONDS * 1e6)
    for i, name in enumerate(CHANNELS):
        w.write_data(signal(i), name, START_UUTC, FS, end_uutc=end, precision=2)
    return path
