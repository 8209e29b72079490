"""Display decimation keeps every peak, in time order, and leaves gaps visible."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mef3lab.signal.decimate import envelope, minmax_points


def test_envelope_matches_a_direct_min_max_per_bin():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 1000)).astype(np.float32)
    x[1, 200:450] = np.nan
    env = envelope(x, 7)
    starts = (np.arange(7) * 1000) // 7
    for b, (a, z) in enumerate(zip(starts, list(starts[1:]) + [1000], strict=True)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the all-NaN bin
            np.testing.assert_array_equal(env[0, :, b], np.nanmin(x[:, a:z], axis=1))
            np.testing.assert_array_equal(env[1, :, b], np.nanmax(x[:, a:z], axis=1))
    assert env.dtype == np.float32 and env.shape == (2, 3, 7)


@pytest.mark.parametrize(("n", "bins"), [(32000, 1031), (1500, 1000), (64, 64), (10, 3)])
def test_envelope_of_bins_of_two_widths_keeps_each_bins_first_and_last_sample(n, bins):
    # a spike on the first and on the last sample of every bin: none may be lost or moved
    x = np.zeros((2, n), np.int32)
    starts = (np.arange(bins) * n) // bins
    ends = np.append(starts[1:], n)
    x[0, starts], x[0, ends - 1] = -5, 7
    x[1, ends - 1] = -3
    env = envelope(x, bins)
    assert env.dtype == np.float32 and env.shape == (2, 2, bins)
    wide = ends - starts > 1  # a bin of one sample holds only the last one's spike
    assert (env[0, 0] == np.where(wide, -5, 7)).all() and (env[1, 0] == 7).all()
    assert (env[0, 1] == -3).all() and (env[1, 1] == np.where(wide, 0, -3)).all()


def test_all_nan_bin_stays_nan():
    x = np.ones((1, 100), np.float64)
    x[0, 50:] = np.nan
    env = envelope(x, 2)
    assert env[0, 0, 0] == 1 and np.isnan(env[:, 0, 1]).all()


def test_minmax_points_keep_a_spike_in_time_order():
    x = np.zeros((2, 10_000), np.float32)
    x[0, 1234] = 50.0
    x[0, 1240] = -30.0
    x[1, 7777] = -9.0
    pts = minmax_points(x, 100)
    assert pts.shape == (2, 100)
    assert pts[0].max() == 50 and pts[0].min() == -30 and pts[1].min() == -9
    bin_of_spike = pts[0].tolist().index(50.0) // 2
    assert pts[0, 2 * bin_of_spike : 2 * bin_of_spike + 2].tolist() == [
        50.0,
        -30.0,
    ]  # max came first


def test_short_rows_come_back_unchanged():
    x = np.arange(20, dtype=np.float64).reshape(2, 10)
    assert minmax_points(x, 50) is x


def test_minmax_points_in_blocks_equal_the_whole_at_once(monkeypatch):
    """Any column blocks give the same points: extremes across a block edge, ties, NaN bins."""
    from mef3lab.signal import decimate

    rng = np.random.default_rng(7)
    x = rng.integers(-3, 4, (3, 5000)).astype(np.float32)  # many ties
    x[rng.random(x.shape) < 0.2] = np.nan
    x[:, 1000:1700] = np.nan  # whole bins of gap
    whole = minmax_points(x, 40)  # one block: CHUNK_BYTES holds all of it
    for chunk in (12, 100, 4096):
        monkeypatch.setattr(decimate, "CHUNK_BYTES", chunk)
        assert np.array_equal(minmax_points(x, 40), whole, equal_nan=True)
    lo, hi = envelope(x, 20)
    assert np.array_equal(np.fmin(whole[:, 0::2], whole[:, 1::2]), lo, equal_nan=True)
    assert np.array_equal(np.fmax(whole[:, 0::2], whole[:, 1::2]), hi, equal_nan=True)
