"""rec.mef3.to_mne(): a lazy MNE Raw whose samples and annotations keep their true time.

Compared sample for sample with mef3io read directly (no mef3lab), with MNE's own MEF
reader on a gap-free file, and between embedded reads and reads through a real server.
"""

from __future__ import annotations

import sys
import time

import mne
import numpy as np
import pandas as pd
import pytest

import mef3lab
from mef3lab.errors import MixedRatesError
from mef3lab.mne_bridge import annotations_to_events, events_to_annotations
from mef3lab.testing.synth import synthesize

#: The shared `recording` fixture's gaps (tests/conftest.py RECORDING), seconds from its start.
GAPS = [(61.2, 0.4), (150.0, 3.0), (333.3, 20.0), (480.01, 0.02)]


@pytest.fixture(scope="module")
def gap_free(tmp_path_factory):
    """4 ch x 256 Hz x 2 min, no gap, session- and channel-level records (written by mef3io)."""
    path = tmp_path_factory.mktemp("gapfree") / "gapfree.mefd"
    return synthesize(path, channels=4, fs=256.0, seconds=120.0, gaps=[], seed=5)


@pytest.fixture(scope="module")
def gapped(tmp_path_factory):
    """The same, with a 3.5-s gap at 40 s and a 0.4-s gap at 80 s."""
    path = tmp_path_factory.mktemp("gapped") / "gapped.mefd"
    return synthesize(
        path, channels=4, fs=256.0, seconds=120.0, gaps=[(40.0, 3.5), (80.0, 0.4)], seed=5
    )


def _expected(direct_read, path, raw):
    """What the Raw must hold: mef3io's read of the whole grid, zeros in gaps, in volts."""
    t0 = raw.info["meas_date"].timestamp() * 1e6
    t0 = int(round(t0))
    t1 = t0 + int(round(raw.n_times * 1e6 / raw.info["sfreq"]))
    ref = direct_read(path, raw.ch_names, t0, t1, dtype="float64")
    return ref[:, : raw.n_times] * 1e-6


def test_every_sample_matches_a_direct_read_including_after_gaps(recording, direct_read):
    rec = mef3lab.open_recording(recording)
    raw = rec.mef3.to_mne()
    data = raw.get_data()
    ref = _expected(direct_read, recording, raw)
    assert data.shape == ref.shape
    gap = np.isnan(ref)
    assert gap.any() and (data[gap] == 0).all()
    np.testing.assert_array_equal(data[~gap], ref[~gap])

    # a window after every gap, read on its own (the Raw's lazy path), sample for sample
    fs = raw.info["sfreq"]
    for start_s, dur_s in GAPS:
        k0 = int(np.ceil((start_s + dur_s) * fs)) + 3
        piece = raw.get_data(start=k0, stop=k0 + 512)
        np.testing.assert_array_equal(piece, np.nan_to_num(ref[:, k0 : k0 + 512]))
    rec.close()


def test_gaps_are_annotated_exactly_and_nan_on_request(recording, direct_read):
    rec = mef3lab.open_recording(recording)
    raw = rec.mef3.to_mne(gaps="nan")
    skips = [a for a in raw.annotations if a["description"] == "BAD_ACQ_SKIP"]
    gaps = rec.mef3.gaps.drop_duplicates(["start_uutc", "end_uutc"])
    assert len(skips) == len(gaps) == len(GAPS)
    assert all(len(a["ch_names"]) == 0 for a in skips)  # every channel shares them
    # the recording's gaps, to the microsecond MEF keeps times in
    np.testing.assert_allclose([a["onset"] for a in skips], gaps["start_s"], rtol=0, atol=1.5e-6)
    np.testing.assert_allclose(
        [a["duration"] for a in skips], gaps["duration_s"], rtol=0, atol=3e-6
    )
    # the annotated stretches hold exactly the samples that have no data, NaN as asked
    # (MNE keeps onsets to the microsecond and rounds them to the nearest sample)
    data = raw.get_data()
    missing = np.isnan(_expected(direct_read, recording, raw)[0])
    annotated = np.zeros(raw.n_times, bool)
    for a in skips:
        ka, kb = raw.time_as_index([a["onset"], a["onset"] + a["duration"]], use_rounding=True)
        annotated[ka:kb] = True
    np.testing.assert_array_equal(annotated, missing)
    np.testing.assert_array_equal(np.isnan(data), np.broadcast_to(missing, data.shape))
    for (start_s, dur_s), a in zip(GAPS, skips, strict=True):  # as written, to a sample
        assert abs(a["onset"] - start_s) < 1 / 256 and abs(a["duration"] - dur_s) < 2 / 256
    rec.close()


