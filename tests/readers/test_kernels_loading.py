"""While the numba kernels load (on a thread, from the first open), mef3io reads: same samples."""

from __future__ import annotations

import numpy as np

from mef3lab.readers import numba as numba_engine
from mef3lab.readers import open_reader, warm_up


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
