"""iEEG review on a lab-style depth recording (16 contacts, 5 shafts, 8 kHz, written by
MefWriter): shaft montages, HFO band views, short pages, local time, through the scroller
embedded and on a real server; every row compared with arithmetic on direct reads.
"""

from __future__ import annotations

import numpy as np
import pytest
from _quirks import quirk_writer
from _widget_helpers import column_minmax

import mef3lab
from mef3lab.readers import open_reader
from mef3lab.server.process import ServerProcess
from mef3lab.signal.filters import DisplayFilter
from mef3lab.testing import quirks as q
from mef3lab.widget import Scroller
from mef3lab.widget.clinical import menus_for

BIPOLAR = [
    "LA1-LA2", "LA2-LA3", "LA3-LA4", "LB1-LB2", "LB2-LB3", "LC1-LC3", "LC3-LC4",
    "RA1-RA2", "RA2-RA3", "RB1-RB2", "RB2-RB3",
]  # fmt: skip


@pytest.fixture(scope="module")
def quirk(tmp_path_factory):
    """``quirk(name) -> Path`` of a quirk session."""
    return quirk_writer(tmp_path_factory)


@pytest.fixture(scope="module")
def lab(quirk):
    return quirk("lab_depth")


@pytest.fixture(scope="module")
def direct(lab):
    """All contacts of the lab recording, read directly (numba engine), float32."""
    with open_reader(lab) as r:
        return dict(zip(r.info.names, r.read(), strict=True))


@pytest.fixture(scope="module")
def server():
    with ServerProcess(n_process_workers=1, log_level="WARNING") as srv:
        yield srv


@pytest.mark.parametrize("where", ["embedded", "server"])
def test_shaft_bipolar_rows_are_neighbour_differences(lab, direct, scroll, server, where):
    address = server.address if where == "server" else None
    w, replies = scroll(
        lab, address=address, montage="shaft bipolar", rows=20, start=1.5, page_seconds=1.0
    )
    assert w.channels == BIPOLAR  # along each shaft, never across, in contact order
    assert "LC1-LC3 skips LC2" in w.note
    assert w.row_shafts == {r: r.split("-")[0].rstrip("0123456789") for r in BIPOLAR}
    page = w.page_data()
    assert page.sizes["time"] == 8000
    k0 = int(round(1.5 * q.LAB_FS))
    for row in BIPOLAR:
        a, b = row.split("-")
        expected = (direct[a] - direct[b])[k0 : k0 + 8000]
        np.testing.assert_array_equal(page.sel(channel=row).values, expected)
    # what the front end got: each column's min and max of those rows
    got = replies.last()["traces"]["LA2-LA3"]
    assert got["kind"] == "minmax" and got["n"] == w.width_px
    lo, hi = column_minmax(page.sel(channel="LA2-LA3").values, got["n"])
    np.testing.assert_array_equal(got["values"][: got["n"]], lo)
    np.testing.assert_array_equal(got["values"][got["n"] :], hi)


def test_a_1_s_page_of_64_contacts_at_32_khz_keeps_every_peak(quirk, scroll):
    path = quirk("grid_32khz")
    w, replies = scroll(path, page_seconds=1.0, start=0.25, rows=64)
    traces = replies.last()["traces"]
    assert len(traces) == 64
    with open_reader(path) as r:
        direct = dict(zip(r.info.names, r.read(), strict=True))
    k0 = int(0.25 * q.GRID_FS)
    for name in ("A1", "B4", "H8"):
        tr = traces[name]  # 32,000 samples on fewer columns: each column's min and max
        assert tr["kind"] == "minmax" and tr["n"] == w.width_px
        lo, hi = column_minmax(direct[name][k0 : k0 + 32000], tr["n"])
        np.testing.assert_array_equal(tr["values"][: tr["n"]], lo)
        np.testing.assert_array_equal(tr["values"][tr["n"] :], hi)
    assert traces["B4"]["values"].max() == direct["B4"][q.GRID_SPIKE]  # the one-sample spike
    assert direct["B4"][q.GRID_SPIKE] > 800


def test_shaft_average_rows_subtract_their_own_shafts_mean(lab, direct, scroll):
    w, _ = scroll(lab, montage="shaft average", rows=20, page_seconds=1.0)
    assert len(w.channels) == 16 and w.channels[:4] == [f"LA{k}-avg LA" for k in range(1, 5)]
    page = w.page_data()
    n = page.sizes["time"]
    for shaft, contacts in {
        "LA": ["LA1", "LA2", "LA3", "LA4"],
        "LC": ["LC1", "LC3", "LC4"],
    }.items():
        mean = np.mean([direct[c][:n].astype(np.float64) for c in contacts], axis=0)
        for c in contacts:
            expected = (direct[c][:n] - mean).astype(np.float32)
            np.testing.assert_array_equal(page.sel(channel=f"{c}-avg {shaft}").values, expected)


