"""The reader pool: real spawned workers on real files, their results, errors and shared memory."""

from __future__ import annotations

import gc
import multiprocessing
import sys
import threading
import weakref
from pathlib import Path

import numpy as np
import pytest

from mef3lab.errors import RecordingNotFoundError, TimeRangeError, UnknownChannelError
from mef3lab.readers import open_reader
from mef3lab.server.pool import ReaderPool, ReadRequest, SharedArray

try:
    from .._pool_helpers import shm_blocks
except ImportError:
    from _pool_helpers import shm_blocks

ENGINES = ("mef3io", "pymef")


def windows(info):
    n = info.rate_groups[0].grid.n_samples
    return [(0, n), (-500, 700), (n - 300, n + 250), (15_000, 15_001), (5, 5), (61 * 256, 62 * 256)]


# -- data ------------------------------------------------------------------------------
@pytest.mark.parametrize("engine", ENGINES)
def test_reads_equal_direct_reads(pool, recording, engine):
    with open_reader(recording, engine=engine) as direct:
        info = direct.info
        names = info.names
        for chans in (names, names[2:5], (names[6], names[1])):
            for k0, k1 in windows(info):
                for dtype in ("float32", "float64"):
                    got = pool.submit(
                        ReadRequest(recording, None, engine, chans, k0, k1, dtype)
                    ).result()
                    assert isinstance(got, SharedArray)
                    assert got.array.dtype == np.dtype(dtype) and not got.array.flags.writeable
                    np.testing.assert_array_equal(
                        got.array, direct.read_index(chans, k0, k1, dtype)
                    )
        raw = pool.submit(
            ReadRequest(recording, None, engine, names[:3], 100, 9000, "int32")
        ).result()
        np.testing.assert_array_equal(raw.array, direct.read_raw(names[:3], 100, 9000).counts)
    assert not shm_blocks()  # names go as soon as each read is done


@pytest.mark.parametrize("engine", ENGINES)
def test_metadata_and_calls_come_from_workers(pool, recording, engine):
    with open_reader(recording, engine=engine) as direct:
        assert pool.info(recording, None, engine) == direct.info
        env = pool.call(recording, None, engine, "block_envelope", "ch003", None, None)
        want = direct.block_envelope("ch003")
        assert env.keys() == want.keys()
        for k in want:
            np.testing.assert_array_equal(env[k], want[k])
    with pytest.raises(ValueError, match="method must be one of"):
        pool.call(recording, None, engine, "close")


def test_many_threads_submit_at_once(pool, recording):
    info = pool.info(recording, None, "mef3io")
    names = info.names
    with open_reader(recording, engine="mef3io") as direct:
        jobs = [(names[i % 8 : i % 8 + 3], 1000 * i, 1000 * i + 5000) for i in range(48)]
        expected = [direct.read_index(c, k0, k1) for c, k0, k1 in jobs]
    results: dict[int, np.ndarray] = {}
    errors = []
    barrier = threading.Barrier(8)

    def client(t):
        try:
            barrier.wait()
            futs = {
                i: pool.submit(
                    ReadRequest(recording, None, "mef3io", *jobs[i]), foreground=i % 2 == 0
                )
                for i in range(t, len(jobs), 8)
            }
            for i, f in futs.items():
                results[i] = f.result(timeout=60).array
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i, want in enumerate(expected):
        np.testing.assert_array_equal(results[i], want)
    s = pool.stats()
    assert (s["busy"], s["queued"], s["crashes"]) == (0, 0, 0)


# -- errors ----------------------------------------------------------------------------
@pytest.mark.parametrize("n_workers", [2, 0])
def test_errors_keep_their_class_and_message(request, recording, tmp_path, n_workers):
    p = request.getfixturevalue("pool") if n_workers else ReaderPool(0)
    with open_reader(recording, engine="mef3io") as direct:
        with pytest.raises(UnknownChannelError) as want:
            direct.read_index(["ch001", "nope"], 0, 10)
        with pytest.raises(TimeRangeError) as inverted:
            direct.read_index(["ch001"], 10, 5)
    with pytest.raises(UnknownChannelError) as got:
        p.submit(ReadRequest(recording, None, "mef3io", ("ch001", "nope"), 0, 10)).result()
    assert str(got.value) == str(want.value)
    with pytest.raises(TimeRangeError) as got:
        p.submit(ReadRequest(recording, None, "mef3io", ("ch001",), 10, 5)).result()
    assert str(got.value) == str(inverted.value)
    with pytest.raises(RecordingNotFoundError, match="missing.mefd"):
        p.submit(ReadRequest(tmp_path / "missing.mefd", None, "mef3io", ("ch001",), 0, 10)).result()
    with pytest.raises(RecordingNotFoundError, match="missing.mefd"):
        p.info(tmp_path / "missing.mefd", None, "pymef")
    with pytest.raises(ValueError, match="unknown engine"):
        p.info(recording, None, "no-such-engine")
    with pytest.raises(ValueError, match="dtype"):
        ReadRequest(recording, None, "mef3io", ("ch001",), 0, 10, "int16")
    assert not shm_blocks()
    if not n_workers:
        p.close()