def test_reads_through_a_server_equal_embedded_reads(recording):
    from mef3lab.server.process import ServerProcess

    with ServerProcess(segment_seconds=60.0, n_process_workers=2, log_level="WARNING") as srv:
        remote = mef3lab.open_recording(recording, address=srv.address)
        embedded = mef3lab.open_recording(recording, address=False)
        a = remote.mef3.to_mne()
        b = embedded.mef3.to_mne()
        assert a.annotations == b.annotations or (
            np.array_equal(a.annotations.onset, b.annotations.onset)
            and list(a.annotations.description) == list(b.annotations.description)
        )
        np.testing.assert_array_equal(a.get_data(), b.get_data())
        np.testing.assert_array_equal(
            a.get_data(picks=["ch003", "ch001"], start=40_000, stop=41_000),
            b.get_data(picks=["ch003", "ch001"], start=40_000, stop=41_000),
        )
        remote.close()
        embedded.close()
        mef3lab.sources.REGISTRY.close_all()


def test_identical_to_mne_read_raw_mef_on_a_gap_free_file(gap_free):
    ours = mef3lab.open_recording(gap_free).mef3.to_mne()
    theirs = mne.io.read_raw_mef(gap_free, verbose="error")
    assert ours.ch_names == theirs.ch_names
    assert ours.get_channel_types() == theirs.get_channel_types()
    assert ours.info["sfreq"] == theirs.info["sfreq"]
    assert ours.info["meas_date"] == theirs.info["meas_date"]
    assert ours.info["utc_offset"] == theirs.info["utc_offset"] == "+0000"
    assert ours.n_times == theirs.n_times
    # the same numbers, to the last bit of float64 rounding
    np.testing.assert_allclose(ours.get_data(), theirs.get_data(), rtol=1e-12, atol=0)
    assert len(ours.annotations) == len(theirs.annotations) >= 3
    for a, b in zip(ours.annotations, theirs.annotations, strict=True):
        assert a["description"] == b["description"]
        assert a["onset"] == pytest.approx(b["onset"], abs=1e-9)
        assert a["duration"] == pytest.approx(b["duration"], abs=1e-9)
        assert a["ch_names"] == b["ch_names"]


def test_mne_read_raw_mef_shifts_samples_after_a_gap_and_to_mne_does_not(gapped, direct_read):
    ours = mef3lab.open_recording(gapped).mef3.to_mne()
    theirs = mne.io.read_raw_mef(gapped, verbose="error")
    fs = ours.info["sfreq"]
    ref = _expected(direct_read, gapped, ours)
    lines, shifts = [], []
    mne_data = theirs.get_data(picks=[0])[0]
    for t in (30.0, 50.0, 100.0):  # before the gaps, after the first, after both
        k = int(t * fs)
        truth = ref[0, k : k + 64]  # 1/4 s recorded from t on
        np.testing.assert_array_equal(ours.get_data(picks=[0], start=k, stop=k + 64)[0], truth)
        # where MNE's reader has those samples
        same = np.isclose(mne_data, truth[0], rtol=1e-9, atol=0)
        found = [
            j for j in np.flatnonzero(same) if np.allclose(mne_data[j : j + 64], truth, 1e-9, 0)
        ]
        where = found[0] / fs if len(found) == 1 else np.nan
        shifts.append(t - where)
        lines.append(
            f"recorded at {t:6.1f} s: to_mne at {t:6.1f} s, read_raw_mef at {where:6.2f} s"
        )
    report = "\n".join(lines)
    np.testing.assert_allclose(shifts, [0.0, 3.5, 3.9], atol=1 / fs, err_msg=report)
    print("\n" + report)
    # MNE's reader squeezes out exactly the samples that were never recorded
    assert ours.n_times - theirs.n_times == np.isnan(ref[0]).sum(), report


