"""Open-recording limits on a real engine: per client and in total.

Re-opening and closing are free.
"""

from __future__ import annotations

import threading

import pytest

from mef3lab.client import Mef3Client
from mef3lab.errors import TooManyOpenError
from mef3lab.server.app import Server
from mef3lab.server.config import ServerConfig
from mef3lab.server.core.engine import Engine
from mef3lab.testing.synth import synthesize


@pytest.fixture(scope="module")
def four(tmp_path_factory):
    d = tmp_path_factory.mktemp("four")
    return [
        str(synthesize(d / f"r{i}.mefd", channels=2, fs=256.0, seconds=10.0, gaps=0, seed=i))
        for i in range(4)
    ]


def test_open_limits(four):
    engine = Engine(ServerConfig(n_process_workers=0, max_open_per_client=2, max_open_total=3))
    try:
        engine.open("a", four[0])
        engine.open("a", four[1])
        engine.open("a", four[1])  # again: not one more
        with pytest.raises(TooManyOpenError, match="this client has 2 recordings open"):
            engine.open("a", four[2])
        engine.open("b", four[0])  # already open on the server: only b's own count matters
        engine.open("b", four[2])
        with pytest.raises(TooManyOpenError, match="the server has 3 recordings open"):
            engine.open("c", four[3])
        engine.open("c", four[1])  # an open one is no new recording
        engine.close("a", four[0])
        engine.open("a", four[2])
        engine.close("b", four[2])
        engine.close("a", four[2])
        assert engine.open("c", four[3]).names  # a slot came free
    finally:
        engine.shutdown()


def test_the_client_sees_resource_exhausted(four):
    with (
        Server(port=0, n_process_workers=0, max_open_per_client=1) as server,
        Mef3Client(server.address) as c,
    ):
        c.open_file(four[0])
        with pytest.raises(TooManyOpenError, match="close one"):
            c.open_file(four[1])


class _SlowOpens:
    """A real in-process pool whose opens wait until `gate` is set: two opens overlap for sure."""

    def __init__(self, gate) -> None:
        from mef3lab.server.pool import ReaderPool

        self._pool, self.gate = ReaderPool(0), gate
        self.entered = threading.Event()

    def info(self, *args, **kw):
        self.entered.set()
        self.gate.wait(10)
        return self._pool.info(*args, **kw)

    def __getattr__(self, name):
        return getattr(self._pool, name)


@pytest.mark.parametrize("limit", ["max_open_per_client", "max_open_total"])
def test_two_opens_at_once_cannot_both_take_the_last_place(four, limit):
    gate = threading.Event()
    slow = _SlowOpens(gate)
    engine = Engine(ServerConfig(n_process_workers=0, **{limit: 1}), pool=slow)
    outcomes = []

    def open_(client, path):
        try:
            engine.open(client, path)
            outcomes.append("opened")
        except TooManyOpenError:
            outcomes.append("refused")
        finally:
            gate.set()  # the one that got in may go on

    try:
        first = threading.Thread(target=open_, args=("a", four[0]))
        first.start()
        assert slow.entered.wait(10)  # the first open holds its place, waiting in the pool
        second = "a" if limit == "max_open_per_client" else "b"
        open_(second, four[1])
        first.join(30)
        assert outcomes == ["refused", "opened"]
        assert engine.stats()["open_recordings"] == 1
        engine.close("a", four[0])
        engine.open(second, four[1])  # the places were given back
    finally:
        engine.shutdown()