def test_in_process_mode(recording):
    before = {c.pid for c in multiprocessing.active_children()}
    with ReaderPool(0) as p, open_reader(recording) as direct:
        got = p.submit(ReadRequest(recording, None, None, ("ch000", "ch005"), -10, 3000)).result()
        np.testing.assert_array_equal(got.array, direct.read_index(["ch000", "ch005"], -10, 3000))
        assert p.info(recording) == direct.info
        assert p.stats()["workers"] == 0
        assert {c.pid for c in multiprocessing.active_children()} == before
    with pytest.raises(RuntimeError, match="closed"):
        p.submit(ReadRequest(recording, None, None, ("ch000",), 0, 1))


# -- shared memory ---------------------------------------------------------------------
def test_results_outlive_release_and_free_their_memory(pool, recording):
    got = pool.submit(
        ReadRequest(recording, None, "mef3io", ("ch000", "ch001"), 0, 20_000)
    ).result()
    assert not shm_blocks()  # no name to leak, even while the result lives
    view = got.array[1, 100:200]
    keep = view.copy()
    mapping = weakref.ref(got.array.base)
    got.release()
    got.release()
    assert got.released
    with pytest.raises(ValueError, match="released"):
        got.array  # noqa: B018 - the property raises
    gc.collect()
    np.testing.assert_array_equal(view, keep)  # a caller's view stays valid after release
    assert mapping() is not None
    del view
    gc.collect()
    assert mapping() is None  # the last view gone: unmapped


def resident_bytes(address: int) -> int:
    """Resident bytes of this process's mapping that holds `address` (/proc/self/smaps)."""
    inside = False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()[0]
        if "-" in head and not head.endswith(":"):
            lo, hi = (int(x, 16) for x in head.split("-"))
            inside = lo <= address < hi
        elif inside and head == "Rss:":
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no mapping holds {address:#x}")


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="rows give their pages back on Linux"
)
@pytest.mark.parametrize("split", [False, True])
def test_rows_taken_one_by_one_give_their_memory_back_one_by_one(pool, recording, split):
    # What the segment store relies on: a read's rows cached as separate entries with no copy,
    # each row's pages returned when that row is evicted, the block unmapped with the last.
    names = ("ch000", "ch001", "ch002")
    req = ReadRequest(recording, None, "mef3io", names, 0, 50_000, "int32")
    got = (pool.submit_split(req, 2) if split else pool.submit(req)).result()
    mapping = weakref.ref(got._mapping)
    rows = list(got.take_rows())
    assert got.released and not shm_blocks()
    with open_reader(recording, engine="mef3io") as direct:
        want = direct.read_raw(list(names), 0, 50_000).counts
    for row, expected in zip(rows, want, strict=True):
        np.testing.assert_array_equal(row, expected)
        assert not row.flags.writeable and row.flags.c_contiguous
    start = rows[0].__array_interface__["data"][0]
    assert resident_bytes(start) == 3 * req.row_bytes
    del row
    rows.pop(1)
    gc.collect()
    assert (
        resident_bytes(start) == 2 * req.row_bytes
    )  # the middle row's pages went, the others stay
    np.testing.assert_array_equal(rows[1], want[2])
    rows.clear()
    gc.collect()
    assert mapping() is None


def test_rows_taken_together_are_views_that_keep_the_block_until_the_last_goes(pool, recording):
    """The parts of a segment are copied into its rows soon: views of one mapping will do."""
    names = ("ch000", "ch001", "ch002")
    req = ReadRequest(recording, None, "mef3io", names, 0, 50_000, "int32")
    got = pool.submit(req).result()
    mapping = weakref.ref(got._mapping)
    rows = list(got.take_rows(separately=False))
    assert got.released and not shm_blocks()
    with open_reader(recording, engine="mef3io") as direct:
        want = direct.read_raw(list(names), 0, 50_000).counts
    for row, expected in zip(rows, want, strict=True):
        np.testing.assert_array_equal(row, expected)
        assert not row.flags.writeable
    del row
    rows.pop(0)
    gc.collect()
    assert mapping() is not None  # the others still read it
    np.testing.assert_array_equal(rows[1], want[2])
    rows.clear()
    gc.collect()
    assert mapping() is None
