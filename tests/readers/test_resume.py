"""A read that goes on where the last one stopped inside blocks resumes them: the same samples.

On a recording of meflib's writer (pymef), every value compared with pymef's own read.
"""

from __future__ import annotations

import numpy as np
import pytest

from mef3lab.readers import kernels, open_reader

N = 120_000  # `depth_recording`: 60 s at 2 kHz in 10-s blocks of 20,000 samples


@pytest.fixture(scope="module")
def written(depth_recording):
    return depth_recording


@pytest.fixture(scope="module")
def pymef_read(written):
    with open_reader(written, engine="pymef") as r:
        yield lambda names, k0, k1: r.read_raw(names, k0, k1).counts


@pytest.fixture
def resumed(monkeypatch):
    """The blocks each kernel call went on in (its resume rows with samples done)."""
    calls: list[int] = []
    decode = kernels.Kernels.decode_blocks

    def spy(self, *args):
        resume = args[7] if len(args) > 7 else None
        calls.append(0 if resume is None else int((resume[:, 0] > 0).sum()))
        return decode(self, *args)

    monkeypatch.setattr(kernels.Kernels, "decode_blocks", spy)
    return calls


def test_reading_on_resumes_the_blocks_the_last_read_stopped_in(written, pymef_read, resumed):
    names = ["LA1", "LA2", "LA3"]
    rng = np.random.default_rng(3)
    with open_reader(written, engine="numba", threads=1) as r:
        starts = set(r.block_bounds(names, 0, N).tolist())  # where blocks start (and the gap)
        assert {0, 20_000, 60_000, 70_000, 71_000, 91_000} <= starts
        k, first = 1234, True
        while k < N - 1:
            n = min(int(rng.integers(1, 9000)), N - k)
            resumed.clear()
            got = r.read_raw(names, k, k + n).counts
            np.testing.assert_array_equal(got, pymef_read(names, k, k + n))
            # each channel's block goes on where the last read stopped, unless that ended it
            if not first and k not in starts and not 70_000 < k < 71_000:
                assert sum(resumed) == len(names), k
            k, first = k + n, False
        resumed.clear()
        back = r.read_raw(names, 30_000, 30_500).counts  # before where it stopped: from the start
        np.testing.assert_array_equal(back, pymef_read(names, 30_000, 30_500))
        assert sum(resumed) == 0


def test_where_a_read_stopped_goes_on_in_another_reader(written, pymef_read, resumed):
    with open_reader(written, engine="numba") as one, one.stops_left() as stops:
        one.read_raw(["LA2", "LA3"], 5_000, 33_333)
    # one stop per channel, at the window's end: the block of 20,000 from 20,000, 13,333 done
    assert sorted((s[0], s[4]) for s in stops) == [("LA2", 13_333), ("LA3", 13_333)]
    with open_reader(written, engine="numba") as other:
        other.resume_from(stops)
        resumed.clear()
        got = other.read_raw(["LA3", "LA2"], 33_333, 45_000).counts
        assert sum(resumed) == 2
        np.testing.assert_array_equal(got, pymef_read(["LA3", "LA2"], 33_333, 45_000))
        with other.stops_left() as none:
            other.read_raw(["LA1"], 0, 20_000)  # ends with its block: nothing left in one
        assert none == []


def test_engines_that_cannot_resume_ignore_stops(written, pymef_read):
    with open_reader(written, engine="numba") as one, one.stops_left() as stops:
        one.read_raw(["LA1"], 0, 12_345)
    with open_reader(written, engine="mef3io") as r, r.stops_left() as left:
        r.resume_from(stops)
        got = r.read_raw(["LA1"], 12_345, 20_000).counts
    assert left == []
    np.testing.assert_array_equal(got, pymef_read(["LA1"], 12_345, 20_000))


def test_a_state_for_a_block_written_again_in_its_place_is_not_used(written, pymef_read, resumed):
    with open_reader(written, engine="numba") as one, one.stops_left() as stops:
        one.read_raw(["LA1"], 0, 12_345)
    (stop,) = stops
    other_crc = (*stop[:3], stop[3] ^ 1, *stop[4:])  # the same place, another block's CRC
    with open_reader(written, engine="numba") as r:
        r.resume_from([other_crc])
        resumed.clear()
        got = r.read_raw(["LA1"], 12_345, 20_000).counts
        assert sum(resumed) == 0
        np.testing.assert_array_equal(got, pymef_read(["LA1"], 12_345, 20_000))


def test_a_reader_keeps_the_newest_states_and_ignores_malformed_ones():
    from mef3lab.readers.resume import ResumeStates

    states = ResumeStates(kept=3)
    state = (5, 60, 7, 1 << 24, 9, 11, -3)
    states.offer([("LA1", 0, 1000 * i, 77, *state) for i in range(5)])
    states.offer([("LA1", 0, 8), ("LA1", "x", 0, 0, *state), ("LA1", 0, 0, 0, 2**70, *state[1:])])
    keys = [("LA1", 0, 1000 * i, 77) for i in range(5)]
    got = states.states(keys, np.full(5, -10))
    assert got[:2].tolist() == [[0] * 7] * 2  # the oldest two went
    assert got[2:].tolist() == [list(state)] * 3
    assert not states.states(keys, np.full(5, -4)).any()  # it would skip a sample the row needs
