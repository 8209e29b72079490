"""dtype="int32": the stored counts and a conversion factor per channel, here and via a server."""

from __future__ import annotations

import numpy as np
import pytest

import mef3lab
from mef3lab.readers import RAW_NAN, open_reader
from mef3lab.server.process import ServerProcess


@pytest.fixture(scope="module")
def raw_server():
    with ServerProcess(n_process_workers=1, n_prefetch=1) as srv:
        yield srv


@pytest.mark.parametrize("remote", [False, True], ids=["embedded", "server"])
def test_counts_and_factors_give_the_values(recording, raw_server, remote):
    ds = mef3lab.open_recording(
        recording, dtype="int32", address=raw_server.address if remote else None
    )
    try:
        da = ds.signal.sel(time=slice(55.0, 65.0))  # across the 0.4 s gap at 61.2 s
        counts = da.values
        assert counts.dtype == np.int32 and da.attrs["gap_value"] == RAW_NAN
        reader = open_reader(recording)
        k0 = int(round(55.0 * 256))
        np.testing.assert_array_equal(
            counts, reader.read_raw(None, k0, k0 + counts.shape[1]).counts
        )
        values = np.where(counts == RAW_NAN, np.nan, counts * ds.conversion_factor.values[:, None])
        np.testing.assert_array_equal(
            values, reader.read_index(None, k0, k0 + counts.shape[1], "float64")
        )
        assert (counts == RAW_NAN).any()  # the gap is there, marked, not zero
    finally:
        ds.close()