def test_one_rate_group_at_a_time(mixed_rate_recording):
    rec = mef3lab.open_recording(mixed_rate_recording)
    with pytest.raises(MixedRatesError, match=r"1024 Hz: ch000, ch002, ch004; 256 Hz: ch001"):
        rec.mef3.to_mne()
    raw = rec.mef3.to_mne(fs=256)
    assert raw.ch_names == ["ch001", "ch003", "ch005"] and raw.info["sfreq"] == 256.0
    # the group's own grid: time 0 is its first sample, so the Dataset's time axis shifts
    grid = rec.mef3.info.rate_groups[1].grid
    assert raw.info["meas_date"].timestamp() == pytest.approx(grid.start_uutc / 1e6)
    da = rec.mef3.groups[256.0].sel(channel="ch003")
    np.testing.assert_allclose(
        raw.get_data(picks=["ch003"], start=1000, stop=1100)[0],
        np.nan_to_num(da.isel(time=slice(1000, 1100)).values.astype(np.float64)) * 1e-6,
        rtol=1e-6,
    )
    with pytest.raises(ValueError, match="512 Hz"):
        rec.mef3.to_mne(fs=512)
    rec.close()


def test_filter_and_epochs_reject_by_annotation(gapped, direct_read):
    rec = mef3lab.open_recording(gapped)
    raw = rec.mef3.to_mne()  # lazy: the epochs read through the source, one window each
    fs = raw.info["sfreq"]
    onsets = [10.0, 38.5, 41.0, 60.0, 79.0, 100.0]  # the 2nd, 3rd and 5th overlap a gap
    events = np.array([[int(t * fs), 0, 1] for t in onsets])
    epochs = mne.Epochs(
        raw,
        events,
        tmin=0.0,
        tmax=2.0,
        baseline=None,
        reject_by_annotation=True,
        preload=True,
        verbose="error",
    )
    assert [onsets[i] for i in epochs.selection] == [10.0, 60.0, 100.0]
    assert all(log == ("BAD_ACQ_SKIP",) for log in epochs.drop_log if log)
    ref = _expected(direct_read, gapped, raw)
    for epoch, i in zip(epochs.get_data(), epochs.selection, strict=True):
        k = events[i, 0]
        np.testing.assert_array_equal(epoch, ref[:, k : k + epoch.shape[1]])

    filtered = raw.copy().load_data().filter(1.0, 40.0, verbose="error")
    data = filtered.get_data()
    assert np.isfinite(data).all() and not np.allclose(data, raw.get_data())
    rec.close()


def test_events_convert_to_annotations_and_back():
    events = pd.DataFrame(
        {"onset": [3.0, 12.25], "duration": [0.0, 4.5], "trial_type": ["spike", "seizure onset"]}
    )
    annotations = events_to_annotations(events)
    assert list(annotations.description) == ["spike", "seizure onset"]
    back = annotations_to_events(annotations + mne.Annotations([5.0], [1.0], ["BAD_ACQ_SKIP"]))
    pd.testing.assert_frame_equal(back, events.astype({"trial_type": object}))  # the scroller's


def test_run_events_become_annotations_at_their_time(gapped, tmp_path):
    events = tmp_path / "events.tsv"
    events.write_text("onset\tduration\ttrial_type\n45.5\t2\tseizure onset\n", encoding="utf-8")
    rec = mef3lab.open_recording(gapped)
    rec.attrs["events_tsv"] = str(events)
    raw = rec.mef3.to_mne()
    hit = [a for a in raw.annotations if a["description"] == "seizure onset"]
    assert len(hit) == 1 and hit[0]["onset"] == 45.5 and hit[0]["duration"] == 2.0
    # and back, as the scroller keeps events
    table = annotations_to_events(raw.annotations)
    assert table.query("trial_type == 'seizure onset'")["onset"].tolist() == [45.5]
    rec.close()


def test_units_are_scaled_to_volts_from_the_canonical_unit(tmp_path):
    import mef3io

    path = tmp_path / "millivolts.mefd"
    x = np.round(np.linspace(-2.0, 2.0, 2560), 3)
    with mef3io.Writer(str(path), units="millivolts") as w:
        w.write("EKG", x, 1_705_305_600_000_000, 256.0, precision=3)
    rec = mef3lab.open_recording(path)
    raw = rec.mef3.to_mne(ch_types="ecg")
    assert raw.get_channel_types() == ["ecg"]
    np.testing.assert_allclose(raw.get_data()[0], x * 1e-3, rtol=1e-9)
    rec.close()


def test_without_mne_the_error_names_the_extra(recording, monkeypatch):
    rec = mef3lab.open_recording(recording)
    monkeypatch.setitem(sys.modules, "mne", None)  # import mne now fails
    with pytest.raises(ImportError, match=r"mef3lab\[mne\]"):
        rec.mef3.to_mne()
    rec.close()


