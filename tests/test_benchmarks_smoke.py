"""The benchmark machinery end to end on a tiny recording: every table produces its rows.

Speed is not asserted (the numbers mean nothing at this size); the data checks inside
the benchmarks still run, so a server path returning wrong samples fails here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = str(Path(__file__).resolve().parents[1])
if REPO not in sys.path:  # `benchmarks` is a folder of the repository, not an installed package
    sys.path.insert(0, REPO)

from benchmarks.__main__ import run  # noqa: E402
from benchmarks.common import SMOKE_RUN  # noqa: E402
from benchmarks.report import save_json, summary  # noqa: E402

pytestmark = pytest.mark.timeout(120)


def test_every_table_produces_its_rows(tmp_path):
    tables = run(SMOKE_RUN, "ABCDE", data_dir=tmp_path, log=lambda msg: None)

    assert [t.key for t in tables] == ["A", "B", "C", "D", "E"]
    labels = {t.key: [r.label for r in t.rows] for t in tables}
    assert len(labels["A"]) == 7 and labels["A"][0].startswith("1. direct")
    assert len(labels["B"]) == 3 and len(labels["C"]) == 5 and labels["D"] == ["pymef", "mef3io", "numba, 1 thread", "numba"]
    assert len(labels["E"]) == 5 and labels["E"][0].startswith("decoded samples")
    for t in tables:
        text = t.render()
        assert all(r.label in text for r in t.rows)
        for r in t.rows:
            assert r.value > 0 and r.status in ("PASS", "MISS", "—")
            assert r.ratio is None or r.ratio > 0
    assert "targets:" in summary(tables)

    out = tmp_path / "out.json"
    save_json(str(out), tables, {"smoke": True})
    assert [t["key"] for t in json.loads(out.read_text())["tables"]] == ["A", "B", "C", "D", "E"]


def test_the_recording_is_reused_while_its_parameters_hold(tmp_path):
    from benchmarks.data import ensure_recording

    written = []
    first = ensure_recording(SMOKE_RUN.recording, tmp_path, log=written.append)
    again = ensure_recording(SMOKE_RUN.recording, tmp_path, log=written.append)
    assert first == again and len([m for m in written if m.startswith("writing")]) == 1
