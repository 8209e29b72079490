"""A recording with a damaged channel opens in xarray, here and through a server.

The channel is left out of the variables and named, with its reason, in the Dataset's attrs;
the others read as intact.
"""

from __future__ import annotations

import numpy as np
import pytest

import mef3lab
from mef3lab.testing.damage import damaged_copy


@pytest.mark.parametrize("where", ["in-process", "server"])
def test_damaged_channel_is_named_in_the_attrs(recording, tmp_path, shared_server, where):
    path = damaged_copy(recording, tmp_path / "damaged.mefd", "tidx-truncated-half", "ch003")
    ds = mef3lab.open_recording(path, address=shared_server.address if where == "server" else False)
    intact = mef3lab.open_recording(recording, address=False)
    try:
        assert "ch003" not in ds.channel.values and len(ds.channel) == 7
        assert ds.attrs["damaged_channels"].startswith("ch003: ")
        kept = [str(c) for c in ds.channel.values]
        np.testing.assert_array_equal(
            ds.signal.isel(time=slice(0, 30_000)).values,
            intact.signal.sel(channel=kept).isel(time=slice(0, 30_000)).values,
        )
        assert "damaged_channels" not in intact.attrs
    finally:
        ds.close()
        intact.close()
