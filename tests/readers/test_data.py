"""What is read is what was written: samples, gaps, annotations, raw counts."""

from __future__ import annotations

import numpy as np
import pytest

from mef3lab.model import Annotation
from mef3lab.readers import open_reader


@pytest.fixture(scope="module")
def reader(recording, engine):
    with open_reader(recording, engine=engine) as r:
        yield r


def test_whole_recording_equals_the_signal_written(reader, recording_plan, expected_read):
    g = reader.info.rate_groups[0].grid
    assert g.n_samples == recording_plan.n_samples[0]
    for dtype in ("float32", "float64"):
        got = reader.read(dtype=dtype)
        want = expected_read(recording_plan, reader.info.names, g, 0, g.n_samples, dtype)
        np.testing.assert_array_equal(got, want)


def test_float64_values_are_exactly_the_rounded_values(reader, recording_plan):
    x = reader.read("ch003", dtype="float64")[0]
    sig = recording_plan.signal(3)
    np.testing.assert_array_equal(x, sig)
    ok = ~np.isnan(x)
    counts = np.rint(x[ok] / recording_plan.factor)
    np.testing.assert_array_equal(counts * recording_plan.factor, x[ok])  # count * 0.01, exactly
    assert 10 < np.nanstd(x) < 30 and np.nanmax(np.abs(x)) < 150  # EEG-like amplitude


def test_gaps_are_nan_exactly_where_written(reader, recording_plan):
    fs = recording_plan.rates[0]
    x = reader.read("ch000")[0]
    slices = recording_plan.gap_slices(0)
    assert len(slices) == 4
    assert min(s.stop - s.start for s in slices) < fs  # a gap shorter than a second
    assert (slices[-1].stop - slices[-1].start) == 5  # the 0.02 s gap: 5 samples
    expected_nan = np.zeros(x.size, bool)
    for s in slices:
        expected_nan[s] = True
    np.testing.assert_array_equal(np.isnan(x), expected_nan)


def test_gaps_reported_by_the_index(reader, recording_plan):
    g = reader.info.rate_groups[0].grid
    for name in reader.info.names:
        gaps = reader.info.gaps(name)
        slices = recording_plan.gap_slices(recording_plan.index(name))
        assert [(g.index_at(s.start_uutc), g.index_at(s.end_uutc)) for s in gaps] == [
            (s.start, s.stop) for s in slices
        ]


def test_samples_around_a_gap_land_at_their_index(reader, recording_plan):
    g = reader.info.rate_groups[0].grid
    s = recording_plan.gap_slices(0)[0]
    x = reader.read_index("ch000", s.start - 3, s.stop + 3, "float64")[0]
    sig = recording_plan.signal(0)
    np.testing.assert_array_equal(x, sig[s.start - 3 : s.stop + 3])
    assert np.isnan(x[3:-3]).all() and not np.isnan(x[:3]).any() and not np.isnan(x[-3:]).any()
    # read by time, starting exactly at the first sample after the gap
    y = reader.read("ch000", g.uutc_of(s.stop), g.uutc_of(s.stop + 2), "float64")[0]
    np.testing.assert_array_equal(y, sig[s.stop : s.stop + 2])


def test_annotations_round_trip(reader, recording_plan):
    want = sorted(
        (
            Annotation(a["time"], a["type"], a["text"], a.get("duration"), a.get("channel"))
            for a in recording_plan.annotations
        ),
        key=lambda a: a.time_uutc,
    )
    assert list(reader.info.annotations) == want
    assert any(a.channel == "ch000" for a in want) and any(a.duration_us for a in want)


def test_raw_counts_give_the_float_read_exactly(reader):
    g = reader.info.rate_groups[0].grid
    for k0, k1 in [
        (0, g.n_samples),
        (-20, 40),
        (g.n_samples - 7, g.n_samples + 9),
        (15_000, 16_000),
    ]:
        raw = reader.read_raw(None, k0, k1)
        assert raw.counts.dtype == np.int32
        for dtype in ("float32", "float64"):
            np.testing.assert_array_equal(
                raw.to_float(dtype), reader.read_index(None, k0, k1, dtype)
            )


def test_channel_info(reader, recording_plan):
    c = reader.info.channel("ch005")
    assert (c.fs, c.units, c.units_text, c.conversion_factor) == (256.0, "µV", "uV", 0.01)
    assert c.start_uutc == recording_plan.start_uutc
    assert c.end_uutc == recording_plan.start_uutc + 600_000_000
    assert c.n_samples == int((~np.isnan(recording_plan.signal(5))).sum())
    assert not reader.info.encrypted