@pytest.fixture(scope="module")
def quirk(tmp_path_factory):
    """`quirk(name)`: a quirk session of mef3lab.testing.quirks (MefWriter or pymef wrote it)."""
    from mef3lab.testing.quirks import write_quirk

    folder = tmp_path_factory.mktemp("quirks")
    return lambda name: write_quirk(folder, name)


def test_the_gmt_offset_as_mne_records_it(quirk):
    path = quirk("gmt_offset")
    ours = mef3lab.open_recording(path).mef3.to_mne()
    theirs = mne.io.read_raw_mef(path, verbose="error")
    assert ours.info["utc_offset"] == theirs.info["utc_offset"] == "+1100"
    assert ours.info["meas_date"] == theirs.info["meas_date"]


def test_units_mne_does_not_recognise_are_still_volts(quirk):
    from mef3lab.testing.quirks import LAB_CONTACTS, lab_signal

    path = quirk("lab_depth")  # units stored as the text "b'uV'"
    ours = mef3lab.open_recording(path).mef3.to_mne()
    theirs = mne.io.read_raw_mef(path, verbose="error")
    written = lab_signal("LA2") * 1e-6
    got = ours.get_data(picks=["LA2"])[0]
    np.testing.assert_allclose(got, written, rtol=0, atol=1.1e-8)  # MefWriter rounds to 0.01 µV
    ratio = np.abs(theirs.get_data(picks=["LA2"])[0]).max() / np.abs(got).max()
    assert ratio == pytest.approx(1e6, rel=1e-6), f"read_raw_mef scales by {ratio:g}"
    assert LAB_CONTACTS[0] in ours.ch_names


def test_a_channel_whose_conversion_factor_changes_reads_right(
    factor_change_recording, direct_read
):
    rec = mef3lab.open_recording(factor_change_recording)
    raw = rec.mef3.to_mne()  # 'gain' changes its factor: read as values, 'steady' as counts
    ref = _expected(direct_read, factor_change_recording, raw)
    data = raw.get_data()
    np.testing.assert_array_equal(data, np.nan_to_num(ref))
    steady = raw.get_data(picks=["steady"], start=100, stop=9000)[0]
    np.testing.assert_array_equal(
        steady, np.nan_to_num(ref[raw.ch_names.index("steady"), 100:9000])
    )
    rec.close()


def test_a_server_going_down_fails_the_read_and_a_restart_serves_it_again(recording):
    import socket

    from mef3lab.errors import ServerUnavailableError
    from mef3lab.server.process import ServerProcess

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = dict(port=port, segment_seconds=60.0, n_process_workers=1, log_level="WARNING")
    server = ServerProcess(**config).start()
    try:
        raw = mef3lab.open_recording(recording, address=server.address).mef3.to_mne()
        ref = raw.get_data(start=2560, stop=5120)
        server.stop()
        t0 = time.monotonic()
        with pytest.raises(ServerUnavailableError):
            raw.get_data(start=30_000, stop=32_560)
        assert time.monotonic() - t0 < 30.0  # promptly, not a hang
        server = ServerProcess(**config).start()
        np.testing.assert_array_equal(raw.get_data(start=2560, stop=5120), ref)
    finally:
        mef3lab.sources.REGISTRY.close_all()
        server.stop()


def test_short_reads_in_the_same_blocks_decode_them_once(recording, direct_read):
    from mef3lab import sources

    spec = sources.resolve(str(recording))
    inner = sources.open_source(spec)
    calls = []

    class Counting:  # the real source, its reads counted
        info = inner.info

        def read_index(self, channels, k0, k1, dtype="float32"):
            calls.append((k0, k1))
            return inner.read_index(channels, k0, k1, dtype)

        def __getattr__(self, name):
            return getattr(inner, name)

    sources.REGISTRY.install(spec, Counting())
    rec = mef3lab.open_recording(recording)
    raw = rec.mef3.to_mne()
    ref = np.nan_to_num(_expected(direct_read, recording, raw))
    for k in (7700, 8000, 8300, 9900):  # 1-s reads inside the 10-s block at 30 s
        np.testing.assert_array_equal(raw.get_data(start=k, stop=k + 256), ref[:, k : k + 256])
    assert calls == [(7680, 10240)]  # the block, decoded once
    np.testing.assert_array_equal(raw.get_data(start=10200, stop=10300), ref[:, 10200:10300])
    assert calls[1:] == [(7680, 12800)]  # two blocks: the read crosses their border
    rec.close()
