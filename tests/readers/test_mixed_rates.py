"""Sessions whose channels have different rates, and channels whose rate changes."""

from __future__ import annotations

import numpy as np
import pytest

from mef3lab.errors import MixedRatesError, RateChangeError
from mef3lab.readers import open_reader


@pytest.fixture(scope="module")
def reader(mixed_rate_recording, engine):
    with open_reader(mixed_rate_recording, engine=engine) as r:
        yield r


def test_rate_groups(reader, mixed_rate_plan):
    fast, slow = reader.info.rate_groups
    assert (fast.fs, fast.channels) == (1024.0, ("ch000", "ch002", "ch004"))
    assert (slow.fs, slow.channels) == (256.0, ("ch001", "ch003", "ch005"))
    for g in (fast, slow):
        starts = [mixed_rate_plan.starts_uutc[mixed_rate_plan.index(n)] for n in g.channels]
        assert g.grid.start_uutc == min(starts)
    assert len({mixed_rate_plan.starts_uutc[i] for i in range(6)}) == 3  # staggered


def test_each_group_reads_what_was_written(reader, mixed_rate_plan, expected_read):
    for g in reader.info.rate_groups:
        got = reader.read(g.channels, dtype="float64")
        np.testing.assert_array_equal(
            got, expected_read(mixed_rate_plan, g.channels, g.grid, 0, g.grid.n_samples, "float64")
        )
        # NaN before a late channel's start, data from it
        for row, name in zip(got, g.channels, strict=True):
            k = g.grid.index_at(mixed_rate_plan.starts_uutc[mixed_rate_plan.index(name)])
            assert np.isnan(row[:k]).all() and not np.isnan(row[k])
        assert {
            g.grid.index_at(mixed_rate_plan.starts_uutc[mixed_rate_plan.index(n)])
            for n in g.channels
        } == {0, int(2.5 * g.fs), int(5 * g.fs)}


def test_windows_on_each_group(reader, mixed_rate_plan, expected_read):
    for g in reader.info.rate_groups:
        for t0, t1 in [
            (g.grid.start_uutc + 39_000_000, g.grid.start_uutc + 41_000_000),
            (g.grid.start_uutc - 1_000_000, g.grid.start_uutc + 3_000_000),
        ]:
            k0, k1 = g.grid.indices(t0, t1)
            np.testing.assert_array_equal(
                reader.read(g.channels, t0, t1),
                expected_read(mixed_rate_plan, g.channels, g.grid, k0, k1),
            )


def test_cross_rate_read_names_the_groups(reader):
    with pytest.raises(MixedRatesError) as err:
        reader.read(["ch000", "ch001"])
    msg = str(err.value)
    assert "1024 Hz" in msg and "256 Hz" in msg and "'ch000'" in msg and "'ch001'" in msg
    with pytest.raises(MixedRatesError):
        reader.read()  # all channels: two rates
    with pytest.raises(MixedRatesError):
        reader.read_raw(["ch000", "ch001"], 0, 10)


def test_read_groups(reader):
    t0 = reader.info.start_uutc + 10_000_000
    out = reader.read_groups(None, t0, t0 + 1_000_000)
    assert sorted(out) == [256.0, 1024.0]
    for fs, (names, data) in out.items():
        assert data.shape == (len(names), int(fs))
        np.testing.assert_array_equal(data, reader.read(names, t0, t0 + 1_000_000))


def test_engines_agree_on_mixed_rates(mixed_rate_recording, open_all):
    a, *others = open_all(mixed_rate_recording)
    for b in others:
        assert a.info.rate_groups == b.info.rate_groups and a.info.spans == b.info.spans
        for g in a.info.rate_groups:
            np.testing.assert_array_equal(a.read(g.channels), b.read(g.channels))


def test_rate_change_between_segments(rate_change_recording, engine):
    with open_reader(rate_change_recording, engine=engine) as r:
        assert r.info.names == ("changes", "segmented", "steady")
        assert (
            r.info.channel("changes").end_uutc == r.info.channel("changes").start_uutc + 40_000_000
        )
        steady = r.read("steady", None, r.info.start_uutc + 20_000_000)
        assert steady.shape == (1, 256 * 20) and not np.isnan(steady).any()
        for call in (
            lambda: r.read("changes"),
            lambda: r.read_raw("changes", 0, 10),
            lambda: r.block_envelope("changes"),
        ):
            with pytest.raises(RateChangeError, match=r"'changes'.*256 Hz, 512 Hz"):
                call()
        with pytest.raises(RateChangeError):
            r.read(["steady", "changes"])


def test_segments_of_one_rate_are_not_a_rate_change(rate_change_recording, open_all):
    a, *others = readers = open_all(rate_change_recording)
    for r in readers:
        assert "segmented" not in r.rate_changes
        assert len(r.info.gaps("segmented")) == 1
        c = r.info.channel("segmented")
        assert c.end_uutc - c.start_uutc == 25_000_000
        x = r.read("segmented", c.start_uutc, c.end_uutc, dtype="float64")[0]
        assert x.size == 256 * 25 and np.isnan(x).sum() == 256 * 5
    for b in others:
        assert a.info.spans["segmented"] == b.info.spans["segmented"]
        np.testing.assert_array_equal(a.read("segmented"), b.read("segmented"))
