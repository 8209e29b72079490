"""The scroller's model, driven as the front end drives it.

Keys and buttons move the page; the data that reaches the front end equals a direct read
(min/max of the right samples when decimated).
"""

from __future__ import annotations

import contextlib
import threading
import time

import numpy as np
import pytest
import xarray as xr
from _widget_helpers import Replies, column_minmax, sent

import mef3lab
from mef3lab.readers import open_reader
from mef3lab.widget import Scroller
from mef3lab.widget import scroller as scroller_module

FS = 256.0


def direct(path, names, start_s, seconds, fs=FS):
    """Samples [start, start + seconds) of `names` by a plain reader, on the recording's grid."""
    with open_reader(path) as r:
        k0 = int(np.ceil(start_s * fs - 1e-6))
        return r.read_index(list(names), k0, k0 + int(round(seconds * fs)))


def test_keys_move_the_page_and_change_gain_and_rows(recording, scroll):
    w, replies = scroll(recording, rows=4)
    assert w.page == (0.0, 10.0) and replies.last()["start"] == 0.0
    replies.key("ArrowRight")
    assert w.page == (10.0, 20.0) and replies.last()["start"] == 10.0
    replies.key("ArrowRight", shift=True)
    assert w.page == (15.0, 25.0)
    replies.key("ArrowLeft")
    assert w.page == (5.0, 15.0)
    replies.key("End")
    assert w.page == (590.0, 600.0) and replies.last()["start"] == 590.0
    replies.key("ArrowRight")  # paging stops at the end
    assert w.page == (590.0, 600.0)
    replies.key("Home")
    assert w.page == (0.0, 10.0)
    replies.key("ArrowLeft")
    assert w.page == (0.0, 10.0)

    gain = w.gain
    replies.key("ArrowUp")
    assert w.gain < gain and f"{w.gain:g}"[0] in "125"
    replies.key("ArrowDown")
    replies.key("ArrowDown")
    assert w.gain > gain

    assert list(replies.last()["traces"]) == ["ch000", "ch001", "ch002", "ch003"]
    replies.key("PageDown")
    assert w.first_row == 4 and list(replies.last()["traces"]) == [
        "ch004",
        "ch005",
        "ch006",
        "ch007",
    ]
    replies.key("PageDown")  # no rows below: stays
    assert w.first_row == 4
    replies.key("PageUp")
    assert w.first_row == 0
    assert w._handle_custom_msg({"type": "key", "key": "q"}, []) is None and w.page == (0.0, 10.0)


def test_decimated_page_is_the_min_max_of_each_pixel_column(recording, scroll):
    w, replies = scroll(recording, start=100.0, page_seconds=10.0)
    w.width_px = 700  # 2560 samples per trace > 700 columns
    got = replies.last()
    want = direct(recording, w.channels, 100.0, 10.0)
    for row, name in enumerate(w.channels):
        tr = got["traces"][name]
        assert tr["kind"] == "minmax" and tr["n"] == 700 and tr["error"] is None
        assert tr["t0"] == 0.0 and tr["dt"] == pytest.approx(10.0 / 700)
        lo, hi = column_minmax(want[row], 700)
        np.testing.assert_array_equal(tr["values"][:700], lo)
        np.testing.assert_array_equal(tr["values"][700:], hi)


def test_zoomed_in_page_is_the_raw_samples(recording, scroll):
    w, replies = scroll(recording, start=33.0, page_seconds=2.0)
    w.width_px = 1200  # 512 samples fit
    got = replies.last()
    want = direct(recording, w.channels, 33.0, 2.0)
    for row, name in enumerate(w.channels):
        tr = got["traces"][name]
        assert tr["kind"] == "raw" and tr["n"] == 512 and tr["dt"] == 1 / FS
        np.testing.assert_array_equal(tr["values"], want[row])


