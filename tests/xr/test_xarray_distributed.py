"""Everything pickles (specs travel, readers do not) and computes on a dask.distributed cluster."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import mef3lab
from mef3lab import sources as source
from mef3lab.readers import open_reader
from mef3lab.xr.array import Mef3BackendArray


@pytest.mark.parametrize("chunks", [{}, None])
def test_pickle_round_trip_reopens_lazily(recording, chunks):
    ds = mef3lab.open_recording(recording, chunks=chunks)
    blob = pickle.dumps(ds)
    da_blob = pickle.dumps(ds.signal.sel(channel=["ch002", "ch005"], time=slice(100, 160)))
    assert len(blob) < 200_000  # specs and index parameters, no reader, no samples, no time axis
    source.REGISTRY.close_all()  # as in a fresh worker process: nothing cached

    back = pickle.loads(blob)
    assert back.signal.dims == ("channel", "time") and back.sizes == ds.sizes
    assert back.xindexes["time"].equals(ds.xindexes["time"])
    ref = open_reader(recording).read_index(None, 0, ds.sizes["time"])
    np.testing.assert_array_equal(back.signal.values, ref)

    sub = pickle.loads(da_blob)
    np.testing.assert_array_equal(sub.values, ref[[2, 5], 100 * 256 : 160 * 256 + 1])
    np.testing.assert_array_equal(sub.time.values, np.arange(100 * 256, 160 * 256 + 1) / 256)


def test_backend_array_pickles_its_spec_only(encrypted_recording, passwords):
    spec = source.resolve(encrypted_recording, passwords.level2)
    arr = Mef3BackendArray(spec, ("ch000",), 100, "float32")
    source.REGISTRY.acquire(spec)  # a reader is open in this process...
    back = pickle.loads(pickle.dumps(arr))  # ...but only the spec travels
    assert back.spec == spec and back.shape == (1, 100)
    assert not any(isinstance(v, source.EmbeddedSource) for v in vars(back).values())


def test_mean_on_a_local_cluster_equals_numpy(mixed_rate_recording):
    distributed = pytest.importorskip("distributed")
    # float64 so that chunked (dask) and whole-array (numpy) summation orders agree closely
    ds = mef3lab.open_recording(mixed_rate_recording, dtype="float64")
    reader = open_reader(mixed_rate_recording)
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=40,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        futures = {name: da.mean(da.dims[1]) for name, da in ds.data_vars.items()}
        means = client.compute(futures, sync=True)
    for g in reader.info.rate_groups:
        name = next(n for n in ds.data_vars if ds[n].attrs["fs"] == g.fs)
        data = reader.read_index(g.channels, 0, g.grid.n_samples, "float64")
        assert np.isnan(data).any()  # gaps and staggered starts: .mean skips NaN (skipna=True)
        np.testing.assert_allclose(
            means[name].values, np.nanmean(data, axis=1), rtol=1e-9, atol=1e-9
        )
