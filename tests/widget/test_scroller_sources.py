"""The scroller on what recordings really are: mixed rates, damaged files, a server that prefetches
in the direction of travel; and its newest-request loader on its own."""

from __future__ import annotations

import contextlib
import shutil
import threading

import numpy as np
import pytest
import xarray as xr
from _widget_helpers import column_minmax

from mef3lab.client import Mef3Client
from mef3lab.readers import open_reader
from mef3lab.server.process import ServerProcess
from mef3lab.widget.loader import LatestLoader


def group_read(path, names, start_s, seconds):
    """Direct read of one rate group's channels over [start, start + seconds) on its grid."""
    with open_reader(path) as r:
        grid = r.info.group_of(names).grid
        t0 = r.info.start_uutc + round(start_s * 1e6)
        k0, k1 = grid.indices(t0, t0 + round(seconds * 1e6))
        return r.read_index(list(names), k0, k1), (
            float(grid.time_of(k0)) - r.info.start_uutc
        ) / 1e6


def test_mixed_rates_each_channel_on_its_own_rate(mixed_rate_recording, scroll):
    w, replies = scroll(mixed_rate_recording, start=38.0, page_seconds=4.0)  # the 0.3 s gap at 40 s
    w.width_px = 1500  # 4 s at 256 Hz = 1024 samples: raw; at 1024 Hz = 4096: min/max
    got = replies.last()["traces"]
    assert list(got) == [f"ch{i:03d}" for i in range(6)]  # the recording's order across both groups
    for fs, names in [(1024.0, ["ch000", "ch002", "ch004"]), (256.0, ["ch001", "ch003", "ch005"])]:
        want, first_s = group_read(mixed_rate_recording, names, 38.0, 4.0)
        for row, name in enumerate(names):
            tr = got[name]
            assert tr["fs"] == fs and tr["t0"] == pytest.approx(first_s - 38.0, abs=1e-9)
            if fs == 256.0:
                assert tr["kind"] == "raw"
                np.testing.assert_array_equal(tr["values"], want[row])
            else:
                lo, hi = column_minmax(want[row], 1500)
                assert tr["kind"] == "minmax"
                np.testing.assert_array_equal(tr["values"][:1500], lo)
                np.testing.assert_array_equal(tr["values"][1500:], hi)
    data = w.page_data()
    assert isinstance(data, xr.Dataset) and set(data.data_vars) == {"signal_1024Hz", "signal_256Hz"}
    np.testing.assert_array_equal(
        data.signal_256Hz.values,
        group_read(mixed_rate_recording, ["ch001", "ch003", "ch005"], 38.0, 4.0)[0],
    )


def test_channels_starting_late_are_empty_before_their_start(
    mixed_rate_recording, mixed_rate_plan, scroll
):
    w, replies = scroll(
        mixed_rate_recording, start=0.0, page_seconds=10.0
    )  # starts staggered by 2.5 s
    w.width_px = 3000
    got = replies.last()["traces"]
    for i, name in enumerate(got):
        tr = got[name]
        begins = (mixed_rate_plan.starts_uutc[i] - mixed_rate_plan.start_uutc) / 1e6
        t = tr["t0"] + np.arange(tr["n"]) * tr["dt"]  # a sample's time, or a column's start
        values = tr["values"][: tr["n"]]
        assert np.isnan(
            values[t + tr["dt"] < begins - 1e-6]
        ).all()  # wholly before the channel's start
        assert not np.isnan(values[t >= begins + 1e-6]).any()


@pytest.fixture(scope="module")
def damaged(tmp_path_factory, recording):
    """A copy of `recording` whose ch001 data file is garbled (every block after the first KiB)."""
    copy = tmp_path_factory.mktemp("damaged") / "damaged.mefd"
    shutil.copytree(recording, copy)
    tdat = next((copy / "ch001.timd").rglob("*.tdat"))
    b = bytearray(tdat.read_bytes())
    b[1024:] = np.random.default_rng(0).integers(0, 256, len(b) - 1024, dtype=np.uint8).tobytes()
    tdat.write_bytes(bytes(b))
    return copy