def test_gaps_arrive_as_nan(recording, scroll, recording_plan):
    w, replies = scroll(recording, start=145.0, page_seconds=10.0)  # the 3 s gap at 150 s
    w.width_px = 2560  # one column per sample: raw
    tr = replies.last()["traces"]["ch003"]
    t = 145.0 + np.arange(tr["n"]) * tr["dt"]
    inside = (t >= 150.0) & (t < 153.0)
    assert np.isnan(tr["values"][inside]).all() and not np.isnan(tr["values"][~inside]).any()
    w.width_px = 500  # decimated: a column wholly inside the gap is NaN, the others are not
    tr = replies.last()["traces"]["ch003"]
    c0, c1 = np.ceil(5.0 / 10 * 500), np.floor(8.0 / 10 * 500)
    cols = np.arange(500)
    lo = tr["values"][:500]
    assert np.isnan(lo[(cols >= c0 + 1) & (cols < c1 - 1)]).all()
    assert not np.isnan(lo[(cols < c0 - 1) | (cols > c1 + 1)]).any()


def test_page_data_is_the_page_at_full_resolution(recording, scroll):
    w, _ = scroll(recording, start=61.0, page_seconds=1.0, rows=3)
    w.first_row = 2
    data = w.page_data()
    assert isinstance(data, xr.DataArray) and data.dims == ("channel", "time")
    assert list(data.channel.values) == ["ch002", "ch003", "ch004"]
    np.testing.assert_array_equal(
        data.values, direct(recording, ["ch002", "ch003", "ch004"], 61.0, 1.0)
    )
    assert data.time.values[0] == 61.0 and np.allclose(np.diff(data.time.values), 1 / FS)
    gaps = data.mef3.gaps  # it still knows its recording: the gap at 61.2 s of its three channels
    assert data.attrs["units"] == "µV" and gaps.channel.tolist() == ["ch002", "ch003", "ch004"]
    assert np.allclose(gaps.start_s, 61.2, atol=1 / FS)


def test_go_to_seconds_clock_time_and_bad_input(recording, scroll):
    w, replies = scroll(recording)
    w.go_to(123.5)
    assert w.page == (123.5, 133.5) and "08:02:03.500 +00:00 (+123.500 s)" in w.page_label
    w._handle_custom_msg({"type": "goto", "text": "08:05:00"}, [])
    assert w.start == 300.0 and replies.last()["start"] == 300.0
    w._handle_custom_msg({"type": "goto", "text": "yesterday"}, [])
    assert "neither seconds" in w.message and w.start == 300.0
    with pytest.raises(ValueError, match="outside the recording"):
        w.go_to(-5)
    with pytest.raises(ValueError, match="outside the recording"):
        w.go_to("09:00:00")


def test_bad_settings_are_refused_with_a_clear_error(recording, scroll):
    w, _ = scroll(recording)
    with pytest.raises(mef3lab.errors.UnknownChannelError, match="nope"):
        w.channels = ["ch000", "nope"]
    with pytest.raises(Exception, match="positive number of seconds"):
        w.page_seconds = 0
    with pytest.raises(Exception, match="µV per division"):
        w.gain = -1
    assert w.page_seconds == 10.0 and w.channels[0] == "ch000"


def test_channels_page_seconds_and_gain_are_scriptable(recording, scroll):
    w, replies = scroll(recording, channels=["ch005", "ch001"], page_seconds=30.0, gain=20.0)
    got = replies.last()
    assert list(got["traces"]) == ["ch005", "ch001"] and got["seconds"] == 30.0 and w.gain == 20.0
    w.page_seconds = 60.0
    w.next_page()
    assert w.page == (60.0, 120.0) and replies.last()["seconds"] == 60.0
    assert [a["text"] for a in w.annotations][:2] == ["recording started", "eyes closed"]


