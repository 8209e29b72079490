"""Remote mode, bad input and failures.

A clear exception naming what went wrong, never a hang or NaNs.
"""

from __future__ import annotations

import socket
import threading
import time

import dask
import numpy as np
import pytest
import xarray as xr
from _remote import start_server

import mef3lab
from mef3lab import sources as source
from mef3lab.errors import RecordingNotFoundError, ServerUnavailableError, UnknownChannelError
from mef3lab.readers import open_reader
from mef3lab.sources import RemoteSource


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unknown_channel_names_it(shared_server, recording):
    with pytest.raises(UnknownChannelError, match="nope"):
        mef3lab.open_recording(recording, address=shared_server.address, channels=["ch001", "nope"])
    with pytest.raises(UnknownChannelError, match="nope"):
        xr.open_dataset(
            f"mef3://{shared_server.address}{recording}", engine="mef3", channels="nope"
        )
    ds = mef3lab.open_recording(recording, address=shared_server.address)
    with pytest.raises(KeyError):  # xarray's own lookup on the (in-memory) channel index
        ds.signal.sel(channel="nope")


def test_a_recording_the_server_cannot_find_names_the_path(shared_server, tmp_path):
    missing = tmp_path / "absent.mefd"
    with pytest.raises(RecordingNotFoundError, match="absent.mefd"):
        mef3lab.open_recording(missing, address=shared_server.address)


def test_times_outside_the_recording(shared_server, recording):
    ds = mef3lab.open_recording(recording, address=shared_server.address)
    with pytest.raises(KeyError, match="outside the recording"):
        ds.signal.sel(time=700.0)
    with pytest.raises(KeyError, match="no sample of time within 0.5 s"):
        ds.signal.sel(time=-1.0, method="nearest", tolerance=0.5)
    # a slice wholly outside is an empty selection (as embedded), never a block of NaN
    assert ds.signal.sel(time=slice(700, 710)).values.shape == (8, 0)
    # a slice partly outside is clipped to the recording
    tail = ds.signal.sel(time=slice(595, 605))
    assert tail.sizes["time"] == 5 * 256
    ref = open_reader(recording).read_index(None, 595 * 256, 600 * 256)
    np.testing.assert_array_equal(tail.values, ref)


def test_server_down_at_open_fails_at_once_naming_the_address(recording):
    address = f"127.0.0.1:{_free_port()}"  # nobody listens there
    t0 = time.monotonic()
    with pytest.raises(ServerUnavailableError, match=address):
        mef3lab.open_recording(recording, address=address)
    with pytest.raises(ServerUnavailableError, match=address):
        xr.open_dataset(f"mef3://{address}{recording}", engine="mef3", chunks={})
    source.set_default_address(address)
    with pytest.raises(ServerUnavailableError, match=address):
        mef3lab.open_recording(recording)
    assert time.monotonic() - t0 < 5.0


def test_a_server_that_never_answers_fails_within_the_connect_timeout(recording, monkeypatch):
    """A listener that accepts no gRPC (a hung host, a wrong service) is not waited on for long."""
    monkeypatch.setattr(RemoteSource, "connect_timeout", 1.0)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        t0 = time.monotonic()
        with pytest.raises(ServerUnavailableError, match=address):
            mef3lab.open_recording(recording, address=address)
        assert time.monotonic() - t0 < 5.0


@pytest.mark.parametrize("how", ["terminate", "kill"])
def test_server_going_down_mid_compute_raises_promptly(server, recording, how):
    """The server stops (SIGTERM: it drains, then exits) or dies (SIGKILL) while a compute runs."""
    ds = mef3lab.open_recording(recording, address=server.address)
    n_chunks = len(ds.signal.chunks[1])
    first_chunk_done = threading.Event()

    def work(block):
        first_chunk_done.set()
        time.sleep(0.2)  # the user's computation: the server goes down meanwhile
        return np.nanmean(block, axis=1, keepdims=True)

    def take_down():
        first_chunk_done.wait(30)
        if how == "kill":
            server.proc.kill()
            server.proc.wait(10)
        else:
            server.stop()

    killer = threading.Thread(target=take_down, daemon=True)
    killer.start()
    outcome: dict = {}

    def compute():
        try:
            with dask.config.set(scheduler="synchronous"):
                outcome["value"] = ds.signal.data.map_blocks(
                    work, chunks=(8, (1,) * n_chunks), dtype="float32"
                ).compute()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome["error"] = exc

    t0 = time.monotonic()
    runner = threading.Thread(target=compute, daemon=True)
    runner.start()
    runner.join(60)
    elapsed = time.monotonic() - t0
    killer.join(30)
    assert not runner.is_alive(), "the compute hangs after the server went down"
    assert "value" not in outcome, "the compute finished without the server"
    err = outcome["error"]
    assert isinstance(err, ServerUnavailableError), repr(err)
    assert server.address in str(err)
    assert elapsed < 30, elapsed
    # closing the dataset (and the connection) does not wait for the dead server either
    t1 = time.monotonic()
    ds.close()
    source.REGISTRY.close_all()
    assert time.monotonic() - t1 < 5.0


def test_computing_again_once_the_server_is_back(recording):
    """After a failed read the connection is dropped, so a restarted server is used at once
    (not after the old connection's reconnection backoff, which grows while it is down)."""
    port = _free_port()
    server = start_server(port=port)
    try:
        ds = mef3lab.open_recording(recording, address=server.address)
        ref = ds.signal.sel(time=slice(10, 20)).values
        server.stop()
        deadline = time.monotonic() + 3.0
        failures = 0
        while time.monotonic() < deadline:  # a user retrying while it is down
            with pytest.raises(ServerUnavailableError):
                _ = ds.signal.sel(time=slice(30, 40)).values
            failures += 1
            time.sleep(0.1)
        server = start_server(port=port)
        t0 = time.monotonic()
        np.testing.assert_array_equal(ds.signal.sel(time=slice(10, 20)).values, ref)
        assert time.monotonic() - t0 < 5.0
        assert failures > 3
    finally:
        source.REGISTRY.close_all()
        server.stop()
