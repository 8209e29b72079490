"""The scroller's view state is one value: every montage/filter transition, and back.

Each ordered pair of settings (montage x display filter), then back to as recorded: the
state stays whole (its rows are rows of its montage, a filter suits the rates), the traits
mirror it, and the reply on screen is the page of exactly that state, equal to a direct read
once as recorded. A refused change leaves the whole state as it was.
"""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest
from _widget_helpers import sent
from _writer_recording import CHANNELS, FS, OFFSETS, write

import mef3lab
from mef3lab.readers import open_reader
from mef3lab.widget import Scroller
from mef3lab.widget import scroller as scroller_module
from mef3lab.widget.state import Recorded, change, initial

NAMES = ["Fp1", "F3", "C3", "P3", "O1", "Fp2", "F4", "C4", "P4", "O2", "Fz", "Cz", "Pz"]
MONTAGES = [None, "average", "double banana", "transverse", ["Fp1-F3", "C3-P3"]]
FILTERS = [
    dict(highpass=None, lowpass=None, notch=[]),
    dict(highpass=0.5, lowpass=None, notch=[]),
    dict(highpass=None, lowpass=30.0, notch=[50.0]),
    dict(highpass=1.0, lowpass=70.0, notch=[]),
]
SETTINGS = [dict(montage=m, **f) for m in MONTAGES for f in FILTERS]
AS_RECORDED = dict(montage=None, highpass=None, lowpass=None, notch=[])
PAIRS = list(itertools.permutations(range(len(SETTINGS)), 2))


def _whole(state, recorded):
    """The invariants of a state: what it shows derives from its montage."""
    names = [d.name for d in state.derivations]
    assert set(state.channels) <= set(names) and state.channels
    shown = min(state.rows, len(state.channels))
    assert state.rows >= 1 and 0 <= state.first_row <= len(state.channels) - shown
    view = state.view()
    assert view.channels == state.channels[state.first_row : state.first_row + state.rows]
    if state.montage is None:
        assert names == list(recorded.channels) and state.channels == state.picked
    if view.review is not None:
        for name in view.channels:
            view.review.derivation(name)  # KeyError if a row is not of the montage


def _id(pair):
    a, b = pair
    return f"{a}->{b}"


@pytest.mark.parametrize("pair", PAIRS, ids=_id)
def test_every_transition_and_back_to_as_recorded_keeps_the_state_whole(pair):
    recorded = Recorded(tuple(NAMES), {n: 256.0 for n in NAMES}, 300.0)
    picked = ("C3", "Fp1", "O2")
    state = initial(recorded, picked, rows=2, first_row=1)
    for i in pair:
        new = change(state, recorded, **SETTINGS[i])
        _whole(new, recorded)
        assert new.filter.highpass == SETTINGS[i]["highpass"]
        state = new
    back = change(state, recorded, **AS_RECORDED)
    _whole(back, recorded)
    assert back.channels == picked and back.review is None and back.montage_label == "as recorded"


def test_a_refused_change_leaves_the_whole_state():
    recorded = Recorded(tuple(NAMES), {n: 256.0 for n in NAMES}, 300.0)
    state = change(initial(recorded, None), recorded, montage="average", highpass=1.0)
    for bad in (
        dict(montage="banana split"),
        dict(montage=["Fp1-Xy9"]),
        dict(lowpass=300.0),
        dict(channels=["Fp1"]),  # a channel, not a row of the average montage
        dict(montage=None, channels=["nope"]),
        dict(page_seconds=0),
    ):
        with pytest.raises((ValueError, KeyError)):
            change(state, recorded, **bad)
    assert state.montage == "average" and state.channels[0] == "Fp1-avg"


@pytest.fixture(scope="module")
def ieeg(tmp_path_factory):
    return write(tmp_path_factory.mktemp("writer") / "sub-02_ieeg.mefd")


@pytest.fixture(scope="module")
def eeg(tmp_path_factory):
    from mef3lab.testing.synth import synthesize

    return synthesize(
        tmp_path_factory.mktemp("eeg") / "eeg.mefd", channels=NAMES, fs=256.0, seconds=120.0
    )