def test_holding_the_key_lands_on_the_right_page_without_sending_every_page(recording, scroll):
    w, replies = scroll(recording)
    before = len(replies.pages)
    for _ in range(30):  # a held → (keyboard repeat) arrives faster than pages are read
        replies.key("ArrowRight")
    got = replies.last()
    assert got["start"] == 300.0 and w.page == (300.0, 310.0)
    new = replies.pages[before:]
    ids = [c["id"] for c, _ in new]
    assert ids == sorted(ids) and len(new) < 30  # never an older page after a newer one
    assert w.sent == len(replies.pages)
    asked = 0  # a reply never reaches the front end before the request it answers
    for update in replies.wire.updates:
        asked = update.get("view_id", asked)
        assert update.get("reply", {}).get("id", 0) <= asked
    np.testing.assert_array_equal(w.page_data().values, direct(recording, w.channels, 300.0, 10.0))


def test_a_slow_read_does_not_block_the_kernel(recording, scroll):
    w, replies = scroll(recording)
    real, gate, reading = w._source.read_index, threading.Event(), threading.Event()

    def slow(*args, **kwargs):  # the real read, held until the test lets it go
        reading.set()
        gate.wait(30)
        return real(*args, **kwargs)

    w._source.read_index = slow
    try:
        w.go_to(400.0)
        assert reading.wait(10)  # the read is under way on the loader thread ...
        replies.key("ArrowRight")  # ... and the kernel still takes keys
        assert w.page == (410.0, 420.0) and "+410.000 s" in w.page_label
    finally:
        gate.set()
        w._source.read_index = real
    assert replies.last()["start"] == 410.0


def test_a_page_asked_while_the_loader_thread_sets_the_automatic_gain_is_served(recording, scroll):
    # A notebook sets a filter, then goes to a place at once; the filtered page chooses the gain
    # (on the loader thread) while the cell goes on. The place must not be lost.
    w, replies = scroll(recording, channels=["ch000", "ch001"])
    entered, chosen = threading.Event(), []

    def setting_the_gain(change):  # holds the loader thread while it sets the gain
        if threading.current_thread().name == "mef3lab-scroller" and not entered.is_set():
            chosen.append(change["new"])
            entered.set()
            time.sleep(0.3)

    w.observe(setting_the_gain, "gain")
    w.highpass = 30.0  # the next page chooses the gain anew (a smaller one)
    assert entered.wait(10)
    w.go_to(400.0)  # while the loader thread is setting the gain
    got = replies.last()
    assert w.state.start == 400.0 and got["start"] == 400.0 and w.page == (400.0, 410.0)
    assert got["state"]["filter"][0] == 30.0 and list(got["traces"]) == ["ch000", "ch001"]
    assert w.gain == w.state.gain == chosen[0]  # the gain the filtered page chose stays


def test_a_data_array_of_one_rate_group(mixed_rate_recording, scroll):
    rec = mef3lab.open_recording(mixed_rate_recording)
    w, replies = scroll(rec.signal_256Hz, start=50.0)
    assert w.channels == ["ch001", "ch003", "ch005"]
    assert {tr["fs"] for tr in replies.last()["traces"].values()} == {256.0}


def test_a_new_scroller_reads_its_first_page_at_the_width_the_front_end_last_reported(
    recording, scroll, monkeypatch
):
    """Its first page is not read at a default width and read again once the front end says
    how wide it is drawn: a notebook's scrollers are drawn at one width."""
    monkeypatch.setattr(scroller_module, "_FRONT_WIDTH", [0])
    w, replies = scroll(recording, start=0.0, page_seconds=10.0)
    assert w.width_px == 1000  # nothing reported yet
    w._handle_custom_msg({"type": "resize", "width": 640}, [])
    assert {tr["n"] for tr in replies.last()["traces"].values()} == {640}
    second, replies = scroll(recording, start=100.0, page_seconds=10.0)
    assert second.width_px == 640
    assert len(replies.pages) == 1
    assert {tr["n"] for tr in replies.last()["traces"].values()} == {640}


