"""Clinical review in the scroller: montages are arithmetic on direct reads, display filters equal
sosfiltfilt of a long read, the overview is the block index's min/max (nothing decoded), events
round-trip through events.tsv, and bad input is refused with the same text in the widget."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import signal

from mef3lab.client import Mef3Client
from mef3lab.readers import open_reader
from mef3lab.server.process import ServerProcess
from mef3lab.signal.filters import DisplayFilter
from mef3lab.sources import EmbeddedSource, SourceSpec, open_source
from mef3lab.testing.synth import synthesize
from mef3lab.widget.overview import Overview, overview

FS = 256.0
NAMES = [
    "Fp1",
    "F3",
    "C3",
    "P3",
    "O1",
    "Fp2",
    "F4",
    "C4",
    "P4",
    "O2",
    "F7",
    "T7",
    "P7",
    "F8",
    "t4",
    "T6",
    "Fz",
    "Cz",
]  # no Pz: the chains skip its links


@pytest.fixture(scope="module")
def eeg1020(tmp_path_factory):
    return synthesize(
        tmp_path_factory.mktemp("clinical") / "sub-01_ieeg.mefd",
        channels=NAMES,
        fs=FS,
        seconds=300.0,
        gaps=[(100.0, 2.0)],
        seed=5,
    )


def direct(path, names, k0, k1):
    with open_reader(path) as r:
        return r.read_index(list(names), k0, k1)


def test_double_banana_is_the_differences_of_direct_reads_and_says_what_it_skipped(eeg1020, scroll):
    w, _ = scroll(eeg1020, montage="double banana", start=20.0, rows=30)
    assert "Fz-Cz" in w.channels and "F8-t4" in w.channels  # T4 found whatever its case, T3 as T7
    assert "Cz-Pz" not in w.channels and "Cz-Pz" in w.note and "skipped" in w.note
    page = w.page_data()
    k0 = int(20 * FS)
    raw = dict(zip(NAMES, direct(eeg1020, NAMES, k0, k0 + int(10 * FS)), strict=True))
    for name in w.channels:
        a, b = name.split("-")
        np.testing.assert_allclose(
            page.sel(channel=name).values, raw[a] - raw[b], rtol=0, atol=1e-4
        )
    assert list(page.channel.values) == w.channels[: w.rows]


def test_average_and_user_pairs(eeg1020, scroll):
    w, _ = scroll(eeg1020, montage="average", start=10.0)
    k0 = int(10 * FS)
    raw = direct(eeg1020, w.state.picked, k0, k0 + int(10 * FS))
    mean = raw.astype(np.float64).mean(axis=0)
    page = w.page_data()
    for i, name in enumerate(w.state.picked[: w.rows]):
        np.testing.assert_allclose(page.sel(channel=f"{name}-avg").values, raw[i] - mean, atol=1e-4)
    w.montage = ["fp1-C3", "O2-Fz"]
    w.wait()
    assert w.channels == ["Fp1-C3", "O2-Fz"]
    got = w.page_data()
    want = direct(eeg1020, ["Fp1", "C3"], k0, k0 + int(10 * FS))
    np.testing.assert_allclose(got.sel(channel="Fp1-C3").values, want[0] - want[1], atol=1e-4)


def test_filtered_page_equals_sosfiltfilt_of_a_long_read(eeg1020, scroll):
    w, replies = scroll(
        eeg1020, montage=["C3-P3"], highpass=0.5, lowpass=30.0, notch=50.0, start=150.0
    )
    assert w.notch == [50.0, 100.0]
    page = w.page_data().sel(channel="C3-P3").values
    # a long read from just after the gap (100-102 s) to 290 s, filtered in one piece the way
    # scipy does it
    k0, k1 = int(103 * FS), int(290 * FS)
    raw = direct(eeg1020, ["C3", "P3"], k0, k1)
    f = DisplayFilter(0.5, 30.0, (50.0, 100.0))
    sos = np.concatenate(
        [
            signal.butter(2, 0.5, "highpass", fs=FS, output="sos"),
            signal.butter(4, 30.0, "lowpass", fs=FS, output="sos"),
            *(signal.tf2sos(*signal.iirnotch(n, 30.0, fs=FS)) for n in (50.0, 100.0)),
        ]
    )
    long = signal.sosfiltfilt(sos, (raw[0] - raw[1]).astype(np.float64))
    a = int(150 * FS) - k0
    want = long[a : a + page.size]
    assert (
        f.pad_s(FS) < 40
    )  # the long read's own edges (103 s, 290 s) are farther from the page than the pad
    np.testing.assert_allclose(page, want, rtol=0, atol=1e-5 * np.abs(want).max())
    assert replies.last()["traces"]["C3-P3"]["error"] is None


def test_gaps_stay_gaps_in_a_filtered_page(eeg1020, scroll):
    w, _ = scroll(eeg1020, highpass=1.0, start=95.0)
    page = w.page_data().values
    t = 95.0 + np.arange(page.shape[1]) / FS
    inside = (t >= 100.0) & (t < 102.0)
    assert np.isnan(page[:, inside]).all() and np.isfinite(page[:, ~inside]).all()


def test_overview_is_the_block_index_min_max_and_decodes_nothing(eeg1020):
    with open_reader(eeg1020) as r:
        source = EmbeddedSource(r)
        decoded = []
        original = r._read_float
        r._read_float = lambda *a: (decoded.append(a), original(*a))[
            1
        ]  # counts decoding; the real path below
        ov = overview(source, ["C3", "O2"], 40)
        assert decoded == [] and ov.lo.shape == (2, 40)
        r._read_float = original
        span = r.info.end_uutc - r.info.start_uutc
        for row, name in enumerate(["C3", "O2"]):
            env = r.block_envelope(name)
            lo = np.full(40, np.nan)
            hi = np.full(40, np.nan)
            for s, e in zip(env["start_uutc"], env["end_uutc"], strict=True):
                x = r.read(name, int(s), int(e))  # the block, decoded
                x = np.asarray(x)[np.isfinite(x)]
                for c in range(40):
                    c_start, c_end = (
                        r.info.start_uutc + c * span / 40,
                        r.info.start_uutc + (c + 1) * span / 40,
                    )
                    if s < c_end and max(e, s + 1) > c_start and x.size:
                        lo[c], hi[c] = np.fmin(lo[c], x.min()), np.fmax(hi[c], x.max())
            np.testing.assert_allclose(
                ov.lo[row], lo, atol=0.01
            )  # the index stores them to the units' precision
            np.testing.assert_allclose(ov.hi[row], hi, atol=0.01)
        gap = int(100.5 / 300 * 40)
        assert np.isfinite(ov.strip()).sum() >= 39 and np.isfinite(ov.strip()[gap]) in (True, False)


def test_events_round_trip_through_events_tsv(eeg1020, scroll, tmp_path):
    w, replies = scroll(eeg1020)
    w.mark(12.5, 1.5, "spike")
    w._handle_custom_msg({"type": "mark", "t": 3.0, "text": "artefact"}, [])
    assert list(w.events.trial_type) == ["artefact", "spike"] and len(w.marks) == 2
    path = w.save_events()
    assert path == eeg1020.parent / "sub-01_events.tsv" and not any(eeg1020.rglob("*.tsv"))
    text = path.read_text().splitlines()
    assert text[0] == "onset\tduration\ttrial_type"
    w2, _ = scroll(eeg1020)
    got = w2.load_events(path)
    pd.testing.assert_frame_equal(got, w.events)
    other = w.save_events(tmp_path / "review.tsv")
    assert other.read_text() == path.read_text()
    path.unlink()


def test_bad_channels_are_toggled_by_clicking_a_label(eeg1020, scroll):
    w, _ = scroll(eeg1020)
    w._handle_custom_msg({"type": "bad", "name": "C3"}, [])
    w._handle_custom_msg({"type": "bad", "name": "O1"}, [])
    w._handle_custom_msg({"type": "bad", "name": "C3"}, [])
    assert w.bad_channels == ["O1"]


@pytest.mark.parametrize(
    "change, text",
    [
        (dict(montage=["Fp1-Xy9"]), "'Xy9' which this recording does not have"),
        (dict(montage="banana split"), "unknown montage 'banana split'"),
        (dict(lowpass=300.0), "at or above the Nyquist frequency (128 Hz)"),
        (dict(highpass=0.01), "on 10 s pages the lowest is"),
        (dict(highpass=40.0, lowpass=30.0), "must be below the low-pass"),
    ],
)
def test_bad_settings_are_refused_with_the_same_text_in_the_widget(eeg1020, scroll, change, text):
    w, replies = scroll(eeg1020, start=30.0)
    before = replies.last()["traces"]
    with pytest.raises(Exception) as err:
        for k, v in change.items():
            setattr(w, k, v)
    assert text in str(err.value) and w.message == str(err.value)
    w.next_page()  # the previous view stays usable
    assert replies.last()["start"] == 40.0 and list(replies.last()["traces"]) == list(before)
    # from the front end: the message only, no exception escapes the comm
    name, value = list(change.items())[-1]
    w._handle_custom_msg({"type": "set", "name": name, "value": value}, [])
    assert text in w.message


def test_a_widget_created_with_bad_settings_is_refused_and_leaves_no_thread(eeg1020):
    import threading

    import mef3lab
    from mef3lab.widget import Scroller

    rec = mef3lab.open_recording(eeg1020)
    try:
        before = {t.name for t in threading.enumerate()}
        with pytest.raises(ValueError, match="Nyquist"):
            Scroller(rec, lowpass=300.0)
        with pytest.raises(Exception, match="'Xy9'"):
            Scroller(rec, montage=["Fp1-Xy9"])
        left = {t.name for t in threading.enumerate()} - before
        assert not {n for n in left if n.startswith("mef3lab")}, left
    finally:
        rec.close()


def test_bad_events_files_are_refused(eeg1020, scroll, tmp_path):
    w, _ = scroll(eeg1020)
    missing = tmp_path / "a.tsv"
    missing.write_text("onset\ttrial_type\n1.0\tx\n")
    with pytest.raises(ValueError, match="lacks the column duration") as err:
        w.load_events(missing)
    assert w.message == str(err.value)
    outside = tmp_path / "b.tsv"
    outside.write_text("onset\tduration\ttrial_type\n299.0\t5.0\tlate\n")
    with pytest.raises(ValueError, match="outside the recording"):
        w.load_events(outside)
    with pytest.raises(ValueError, match="never written"):
        w.save_events(eeg1020)
    assert w.events.empty


def test_overview_through_a_server_comes_from_the_block_index_with_nothing_decoded(eeg1020):
    with (
        ServerProcess(n_process_workers=1, n_prefetch=0, log_level="WARNING") as srv,
        Mef3Client(srv.address) as client,
    ):
        remote = open_source(SourceSpec(str(eeg1020), address=srv.address))
        try:
            before = client.stats()
            got = overview(remote, ["C3", "O2"], 64)
            after = client.stats()
        finally:
            remote.close()
        with open_reader(eeg1020) as r:
            want = overview(EmbeddedSource(r), ["C3", "O2"], 64)
        assert (
            after["decoded_samples"] == before["decoded_samples"]
            and after["misses"] == before["misses"]
        )
        np.testing.assert_array_equal(got.lo, want.lo)
        np.testing.assert_array_equal(got.hi, want.hi)
        client.open_file(str(eeg1020))
        with pytest.raises(Exception, match="Nope"):
            client.block_index(str(eeg1020), "Nope")


def test_the_bar_is_the_median_extent_and_a_gap_where_no_channel_has_data():
    """Without warnings: the bar is made on a thread of its own, where a warning filter set
    around it would be process-wide (and another thread's warning would leak through)."""
    lo = np.array([[0.0, np.nan, -1.0], [1.0, np.nan, np.nan], [0.0, np.nan, -3.0]], np.float32)
    hi = lo + np.array([[2.0, 0.0, 4.0], [6.0, 0.0, 0.0], [4.0, 0.0, 8.0]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        strip = Overview(("a", "b", "c"), 3.0, lo, hi).strip()
    np.testing.assert_array_equal(strip, np.array([4.0, np.nan, 6.0], np.float32))


def test_a_server_is_asked_for_each_channels_blocks_once_per_source(eeg1020, monkeypatch):
    """A new scroller of a recording open through a server makes its overview bar without a
    round trip per channel; what comes back cannot be changed by whoever got it."""
    with ServerProcess(n_process_workers=1, n_prefetch=0, log_level="WARNING") as srv:
        remote = open_source(SourceSpec(str(eeg1020), address=srv.address))
        try:
            asked = []
            real = remote.client.block_index
            monkeypatch.setattr(
                remote.client, "block_index", lambda p, c: asked.append(c) or real(p, c)
            )
            first = overview(remote, ["C3", "O2"], 64)
            again = overview(remote, ["C3", "O2"], 64)
            assert asked == ["C3", "O2"]
            np.testing.assert_array_equal(first.hi, again.hi)
            env = remote.block_envelope("C3")
            assert not env["max"].flags.writeable
            with pytest.raises(ValueError):
                env["max"][0] = 0.0
        finally:
            remote.close()


def test_a_zoomed_out_page_is_each_columns_true_extent_from_cached_envelopes(recording, scroll):
    """10 minutes on 299 columns (513.7 samples each, so column edges fall inside fine bins): drawn
    from per-segment envelopes, not a full read."""
    w, replies = scroll(recording, page_seconds=600.0, rows=8)
    w.width_px = 299
    got = replies.last()
    # the fine bins: a power of two dividing the 60-s segment (15360), at most an eighth of a
    # column (513)
    b = 64
    with open_reader(recording) as r:
        data = r.read_index(list(w.channels), 0, int(600 * FS))
    n, cols = data.shape[1], 299
    starts = (np.arange(cols) * n) // cols
    edges = np.append(
        starts // b * b, n
    )  # a column's samples: from its first sample's bin to the next column's
    assert (np.diff(edges) > 0).all() and (np.abs(edges[:-1] - starts) < b).all()
    for row, name in enumerate(w.channels):
        tr = got["traces"][name]
        assert tr["kind"] == "minmax" and tr["n"] == cols
        lo, hi = tr["values"][:cols], tr["values"][cols:]
        for c in range(cols):
            own = data[row, edges[c] : edges[c + 1]]  # every sample in exactly one column
            if np.isnan(own).all():
                assert np.isnan(lo[c]) and np.isnan(hi[c])  # a gap stays a gap
                continue
            assert lo[c] == np.nanmin(own) and hi[c] == np.nanmax(
                own
            )  # exactly the extent of its samples
    decoded = w._zoom.decoded
    assert decoded >= n
    w.start = 0.0
    w.width_px = (
        300  # a new request over the same samples (same bins): cached, nothing decoded again
    )
    replies.last()
    assert w._zoom.decoded == decoded


def test_columns_wider_than_blocks_come_from_the_block_index_and_are_exact(eeg1020, scroll):
    """300 s (10-s blocks) on 6 columns: 50 s each, so whole blocks come from the index and only the
    blocks across column edges are decoded; each column is exactly its samples' min/max."""
    w, replies = scroll(eeg1020, page_seconds=300.0, rows=4)
    w.width_px = 50  # the model's floor; 1536 samples per column, less than 4 blocks: fine bins
    replies.last()
    w._zoom.decoded = 0
    with open_reader(eeg1020) as r:
        data = r.read_index(list(w.channels[:4]), 0, int(300 * FS))
    w._serve(
        w.view_id, (w.state, 6)
    )  # 6 columns of 12800 samples (5 blocks each), as a narrow screen asks
    content, buffers = replies.pages[-1]
    values = np.frombuffer(buffers[0], np.float32)
    starts = np.append((np.arange(6) * data.shape[1]) // 6, data.shape[1])
    for row, tr in enumerate(content["traces"]):
        lo, hi = (
            values[tr["offset"] : tr["offset"] + 6],
            values[tr["offset"] + 6 : tr["offset"] + 12],
        )
        want_lo = [np.nanmin(data[row, a:z]) for a, z in zip(starts[:-1], starts[1:], strict=True)]
        want_hi = [np.nanmax(data[row, a:z]) for a, z in zip(starts[:-1], starts[1:], strict=True)]
        np.testing.assert_allclose(lo, want_lo, atol=1e-3)
        np.testing.assert_allclose(hi, want_hi, atol=1e-3)
    assert 0 < w._zoom.decoded <= 5 * int(10 * FS)  # the (at most 5) blocks across the column edges
