"""A window over cached counts, in any dtype and cut any way.

Bit for bit what a reader's read computes.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mef3lab.model import RAW_NAN, FactorRuns, RawSamples
from mef3lab.server.core.convert import Window

SEG = 100
NAMES = ["a", "b", "c"]
FACTORS = [0.1, 1.0 / 3.0, 7.25e-3]  # values whose products round differently in float32


def pieces(n_seg: int, seed: int = 0):
    """`n_seg` consecutive segments of every channel, with gaps, and their counts end to end."""
    rng = np.random.default_rng(seed)
    whole = rng.integers(-(2**31) + 1, 2**31 - 1, (len(NAMES), n_seg * SEG), dtype=np.int64).astype(
        np.int32
    )
    whole[rng.random(whole.shape) < 0.1] = RAW_NAN
    return [
        (i * SEG, {n: whole[j, i * SEG : (i + 1) * SEG] for j, n in enumerate(NAMES)})
        for i in range(n_seg)
    ], whole


@settings(max_examples=200, deadline=None)
@given(
    order=st.permutations(range(3)),
    k0=st.integers(-150, 350),
    n=st.integers(0, 300),
    dtype=st.sampled_from(["float32", "float64", "int32"]),
)
def test_a_window_equals_the_reader_arithmetic(order, k0, n, dtype):
    segs, whole = pieces(3)
    names = [NAMES[i] for i in order]
    factors = [FACTORS[i] for i in order]
    got = Window(segs, names, [FactorRuns.single(f) for f in factors], k0, k0 + n).array(dtype)
    # What a reader returns for [k0, k0 + n): gaps outside the grid of 300 samples.
    padded = np.full((3, n), RAW_NAN, np.int32)
    a, b = max(k0, 0), min(k0 + n, whole.shape[1])
    if b > a:
        padded[:, a - k0 : b - k0] = whole[list(order), a:b]
    want = padded if dtype == "int32" else RawSamples(padded, np.array(factors)).to_float(dtype)
    assert got.dtype == want.dtype and got.shape == want.shape
    if dtype == "int32":
        np.testing.assert_array_equal(got, want)
    else:  # NaN exactly where the counts are gaps, bit-identical elsewhere
        ok = ~np.isnan(want)
        assert np.isnan(got[~ok]).all() and got[ok].tobytes() == want[ok].tobytes()


def test_a_row_repeated_in_the_request_is_served_twice():
    segs, whole = pieces(1)
    got = Window(segs, ["b", "b"], [FactorRuns.single(1.0)] * 2, 0, SEG).array("int32")
    np.testing.assert_array_equal(got, whole[[1, 1]])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_read_only_cached_rows_convert(dtype):
    segs, whole = pieces(1)
    for rows in (r for _, r in segs):
        for row in rows.values():
            row.flags.writeable = False
    got = Window(segs, NAMES, [FactorRuns.single(f) for f in FACTORS], 0, SEG).array(dtype)
    np.testing.assert_array_equal(got, RawSamples(whole, np.array(FACTORS)).to_float(dtype))


@settings(max_examples=200, deadline=None)
@given(
    k0=st.integers(-50, 350),
    n=st.integers(0, 300),
    dtype=st.sampled_from(["float32", "float64"]),
    cuts=st.lists(st.integers(-20, 320), min_size=1, max_size=4, unique=True),
)
def test_a_factor_changing_within_the_read_scales_each_sample_by_its_own(k0, n, dtype, cuts):
    # As a reader does for a channel whose MEF segments store different factors: each count
    # times the factor in effect at its sample, float64 exact, float32 rounded once.
    segs, whole = pieces(3)
    starts = tuple(sorted(cuts))
    runs = FactorRuns(starts, tuple(FACTORS[i % 3] * (i + 1) for i in range(len(starts))))
    got = Window(segs, NAMES, [runs] * 3, k0, k0 + n).array(dtype)
    padded = np.full((3, n), RAW_NAN, np.int32)
    a, b = max(k0, 0), min(k0 + n, whole.shape[1])
    if b > a:
        padded[:, a - k0 : b - k0] = whole[:, a:b]
    scale = np.array(
        [runs.factors[max(np.searchsorted(starts, k, "right") - 1, 0)] for k in range(k0, k0 + n)]
    )
    want = padded.astype(np.float64) * scale
    want[padded == RAW_NAN] = np.nan
    want = want.astype(dtype)
    ok = ~np.isnan(want)
    assert (
        got.shape == want.shape
        and np.isnan(got[~ok]).all()
        and got[ok].tobytes() == want[ok].tobytes()
    )
    window = runs.window(k0, k0 + n)  # what read_raw hands out: the same values
    raw = RawSamples(
        padded, np.full(3, window.factors[0]), {i: window for i in range(3)} if n else {}
    )
    assert raw.to_float(dtype)[ok].tobytes() == want[ok].tobytes()


@settings(max_examples=200, deadline=None)
@given(
    k0=st.integers(-150, 350),
    n=st.integers(0, 300),
    dtype=st.sampled_from(["float32", "float64", "int32"]),
    max_bytes=st.integers(1, 4000),
    cut=st.integers(-20, 320),
)
def test_pieces_and_blocks_are_the_array_cut_into_messages(k0, n, dtype, max_bytes, cut):
    # What a reply sends, message by message from one reused buffer, is the whole array's bytes.
    segs, _ = pieces(3)
    runs = FactorRuns.single(0.1) if dtype == "int32" else FactorRuns((0, cut), (0.1, 0.3))
    window = Window(segs, ["c", "a", "c"], [runs] * 3, k0, k0 + n)
    whole = window.array(dtype)
    parts = list(window.pieces(dtype, max_bytes))
    assert parts and all(len(p) <= max(max_bytes, whole.itemsize) for p in parts)
    assert b"".join(parts) == whole.tobytes()
    blocks = [(a, b, v.copy()) for a, b, v in window.blocks(dtype, max_bytes)]
    assert (
        blocks[0][0] == 0
        and blocks[-1][1] == n
        and all(p[1] == q[0] for p, q in zip(blocks, blocks[1:], strict=False))
    )
    assert all(v.shape == (3, b - a) and v.dtype == whole.dtype for a, b, v in blocks)
    assert np.concatenate([v for _, _, v in blocks], axis=1).tobytes() == whole.tobytes()