def test_a_new_scroller_is_returned_with_its_first_page(recording, wire, monkeypatch):
    """Once a front end has drawn a scroller (its module is loaded), the cell that makes the
    next one shows it with the page: the page went out before it returned, so the view draws
    it as it renders (no second message to wait for)."""
    monkeypatch.setattr(scroller_module, "_FRONT_WIDTH", [1200])
    rec = mef3lab.open_recording(recording)
    w = Scroller(rec, start=33.0, page_seconds=2.0)
    try:
        pages = [m for m in sent(w.comm) if m[0]["type"] == "page"]  # nothing waited for
        assert [content["id"] for content, _ in pages] == [w.view_id]
        assert w.get_state()["reply"]["id"] == w.view_id
        data = np.frombuffer(pages[0][1][0], np.float32)
        want = direct(recording, w.channels, 33.0, 2.0)
        for row, tr in enumerate(pages[0][0]["traces"]):
            assert tr["kind"] == "raw" and tr["n"] == 512
            np.testing.assert_array_equal(data[tr["offset"] : tr["offset"] + 512], want[row])
    finally:
        w.close()
        rec.close()


def test_the_kernels_first_scroller_is_returned_before_its_page(recording, wire, monkeypatch):
    """No front end has drawn one yet: its view waits for the widget's module to load, which
    takes longer than the page, so the cell does not wait for the page."""
    monkeypatch.setattr(scroller_module, "_FRONT_WIDTH", [0])
    monkeypatch.setattr(scroller_module, "FIRST_PAGE_WAIT_S", 30.0)
    gate = threading.Event()
    read = scroller_module.read_reviewed
    monkeypatch.setattr(scroller_module, "read_reviewed", lambda *a: gate.wait(30) and read(*a))
    rec = mef3lab.open_recording(recording)
    t0 = time.monotonic()
    w = Scroller(rec, start=20.0, page_seconds=10.0)
    try:
        assert time.monotonic() - t0 < 10.0  # did not wait FIRST_PAGE_WAIT_S for the page
        assert w.get_state()["reply"] == {}
        gate.set()
        assert w.wait(30) and w.get_state()["reply"]["id"] == w.view_id
    finally:
        gate.set()
        w.close()
        rec.close()


def test_a_scroller_interrupted_while_it_waits_for_its_first_page_leaves_nothing_running(
    recording, wire, monkeypatch
):
    """Ctrl-C in the cell that makes it: its threads stop and it is not left open."""

    class Interrupted(scroller_module.LatestLoader):
        def wait(self, timeout=None):
            raise KeyboardInterrupt

    monkeypatch.setattr(scroller_module, "LatestLoader", Interrupted)
    monkeypatch.setattr(scroller_module, "_FRONT_WIDTH", [1200])
    rec = mef3lab.open_recording(recording)
    try:
        with pytest.raises(KeyboardInterrupt):
            Scroller(rec, start=20.0, page_seconds=10.0)
        names = [t.name for t in threading.enumerate()]
        assert "mef3lab-scroller" not in names
        assert not any(w._rec is rec for w in scroller_module._OPEN)
    finally:
        rec.close()


@contextlib.contextmanager
def paging(recording, monkeypatch, front_width: int):
    """(scroller at 20 s with 10-s pages, its Replies, the page starts it reads from now on,
    its own and read-ahead's, in order), `front_width` as the front end's reported width and
    a read-ahead hold no test waits out."""
    monkeypatch.setattr(scroller_module, "_FRONT_WIDTH", [front_width])
    monkeypatch.setattr(scroller_module, "READ_AHEAD_HOLD_S", 30.0)
    read = scroller_module.read_reviewed
    starts: list[float] = []
    monkeypatch.setattr(
        scroller_module, "read_reviewed", lambda *a: starts.append(a[1].start_s) or read(*a)
    )
    rec = mef3lab.open_recording(recording)
    w = Scroller(rec, start=20.0, page_seconds=10.0)
    try:
        yield w, Replies(w), starts
    finally:
        w.close()
        rec.close()


def settled(starts: list[float], n: int, timeout: float = 10.0) -> list[float]:
    """`starts` once it holds `n` reads (or at `timeout`), after a moment for any more."""
    deadline = time.monotonic() + timeout
    while len(starts) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    return list(starts)


