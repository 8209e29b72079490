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
    tables = run(SMOKE_RUN, "ABCDG", data_dir=tmp_path, log=lambda msg: None)

    assert [t.key for t in tables] == ["A", "B", "C", "D", "G"]
    labels = {t.key: [r.label for r in t.rows] for t in tables}
    assert len(labels["A"]) == 7 and labels["A"][0].startswith("1. direct")
    assert (
        len(labels["B"]) == 3
        and len(labels["C"]) == 5
        and labels["D"] == ["pymef", "mef3io", "numba, 1 thread", "numba"]
    )
    assert len(labels["G"]) == 6 and labels["G"][0].startswith("decoded samples")
    for t in tables:
        text = t.render()
        assert all(r.label in text for r in t.rows)
        for r in t.rows:
            assert r.value > 0 and r.status in ("PASS", "MISS", "—")
            assert r.ratio is None or r.ratio > 0
    assert "targets:" in summary(tables)

    out = tmp_path / "out.json"
    save_json(str(out), tables, {"smoke": True})
    assert [t["key"] for t in json.loads(out.read_text())["tables"]] == ["A", "B", "C", "D", "G"]


def test_the_recording_is_reused_while_its_parameters_hold(tmp_path):
    from benchmarks.data import ensure_recording

    written = []
    first = ensure_recording(SMOKE_RUN.recording, tmp_path, log=written.append)
    again = ensure_recording(SMOKE_RUN.recording, tmp_path, log=written.append)
    assert first == again and len([m for m in written if m.startswith("writing")]) == 1


def test_the_load_table_checks_every_reply(tmp_path):
    (table,) = run(SMOKE_RUN, "E", data_dir=tmp_path, log=lambda msg: None)
    rows = {r.label.split(".")[0]: r for r in table.rows}
    assert len(table.rows) == 7 and rows["6"].value == 0 and rows["6"].status == "PASS", rows[
        "6"
    ].note
    assert rows["7"].status == "PASS" and rows["5"].value > 0


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_scroller_table_produces_its_rows(tmp_path):
    """Table F end to end: the widget model (embedded, via a server) and, where chromium is there,
    the browser.
    """
    from benchmarks.browser import ensure_chromium

    browser = ensure_chromium() is None
    (table,) = run(SMOKE_RUN, "F", data_dir=tmp_path, log=lambda msg: None)
    labels = [r.label for r in table.rows]
    assert table.key == "F" and "model, via a server p95" in labels
    # direct, model ×2 (p50, p95); browser, wide, fast (2 each)
    assert len(labels) == (12 if browser else 6)
    assert browser == any(label.startswith("wide: browser") for label in labels)
    assert browser == any(label.startswith("fast: browser") for label in labels)
    for r in table.rows:
        assert r.value > 0 and r.status in ("PASS", "MISS", "—")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_first_page_table_times_new_scrollers_and_jumps_in_a_browser(tmp_path):
    from benchmarks.browser import ensure_chromium

    if ensure_chromium() is not None:
        pytest.skip("no chromium")
    (table,) = run(SMOKE_RUN, "M", data_dir=tmp_path, log=lambda msg: None)
    fast = [s for s in SMOKE_RUN.first_look if s.fs >= 8000]
    # the floor (a trivial widget, p50 and p95); per recording: the direct read; embedded and
    # served, each the kernel's first scroller, then p50 and p95 of new scrollers' first pages
    # (from running the cell, and from the call that makes it) and of jumps
    assert len(table.rows) == 2 + 15 * len(fast)
    assert table.rows[0].label.startswith("a trivial widget") and table.rows[0].target is None
    assert sum(r.target is not None for r in table.rows) == 4 * len(fast)
    for what in ("embedded", "served"):  # the call comes after running its cell
        cell, call = (
            next(r for r in table.rows if r.label.endswith(f"{what}: {label} p50"))
            for label in (
                "a new scroller's first page from running its cell",
                "a new scroller's first page from scroll()",
            )
        )
        assert 0 < call.value < cell.value and call.target is None
    for r in table.rows:
        assert r.value > 0 and r.status in ("PASS", "MISS", "—")


@pytest.mark.timeout(300)
def test_the_first_look_table_times_every_path_beside_mne(tmp_path):
    (table,) = run(SMOKE_RUN, "J", data_dir=tmp_path, log=lambda msg: None)
    # per recording: three opens, then MNE and both paths for the first page and the jumps
    assert len(table.rows) == 9 * len(SMOKE_RUN.first_look)
    labels = [r.label for r in table.rows]
    assert labels[0].endswith("MNE import + open") and "writer" not in labels[0]
    assert sum("mef3lab server" in lb for lb in labels) == 3 * len(SMOKE_RUN.first_look)
    for r in table.rows:
        assert r.value > 0 and r.ratio > 0 and r.status in ("PASS", "MISS", "—")
    stamps = [json.loads(p.read_text()) for p in tmp_path.glob("first-*.json")]
    assert {s["writer"] for s in stamps} == {"mef_tools.MefWriter"}


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_soak_and_the_hub_load_check_every_reply_behind_a_real_hub(tmp_path):
    """Tables K and L, tiny: a real JupyterHub, its users' tokens, attackers at every attack."""
    soak, hub = run(SMOKE_RUN, "KL", data_dir=tmp_path, log=lambda msg: None)
    rows = {r.label.split(".")[0]: r for r in soak.rows}
    assert len(soak.rows) == 12 and all(rows[k].value > 0 for k in ("1", "4", "7", "8", "11", "12"))
    assert rows["9"].value == 0 and rows["10"].value == 0 and rows["12"].status == "PASS"
    attacks = ("stalled_streams", "bad_requests", "made_up_ids", "half_sent_http", "made_up_tokens")
    assert all(a in soak.notes[0] for a in attacks), soak.notes
    rows = {r.label.split(".")[0]: r for r in hub.rows}
    assert len(hub.rows) == 10 and rows["3"].target.bound == 250
    for failed in ("6", "10"):  # with hub authentication, and the same load without
        assert rows[failed].value == 0 and rows[failed].status == "PASS", rows[failed].note
    assert rows["5"].value > 0 and rows["9"].value > 0
