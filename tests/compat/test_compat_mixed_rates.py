"""Mixed sampling rates: a message naming the rate groups, per-group reads, display reads of all."""

from __future__ import annotations

import numpy as np
import pytest

S = 1_000_000
FAST, SLOW = ["ch000", "ch002", "ch004"], ["ch001", "ch003", "ch005"]  # 1024 Hz, 256 Hz


@pytest.fixture
def mixed(make_client, mixed_rate_recording, reader):
    c = make_client("mixed")
    assert c.open(mixed_rate_recording).file_opened
    yield c, str(mixed_rate_recording), reader(mixed_rate_recording)
    c.CloseFile(c.pb.FileInfoRequest(file_path=str(mixed_rate_recording)))


def _names_groups(text: str) -> bool:
    return "1024 Hz: ch000, ch002, ch004" in text and "256 Hz: ch001, ch003, ch005" in text


def test_range_of_mixed_rates_names_the_groups(mixed):
    c, path, rd = mixed
    t0 = rd.info.start_uutc + 30 * S
    err = c.range(path, [], t0, t0 + 10 * S).error
    assert _names_groups(err) and "n_points" in err
    assert "1024 Hz: ch004; 256 Hz: ch001" in c.range(path, ["ch004", "ch001"], t0, t0 + S).error
    for names, fs in (
        (["ch004", "ch000"], 1024.0),
        (["ch003"], 256.0),
    ):  # each group reads on its own grid
        rep = c.range(path, names, t0, t0 + 10 * S)
        assert rep.messages[0].fs == fs and rep.messages[0].start_uutc == t0
        np.testing.assert_array_equal(rep.array, rd.read(names, t0, t0 + 10 * S, "float32"))


def test_display_read_of_all_channels(mixed):
    c, path, rd = mixed
    t0, t1 = rd.info.start_uutc + 30 * S, rd.info.start_uutc + 90 * S  # holds both gaps
    order = ["ch005", "ch000", "ch003", "ch002", "ch001", "ch004"]
    rep = c.range(path, order, t0, t1, n_points=1000)
    assert not rep.error and rep.array.shape == (6, 1000)
    assert list(rep.messages[0].channel_names) == order
    assert rep.messages[0].fs == pytest.approx(1000 / 60)
    assert (rep.messages[0].start_uutc, rep.messages[-1].end_uutc) == (t0, t1)
    for row, name in zip(rep.array, order, strict=True):
        full = rd.read([name], t0, t1, "float32")[0]
        edges = (np.arange(500) * full.size) // 500
        with np.errstate(invalid="ignore"):
            lo, hi = np.fmin.reduceat(full, edges), np.fmax.reduceat(full, edges)
        np.testing.assert_array_equal(np.fmin(row[0::2], row[1::2]), lo)
        np.testing.assert_array_equal(np.fmax(row[0::2], row[1::2]), hi)

    short = c.range(path, ["ch001", "ch000"], t0, t0 + S, n_points=1000)  # 256 and 1024 samples
    assert short.array.shape == (2, 256)
    np.testing.assert_array_equal(short.array[0], rd.read(["ch001"], t0, t0 + S, "float32")[0])


def test_segments_of_a_mixed_rate_file(mixed):
    c, path, rd = mixed
    err = c.segment(path, 0).error  # all channels active: two grids
    assert _names_groups(err) and "SetActiveChannels" in err
    r = c.SetSignalSegmentSize(c.pb.SetSignalSegmentRequest(file_path=path, seconds=20))
    assert not r.error_message and r.number_of_segments == 6
    c.SetActiveChannels(
        c.pb.SetActiveChannelsRequest(file_path=path, channel_names=["ch005", "ch001"])
    )
    assert c.GetNumberOfSegments(c.pb.FileInfoRequest(file_path=path)).number_of_segments == 6
    grid = rd.info.group_of(SLOW).grid
    for index in (0, 3):  # 0: both channels start late (NaN first); 3: the 5 s gap
        rep = c.segment(path, index)
        k0, k1 = index * 20 * 256, min((index + 1) * 20 * 256, grid.n_samples)
        assert rep.messages[0].fs == 256.0 and rep.messages[0].start_uutc == grid.uutc_of(k0)
        np.testing.assert_array_equal(
            rep.array, rd.read_index(["ch005", "ch001"], k0, k1, "float64")
        )
    assert np.isnan(c.segment(path, 0).array[:, :256]).all()
