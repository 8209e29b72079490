"""Every engine returns what pymef returns, for files of two different writers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mef3lab.errors import TimeRangeError
from mef3lab.readers import open_reader

FILES = ("recording", "pymef_recording")


@pytest.fixture(
    scope="module", params=[(f, e) for f in FILES for e in ("mef3io", "numba")], ids=str
)
def pair(request):
    """(path, pymef reader, other engine's reader) for each writer's file."""
    file, other = request.param
    path = request.getfixturevalue(file)
    readers = [open_reader(path, engine=e) for e in ("pymef", other)]
    yield path, readers[0], readers[1]
    for r in readers:
        r.close()


def windows(info):
    """Windows of interest in µUTC: gaps straddled, edges overrun, tiny ones inside a block."""
    g = info.rate_groups[0].grid
    ch = info.channels[0].name
    out = [
        (g.start_uutc, g.end_uutc),  # everything
        (g.start_uutc - 5_000_000, g.start_uutc + 2_000_000),  # starts before the recording
        (g.end_uutc - 3_000_000, g.end_uutc + 7_777_777),  # ends after it
        (g.start_uutc - 1, g.end_uutc + 1),  # both, by a microsecond
        (g.uutc_of(300), g.uutc_of(303)),  # 3 samples inside the first block
        (g.uutc_of(700), g.uutc_of(701)),  # one sample
        (g.uutc_of(700) + 1_000, g.uutc_of(705) - 1_000),  # off-grid ends
    ]
    for gap in info.gaps(ch):
        out.append((gap.start_uutc - 1_000_000, gap.end_uutc + 1_000_000))  # straddles the gap
        out.append((gap.start_uutc - 10_000, gap.start_uutc + 10_000))  # just its edge
        out.append((gap.start_uutc + 1, gap.end_uutc - 1))  # (mostly) inside it
    return out


def test_channels_spans_and_annotations_agree(pair):
    _, a, b = pair
    assert a.info.channels == b.info.channels
    assert a.info.spans == b.info.spans
    assert a.info.annotations == b.info.annotations
    assert a.info.rate_groups == b.info.rate_groups


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_same_samples_on_every_window_of_interest(pair, dtype):
    _, a, b = pair
    for t0, t1 in windows(a.info):
        try:
            x = a.read(None, t0, t1, dtype)
        except TimeRangeError:  # a window inside a gap that is wholly outside: both refuse it
            with pytest.raises(TimeRangeError):
                b.read(None, t0, t1, dtype)
            continue
        y = b.read(None, t0, t1, dtype)
        assert x.dtype == y.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(x, y, err_msg=f"window [{t0}, {t1})")


def test_same_raw_counts(pair):
    _, a, b = pair
    g = a.info.rate_groups[0].grid
    for k0, k1 in [
        (-100, 600),
        (0, g.n_samples),
        (g.n_samples - 50, g.n_samples + 50),
        (12_345, 12_346),
    ]:
        ra, rb = a.read_raw(None, k0, k1), b.read_raw(None, k0, k1)
        np.testing.assert_array_equal(ra.counts, rb.counts)
        np.testing.assert_array_equal(ra.factors, rb.factors)


def test_same_block_envelope(pair):
    _, a, b = pair
    g = a.info.rate_groups[0].grid
    for name in a.info.names:
        for t0, t1 in [(None, None), (g.uutc_of(3000), g.uutc_of(9000))]:
            ea, eb = a.block_envelope(name, t0, t1), b.block_envelope(name, t0, t1)
            assert set(ea) == set(eb) == {"start_uutc", "end_uutc", "min", "max"}
            for key in ea:
                np.testing.assert_array_equal(ea[key], eb[key], err_msg=f"{name} {key}")


def test_block_envelope_bounds_the_data(pair):
    _, a, _ = pair
    name = a.info.names[0]
    env = a.block_envelope(name)
    blocks = zip(env["start_uutc"], env["end_uutc"], env["min"], env["max"], strict=True)
    for t0, t1, lo, hi in blocks:
        x = a.read(name, int(t0), int(t1), "float64")[0]
        assert np.nanmin(x) == lo and np.nanmax(x) == hi


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    start=st.floats(-0.02, 1.0),
    length=st.floats(1e-6, 0.3),
    dtype=st.sampled_from(["float32", "float64"]),
)
def test_random_windows_agree(pair, start, length, dtype):
    _, a, b = pair
    g = a.info.rate_groups[0].grid
    span = g.end_uutc - g.start_uutc
    t0 = g.start_uutc + int(start * span)
    t1 = t0 + max(1, int(length * span))
    if t1 <= g.start_uutc or t0 >= g.end_uutc:
        return
    np.testing.assert_array_equal(a.read(None, t0, t1, dtype), b.read(None, t0, t1, dtype))