def test_no_shafts_is_said_in_the_widget_and_raised_by_the_api(quirk, scroll):
    w, _ = scroll(quirk("acquisition_order"))  # C3, C4, Fz, Pz: scalp electrodes
    with pytest.raises(ValueError, match="no shaft of two or more contacts") as err:
        w.montage = "shaft bipolar"
    assert w.message == str(err.value) and w.montage is None
    w._handle_custom_msg({"type": "set", "name": "montage", "value": "shaft average"}, [])
    assert "the shaft average montage needs depth or grid contacts" in w.message


def test_a_ripple_view_is_the_80_250_hz_band_pass_and_shows_the_ripple(lab, direct, scroll):
    w, _ = scroll(lab, montage="shaft bipolar", band="ripple", page_seconds=0.5, start=1.75)
    assert (w.highpass, w.lowpass, w.band, w.page_seconds) == (80.0, 250.0, "ripple", 0.5)
    page = w.page_data()
    assert page.sizes["time"] == 4000  # a 0.5-s page at 8 kHz
    # the band-pass of the whole recording's difference, cut to the page (edge-free)
    full = DisplayFilter(80.0, 250.0).apply((direct["LA2"] - direct["LA3"])[None], q.LAB_FS)[0]
    k0 = int(1.75 * q.LAB_FS)
    np.testing.assert_allclose(page.sel(channel="LA2-LA3").values, full[k0 : k0 + 4000], atol=0.05)
    # the 140 Hz burst at 2 s stands out of the band-passed background
    t = page.time.values
    burst = np.abs(page.sel(channel="LA2-LA3").values[np.abs(t - q.LAB_RIPPLE_S) < 0.02]).max()
    quiet = np.abs(page.sel(channel="LA2-LA3").values[np.abs(t - q.LAB_RIPPLE_S) > 0.1]).max()
    assert burst > 3 * quiet
    w.band = "fast ripple"
    assert (w.highpass, w.lowpass) == (250.0, 500.0)
    w.highpass = 60.0  # another filter: no band any more
    assert w.band is None


def test_hfo_bands_are_offered_only_where_the_rate_allows(quirk, scroll):
    menus = {m["trait"]: [o["value"] for o in m["options"]] for m in menus_for(q.LAB_FS)}
    assert menus["band"] == [None, "ripple", "fast ripple"]
    assert {"shaft bipolar", "shaft average"} <= set(menus["montage"])
    assert [m["options"] for m in menus_for(800.0) if m["trait"] == "band"][0][1:] == [
        {"label": "ripple 80-250 Hz", "value": "ripple"}
    ]
    slow = {m["trait"]: [o["value"] for o in m["options"]] for m in menus_for(256.0)}
    assert "band" not in slow and max(slow["lowpass"][1:]) == 100.0  # below 128 Hz only
    w, _ = scroll(quirk("gmt_offset"))  # 256 Hz
    with pytest.raises(ValueError, match="needs channels sampled above 500 Hz") as err:
        w.band = "ripple"
    assert w.message == str(err.value) and w.highpass is None


def test_the_clock_is_the_recordings_local_time_utc_one_setting_away(quirk, scroll):
    w, _ = scroll(quirk("gmt_offset"), start=2.0, page_seconds=2.0)
    assert w.utc_offset_s == 11 * 3600
    assert w.page_label == "2009-10-02 09:01:09.000 +11:00 (+2.000 s)"
    w.go_to("09:01:12")  # typed in the clock shown
    assert w.start == pytest.approx(5.0)
    w.utc = True
    assert w.page_label == "2009-10-01 22:01:12.000 +00:00 (+5.000 s)"


def test_deidentified_times_are_labelled_relative(quirk):
    rec = mef3lab.open_recording(quirk("deidentified"), password=q.PASSWORD1)
    try:
        w = Scroller(rec)
        try:
            assert w.deidentified and w.page_label == "+09:01:07.000 (de-identified) (+0.000 s)"
            assert rec.attrs["start_time"] == "+09:01:07.000000 (de-identified)"
        finally:
            w.close()
    finally:
        rec.close()
