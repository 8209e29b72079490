"""The benchmark recordings: written once by `mef3lab.testing.synth.synthesize`, reused while
unchanged.

A recording lives in ``benchmarks/data/<name>.mefd`` beside ``<name>.json``, a stamp of
the parameters it was written with. It is regenerated when the folder or the stamp is
missing (e.g. an interrupted write) or when the parameters differ from the stamp.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from mef3lab.testing.synth import synthesize

DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class RecordingSpec:
    """What `synthesize` is asked to write (the stamp is exactly these fields)."""

    name: str
    channels: int
    fs: float
    seconds: float
    precision: int = 2
    gaps: int = 3
    seed: int = 0

    @property
    def label(self) -> str:
        minutes = self.seconds / 60
        span = f"{minutes / 60:g} h" if minutes >= 60 else f"{minutes:g} min"
        return f"{self.channels} ch × {self.fs:g} Hz × {span}, precision {self.precision}"


#: The recording of the seed's access-pattern table.
FULL = RecordingSpec("full-64ch-2h", channels=64, fs=256.0, seconds=7200.0)
#: A small one for development runs (`--quick`).
QUICK = RecordingSpec("quick-16ch-20min", channels=16, fs=256.0, seconds=1200.0)
#: The scroller's wide case (table F): 30-s pages of 256 channels at 2 kHz.
WIDE = RecordingSpec("wide-256ch-2kHz-11min", channels=256, fs=2048.0, seconds=660.0, gaps=1)
#: Its small twin for `--quick`.
WIDE_QUICK = RecordingSpec("wide-64ch-2kHz-4min", channels=64, fs=2048.0, seconds=240.0, gaps=1)
#: Table G's: the recording of issue 9's mixed-subset workload (8 channels, 20 minutes).
MIXED = RecordingSpec("mixed-8ch-20min", channels=8, fs=256.0, seconds=1200.0)
#: Clinical review (table H): a night and a day, 64 ch; precision 0 writes fastest (~5 min once).
DAY = RecordingSpec("day-64ch-24h", channels=64, fs=256.0, seconds=86400.0, precision=0)
#: Its small twin for `--quick`.
DAY_QUICK = RecordingSpec("day-64ch-2h", channels=64, fs=256.0, seconds=7200.0, precision=0)


@dataclass(frozen=True)
class FirstLookSpec:
    """A recording `MefWriter` writes for this table, and the page a first look reads."""

    name: str
    channels: int
    fs: float
    seconds: float
    page_s: float
    seed: int = 0

    @property
    def label(self) -> str:
        span = (
            f"{self.seconds / 3600:g} h" if self.seconds >= 3600 else f"{self.seconds / 60:g} min"
        )
        rate = f"{self.fs / 1000:g} kHz" if self.fs >= 1000 else f"{self.fs:g} Hz"
        return f"{self.channels} ch × {span} at {rate}"


#: Table I's recordings (issue 22's three).
FIRST_LOOK = (
    FirstLookSpec("first-64ch-1h-256Hz", 64, 256.0, 3600.0, 10.0),
    FirstLookSpec("first-16ch-5min-8kHz", 16, 8000.0, 300.0, 1.0),
    FirstLookSpec("first-64ch-2min-32kHz", 64, 32000.0, 120.0, 1.0),
)
#: Their tiny twins, for the smoke test.
FIRST_LOOK_SMOKE = (
    FirstLookSpec("first-smoke-4ch-2min-256Hz", 4, 256.0, 120.0, 10.0),
    FirstLookSpec("first-smoke-2ch-20s-8kHz", 2, 8000.0, 20.0, 1.0),
)


def ensure_recording(spec: RecordingSpec, folder: Path = DATA_DIR, log=print) -> Path:
    """The recording `spec` describes under `folder`, written first if missing or stale."""
    folder = Path(folder)
    path, stamp = folder / f"{spec.name}.mefd", folder / f"{spec.name}.json"
    want = asdict(spec)
    if path.is_dir() and stamp.is_file():
        try:
            if json.loads(stamp.read_text()) == want:
                return path
        except ValueError:
            pass  # a damaged stamp: write again
    folder.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)  # no stamp while writing: an interrupted write is redone
    log(f"writing the benchmark recording {path.name} ({spec.label}) ...")
    t = time.perf_counter()
    kwargs = {k: v for k, v in want.items() if k != "name"}
    synthesize(path, overwrite=True, **kwargs)
    stamp.write_text(json.dumps(want, indent=1) + "\n")
    log(f"  written in {time.perf_counter() - t:.1f} s")
    return path


def warm_page_cache(path: Path) -> int:
    """Read every file of the recording once, so no row pays for cold disk reads; bytes read."""
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                while chunk := fh.read(1 << 22):
                    total += len(chunk)
    return total
