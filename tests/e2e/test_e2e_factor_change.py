"""A channel whose MEF segments store different conversion factors, through a real server: the
channel-segment cache holds counts, and every reply scales each sample by its own segment's
factor, sample for sample as a direct mef3io read, for windows inside one MEF segment and across
a change, in every cached segment (one of which holds a change); int32 (one factor per channel)
is refused with a clear error."""

from __future__ import annotations

import numpy as np
import pytest

import mef3lab
from mef3lab.client import Mef3Client
from mef3lab.errors import FactorChangeError
from mef3lab.readers import open_reader

from .conftest import assert_same

SEG_S = 15.0  # server segments of 3840 samples: the change at sample 10240 lies inside segment 2
N = 30_720
#: Inside MEF segment 0, inside segment 1, across the seamless change, across the gap into
#: segment 2, and the whole recording with samples outside it on both sides.
WINDOWS = [(1000, 5000), (12_000, 15_000), (9000, 12_000), (19_000, 23_000), (-100, N + 100)]


@pytest.fixture(scope="module")
def direct(factor_change_recording):
    with open_reader(factor_change_recording, engine="mef3io") as r:
        yield r


@pytest.fixture(scope="module")
def srv(module_launch):
    return module_launch(segment_seconds=SEG_S, n_prefetch=1)


@pytest.fixture(scope="module", params=[None, "pymef", "mef3io"])
def client(request, srv, factor_change_recording):
    """A client of the server reading the recording with its default engine, or the one named."""
    with Mef3Client(srv.address, client_id=f"factors-{request.param}") as c:
        c.open_file(factor_change_recording, engine=request.param)
        yield c


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("k0,k1", WINDOWS)
def test_reads_scale_each_sample_by_its_segments_factor(
    client, direct, factor_change_recording, dtype, k0, k1
):
    names = ["steady", "gain"]
    assert_same(
        client.read_index(factor_change_recording, k0, k1, names, dtype=dtype),
        direct.read_index(names, k0, k1, dtype),
    )
    assert_same(
        client.read_index(factor_change_recording, k0, k1, ["gain"], dtype=dtype),  # now cached
        direct.read_index(["gain"], k0, k1, dtype),
    )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_segment_as_the_direct_read(client, direct, factor_change_recording, dtype):
    seg = int(SEG_S * 256)
    for i in range(N // seg):
        assert_same(
            client.get_signal_segment(factor_change_recording, i, ["gain", "steady"], dtype=dtype),
            direct.read_index(["gain", "steady"], i * seg, (i + 1) * seg, dtype),
        )


def test_envelope_scales_each_segment_by_its_factor(client, direct, factor_change_recording):
    g = direct.info.group_of(["gain"]).grid
    env = client.read_envelope(factor_change_recording, g.start_uutc, g.end_uutc, 30, ["gain"])
    values = direct.read_index(["gain"], 0, N)[0].reshape(30, -1)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(env[0, 0], np.nanmin(values, axis=1))
        np.testing.assert_array_equal(env[1, 0], np.nanmax(values, axis=1))


def test_the_client_knows_where_factors_change(client, direct, factor_change_recording):
    info = client.info(factor_change_recording)
    assert info.factor_changes == direct.info.factor_changes and set(info.factor_changes) == {
        "gain"
    }
    assert info.factor_runs("gain") == direct.info.factor_runs("gain")


def test_int32_of_a_changing_factor_is_refused(client, direct, factor_change_recording):
    with pytest.raises(
        FactorChangeError,
        match=r"'gain' stores different conversion factors in its MEF "
        r"segments \(0.5, 0.1, 0.25 units per count\)",
    ):
        client.read_raw(factor_change_recording, 0, 1000, ["steady", "gain"])
    raw = client.read_raw(factor_change_recording, 0, N, ["steady"])  # the server goes on serving
    np.testing.assert_array_equal(raw.counts, direct.read_raw(["steady"], 0, N).counts)
    assert raw.factors.tolist() == [0.2]


def test_xarray_through_the_server(srv, direct, factor_change_recording):
    ds = mef3lab.open_recording(factor_change_recording, address=srv.address)
    try:
        assert_same(
            ds.signal.sel(channel=["gain", "steady"]).values,
            direct.read_index(["gain", "steady"], 0, N),
        )
    finally:
        ds.close()
    ds = mef3lab.open_recording(factor_change_recording, address=srv.address, dtype="int32")
    try:
        steady = direct.read_raw(["steady"], 0, N).counts[0]
        np.testing.assert_array_equal(ds.signal.sel(channel="steady").values, steady)
        with pytest.raises(FactorChangeError, match="read it as float32 or float64"):
            _ = ds.signal.sel(channel="gain").values
    finally:
        ds.close()
