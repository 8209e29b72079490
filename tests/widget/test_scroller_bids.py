"""The scroller on a BIDS run: it starts from the run's state (bad channels, events, shafts from
electrode groups, the notch at the power-line frequency), and saved events stay a valid BIDS
events.tsv that keeps every event the file had. The dataset is the one tests/bids generates
(MefWriter runs, hand-written sidecars); rows are compared with direct reads.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mef3lab
from mef3lab.readers import open_reader
from mef3lab.signal.filters import DisplayFilter
from tests.bids._dataset import BAD, FS, RUNS, write_dataset
from tests.widget import _writer_recording

REST_01, REST_02, _, SLEEP = RUNS


@pytest.fixture(scope="module")
def bids_root(tmp_path_factory):
    """The generated dataset, written once for this module (never modified)."""
    return write_dataset(tmp_path_factory.mktemp("bids") / "ds-mef3lab")


@pytest.fixture(scope="module")
def writer_recording(tmp_path_factory):
    """A plain recording (no BIDS run) with depth-electrode names, written by MefWriter."""
    return _writer_recording.write(tmp_path_factory.mktemp("plain") / "depth.mefd")


@pytest.fixture
def bids_copy(bids_root, tmp_path):
    """A copy of the dataset this test may change."""
    return shutil.copytree(bids_root, tmp_path / "ds-copy")


def _open(root, run):
    return mef3lab.open_bids(root).open(
        subject=run.subject, session=run.session, task=run.task, run=run.run
    )


def _direct(root, run) -> dict[str, np.ndarray]:
    with open_reader(run.path(root)) as r:
        return dict(zip(r.info.names, r.read(), strict=True))


def _events_of(run) -> pd.DataFrame:
    return pd.DataFrame(list(run.events), columns=["onset", "duration", "trial_type"])


def test_a_bids_run_starts_from_its_state(bids_root, scroll):
    rec = _open(bids_root, REST_01)
    w, replies = scroll(rec, start=25.0)
    assert w.bad_channels == list(BAD) == ["RH2"]
    assert w.bad_rows == ["RH2"]
    pd.testing.assert_frame_equal(w.events, _events_of(REST_01))
    assert w.marks == [
        {"t": 5.0, "duration": 0.0, "text": "spike"},
        {"t": 30.0, "duration": 4.0, "text": "seizure onset"},
    ]
    # the root's task-rest_ieeg.json: 50 Hz, and its first harmonic below Nyquist
    assert w.notch == [50.0, 100.0] and w.state.filter.notch == (50.0, 100.0)
    assert replies.last()["state"]["filter"] == [None, None, [50.0, 100.0]]
    direct = _direct(bids_root, REST_01)
    page = w.page_data()
    notch = DisplayFilter(notch=(50.0, 100.0))
    k0, n, pad = int(25.0 * FS), int(10.0 * FS), round(notch.pad_s(FS) * FS)
    rows = np.stack([direct[c] for c in page.channel.values])
    notched = notch.apply(rows[:, k0 - pad : k0 + n + pad], FS)[:, pad:-pad]
    np.testing.assert_allclose(page.values, notched, atol=1e-3)
    # notch=[] turns it off: the rows as recorded, sample for sample
    plain, _ = scroll(rec, start=25.0, notch=[])
    assert plain.notch == [] and plain.bad_channels == ["RH2"]
    np.testing.assert_array_equal(plain.page_data().values, rows[:, k0 : k0 + n])


def test_a_60_hz_run_notches_60_and_120(bids_root, scroll):
    w, _ = scroll(_open(bids_root, SLEEP))
    assert w.notch == [60.0, 120.0]
    assert w.events.trial_type.tolist() == ["arousal"]


def test_shaft_montages_use_the_electrode_groups(bids_copy, scroll):
    electrodes = bids_copy / "sub-01/ses-01/ieeg/sub-01_ses-01_space-ACPC_electrodes.tsv"
    table = pd.read_csv(electrodes, sep="\t")
    table["group"] = table["group"].map({"LA": "left amygdala", "RH": "right hippocampus"})
    table.to_csv(electrodes, sep="\t", index=False, na_rep="n/a")
    rec = _open(bids_copy, REST_01)
    w, replies = scroll(rec, montage="shaft bipolar", notch=[])
    assert w.row_shafts == {
        "LA1-LA2": "left amygdala",
        "LA2-LA3": "left amygdala",
        "RH1-RH2": "right hippocampus",
    }
    assert w.bad_rows == ["RH1-RH2"]  # a row with a bad input is greyed
    direct = _direct(bids_copy, REST_01)
    page = w.page_data()
    for row in w.channels:
        a, b = row.split("-")
        np.testing.assert_array_equal(page.sel(channel=row).values, (direct[a] - direct[b])[:2560])
    w.montage = "shaft average"
    assert set(w.row_shafts.values()) == {"left amygdala", "right hippocampus"}
    assert "RH1-avg right hippocampus" in w.channels
    w.bad_channels = []
    assert w.bad_rows == []


def test_shafts_given_for_any_recording(writer_recording, scroll):
    groups = {c: "hippocampus" for c in ("LB1", "LB2", "LB3", "LB4")}
    w, _ = scroll(writer_recording, montage="shaft bipolar", shafts=groups)
    assert w.row_shafts == {
        "LB1-LB2": "hippocampus",
        "LB2-LB3": "hippocampus",
        "LB3-LB4": "hippocampus",
        "RA1-RA2": "RA",  # the others by name
    }
    with pytest.raises(ValueError, match="does not show: XX9"):
        scroll(writer_recording, shafts={"XX9": "x"})


def test_saved_events_keep_every_event_and_column_the_file_has(bids_copy, scroll):
    own = REST_01.folder(bids_copy) / f"{REST_01.stem}_events.tsv"
    table = pd.read_csv(own, sep="\t")
    table["value"] = ["7", "n/a"]  # a column the scroller does not know
    table.to_csv(own, sep="\t", index=False, na_rep="n/a")
    w, _ = scroll(_open(bids_copy, REST_01))
    with own.open("a") as f:  # written by someone else after the scroller read the file
        f.write("55.0\t0.0\tother reader\t3\n")
    w.mark(12.5, 0.0, "spike")
    w.mark(31.0, 0.5, "")
    assert w.save_events() == own
    saved = pd.read_csv(own, sep="\t", dtype=str, keep_default_na=False)
    assert saved.columns.tolist() == ["onset", "duration", "trial_type", "value"]
    assert saved.values.tolist() == [
        ["5.0", "0.0", "spike", "7"],
        ["12.500000", "0.000000", "spike", "n/a"],
        ["30.0", "4.0", "seizure onset", "n/a"],
        ["31.000000", "0.500000", "n/a", "n/a"],
        ["55.0", "0.0", "other reader", "3"],
    ]
    again = w.save_events()  # nothing new: the file as it is
    assert pd.read_csv(again, sep="\t", dtype=str, keep_default_na=False).equals(saved)
    # round trip: a new scroller on the run starts with all of them
    w2, _ = scroll(_open(bids_copy, REST_01))
    assert w2.events.onset.tolist() == [5.0, 12.5, 30.0, 31.0, 55.0]
    assert w2.events.trial_type.tolist()[-1] == "other reader"


def test_a_derivative_leaves_the_raw_dataset_and_both_validate(bids_copy, scroll):
    raw_file = REST_02.folder(bids_copy) / f"{REST_02.stem}_events.tsv"
    before = raw_file.read_bytes()
    w, _ = scroll(_open(bids_copy, REST_02))
    w.mark(50.0, 2.0, "seizure onset")
    path = w.save_events(derivative="review")
    assert path == bids_copy / "derivatives/review" / raw_file.relative_to(bids_copy)
    assert raw_file.read_bytes() == before
    saved = pd.read_csv(path, sep="\t")
    assert saved.onset.tolist() == [10.0, 40.0, 50.0]
    description = json.loads((path.parents[3] / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative" and description["BIDSVersion"] == "1.9.0"
    w1, _ = scroll(_open(bids_copy, REST_01))  # and one saved beside its run
    w1.mark(20.0, 0.0, "spike")
    w1.save_events()
    validator = Path(sys.executable).with_name("bids-validator-deno")
    done = subprocess.run(
        [str(validator), str(bids_copy), "--recursive", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    report = json.loads(done.stdout)
    derivative = report["derivativesSummary"]["/derivatives/review/"]
    assert derivative["summary"]["totalFiles"] == 2  # its description and the events
    issues = report["issues"]["issues"] + derivative["issues"]["issues"]
    errors = [i for i in issues if i["severity"] == "error"]
    assert not errors, json.dumps(errors, indent=1)[:3000]
    print(
        f"\nbids-validator --recursive: 0 errors; {report['summary']['totalFiles']} files, "
        f"derivative {derivative['summary']['totalFiles']} files"
    )


def test_saving_refuses_what_it_cannot_do_well(bids_copy, writer_recording, scroll, tmp_path):
    w, _ = scroll(_open(bids_copy, REST_01))
    with pytest.raises(ValueError, match="a path or a derivative, not both"):
        w.save_events(tmp_path / "x.tsv", derivative="review")
    with pytest.raises(ValueError, match="one folder name"):
        w.save_events(derivative="../up")
    broken = tmp_path / "broken_events.tsv"
    broken.write_text("when\twhat\n1\tx\n")
    with pytest.raises(ValueError, match="no events.tsv .* so it is kept"):
        w.save_events(broken)
    assert broken.read_text() == "when\twhat\n1\tx\n"
    plain, _ = scroll(writer_recording)
    with pytest.raises(ValueError, match="mef3lab.open_bids"):
        plain.save_events(derivative="review")
    assert plain.message.startswith("a derivative is written")


def test_a_run_through_a_server_starts_and_saves_the_same(bids_copy, scroll):
    from mef3lab.server.process import ServerProcess

    with ServerProcess(n_process_workers=1, log_level="WARNING", root=(str(bids_copy),)) as srv:
        rec = mef3lab.open_bids(bids_copy, address=srv.address).open(
            subject="01", session="01", run=2
        )
        assert rec.attrs["mef3_address"] == srv.address
        w, _ = scroll(rec, montage="shaft bipolar", start=18.0)
        assert w.bad_rows == ["RH1-RH2"] and w.notch == [50.0, 100.0]
        assert w.row_shafts == {"LA1-LA2": "LA", "LA2-LA3": "LA", "RH1-RH2": "RH"}
        direct = _direct(bids_copy, REST_02)
        page = w.page_data()  # 18-28 s: the 3.5-s gap at 20 s is NaN, the notch runs around it
        k0 = int(18.0 * FS)
        expected = direct["LA1"][k0 : k0 + 2560] - direct["LA2"][k0 : k0 + 2560]
        np.testing.assert_array_equal(
            np.isnan(page.sel(channel="LA1-LA2").values), np.isnan(expected)
        )
        w.mark(45.0, 0.0, "spike")
        own = REST_02.folder(bids_copy) / f"{REST_02.stem}_events.tsv"
        assert w.save_events() == own
        assert pd.read_csv(own, sep="\t").onset.tolist() == [10.0, 40.0, 45.0]
        w.close()
        rec.close()


def test_a_run_whose_events_reach_past_its_end_still_opens(bids_copy, scroll):
    own = REST_01.folder(bids_copy) / f"{REST_01.stem}_events.tsv"
    with own.open("a") as f:
        f.write("99999.0\t1.0\tafter the end\n")
    with pytest.warns(UserWarning, match=r"1 event\(s\) outside the recording .* not shown"):
        w, _ = scroll(_open(bids_copy, REST_01))
    assert w.events.onset.tolist() == [5.0, 30.0]  # the run's events inside the recording
    w.mark(12.5, 0.0, "spike")
    saved = pd.read_csv(w.save_events(), sep="\t")
    assert saved.onset.tolist() == [5.0, 12.5, 30.0, 99999.0]  # the file keeps its event
