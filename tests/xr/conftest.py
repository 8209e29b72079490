"""Source doubles and real servers for the xarray engine tests.

The recordings come from tests/conftest.py.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from _remote import start_server

from mef3lab import sources as source
from mef3lab.model import Annotation, ChannelInfo, SessionInfo, Span

START = 1_705_305_600_000_000


@pytest.fixture(autouse=True)
def _fresh_sources():
    """Every test starts and ends without cached readers (and without a default server)."""
    source.REGISTRY.close_all()
    source.set_default_address(None)
    yield
    source.REGISTRY.close_all()
    source.set_default_address(None)


class FakeSource:
    """A `RecordingSource` computing its samples: 1000 * channel index + k % 997, NaN in gaps.

    Any size costs nothing until read; `calls` records every read_index, `hints` every hint.
    """

    def __init__(
        self,
        path="/nowhere/fake.mefd",
        channels=(("a", 256.0), ("b", 256.0)),
        seconds=100.0,
        gaps_s=((10.0, 12.0),),
        segment_s=10.0,
    ):
        infos, spans = [], {}
        end = START + int(round(seconds * 1e6))
        for name, fs in channels:
            infos.append(ChannelInfo(name, fs, START, end, int(seconds * fs), "uV", 0.1))
            edges = [START] + [START + int(x * 1e6) for g in gaps_s for x in g] + [end]
            spans[name] = tuple(Span(a, b) for a, b in zip(edges[::2], edges[1::2], strict=True))
        self.info = SessionInfo(
            path, tuple(infos), spans, (Annotation(START + 5_000_000, "Note", "hello"),)
        )
        self.segment_s = segment_s
        self.calls: list[tuple[tuple[str, ...], int, int]] = []
        self.hints: list[tuple[tuple[str, ...], int, int]] = []
        self.on_read = None
        self._lock = threading.Lock()

    def expected(self, channels, k0, k1, dtype="float32"):
        grid = self.info.group_of(channels).grid
        k = np.arange(k0, k1)
        out = np.array([self.info.names.index(c) * 1000 + (k % 997) for c in channels], np.float64)
        t = grid.time_of(k)
        for i, c in enumerate(channels):
            inside = np.zeros(k.shape, bool)
            for s in self.info.spans[c]:
                inside |= (t >= s.start_uutc) & (t < s.end_uutc)
            out[i, ~inside] = np.nan
        return out.astype(dtype)

    def read_index(self, channels, k0, k1, dtype="float32"):
        with self._lock:
            self.calls.append((tuple(channels), k0, k1))
        if self.on_read is not None:
            self.on_read(len(self.calls))
        return self.expected(list(channels), k0, k1, dtype)

    def segment_samples(self, fs):
        return int(round(self.segment_s * fs))

    def hint(self, channels, k0, k1, dtype="float32"):
        with self._lock:
            self.hints.append((tuple(channels), k0, k1))

    def close(self):
        pass


class CountingSource:
    """Wraps a real source; counts read_index calls (and keeps them)."""

    def __init__(self, inner):
        self.inner = inner
        self.info = inner.info
        self.calls: list[tuple[tuple[str, ...], int, int]] = []

    def read_index(self, channels, k0, k1, dtype="float32"):
        self.calls.append((tuple(channels), k0, k1))
        return self.inner.read_index(channels, k0, k1, dtype)

    def segment_samples(self, fs):
        return self.inner.segment_samples(fs)

    def hint(self, channels, k0, k1, dtype="float32"):
        self.inner.hint(channels, k0, k1, dtype)

    def close(self):
        self.inner.close()


@pytest.fixture
def fake_source_class():
    return FakeSource


@pytest.fixture
def fake():
    """Install a FakeSource for a path; returns ``make(path=..., **kwargs) -> FakeSource``."""

    def make(path="/nowhere/fake.mefd", **kwargs):
        f = FakeSource(path, **kwargs)
        source.REGISTRY.install(source.resolve(path), f)
        return f

    return make


@pytest.fixture
def counting():
    """Wrap the real source of a path in a CountingSource: ``wrap(path) -> CountingSource``."""

    def wrap(path, **spec_kwargs):
        spec = source.resolve(path, **spec_kwargs)
        c = CountingSource(source.open_source(spec))
        source.REGISTRY.install(spec, c)
        return c

    return wrap


# -- a real server (remote mode) --------------------------------------------------------


@pytest.fixture(scope="session")
def shared_server():
    """One server for the tests that only compare values (stopped at the end of the session)."""
    srv = start_server()
    yield srv
    srv.stop()


@pytest.fixture
def server():
    """A server of this test alone: fresh statistics, and free to be killed."""
    srv = start_server()
    yield srv
    source.REGISTRY.close_all()  # close connections before the server goes
    srv.stop()


@pytest.fixture
def settled():
    """`settled(address) -> stats`: the server's statistics once its background work has stopped.

    Polls until two readings 0.3 s apart agree on everything that counts work.
    """
    from mef3lab.client import Mef3Client

    keys = ("hits", "misses", "prefetches", "prefetch_hits", "decoded_samples")
    clients = {}

    def wait(address, timeout=30.0):
        import time

        c = clients.get(address) or clients.setdefault(address, Mef3Client(address, timeout=10.0))
        deadline = time.monotonic() + timeout
        last = c.stats()
        while True:
            time.sleep(0.3)
            now = c.stats()
            if all(now[k] == last[k] for k in keys):
                return now
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the server at {address} is still busy after {timeout} s: {now}"
                )
            last = now

    yield wait
    for c in clients.values():
        c.shutdown()
