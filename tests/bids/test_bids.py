"""mef3lab.open_bids: the runs of a generated iEEG-BIDS dataset, opened with their sidecars.

The dataset (_dataset.py) passes the official validator; runs are compared with
mne_bids.read_raw_bids (which reads MEF through mne.io.read_raw_mef), and bad input is
reported by file and line.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import mne
import mne_bids
import numpy as np
import pytest
from _dataset import BAD, CHANNELS, FS, GAP, GROUPS, RUNS

import mef3lab
from mef3lab.bids import SidecarError, open_bids


def _read_raw_bids(root, run):
    bp = mne_bids.BIDSPath(
        root=root,
        subject=run.subject,
        session=run.session,
        task=run.task,
        run=run.run,
        datatype="ieeg",
        suffix="ieeg",
        extension=".mefd",
    )
    return mne_bids.read_raw_bids(bp, verbose="error")


def test_the_dataset_passes_the_bids_validator(bids_root):
    validator = Path(sys.executable).with_name("bids-validator-deno")
    done = subprocess.run(
        [str(validator), str(bids_root), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    report = json.loads(done.stdout)
    errors = [i for i in report["issues"]["issues"] if i["severity"] == "error"]
    assert not errors, json.dumps(errors, indent=1)[:3000]
    summary = report["summary"]
    assert sorted(summary["subjects"]) == ["01", "02"] and "iEEG" in summary["modalities"]
    warnings = sum(i["severity"] == "warning" for i in report["issues"]["issues"])
    print(f"\nbids-validator: 0 errors, {warnings} warnings, {summary['totalFiles']} files")


def test_runs_lists_every_run_with_absent_entities_empty(bids_root):
    runs = open_bids(bids_root).runs
    assert list(runs.columns) == [
        "subject",
        "session",
        "task",
        "acquisition",
        "run",
        "path",
        "problem",
    ]
    got = [tuple(r) for r in runs[["subject", "session", "task", "acquisition", "run"]].values]
    assert got == [
        ("01", "01", "rest", "", "01"),
        ("01", "01", "rest", "", "02"),
        ("01", "02", "rest", "", "01"),
        ("02", "01", "sleep", "", "01"),
    ]
    assert (runs["problem"] == "").all()
    assert all(Path(p).is_dir() and p.endswith("_ieeg.mefd") for p in runs["path"])


def test_open_applies_the_sidecars(bids_root):
    ds = open_bids(bids_root)
    rec = ds.open(subject="01", session="01", task="rest", run=1)
    assert list(rec.channel.values) == list(CHANNELS)
    assert list(rec.channel_type.values) == ["ecg", "seeg", "seeg", "seeg", "seeg", "seeg"]
    assert rec.attrs["bads"] == ["RH2"] and rec.attrs["bad_reasons"] == "RH2: broken contact"
    assert rec.attrs["power_line_frequency"] == 50.0  # from the root-level task-rest_ieeg.json
    assert rec.attrs["reference"].startswith("common average")
    events = rec.mef3.events
    assert events[["onset", "duration", "trial_type"]].values.tolist() == [
        [5.0, 0.0, "spike"],
        [30.0, 4.0, "seizure onset"],
    ]
    assert rec.mef3.electrode_groups == {"LA": ["LA1", "LA2", "LA3"], "RH": ["RH1", "RH2"]}
    # the same electrodes.tsv (session level, no task or run) serves the session's other run
    other = ds.open(subject="01", session="01", run="02")
    assert other.attrs["electrodes_tsv"] == rec.attrs["electrodes_tsv"]
    assert other.mef3.electrodes["group"].tolist() == [GROUPS[n] for n in CHANNELS if n in GROUPS]
    sleep = ds.open(subject="02")
    assert sleep.attrs["power_line_frequency"] == 60.0  # its own _ieeg.json
    # a selection keeps what the scroller needs
    sub = rec.signal.sel(channel=["LA1", "RH2"])
    assert sub.mef3.electrode_groups == {"LA": ["LA1"], "RH": ["RH2"]}
    for r in (rec, other, sleep):
        r.close()


def test_a_run_must_be_named_unambiguously(bids_root):
    ds = open_bids(bids_root)
    with pytest.raises(LookupError, match="2 runs match.*run-01_ieeg.mefd, .*run-02_ieeg.mefd"):
        ds.open(subject="01", session="01")
    with pytest.raises(LookupError, match="no MEF 3.0 run"):
        ds.open(subject="03")
    with pytest.raises(FileNotFoundError, match="dataset_description.json"):
        open_bids(bids_root / "sub-01")


def test_same_as_read_raw_bids_on_a_gap_free_run(bids_root):
    run = RUNS[0]
    rec = open_bids(bids_root).open(subject=run.subject, session=run.session, run=run.run)
    ours = rec.mef3.to_mne()
    theirs = _read_raw_bids(bids_root, run)
    assert ours.ch_names == theirs.ch_names
    assert ours.get_channel_types() == theirs.get_channel_types()
    assert ours.info["bads"] == theirs.info["bads"] == list(BAD)
    assert ours.info["line_freq"] == theirs.info["line_freq"] == 50.0
    wanted = set(rec.mef3.events["trial_type"])

    def events(raw):
        return [
            (a["onset"], a["duration"], a["description"])
            for a in raw.annotations
            if a["description"] in wanted
        ]

    assert events(ours) == events(theirs) and len(events(ours)) == 2
    # and the MEF record that read_raw_bids replaces with the events is still there
    assert "Note: lights off" in ours.annotations.description
    np.testing.assert_allclose(ours.get_data(), theirs.get_data(), rtol=1e-12, atol=0)
    rec.close()


def test_where_read_raw_bids_differs_on_a_run_with_a_gap(bids_root):
    run = RUNS[1]
    rec = open_bids(bids_root).open(subject=run.subject, session=run.session, run=run.run)
    ours = rec.mef3.to_mne()
    theirs = _read_raw_bids(bids_root, run)
    channel = CHANNELS.index("LA1")
    truth = run.signal(channel) * 1e-6  # as written, NaN in the gap
    ours_data = ours.get_data(picks=["LA1"])[0]
    theirs_data = theirs.get_data(picks=["LA1"])[0]
    lines = []
    for event in rec.mef3.events.itertuples():
        k = int(round(event.onset * FS))
        # as written, to MefWriter's rounding (0.01 µV)
        np.testing.assert_allclose(ours_data[k : k + 32], truth[k : k + 32], rtol=0, atol=1.1e-8)
        written = ours_data[k : k + 32]
        same = np.isclose(theirs_data, written[0], rtol=1e-9, atol=0)
        hits = [
            j
            for j in np.flatnonzero(same)
            if np.allclose(theirs_data[j : j + 32], written, 1e-9, 0)
        ]
        at = hits[0] / FS if len(hits) == 1 else float("nan")
        lines.append(
            f"{event.trial_type!r} at {event.onset:g} s: the samples recorded then are at "
            f"{event.onset:g} s in to_mne, at {at:g} s in read_raw_bids"
        )
    message = f"run with a {GAP[1]} s gap at {GAP[0]} s:\n" + "\n".join(lines)
    print("\n" + message)
    # before the gap both agree; after it read_raw_bids has the data GAP[1] s early,
    # while its event annotation stays at the event's time
    assert "at 10 s in read_raw_bids" in lines[0], message
    assert f"at {40 - GAP[1]:g} s in read_raw_bids" in lines[1], message
    theirs_artifact = [a["onset"] for a in theirs.annotations if a["description"] == "artifact"]
    assert theirs_artifact == [40.0], message
    skips = [
        (a["onset"], a["duration"]) for a in ours.annotations if a["description"] == "BAD_ACQ_SKIP"
    ]
    np.testing.assert_allclose(skips, [GAP], atol=1 / FS, err_msg=message)
    rec.close()


def test_broken_runs_are_listed_with_the_reason_and_the_others_open(bids_copy):
    folder = bids_copy / "sub-01" / "ses-02" / "ieeg"
    shutil.rmtree(folder / "sub-01_ses-02_task-rest_run-01_ieeg.mefd")  # missing
    damaged = bids_copy / "sub-02" / "ses-01" / "ieeg" / "sub-02_ses-01_task-sleep_run-01_ieeg.mefd"
    for timd in damaged.glob("*.timd"):
        shutil.rmtree(timd)
    runs = open_bids(bids_copy).runs.set_index(["subject", "session"])
    assert (
        "sub-01_ses-02_task-rest_run-01_ieeg.mefd is missing" in runs.loc[("01", "02"), "problem"]
    )
    assert "no .timd channel folders" in runs.loc[("02", "01"), "problem"]
    assert (runs.loc[("01", "01"), "problem"] == "").all()
    ds = open_bids(bids_copy)
    rec = ds.open(subject="01", session="01", run=1)
    assert rec.sizes["channel"] == len(CHANNELS)
    rec.close()
    with pytest.raises(mef3lab.errors.RecordingNotFoundError):
        ds.open(subject="01", session="02")


def test_channels_tsv_mismatch_is_reported_not_dropped(bids_copy):
    path = bids_copy / "sub-01/ses-01/ieeg/sub-01_ses-01_task-rest_run-01_channels.tsv"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines = [lines[0]] + [ln for ln in lines[1:] if not ln.startswith("ECG\t")]
    lines.append("LA9\tSEEG\tµV\t0.1\t100.0\tgood\tn/a")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.warns(UserWarning, match="LA9") as caught:
        rec = open_bids(bids_copy).open(subject="01", session="01", run=1)
    message = rec.attrs["channel_mismatch"]
    assert "names 1 channel(s) the recording lacks: LA9" in message
    assert "1 recording channel(s) are not in" in message and message.endswith("ECG")
    assert "ECG" in str(caught[0].message)
    assert rec.sizes["channel"] == len(CHANNELS)  # every recorded channel still there
    assert rec.channel_type.sel(channel="ECG").item() == "seeg"  # unlisted: MNE's default
    rec.close()


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        (
            "sub-01_ses-01_task-rest_run-01_channels.tsv",
            "name\ttype\tunits\nLA1\tSEEG\tµV\nLA2\tSEEG\tµV\textra\n",
            r"channels.tsv: line 3: 4 tab-separated fields, the header has 3",
        ),
        (
            "sub-01_ses-01_task-rest_run-01_events.tsv",
            "onset\tduration\ttrial_type\n1.0\t0\tspike\nsoon\t0\tspike\n",
            r"events.tsv: line 3: onset 'soon' is not a number",
        ),
        (
            "sub-01_ses-01_task-rest_run-01_ieeg.json",
            '{\n  "TaskName": "rest",\n  "PowerLineFrequency": 50,\n}\n',
            r"ieeg.json: line 4, column 1",
        ),
    ],
)
def test_malformed_sidecars_name_file_and_line(bids_copy, name, text, match):
    (bids_copy / "sub-01" / "ses-01" / "ieeg" / name).write_text(text, encoding="utf-8")
    with pytest.raises(SidecarError, match=match):
        open_bids(bids_copy).open(subject="01", session="01", run=1)
    assert not mef3lab.sources.REGISTRY._sources  # the recording was closed again


def test_through_a_server_with_the_dataset_as_served_root(bids_root, bids_server, tmp_path):
    ds = open_bids(bids_root, address=bids_server.address)
    rec = ds.open(subject="01", session="01", run=2)
    assert rec.attrs["mef3_address"] == bids_server.address
    assert rec.attrs["bads"] == ["RH2"]
    embedded = open_bids(bids_root).open(subject="01", session="01", run=2)
    np.testing.assert_array_equal(rec.signal.values, embedded.signal.values)
    raw = rec.mef3.to_mne()
    np.testing.assert_array_equal(raw.get_data(), embedded.mef3.to_mne().get_data())
    assert [a["description"] for a in raw.annotations].count("BAD_ACQ_SKIP") == 1
    rec.close()
    embedded.close()
    # a dataset outside the served root is refused, by the server
    outside = shutil.copytree(bids_root, tmp_path / "elsewhere")
    with pytest.raises(mef3lab.errors.PathNotServedError):
        open_bids(outside, address=bids_server.address).open(subject="02")
    mne.set_log_level("WARNING")