@pytest.mark.parametrize("pair", list(itertools.permutations(range(len(MONTAGES)), 2)), ids=_id)
def test_the_widget_through_every_montage_pair_and_back_draws_its_state(eeg, scroll, pair):
    w, replies = scroll(eeg, start=20.0, rows=4, channels=["O2", "C3", "Fp1", "Pz", "F4"])
    for i in (*pair, 0):
        w.montage = MONTAGES[i]
        got = replies.last()
        shown = w.channels[w.first_row : w.first_row + w.rows]
        assert list(got["traces"]) == shown and got["start"] == w.start == 20.0
        assert got["state"]["montage"] == w.montage_label and got["state"]["channels"] == shown
        assert list(w.page_data().channel.values) == shown
    assert w.channels == ["O2", "C3", "Fp1", "Pz", "F4"] and w.montage_label == "as recorded"
    k0 = int(20 * 256)
    with open_reader(eeg) as r:
        want = r.read_index(["O2", "C3", "Fp1", "Pz"], k0, k0 + 2560)
    np.testing.assert_array_equal(w.page_data().values, want)


def test_montage_back_to_as_recorded_then_paging_and_marking(ieeg, scroll):
    """The issue's path: average, a refused chain, as recorded, then page, go to and mark."""
    w, replies = scroll(ieeg)
    recorded = list(w.channels)
    assert sorted(recorded) == sorted(CHANNELS)
    w.montage = "average"
    assert replies.last()["state"]["channels"][0] == "LB1-avg"
    with pytest.raises(Exception, match="10-20 channel names"):
        w.montage = "double banana"
    assert w.montage_label == "average" and w.channels[0] == "LB1-avg"
    assert "10-20 channel names" in w.message
    sent = w.sent
    w.width_px += 1  # the same state asked again (a resize, a second view): a new reply
    assert w.wait() and w.sent > sent
    assert "10-20 channel names" in w.message  # a page without read errors leaves it
    w.montage = None
    assert w.channels == recorded and list(replies.last()["traces"]) == recorded
    assert w.message == ""
    w.next_page()
    w.go_to(61.5)
    got = replies.last()
    assert got["start"] == 61.5 and got["state"]["start"] == 61.5
    w._handle_custom_msg({"type": "mark", "t": got["start"], "text": "spike"}, [])
    assert w.events.onset.tolist() == [61.5]
    with open_reader(ieeg) as r:
        k0 = int(np.ceil(61.5 * FS))
        want = r.read_index(recorded, k0, k0 + int(10 * FS))
    np.testing.assert_array_equal(w.page_data().values, want)


@pytest.mark.parametrize("page_seconds", [10.0, 60.0, 120.0])
def test_gain_and_baselines_ignore_the_settling_and_the_dc_offset_at_every_zoom(
    ieeg, scroll, page_seconds
):
    """The rhythm is ±40 µV (noise 8 µV) on offsets up to 1500 µV, after a 4000 µV transient."""
    w, replies = scroll(ieeg, page_seconds=page_seconds)
    got = replies.last()
    assert 50.0 <= w.gain <= 200.0, w.gain  # the rhythm's scale, not the transient's
    for i, name in enumerate(CHANNELS):
        assert abs(got["traces"][name]["baseline"] - OFFSETS[i]) < 10.0
    w.gain = 1000.0  # set by hand: it stays
    w.page_seconds = 20.0
    replies.last()
    assert w.gain == 1000.0


def test_none_switches_filters_and_montage_off(eeg, scroll):
    """traitlets takes None without a validator: the state still follows."""
    w, replies = scroll(eeg, montage="average", highpass=0.5, lowpass=30.0, notch=50.0)
    w.notch = None
    w.highpass = w.lowpass = None
    w.montage = None
    got = replies.last()
    assert w.state.review is None and w.notch == [] and got["state"]["filter"] == [None, None, []]
    assert list(got["traces"]) == w.channels[: w.rows] and sorted(w.channels) == sorted(NAMES)
    assert got["state"]["montage"] == "as recorded"


def test_the_next_page_does_not_wait_for_the_overview_bar(eeg, wire, monkeypatch):
    """The bar (a block-index question per channel, through a server a round trip each) is
    made on a thread of its own: a page asked meanwhile is served at once."""
    gate = threading.Event()
    real = scroller_module.overview
    monkeypatch.setattr(
        scroller_module, "overview", lambda *a, **k: gate.wait(30) and real(*a, **k)
    )
    rec = mef3lab.open_recording(eeg)
    w = Scroller(rec, start=30.0)
    kinds = lambda: [c["type"] for c, _ in sent(w.comm)]  # noqa: E731
    try:
        assert w._loader.wait(10)
        w.next_page()
        assert w._loader.wait(10)
        assert kinds() == ["page", "page"]  # both pages while the bar is held
        assert not w.wait(0.2)  # the bar still to come
        gate.set()
        assert w.wait(10) and kinds() == ["page", "page", "overview"]
    finally:
        gate.set()
        w.close()
        rec.close()
