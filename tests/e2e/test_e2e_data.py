"""Every data RPC of mef3lab.v1, through a real server process, equals a direct read exactly."""

from __future__ import annotations

import numpy as np
import pytest

from mef3lab.errors import MixedRatesError, PasswordError

from .conftest import assert_same

SEGMENT_S = 7.0  # 1792 samples at 256 Hz: aligned with nothing in the file (blocks, gaps, the end)
SUBSETS = [
    ["ch003"],
    ["ch007", "ch006", "ch005", "ch004", "ch003", "ch002", "ch001", "ch000"],
    ["ch005", "ch001", "ch006"],
    ["ch000", "ch007"],
]
US = 1_000_000


@pytest.fixture(scope="module")
def plain(server, recording):
    """A client of the shared server with `recording` open, cut into SEGMENT_S segments."""
    from mef3lab.client import Mef3Client

    c = Mef3Client(server.address, timeout=120)
    c.open_file(recording)
    c.set_signal_chunk_size(recording, SEGMENT_S)
    yield c
    c.close_file(recording)
    c.shutdown()


def group_of(client, path, names=None):
    info = client.info(path)
    return info.group_of(names or info.names)


# -- segments --------------------------------------------------------------------------------
def test_segment_grid_is_the_clients(plain, recording, reference):
    grid = plain.segment_grid(recording)
    (g,) = grid.groups
    n = reference(recording).info.rate_groups[0].grid.n_samples
    assert (grid.seconds, g.fs, g.n_samples) == (SEGMENT_S, 256.0, n)
    assert g.segment_samples == 1792 and g.n_segments == -(-n // 1792)
    assert list(g.channels) == list(reference(recording).info.names)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_segment_all_channels(plain, recording, reference, dtype):
    ref = reference(recording)
    n, n_seg = (
        ref.info.rate_groups[0].grid.n_samples,
        plain.segment_grid(recording).groups[0].n_segments,
    )
    for i in range(n_seg):
        got = plain.get_signal_segment(recording, i, dtype=dtype)
        assert_same(got, ref.read_index(None, i * 1792, min((i + 1) * 1792, n), dtype))
    assert got.shape[1] == n - (n_seg - 1) * 1792 < 1792  # the last segment is the short rest


@pytest.mark.parametrize("names", SUBSETS, ids=["single", "reversed", "shuffled", "ends"])
def test_every_segment_channel_subsets(plain, recording, reference, names):
    ref = reference(recording)
    n, n_seg = (
        ref.info.rate_groups[0].grid.n_samples,
        plain.segment_grid(recording).groups[0].n_segments,
    )
    for i in range(n_seg):
        got = plain.get_signal_segment(recording, i, channels=names)
        assert_same(got, ref.read_index(names, i * 1792, min((i + 1) * 1792, n)))


def test_active_channels_are_what_a_segment_read_returns(connect, server, recording, reference):
    c = connect(server)
    c.open_file(recording)
    c.set_signal_chunk_size(recording, SEGMENT_S)
    assert c.set_active_channels(recording, ["ch006", "ch002"]) == ["ch006", "ch002"]
    for i in (0, 8, 85):
        assert_same(
            c.get_signal_segment(recording, i),
            reference(recording).read_index(
                ["ch006", "ch002"], i * 1792, min((i + 1) * 1792, 153600)
            ),
        )


# -- ranges by time ----------------------------------------------------------------------------
def time_windows(info):
    """Windows across every gap, outside both ends, and tiny ones inside one block."""
    g = info.rate_groups[0].grid
    start, end, period = g.start_uutc, g.end_uutc, US / g.fs
    gaps = info.gaps("ch000")
    assert len(gaps) == 4, gaps
    out = []
    for gap in gaps:
        a, b = gap.start_uutc, gap.end_uutc
        out += [
            (a - 3 * US // 2, b + 3 * US // 2),
            (a, b),
            (a - 3_000, a + 3_000),
            (b - 3_000, b + 3_000),
        ]
    t = start + 100 * US + 1_234  # inside one block, between two samples
    out += [
        (start - 5 * US, start + 2 * US),  # starts before the recording
        (end - 2 * US, end + 5 * US),  # ends after it
        (start - US, end + US),  # all of it and more
        (start, end),  # exactly all of it
        (t, t + int(3 * period)),  # three samples
        (t, t + 1),  # no sample at all
        (start + 200 * US, start + 200 * US + 1),  # exactly one sample
        (
            start + 7 * US - 10_000,
            start + 7 * US + 10_000,
        ),  # across a segment boundary of the client
    ]
    return out


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "names", [None, ["ch004"], ["ch007", "ch000", "ch003"]], ids=["all", "one", "three"]
)
def test_read_range_by_time(plain, recording, reference, dtype, names):
    ref = reference(recording)
    for t0, t1 in time_windows(ref.info):
        got = plain.read_range(recording, t0, t1, channels=names, dtype=dtype)
        want = ref.read(names, t0, t1, dtype)
        try:
            assert_same(got, want)
        except AssertionError as exc:
            raise AssertionError(f"window [{t0}, {t1}) µUTC: {exc}") from None
    # The first and last windows really contain NaN outside the data and in the gap.
    assert np.isnan(
        plain.read_range(recording, *time_windows(ref.info)[-8], dtype=dtype)[:, :256]
    ).all()


def index_windows(n: int, seg: int = 1792):
    return [
        (-10, 10),
        (n - 10, n + 10),
        (-300, n + 300),
        (seg - 5, seg + 5),
        (3 * seg + 1, 7 * seg - 1),
        (12_345, 12_346),
        (100, 100),
        (0, seg),
        (5 * seg, 6 * seg),
        (n - 1, n),
        (n + 5, n + 50),
    ]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("names", [None, ["ch001"], ["ch006", "ch002"]], ids=["all", "one", "two"])
def test_read_range_by_index(plain, recording, reference, dtype, names):
    ref = reference(recording)
    n = ref.info.rate_groups[0].grid.n_samples
    for k0, k1 in index_windows(n):
        got = plain.read_index(recording, k0, k1, channels=names, dtype=dtype)
        try:
            assert_same(got, ref.read_index(names, k0, k1, dtype))
        except AssertionError as exc:
            raise AssertionError(f"samples [{k0}, {k1}): {exc}") from None


@pytest.mark.parametrize("names", [None, ["ch003"], ["ch005", "ch000"]], ids=["all", "one", "two"])
def test_raw_counts(plain, recording, reference, names):
    ref = reference(recording)
    n = ref.info.rate_groups[0].grid.n_samples
    for k0, k1 in index_windows(n):
        raw = plain.read_raw(recording, k0, k1, channels=names)
        want = ref.read_raw(names, k0, k1)
        assert_same(raw.counts, want.counts)
        assert_same(raw.factors, want.factors)
        assert_same(
            raw.to_float(), plain.read_index(recording, k0, k1, channels=names, dtype="float32")
        )
        assert_same(
            raw.to_float("float64"),
            plain.read_index(recording, k0, k1, channels=names, dtype="float64"),
        )
    for i in (0, 34, 85):  # whole segments of counts, too
        assert_same(
            plain.get_signal_segment(recording, i, channels=names, dtype="int32"),
            ref.read_raw(names, i * 1792, min((i + 1) * 1792, n)).counts,
        )


# -- envelopes ---------------------------------------------------------------------------------
def envelope_of(data: np.ndarray, bins: int) -> np.ndarray:
    """(2, channels, bins) min/max of near-equal slices, by plain numpy (NaN where a bin is empty).

    Bin j is samples ``[j * n // bins, (j + 1) * n // bins)``, in exact integer arithmetic.
    """
    n = data.shape[1]
    bins = min(bins, n)
    edges = np.arange(bins + 1, dtype=np.int64) * n // bins
    out = np.full((2, data.shape[0], bins), np.nan, np.float32)
    for j in range(bins):
        part = data[:, edges[j] : edges[j + 1]]
        for row in range(data.shape[0]):
            values = part[row][~np.isnan(part[row])]
            if values.size:
                out[0, row, j], out[1, row, j] = values.min(), values.max()
    return out


@pytest.mark.parametrize("names", [None, ["ch002"], ["ch007", "ch001"]], ids=["all", "one", "two"])
def test_read_envelope(plain, recording, reference, names):
    ref = reference(recording)
    g = ref.info.rate_groups[0].grid
    gap = ref.info.gaps("ch000")[2]  # the 20 s one: whole bins without data
    cases = [
        (g.start_uutc, g.end_uutc, 1000),
        (g.start_uutc - 10 * US, g.start_uutc + 50 * US, 77),
        (gap.start_uutc - 5 * US, gap.end_uutc + 5 * US, 30),
        (g.start_uutc + 10 * US, g.start_uutc + 10 * US + 40_000, 100),  # more bins than samples
        (g.start_uutc + 300 * US, g.start_uutc + 400 * US, 1),
    ]
    for t0, t1, bins in cases:
        got = plain.read_envelope(recording, t0, t1, bins, channels=names)
        want = envelope_of(ref.read(names, t0, t1, "float32"), bins)
        try:
            assert_same(got, want)
        except AssertionError as exc:
            raise AssertionError(f"window [{t0}, {t1}) in {bins} bins: {exc}") from None
    gap_env = plain.read_envelope(
        recording, gap.start_uutc - 5 * US, gap.end_uutc + 5 * US, 30, channels=names
    )
    assert np.isnan(gap_env[:, :, 10:15]).all() and not np.isnan(gap_env[:, :, 0]).any()


# -- the cache ---------------------------------------------------------------------------------
def test_repeated_reads_are_cache_hits(connect, server, recording, reference):
    c = connect(server)
    c.open_file(recording)
    c.set_signal_chunk_size(recording, 11.0)  # a grid no other test uses: cold
    first = c.get_signal_segment(recording, 20, dtype="float64")
    before = c.stats()
    for _ in range(3):
        again = c.get_signal_segment(recording, 20, dtype="float64")
        assert_same(again, first)
    after = c.stats()
    assert after["hits"] >= before["hits"] + 3
    assert after["misses"] == before["misses"], (before, after)
    assert_same(first, reference(recording).read_index(None, 20 * 2816, 21 * 2816, "float64"))
    # A range over segments already in the cache is assembled from hits only.
    c.read_index(recording, 20 * 2816 + 5, 21 * 2816 - 5, dtype="float64")
    final = c.stats()
    assert final["hits"] > after["hits"] and final["misses"] == after["misses"], (after, final)


# -- mixed rates -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mixed(server, mixed_rate_recording):
    from mef3lab.client import Mef3Client

    c = Mef3Client(server.address, timeout=120)
    c.open_file(mixed_rate_recording)
    c.set_signal_chunk_size(mixed_rate_recording, 4.0)
    yield c
    c.close_file(mixed_rate_recording)
    c.shutdown()


def test_mixed_rates_each_group(mixed, mixed_rate_recording, reference):
    path, ref = mixed_rate_recording, reference(mixed_rate_recording)
    grid = {g.fs: g for g in mixed.segment_grid(path).groups}
    groups = ref.info.rate_groups
    assert [g.fs for g in groups] == [1024.0, 256.0]
    assert {fs: list(g.channels) for fs, g in grid.items()} == {
        g.fs: list(g.channels) for g in groups
    }
    for group in groups:
        rg = grid[group.fs]
        assert (rg.start_uutc, rg.n_samples) == (group.grid.start_uutc, group.grid.n_samples)
        length, n = int(4 * group.fs), group.grid.n_samples
        assert (rg.segment_samples, rg.n_segments) == (length, -(-n // length))
        for names in (list(group.channels), list(reversed(group.channels)), [group.channels[1]]):
            for i in range(rg.n_segments):
                assert_same(
                    mixed.get_signal_segment(path, i, channels=names),
                    ref.read_index(names, i * length, min((i + 1) * length, n)),
                )
            g = group.grid
            for t0, t1 in [
                (g.start_uutc - 3 * US, g.start_uutc + 3 * US),
                (g.end_uutc - 3 * US, g.end_uutc + US),
                (g.start_uutc + 39 * US, g.start_uutc + 76 * US),
            ]:
                for dtype in ("float32", "float64"):
                    assert_same(
                        mixed.read_range(path, t0, t1, channels=names, dtype=dtype),
                        ref.read(names, t0, t1, dtype),
                    )
            raw = mixed.read_raw(path, -7, 5 * length + 3, channels=names)
            assert_same(raw.counts, ref.read_raw(names, -7, 5 * length + 3).counts)
            assert_same(raw.to_float(), mixed.read_index(path, -7, 5 * length + 3, channels=names))


def test_mixed_rates_refused_when_read_together(mixed, mixed_rate_recording):
    path = mixed_rate_recording
    start = mixed.info(path).start_uutc
    reads = [
        lambda: mixed.get_signal_segment(path, 0),
        lambda: mixed.read_range(path, start, start + US),
        lambda: mixed.read_index(path, 0, 100),
        lambda: mixed.read_envelope(path, start, start + US, 10),
        lambda: mixed.get_signal_segment(path, 0, channels=["ch000", "ch001"]),
    ]
    for read in reads:
        with pytest.raises(MixedRatesError) as err:
            read()
        text = str(err.value)
        assert "1024 Hz" in text and "256 Hz" in text and "'ch000'" in text and "'ch001'" in text, (
            text
        )
    assert_same(
        mixed.get_signal_segment(path, 0, channels=["ch001"]),
        mixed.read_index(path, 0, 1024, ["ch001"]),
    )


# -- encryption --------------------------------------------------------------------------------
def test_encrypted_session_reads_with_the_level2_password(
    connect, server, encrypted_recording, passwords, reference
):
    path = encrypted_recording
    c = connect(server)
    info = c.open_file(path, passwords.level2)
    assert info.encrypted
    ref = reference(path, passwords.level2)
    c.set_signal_chunk_size(path, 9.0)
    n = ref.info.rate_groups[0].grid.n_samples
    for i in range(-(-n // 2304)):
        assert_same(
            c.get_signal_segment(path, i), ref.read_index(None, i * 2304, min((i + 1) * 2304, n))
        )
    gap = ref.info.gaps("ch000")[0]
    for names in (None, ["ch002", "ch000"]):
        t0, t1 = gap.start_uutc - US, gap.end_uutc + US
        assert_same(
            c.read_range(path, t0, t1, channels=names, dtype="float64"),
            ref.read(names, t0, t1, "float64"),
        )
        assert_same(
            c.read_raw(path, 100, 9000, channels=names).counts,
            ref.read_raw(names, 100, 9000).counts,
        )
    assert c.close_file(path)


@pytest.mark.parametrize("password", [None, "wrong"], ids=["none", "wrong"])
def test_encrypted_session_wrong_password(connect, server, encrypted_recording, password):
    c = connect(server)
    with pytest.raises(PasswordError):
        c.open_file(encrypted_recording, password)
    assert c.list_open_files() == []
    assert c.stats()["open_recordings"] >= 0  # the server is still answering


@pytest.mark.parametrize("password", [None, "wrong"], ids=["none", "wrong"])
def test_encrypted_session_open_elsewhere_still_needs_the_password(
    connect, server, encrypted_recording, passwords, reference, password
):
    path = encrypted_recording
    owner, intruder, friend = connect(server), connect(server), connect(server)
    owner.open_file(path, passwords.level2)
    with pytest.raises(PasswordError):
        intruder.open_file(path, password)
    assert intruder.list_open_files() == []
    with pytest.raises(Exception) as err:
        intruder.read_index(path, 0, 100)
    assert type(err.value).__name__ == "NotOpenError"
    friend.open_file(path, passwords.level2)
    want = reference(path, passwords.level2).read_index(None, 0, 5000)
    assert_same(owner.read_index(path, 0, 5000), want)
    assert_same(friend.read_index(path, 0, 5000), want)
    assert owner.close_file(path) and friend.close_file(path)


def test_mixed_rates_envelope_per_group(mixed, mixed_rate_recording, reference):
    ref = reference(mixed_rate_recording)
    for group in ref.info.rate_groups:
        g, names = group.grid, list(group.channels)
        t0, t1 = (
            g.start_uutc - 2 * US,
            g.start_uutc + 80 * US,
        )  # over both gaps and the staggered starts
        assert_same(
            mixed.read_envelope(mixed_rate_recording, t0, t1, 200, channels=names),
            envelope_of(ref.read(names, t0, t1, "float32"), 200),
        )


def test_one_recording_under_several_spellings(connect, server, recording, reference, tmp_path):
    link = tmp_path / "link.mefd"
    link.symlink_to(recording)
    c = connect(server)
    for spelling in (recording, link, f"{recording}/"):
        c.open_file(spelling)
    assert c.list_open_files() == [str(recording.resolve())]
    want = reference(recording).read_index(["ch002", "ch002", "ch000"], 1000, 4000)
    assert_same(
        c.read_index(link, 1000, 4000, ["ch002", "ch002", "ch000"]), want
    )  # a channel twice: twice
    assert_same(c.read_index(recording, 1000, 4000, ["ch002", "ch002", "ch000"]), want)
    assert c.close_file(link) and c.list_open_files() == []