def test_a_damaged_channel_is_an_empty_labelled_trace_and_the_rest_draws(
    damaged, recording, scroll
):
    w, replies = scroll(damaged, start=200.0)
    got = replies.last()["traces"]
    assert got["ch001"]["error"] and "CorruptDataError" in got["ch001"]["error"]
    assert np.isnan(got["ch001"]["values"]).all()
    assert "ch001 could not be read" in w.message and "ch000" not in w.message
    with open_reader(recording) as r:
        want = r.read_index(["ch000", "ch002"], 200 * 256, 210 * 256)
    for row, name in enumerate(["ch000", "ch002"]):
        assert got[name]["error"] is None
        lo, hi = column_minmax(want[row], got[name]["n"])
        np.testing.assert_array_equal(got[name]["values"][: got[name]["n"]], lo)
        np.testing.assert_array_equal(got[name]["values"][got[name]["n"] :], hi)
    replies.key("ArrowRight")  # the widget keeps working
    assert replies.last()["start"] == 210.0


def test_loader_serves_only_the_newest_request():
    served, gate, started = [], threading.Event(), threading.Event()

    def serve(id, request):
        started.set()
        gate.wait(10)
        served.append((id, request, loader.is_current(id)))

    loader = LatestLoader(serve)
    try:
        loader.submit("page 1")
        assert started.wait(10)
        for i in range(2, 7):  # arrive while page 1 is being read
            loader.submit(f"page {i}")
        gate.set()
        assert loader.wait(10)
        assert served == [
            (1, "page 1", False),
            (6, "page 6", True),
        ]  # 1 is stale by the time it is done
        assert loader.skipped == 4
    finally:
        gate.set()
        loader.close()


@pytest.fixture(scope="module")
def server():
    """A real server with 30-s segments (10-s pages cross their edges), no readahead of its own."""
    with ServerProcess(
        n_process_workers=1, segment_seconds=30.0, n_prefetch=0, log_level="WARNING"
    ) as srv:
        yield srv


@pytest.mark.parametrize("direction", [1, -1], ids=["forward", "backward"])
def test_paging_prefetches_in_the_direction_of_travel(recording, server, scroll, direction):
    with Mef3Client(server.address) as client:
        client.open_file(str(recording))
        before = client.stats()
        start = 150.0 if direction > 0 else 450.0
        w, replies = scroll(recording, address=server.address, start=start)
        for _ in range(15):  # 150 s: five segments crossed
            replies.key("ArrowRight" if direction > 0 else "ArrowLeft")
            got = replies.last()
        after = client.stats()
    assert got["start"] == start + direction * 150.0
    lo, hi = column_minmax(
        open_reader(recording).read_index(
            ["ch007"], int(got["start"] * 256), int(got["start"] * 256) + 2560
        )[0],
        1000,
    )
    np.testing.assert_array_equal(got["traces"]["ch007"]["values"], np.concatenate([lo, hi]))
    d = {k: after[k] - before[k] for k in ("decoded_samples", "prefetches", "prefetch_hits")}
    cold = (
        d["decoded_samples"] / (30 * 256 * 8) - d["prefetches"]
    )  # segments decoded while someone waited
    # the segments came in by hints in the direction of travel: at most the first page's and the one
    # after turning round were decoded cold (hinting the other way, it would be all five)
    assert cold <= 2 and d["prefetch_hits"] >= 3, d


def test_a_padded_page_reaches_past_its_edges(recording):
    """What a display filter will need: the page plus neighbouring samples, on the same grid."""
    from mef3lab.sources import EmbeddedSource
    from mef3lab.widget.pages import View, read_page

    with contextlib.closing(EmbeddedSource(open_reader(recording))) as source:
        page = read_page(source, View(100_000_000, 10_000_000, ("ch002", "ch006")), pad_s=2.0)
        (block,) = page.blocks
        assert block.first_s == 98.0 and block.data.shape == (2, 14 * 256)
        np.testing.assert_array_equal(
            block.data, source.reader.read_index(["ch002", "ch006"], 98 * 256, 112 * 256)
        )


def test_events_of_a_recording_on_a_server_of_this_machine_go_beside_it(
    recording, server, scroll, tmp_path
):
    """The server reads a path this machine sees too: save_events() needs no path."""
    copy = tmp_path / "sub-07_ieeg.mefd"
    shutil.copytree(recording, copy)
    w, _ = scroll(copy, address=server.address)
    w.mark(12.5, 1.0, "spike")
    saved = w.save_events()
    assert saved == tmp_path / "sub-07_events.tsv"
    assert saved.read_text().splitlines()[1].split("\t") == ["12.500000", "1.000000", "spike"]
