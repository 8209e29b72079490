"""Remote mode on a dask.distributed cluster: workers read through the server; datasets pickle."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import mef3lab
from mef3lab import sources as source
from mef3lab.client import Mef3Client
from mef3lab.readers import open_reader
from mef3lab.sources import RemoteSource


@pytest.mark.parametrize("chunks", [{}, None])
def test_pickle_round_trip_of_a_remote_dataset(
    shared_server, encrypted_recording, passwords, chunks
):
    uri = f"mef3://{shared_server.address}{encrypted_recording}"
    ds = mef3lab.open_recording(uri, password=passwords.level2, chunks=chunks)
    blob = pickle.dumps(ds)
    sub_blob = pickle.dumps(ds.signal.sel(channel=["ch002", "ch000"], time=slice(19.5, 21.0)))
    assert len(blob) < 200_000  # the spec and index parameters: no connection, no samples
    source.REGISTRY.close_all()  # as in a fresh worker process: no connection yet

    back = pickle.loads(blob)
    assert back.attrs["mef3_address"] == shared_server.address and back.sizes == ds.sizes
    reader = open_reader(encrypted_recording, passwords.level2)
    n = reader.info.rate_groups[0].grid.n_samples
    np.testing.assert_array_equal(back.signal.values, reader.read_index(None, 0, n))
    # the copy reopened its own connection to the server, with the password the spec carries
    spec = source.resolve(uri, passwords.level2)
    assert isinstance(source.REGISTRY.acquire(spec), RemoteSource)

    sub = pickle.loads(sub_blob)
    k0, k1 = int(19.5 * 256), 21 * 256 + 1
    np.testing.assert_array_equal(sub.values, reader.read_index(["ch002", "ch000"], k0, k1))


def test_mean_on_a_local_cluster_reading_through_the_server(server, mixed_rate_recording):
    distributed = pytest.importorskip("distributed")
    ds = mef3lab.open_recording(mixed_rate_recording, address=server.address, dtype="float64")
    with Mef3Client(server.address) as stats_client:
        before = stats_client.stats()
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
            # each worker process opened its own connection: this process's, plus the workers'
            during = stats_client.stats()
        after = stats_client.stats()
    assert during["clients"] >= 2, during
    reader = open_reader(mixed_rate_recording)
    n_samples = sum(len(g.channels) * g.grid.n_samples for g in reader.info.rate_groups)
    # the workers read every sample from the server (this process read none)
    assert during["decoded_samples"] - before["decoded_samples"] >= n_samples
    assert during["misses"] + during["hits"] > before["misses"] + before["hits"]
    assert after["clients"] <= during["clients"]
    for g in reader.info.rate_groups:
        name = next(n for n in ds.data_vars if ds[n].attrs["fs"] == g.fs)
        data = reader.read_index(g.channels, 0, g.grid.n_samples, "float64")
        assert np.isnan(data).any()  # gaps and staggered starts: .mean skips NaN (skipna=True)
        np.testing.assert_allclose(
            means[name].values, np.nanmean(data, axis=1), rtol=1e-9, atol=1e-9
        )
