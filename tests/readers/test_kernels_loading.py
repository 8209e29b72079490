"""While the numba kernels load (on a thread, from the first open), mef3io reads: same samples,
and the same errors for a damaged recording."""

from __future__ import annotations

import numpy as np
import pytest

from mef3lab.errors import CorruptDataError
from mef3lab.readers import numba as numba_engine
from mef3lab.readers import open_reader, warm_up
from mef3lab.testing.damage import CASES, damaged_copy


def test_reads_before_the_kernels_are_loaded_are_the_same_samples(recording, monkeypatch):
    warm_up()
    with open_reader(recording) as r:
        grid = r.info.rate_groups[0].grid
        k0, k1 = 1000, grid.n_samples - 1000
        with_kernels = r.read_raw(None, k0, k1).counts, r.read_index(None, k0, k1, "float64")
        monkeypatch.setattr(numba_engine, "_red", None)  # as in the first second of a process
        without = r.read_raw(None, k0, k1).counts, r.read_index(None, k0, k1, "float64")
    for a, b in zip(with_kernels, without, strict=True):
        np.testing.assert_array_equal(a, b)


def _outcome(read):
    try:
        return read()
    except CorruptDataError as exc:
        return str(exc)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_damaged_recording_reads_alike_before_and_after_the_kernels_load(
    recording, tmp_path, monkeypatch, case
):
    """mef3io judges some damage otherwise: a read it finds damaged waits for the kernels."""
    warm_up()
    damaged = damaged_copy(recording, tmp_path / "damaged.mefd", case, "ch001")
    with open_reader(damaged) as r:
        names = list(r.info.names)
        n = r.info.rate_groups[0].grid.n_samples
        reads = [
            lambda: r.read_raw(names, 0, n).counts,
            lambda: r.read_index(names, 0, n, "float32"),
            lambda: r.read_index([names[0]], 0, n, "float64"),
        ]
        loaded = [_outcome(read) for read in reads]
        monkeypatch.setattr(numba_engine, "_red", None)  # as in the first second of a process
        loading = [_outcome(read) for read in reads]
    for a, b in zip(loaded, loading, strict=True):
        if isinstance(a, str):
            assert a == b
        else:
            np.testing.assert_array_equal(a, b)
