"""A channel whose MEF segments store different conversion factors (a gain change): every
sample is scaled by its own segment's factor, by every engine and embedded xarray, as mef3io
reads it; int32 with one factor per channel is refused for it rather than silently wrong."""

from __future__ import annotations

import numpy as np
import pytest

import mef3lab
from mef3lab.errors import FactorChangeError
from mef3lab.readers import open_reader

FACTORS = (0.5, 0.1, 0.25)  # 'gain', segment by segment (tests/conftest.py FACTOR_SEGMENTS)
STEADY = 0.2
#: Inside segment 0, inside segment 1, across the seamless change, across the gap into
#: segment 2, and everything with samples outside the recording on both sides.
WINDOWS = [(1000, 5000), (12_000, 15_000), (9000, 12_000), (19_000, 23_000), (-100, 30_820)]


@pytest.fixture(scope="module")
def mef3io_reader(factor_change_recording):
    with open_reader(factor_change_recording, engine="mef3io") as r:
        yield r


def test_mef3io_scales_each_segment_by_its_own_factor(
    mef3io_reader, factor_change_recording, direct_read
):
    info = mef3io_reader.info
    assert [f for _, f in info.factor_changes["gain"]] == list(FACTORS)
    assert "steady" not in info.factor_changes
    runs = info.factor_runs("gain")
    assert runs.starts == (0, 10_240, 20_992) and runs.factors == (
        0.5,
        0.1,
        0.25,
    )  # 2 s gap = 512 samples
    g = info.group_of(["gain"]).grid
    raw = mef3io_reader.read_raw(["gain"], 0, g.n_samples)
    got = mef3io_reader.read_index(["gain"], 0, g.n_samples, "float64")[0]
    want = direct_read(factor_change_recording, "gain", g.start_uutc, g.end_uutc, dtype="float64")[
        0
    ]
    np.testing.assert_array_equal(got, want)
    # exactly count × that segment's factor
    for k, f in zip(runs.starts, runs.factors, strict=True):
        assert got[k] == raw.counts[0, k] * f and got[k + 100] == raw.counts[0, k + 100] * f


@pytest.mark.parametrize("engine", ["numba", "pymef"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_engine_reads_as_mef3io(mef3io_reader, factor_change_recording, engine, dtype):
    with open_reader(factor_change_recording, engine=engine) as r:
        for k0, k1 in WINDOWS:
            want = mef3io_reader.read_index(["gain", "steady"], k0, k1, dtype)
            np.testing.assert_array_equal(
                r.read_index(["steady", "gain"], k0, k1, dtype), want[::-1]
            )


@pytest.mark.parametrize("k0,k1", WINDOWS)
def test_read_raw_says_where_the_factor_changes(mef3io_reader, k0, k1):
    raw = mef3io_reader.read_raw(["steady", "gain"], k0, k1)
    assert 0 not in raw.changes and raw.factors[0] == STEADY
    crosses = any(k0 < s < k1 for s in (10_240, 20_992))
    assert (1 in raw.changes) == crosses
    for dtype in ("float32", "float64"):
        np.testing.assert_array_equal(
            raw.to_float(dtype), mef3io_reader.read_index(["steady", "gain"], k0, k1, dtype)
        )


@pytest.mark.parametrize("engine", ["numba", "mef3io"])
def test_embedded_xarray_reads_as_mef3io(mef3io_reader, factor_change_recording, engine):
    ds = mef3lab.open_recording(factor_change_recording, engine=engine)
    try:
        g = mef3io_reader.info.group_of(["gain"]).grid
        want = mef3io_reader.read_index(["gain", "steady"], 0, g.n_samples)
        np.testing.assert_array_equal(ds.signal.sel(channel=["gain", "steady"]).values, want)
    finally:
        ds.close()


def test_embedded_xarray_int32_refuses_a_changing_factor(factor_change_recording, mef3io_reader):
    ds = mef3lab.open_recording(factor_change_recording, dtype="int32")
    try:
        g = mef3io_reader.info.group_of(["gain"]).grid
        np.testing.assert_array_equal(
            ds.signal.sel(channel="steady").values,
            mef3io_reader.read_raw(["steady"], 0, g.n_samples).counts[0],
        )
        with pytest.raises(FactorChangeError, match="'gain' stores different conversion factors"):
            ds.signal.sel(channel="gain").values  # noqa: B018 - the access is what raises
    finally:
        ds.close()


@pytest.mark.parametrize("engine", ["numba", "pymef"])
def test_block_envelopes_scale_each_block_by_its_segments_factor(
    mef3io_reader, factor_change_recording, engine
):
    want = mef3io_reader.block_envelope("gain")
    with open_reader(factor_change_recording, engine=engine) as r:
        got = r.block_envelope("gain")
    for key in ("start_uutc", "end_uutc", "min", "max"):
        np.testing.assert_array_equal(got[key], want[key])