def test_the_next_page_is_read_ahead_once_the_front_end_drew_this_one(recording, wire, monkeypatch):
    """Where a front end draws pages, reading ahead would take the cores from drawing the
    page: it waits for the front end's word that it drew it (or `READ_AHEAD_HOLD_S`)."""
    with paging(recording, monkeypatch, 1200) as (w, replies, starts):
        assert settled(starts, 1) == [20.0]  # the page; the one after it is held
        w._handle_custom_msg({"type": "drawn", "id": w.view_id - 1}, [])  # an older page
        assert settled(starts, 2, timeout=0.2) == [20.0]
        w._handle_custom_msg({"type": "drawn", "id": w.view_id}, [])
        assert settled(starts, 2) == [20.0, 30.0]
        replies.key("ArrowRight")
        got = replies.last()  # the page read ahead, as a direct read has it
        assert got["start"] == 30.0
        want = direct(recording, ["ch000"], 30.0, 10.0)[0]
        np.testing.assert_array_equal(
            got["traces"]["ch000"]["values"], np.concatenate(column_minmax(want, 1200))
        )
        assert settled(starts, 3, timeout=0.2) == [20.0, 30.0]  # 40 s is held in turn
        replies.key("ArrowRight")  # a flip before it was drawn: 40 s is read at once
        assert replies.last()["start"] == 40.0 and starts == [20.0, 30.0, 40.0]


def test_without_a_front_end_the_next_page_is_read_ahead_at_once(recording, wire, monkeypatch):
    """A scripted scroller (no front end has drawn one) has no drawing to wait for; once a
    front end draws it (whatever width it has), its read-ahead waits for the drawing."""
    with paging(recording, monkeypatch, 0) as (w, replies, starts):
        assert settled(starts, 2) == [20.0, 30.0] and w.drawn == 0
        w._handle_custom_msg({"type": "drawn", "id": w.view_id}, [])
        replies.key("ArrowRight")
        assert replies.last()["start"] == 30.0 and w.drawn == 1
        assert settled(starts, 3, timeout=0.2) == [20.0, 30.0]  # 40 s waits for the drawing


def test_a_front_end_that_comes_later_finds_the_page_and_the_bar_in_the_state(
    recording, wire, monkeypatch
):
    """The first view (made while the module loads, often after the first page was sent) and
    a reload get the widget's state: the newest page and the bar are in it, nothing is read
    again and nothing needs asking. Before the first page is served, the state has none: a
    first page slower than `FIRST_PAGE_WAIT_S` follows the widget."""
    monkeypatch.setattr(scroller_module, "FIRST_PAGE_WAIT_S", 0.05)
    monkeypatch.setattr(scroller_module, "_FRONT_WIDTH", [640])
    gate = threading.Event()
    read = scroller_module.read_reviewed
    reads = []
    monkeypatch.setattr(
        scroller_module,
        "read_reviewed",
        lambda *a: reads.append(a[1]) or (gate.wait(30) and read(*a)),
    )
    rec = mef3lab.open_recording(recording)
    w = Scroller(rec, start=20.0, page_seconds=10.0)
    try:
        first = w.view_id
        assert w.get_state()["reply"] == {}  # the page is still being read
        gate.set()
        assert w.wait(30)
        n_reads = len(reads)
        state = w.get_state()  # what ipywidgets gives a new front-end model
        page, bar = state["reply"], state["overview_bar"]
        assert page["id"] == first and page["start"] == 20.0 and page["seconds"] == 10.0
        assert [tr["name"] for tr in page["traces"]] == list(w.channels)
        (content, (data,)) = [m for m in sent(w.comm) if m[0]["type"] == "page"][-1]
        assert bytes(page["data"]) == bytes(data) and len(data) > 0  # as it went out
        assert bar["n"] == w.width_px and len(bar["data"]) == 4 * bar["n"]
        assert len(reads) == n_reads  # nothing read again
        w.page_seconds = 5.0  # a new request: the state then holds its reply, not the old one
        assert w.wait(30)
        assert w.get_state()["reply"]["id"] == first + 1 == w.view_id
        assert w.get_state()["reply"]["seconds"] == 5.0
    finally:
        gate.set()
        w.close()
        rec.close()
