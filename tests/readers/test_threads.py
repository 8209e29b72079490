"""Engines that declare themselves thread-safe return the right samples when read from many
threads.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from mef3lab.readers import open_reader


@pytest.mark.parametrize("engine", ["mef3io", "numba"])
def test_thread_safe_engines_read_at_once_correctly(recording, engine):
    with open_reader(recording, engine=engine) as r, open_reader(recording, engine="pymef") as ref:
        assert r.thread_safe and not ref.thread_safe
        n = r.info.rate_groups[0].grid.n_samples
        windows = [
            (k, k + 3000) for k in range(-500, n, 1700)
        ]  # overlapping, past both ends, across gaps
        with ThreadPoolExecutor(4) as pool:
            got = list(pool.map(lambda w: r.read_index(None, *w), windows * 3))
        for w, x in zip(windows * 3, got, strict=True):
            np.testing.assert_array_equal(x, ref.read_index(None, *w))


def test_one_read_on_several_threads_equals_one_thread(recording):
    with (
        open_reader(recording, engine="numba", threads=1) as one,
        open_reader(recording, engine="numba", threads=3) as many,
    ):
        assert (one.threads, many.threads) == (1, 3)
        for dtype in ("float32", "float64"):
            np.testing.assert_array_equal(
                many.read(dtype=dtype), one.read(dtype=dtype)
            )  # 8 ch x 150k samples
        np.testing.assert_array_equal(
            many.read_raw(None, 0, 60_000).counts, one.read_raw(None, 0, 60_000).counts
        )
        assert many._pool is not None and one._pool is None
    assert many._pool is None  # closed with the reader
    with pytest.raises(ValueError, match="threads"):
        open_reader(recording, engine="numba", threads=-1)


def test_a_page_is_decoded_in_runs_of_channels_on_several_threads(recording, monkeypatch):
    """A page of a few blocks per channel (8 ch x 8000 samples) is split into one run of
    channels per thread, the calling thread's among them; the samples are one thread's."""
    with (
        open_reader(recording, engine="numba", threads=1) as one,
        open_reader(recording, engine="numba", threads=3) as many,
    ):
        n = many.info.rate_groups[0].grid.n_samples
        for k0 in (0, 38_000, n - 8000):  # first block, across a gap (150 s), last samples
            np.testing.assert_array_equal(
                many.read_index(None, k0, k0 + 8000), one.read_index(None, k0, k0 + 8000)
            )
        assert many._pool is not None

        seen: dict[int, set[str]] = {}
        decode = type(many)._decode

        def spy(self, names, *args):
            seen.setdefault(threading.get_ident(), set()).update(names)
            return decode(self, names, *args)

        monkeypatch.setattr(type(many), "_decode", spy)
        many.read_index(None, 0, 8000)
        mine = seen.pop(threading.get_ident())
        assert mine == {"ch000", "ch001"}  # the first of three runs; the others on the pool
        assert set().union(*seen.values()) == set(many.info.names) - mine

        def broken(self, names, *args):
            if many.info.names[-1] in names:
                raise RuntimeError("a damaged block")
            return decode(self, names, *args)

        monkeypatch.setattr(type(many), "_decode", broken)
        with pytest.raises(RuntimeError, match="a damaged block"):
            many.read_index(None, 0, 8000)


def test_a_long_float_read_scaled_a_few_channels_at_a_time_is_the_same(recording, monkeypatch):
    """The counts of a float read are decoded a few channels at a time (a small temporary)."""
    from mef3lab.readers import numba as engine

    with open_reader(recording, engine="numba", threads=1) as r:
        whole = r.read(dtype="float32")
        monkeypatch.setattr(engine, "FLOAT_BATCH_SAMPLES", 3 * whole.shape[1])  # 3 of 8 channels
        np.testing.assert_array_equal(r.read(dtype="float32"), whole)
        with open_reader(recording, engine="mef3io") as ref:
            np.testing.assert_array_equal(r.read(dtype="float64"), ref.read(dtype="float64"))
