"""A real server process answers a cold read from the blocks it asked for, then fills the segment.

Values compared with a direct read (pymef); the server's counters show that no sample of a
segment is decoded twice, however it was first read.
"""

from __future__ import annotations

import time

import pytest

from mef3lab.testing.synth import synthesize

from .conftest import assert_same

SEG = 300 * 256  # samples per segment
N_CH = 4


@pytest.fixture(scope="module")
def rec(tmp_path_factory):
    """4 channels × 10 min at 256 Hz (10-s blocks), a 7.3-s gap at 130 s: two segments."""
    path = tmp_path_factory.mktemp("partial") / "partial.mefd"
    return synthesize(path, channels=N_CH, fs=256.0, seconds=600, gaps=[(130.0, 7.3)], seed=4)


def test_partial_cold_reads_through_a_server_equal_a_direct_read(launch, connect, reference, rec):
    srv = launch(n_process_workers=2, n_prefetch=0, segment_seconds=300)
    c = connect(srv)
    c.open_file(str(rec))
    direct = reference(rec)
    for k0, k1 in [(100 * 256, 101 * 256), (128 * 256, 140 * 256), (290 * 256, 310 * 256)]:
        assert_same(
            c.read_index(str(rec), k0, k1, dtype="float64"),
            direct.read_index(None, k0, k1, "float64"),
        )
    deadline = time.monotonic() + 30
    while c.stats()["cache_entries"] < 2 * N_CH and time.monotonic() < deadline:
        time.sleep(0.05)
    stats = c.stats()
    assert stats["cache_entries"] == 2 * N_CH
    assert stats["decoded_samples"] == 2 * N_CH * SEG  # both segments, each sample once
    assert_same(c.read_index(str(rec), 0, 2 * SEG), direct.read_index(None, 0, 2 * SEG))
    assert c.stats()["decoded_samples"] == stats["decoded_samples"]
