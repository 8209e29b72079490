"""Table I of the benchmarks end to end on a tiny recording: its rows, and its data checks."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = str(Path(__file__).resolve().parents[2])
if REPO not in sys.path:  # `benchmarks` is a folder of the repository, not an installed package
    sys.path.insert(0, REPO)

from benchmarks.__main__ import run  # noqa: E402
from benchmarks.common import SMOKE_RUN  # noqa: E402

pytestmark = pytest.mark.timeout(180)


def test_table_i_produces_its_rows(tmp_path):
    (table,) = run(SMOKE_RUN, "I", data_dir=tmp_path, log=lambda msg: None)
    assert table.key == "I" and len(table.rows) == 6
    for base, *ours in (table.rows[:3], table.rows[3:]):
        assert base.label.endswith("read_raw_mef (baseline)") and base.ratio == 1.0
        for r in ours:
            assert "to_mne()" in r.label and r.value > 0 and r.status in ("PASS", "MISS")
    assert "2 min" in table.rows[0].label and "200 2-s epochs" in table.rows[3].label
    print("\n" + table.render())
