"""Gathering cached counts into any dtype: bit for bit what a reader's float read computes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mef3lab.readers.base import RAW_NAN, RawSamples
from mef3lab.server.convert import gather

SEG = 100
NAMES = ["a", "b", "c"]
FACTORS = [0.1, 1.0 / 3.0, 7.25e-3]  # values whose products round differently in float32


def pieces(n_seg: int, seed: int = 0):
    """`n_seg` consecutive segments of every channel, with gaps, and the counts they hold end to end."""
    rng = np.random.default_rng(seed)
    whole = rng.integers(-2**31 + 1, 2**31 - 1, (len(NAMES), n_seg * SEG), dtype=np.int64).astype(np.int32)
    whole[rng.random(whole.shape) < 0.1] = RAW_NAN
    return [(i * SEG, {n: whole[j, i * SEG:(i + 1) * SEG] for j, n in enumerate(NAMES)})
            for i in range(n_seg)], whole


@settings(max_examples=200, deadline=None)
@given(order=st.permutations(range(3)), k0=st.integers(-150, 350), n=st.integers(0, 300),
       dtype=st.sampled_from(["float32", "float64", "int32"]))
def test_gather_equals_the_reader_arithmetic(order, k0, n, dtype):
    segs, whole = pieces(3)
    names = [NAMES[i] for i in order]
    factors = [FACTORS[i] for i in order]
    got = gather(segs, names, factors, k0, k0 + n, dtype)
    # What a reader returns for [k0, k0 + n): gaps outside the grid of 300 samples.
    padded = np.full((3, n), RAW_NAN, np.int32)
    a, b = max(k0, 0), min(k0 + n, whole.shape[1])
    if b > a:
        padded[:, a - k0:b - k0] = whole[list(order), a:b]
    if dtype == "int32":
        want = padded
    else:
        want = RawSamples(padded, np.array(factors)).to_float(dtype)
    assert got.dtype == want.dtype and got.shape == want.shape
    if dtype == "int32":
        np.testing.assert_array_equal(got, want)
    else:  # NaN exactly where the counts are gaps, bit-identical elsewhere
        ok = ~np.isnan(want)
        assert np.isnan(got[~ok]).all() and got[ok].tobytes() == want[ok].tobytes()


def test_a_row_repeated_in_the_request_is_served_twice():
    segs, whole = pieces(1)
    got = gather(segs, ["b", "b"], [1.0, 1.0], 0, SEG, "int32")
    np.testing.assert_array_equal(got, whole[[1, 1]])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_read_only_cached_rows_convert(dtype):
    segs, whole = pieces(1)
    for rows in (r for _, r in segs):
        for row in rows.values():
            row.flags.writeable = False
    got = gather(segs, NAMES, FACTORS, 0, SEG, dtype)
    np.testing.assert_array_equal(got, RawSamples(whole, np.array(FACTORS)).to_float(dtype))
