"""An iEEG-BIDS dataset of MEF 3.0 runs, written for the tests (a helper module, imported by name).

Runs are written with mef_tools' MefWriter (a real writer, not mef3lab's); sidecars by
hand. Two subjects, two sessions of sub-01, four runs; run-02 of sub-01 ses-01 has a gap;
sub-01 ses-01's electrodes.tsv (no task, no run) serves both its runs; the ``task-rest``
_ieeg.json at the root serves every rest run (BIDS inheritance); RH2 is bad.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

FS = 256.0
SECONDS = 60.0
START_UUTC = 1_705_305_600_000_000
CHANNELS = ("ECG", "LA1", "LA2", "LA3", "RH1", "RH2")  # as the recording lists them
TYPES = {"LA1": "SEEG", "LA2": "SEEG", "LA3": "SEEG", "RH1": "SEEG", "RH2": "SEEG", "ECG": "ECG"}
GROUPS = {"LA1": "LA", "LA2": "LA", "LA3": "LA", "RH1": "RH", "RH2": "RH"}
BAD = {"RH2": "broken contact"}
#: run-02 of sub-01 ses-01: a 3.5-s gap at 20 s.
GAP = (20.0, 3.5)
#: The MEF record run-01 carries (session level), as MefWriter writes it.
RECORD = {"time": START_UUTC + 12_000_000, "type": "Note", "text": "lights off"}


@dataclass(frozen=True)
class Run:
    subject: str
    session: str
    task: str
    run: str
    gap: tuple[float, float] | None = None
    events: tuple[tuple[float, float, str], ...] = ()

    @property
    def stem(self) -> str:
        return f"sub-{self.subject}_ses-{self.session}_task-{self.task}_run-{self.run}"

    def folder(self, root: Path) -> Path:
        return root / f"sub-{self.subject}" / f"ses-{self.session}" / "ieeg"

    def path(self, root: Path) -> Path:
        return self.folder(root) / f"{self.stem}_ieeg.mefd"

    def signal(self, i: int) -> np.ndarray:
        """Channel i as written, in µV (two decimals), NaN in the gap."""
        n = int(SECONDS * FS)
        rng = np.random.default_rng(abs(hash((self.stem, i))) % 2**32)
        t = np.arange(n) / FS
        x = 40 * np.sin(2 * np.pi * (8 + i) * t) + rng.normal(0, 10, n)
        x = np.round(x, 2)
        if self.gap is not None:
            a, d = self.gap
            x[int(a * FS) : int((a + d) * FS)] = np.nan
        return x


RUNS = (
    Run("01", "01", "rest", "01", events=((5.0, 0.0, "spike"), (30.0, 4.0, "seizure onset"))),
    Run("01", "01", "rest", "02", gap=GAP, events=((10.0, 0.0, "spike"), (40.0, 1.5, "artifact"))),
    Run("01", "02", "rest", "01", events=((15.0, 0.0, "spike"),)),
    Run("02", "01", "sleep", "01", events=((8.0, 2.0, "arousal"),)),
)


def _json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _tsv(path: Path, df: pd.DataFrame) -> None:
    df.to_csv(path, sep="\t", index=False, na_rep="n/a", lineterminator="\n")


def write_mef(path: Path, run: Run) -> None:
    """The run's recording with MefWriter (gaps from NaN, as its discontinuity handler writes)."""
    from mef_tools.io import MefWriter

    w = MefWriter(str(path), overwrite=True, password1=None, password2=None)
    w.data_units = "uV"
    end = START_UUTC + int(SECONDS * 1e6)
    for i, name in enumerate(CHANNELS):
        w.write_data(run.signal(i), name, START_UUTC, FS, end_uutc=end, precision=2)
    if run.run == "01" and run.session == "01" and run.subject == "01":
        w.write_annotations(pd.DataFrame([RECORD]))


def write_dataset(root: Path) -> Path:
    """The whole dataset under `root` (returned)."""
    root.mkdir(parents=True, exist_ok=True)
    _json(
        root / "dataset_description.json",
        {
            "Name": "mef3lab test iEEG",
            "BIDSVersion": "1.9.0",
            "DatasetType": "raw",
            "License": "CC0",
            "Authors": ["mef3lab tests"],
        },
    )
    (root / "README").write_text("Synthetic iEEG runs for mef3lab's tests.\n", encoding="utf-8")
    _tsv(
        root / "participants.tsv",
        pd.DataFrame({"participant_id": ["sub-01", "sub-02"], "age": [34, 51]}),
    )
    _json(root / "participants.json", {"age": {"Description": "age", "Units": "year"}})
    common = {
        "SamplingFrequency": FS,
        "SoftwareFilters": "n/a",
        "iEEGReference": "common average of LA and RH contacts",
        "Manufacturer": "mef3lab tests",
    }
    # inherited by every rest run: the root-level sidecar of task rest
    _json(root / "task-rest_ieeg.json", {"TaskName": "rest", "PowerLineFrequency": 50, **common})
    for run in RUNS:
        folder = run.folder(root)
        folder.mkdir(parents=True, exist_ok=True)
        write_mef(run.path(root), run)
        if run.task == "sleep":
            _json(
                folder / f"{run.stem}_ieeg.json",
                {"TaskName": "sleep", "PowerLineFrequency": 60, **common},
            )
        _tsv(
            folder / f"{run.stem}_channels.tsv",
            pd.DataFrame(
                {
                    "name": CHANNELS,
                    "type": [TYPES[c] for c in CHANNELS],
                    "units": ["µV"] * len(CHANNELS),
                    "low_cutoff": [0.1] * len(CHANNELS),
                    "high_cutoff": [100.0] * len(CHANNELS),
                    "status": ["bad" if c in BAD else "good" for c in CHANNELS],
                    "status_description": [BAD.get(c) for c in CHANNELS],
                }
            ),
        )
        _tsv(
            folder / f"{run.stem}_events.tsv",
            pd.DataFrame(list(run.events), columns=["onset", "duration", "trial_type"]),
        )
        # one electrodes.tsv per session, without task or run: it serves the session's runs
        space = f"sub-{run.subject}_ses-{run.session}_space-ACPC"
        names = [c for c in CHANNELS if c in GROUPS]
        _tsv(
            folder / f"{space}_electrodes.tsv",
            pd.DataFrame(
                {
                    "name": names,
                    "x": [-20.0 + 2 * i for i in range(len(names))],
                    "y": [5.0] * len(names),
                    "z": [-10.0] * len(names),
                    "size": [2.0] * len(names),
                    "group": [GROUPS[c] for c in names],
                }
            ),
        )
        _json(
            folder / f"{space}_coordsystem.json",
            {"iEEGCoordinateSystem": "ACPC", "iEEGCoordinateUnits": "mm"},
        )
    return root
