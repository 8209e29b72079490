"""mef3lab's own RED decoder (the numba engine): that it really decodes, and knows when not to.

The sample-for-sample agreement with pymef runs in test_engines_agree / test_data for
every engine; here: which channels the kernels decode, the CRC table, block-level errors,
and the hand-over to mef3io.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from numba import njit

from mef3lab.errors import CorruptDataError
from mef3lab.readers import blockformat, kernels, open_reader, red
from mef3lab.readers.numba import _regular


def test_crc_table_is_meflibs():
    # The first entries of CRC_KOOPMAN32_KEY in meflib.h.
    assert [hex(v) for v in blockformat.CRC_TABLE[0, :4]] == [
        "0x0",
        "0x9695c4ca",
        "0xfb4839c9",
        "0x6dddfd03",
    ]


@pytest.mark.parametrize("length", [0, 1, 7, 8, 9, 300])
def test_crc_8_bytes_a_step_equals_bytewise(length):
    data = np.random.default_rng(length).integers(0, 256, length + 3, dtype=np.uint8)
    crc = 0xFFFFFFFF
    for byte in data[3:]:  # meflib's CRC_update, a byte at a time
        crc = (crc >> 8) ^ int(blockformat.CRC_TABLE[0, (crc ^ int(byte)) & 0xFF])
    assert red.crc32(data, 3, length + 3, blockformat.CRC_TABLE) == crc


@njit
def _quotients_that_differ(totals, ranges):
    """How many ``mul_shift63(r, reciprocal(t))`` differ from ``r // t``, over all pairs."""
    wrong = 0
    for t in totals:
        inv = red.reciprocal(t)
        for r in ranges:
            wrong += red.mul_shift63(r, inv) != r // t
        for k in (np.int64(1), (np.int64(1) << 32) // t):  # whole quotients and one below
            for r in (k * t - 1, k * t):
                wrong += r < (np.int64(1) << 32) and red.mul_shift63(r, inv) != r // t
    return wrong


def test_the_divisions_by_a_blocks_total_are_exact_for_every_total_and_range():
    # A block's counts are 256 bytes, so its total is 1 ... 65280; the range is below 2**32.
    totals = np.arange(1, 256 * 255 + 1, dtype=np.int64)
    rng = np.random.default_rng(0)
    ranges = np.concatenate(
        [
            [0, 1, 0x80, 0x800000, 0x800001, 0xFFFF, 0x10000, 2**31, 2**32 - 2, 2**32 - 1],
            rng.integers(0, 2**32, 20),
        ]
    ).astype(np.int64)
    assert _quotients_that_differ(totals, ranges) == 0


@pytest.mark.parametrize("file", ["recording", "pymef_recording"])
def test_every_plain_channel_is_decoded_by_the_kernels(request, file):
    # Both writers' files (mef3io's, and meflib's with truncated block times).
    with open_reader(request.getfixturevalue(file), engine="numba") as r:
        assert r.decoded_here == r.info.names
        with open_reader(r.path, engine="pymef") as ref:
            np.testing.assert_array_equal(r.read(dtype="float64"), ref.read(dtype="float64"))


def test_channels_between_grid_samples_land_where_pymef_puts_them(tmp_path):
    import mef3io

    START = 1_705_305_600_000_000
    x = np.round(np.random.default_rng(3).normal(0, 30, 256 * 30), 2)
    path = tmp_path / "offsets.mefd"
    with mef3io.Writer(str(path), overwrite=True, units="uV") as w:
        w.write("a", x, START, 256.0, precision=2)
        w.write("b", x, START + 1000, 256.0, precision=2)  # 0.256 of a period after the grid
        w.write("c", x, START + 2500, 256.0, precision=2)  # 0.64
        w.write("d", x[:5000], START + 1953, 256.0, precision=2)  # just under half, then a gap
        w.write(
            "d", x[5000:], START + 1953 + round(5000 * 1e6 / 256) + 3_001_000, 256.0, precision=2
        )
    with open_reader(path, engine="numba") as r, open_reader(path, engine="pymef") as ref:
        assert r.decoded_here == ("a", "b", "c", "d")
        for t0, t1 in [
            (None, None),
            (START + 7, START + 5_000_000),
            (START + 19_000_000, START + 27_000_017),
        ]:
            np.testing.assert_array_equal(
                r.read(None, t0, t1, dtype="float64"), ref.read(None, t0, t1, dtype="float64")
            )


def test_encrypted_sessions_are_decoded_by_the_kernels(encrypted_recording, passwords):
    # mef3io's writer encrypts metadata and records, not sample blocks.
    for password in passwords:
        with (
            open_reader(encrypted_recording, password, engine="numba") as r,
            open_reader(encrypted_recording, password, engine="mef3io") as ref,
        ):
            assert r.decoded_here == r.info.names
            for g in r.info.rate_groups:
                np.testing.assert_array_equal(
                    r.read(g.channels, dtype="float64"), ref.read(g.channels, dtype="float64")
                )


def _open_copy(recording, tmp_path, channel: int):
    """A numba reader of a copy of `recording`; the name, .tdat file and block offsets of its
    `channel`-th channel.
    """
    copy = tmp_path / "copy.mefd"
    shutil.copytree(recording, copy)
    r = open_reader(copy, engine="numba")
    name = r.info.names[channel]
    return r, name, next((copy / f"{name}.timd").glob("*.segd/*.tdat")), r._blocks[name].offsets


def test_a_block_the_kernels_cannot_decode_is_handed_to_mef3io(recording, tmp_path):
    r, name, tdat, offsets = _open_copy(recording, tmp_path, 0)
    with r:
        off = int(offsets[2])
        buf = np.fromfile(tdat, np.uint8)
        buf[off + 24 : off + 28] = np.frombuffer(
            np.float32(2.0).tobytes(), np.uint8
        )  # a lossy block
        _with_crc(buf, off).tofile(tdat)
        got = r.read(name, dtype="float64")
        assert name not in r.decoded_here and r.info.names[1] in r.decoded_here
        with open_reader(r.path, engine="mef3io") as ref:
            np.testing.assert_array_equal(got, ref.read(name, dtype="float64"))


def test_a_damaged_block_names_file_channel_and_offset(recording, tmp_path):
    r, name, tdat, offsets = _open_copy(recording, tmp_path, 1)
    with r:
        data = bytearray(tdat.read_bytes())
        at = int(offsets[3]) + red.HEADER_BYTES + 10  # inside the fourth block's samples
        data[at] ^= 0xFF
        tdat.write_bytes(bytes(data))
        with pytest.raises(
            CorruptDataError, match=rf"{name}.*byte {int(offsets[3])} of {tdat.name}.*CRC"
        ):
            r.read(name)
        # The blocks before it still read, and equal pymef's.
        with open_reader(r.path, engine="pymef") as ref:
            t1 = int(r.info.channel(name).start_uutc + 2 * 10_000_000)
            np.testing.assert_array_equal(r.read(name, None, t1), ref.read(name, None, t1))


@pytest.fixture
def blocks(tmp_path):
    """The blocks of a small synthetic channel: (its .tdat bytes, block offsets, block counts)."""
    from mef3lab.testing.synth import synthesize

    path = synthesize(tmp_path / "k.mefd", channels=1, seconds=60.0, gaps=[], seed=1)
    with open_reader(path, engine="numba") as r:
        b = r._blocks[r.info.names[0]]
        return np.fromfile(b.files[0], np.uint8), b.offsets, b.counts


def test_kernel_reports_each_problem(blocks):
    buf, offsets, counts = blocks
    out = np.empty((1, int(counts[:2].sum())), np.int32)
    firsts = np.array([0, counts[0]], np.int64)
    rows = np.zeros(2, np.int64)

    def decode(b, c=counts[:2]):
        ends = np.full(2, len(b), np.int64)
        return kernels.load().decode_blocks(b, offsets[:2], c, firsts, rows, ends, out)

    assert decode(buf) == (red.OK, -1)
    assert decode(buf[: offsets[1] + 100]) == (red.BAD_HEADER, 1)  # the second block cut short
    assert decode(buf, np.array([counts[0], counts[1] + 1])) == (red.WRONG_COUNT, 1)
    flagged = buf.copy()
    flagged[offsets[1] + 4] |= red.LEVEL_1
    assert decode(flagged)[1] == 1 and decode(flagged)[0] == red.BAD_CRC  # flags are under the CRC
    fixed = _with_crc(flagged, offsets[1])
    assert decode(fixed) == (red.UNSUPPORTED, 1)
    lossy = buf.copy()
    lossy[offsets[0] + 24 : offsets[0] + 28] = np.frombuffer(np.float32(2.0).tobytes(), np.uint8)
    assert decode(_with_crc(lossy, offsets[0])) == (red.UNSUPPORTED, 0)


def test_regular_block_times():
    counts = np.array([2560, 2560, 2560, 100])
    p = 1e6 / 256
    starts = np.array([0, 2560 * p, 5120 * p, 9_000_000_000], np.float64).round().astype(np.int64)
    disc = np.array([True, False, False, True])
    assert _regular(starts, counts, disc, 256.0)
    late = starts.copy()
    late[2] += 2  # two microseconds off its sample count: not placed the same by every rule
    assert not _regular(late, counts, disc, 256.0)
    late_but_new_run = late.copy()
    late_but_new_run[2] += 10_000_000  # a gap: starts a run of its own
    assert _regular(late_but_new_run, counts, disc, 256.0)


def _with_crc(buf: np.ndarray, off: int) -> np.ndarray:
    size = int(buf[off + 36 : off + 40].view(np.uint32)[0])
    out = buf.copy()
    out[off : off + 4] = np.frombuffer(
        np.uint32(red.crc32(out, off + 4, off + size, blockformat.CRC_TABLE)).tobytes(), np.uint8
    )
    return out


def test_blocks_of_several_rows_in_one_call_land_in_their_rows(blocks):
    """Blocks go to the rows they are given (paired across rows), each as decoded alone; a
    block cut short by the end of its own run of bytes is reported even where more bytes
    follow in the buffer."""
    buf, offsets, counts = blocks
    n = int(counts[0])
    alone = np.empty((3, n), np.int32)
    for j in range(3):
        one = np.zeros(1, np.int64)
        ends = np.full(1, len(buf), np.int64)
        status = kernels.load().decode_blocks(
            buf, offsets[j : j + 1], counts[j : j + 1], one, one, ends, alone[j : j + 1]
        )
        assert status == (red.OK, -1)
    together = np.empty((3, n), np.int32)
    rows = np.array([2, 0, 1], np.int64)  # block j into row rows[j]
    ends = np.full(3, len(buf), np.int64)
    status = kernels.load().decode_blocks(
        buf, offsets[:3], counts[:3], np.zeros(3, np.int64), rows, ends, together
    )
    assert status == (red.OK, -1)
    np.testing.assert_array_equal(together[rows], alone)
    ends[1] = offsets[1] + 100  # the second block's run ends inside it
    status = kernels.load().decode_blocks(
        buf, offsets[:3], counts[:3], np.zeros(3, np.int64), rows, ends, together
    )
    assert status == (red.BAD_HEADER, 1)


def test_a_window_ending_inside_a_block_is_decoded_that_far_exactly(tmp_path):
    """The kernels stop decoding a block where the window ends: every end, key samples too."""
    import mef3io

    rng = np.random.default_rng(11)
    steps = rng.integers(-60, 61, 40_000)
    steps[::37] = rng.choice([-9000, 9000], steps[::37].size)  # differences a byte cannot hold
    x = np.cumsum(steps).astype(np.float64)
    path = tmp_path / "keys.mefd"
    with mef3io.Writer(str(path), overwrite=True, units="uV") as w:
        w.write("k", x, 1_705_305_600_000_000, 1000.0, precision=0)
    with open_reader(path, engine="numba") as r, open_reader(path, engine="mef3io") as ref:
        assert r.decoded_here == ("k",)
        bounds = np.concatenate([[0], np.cumsum(r._blocks["k"].counts)])
        assert len(bounds) > 3
        b, size = int(bounds[1]), int(bounds[2] - bounds[1])
        jumps = [j - b for j in range(0, len(x), 37) if b <= j < b + size][:3]
        ends = {1, 2, 3, 4, 5, 6, size - 1, size, size + 1}
        ends |= {j + d for j in jumps for d in range(-1, 7)}  # around key samples
        for start in (b - 5, b, b + 3):
            for end in sorted(e for e in ends if e > 0 and b + e > start):
                got = r.read_index(["k"], start, b + end, dtype="float64")
                want = ref.read_index(["k"], start, b + end, dtype="float64")
                np.testing.assert_array_equal(got, want, err_msg=f"[{start}, {b + end})")


def test_of_two_damaged_blocks_the_first_in_channel_order_is_named(recording, tmp_path):
    """Blocks are paired by how much of them a read needs, but damage is reported as if the
    channels were decoded one after another: here channel 0's second block, not channel 1's
    first block, which its pairing reaches first."""
    copy = tmp_path / "copy.mefd"
    shutil.copytree(recording, copy)
    with open_reader(copy, engine="numba") as r:
        first, second = r.info.names[:2]
        bounds = np.concatenate([[0], np.cumsum(r._blocks[first].counts)])
        for name, block in ((first, 4), (second, 3)):
            tdat = next((copy / f"{name}.timd").glob("*.segd/*.tdat"))
            data = bytearray(tdat.read_bytes())
            data[int(r._blocks[name].offsets[block]) + red.HEADER_BYTES + 10] ^= 0xFF
            tdat.write_bytes(bytes(data))
        at = int(r._blocks[first].offsets[4])
        with pytest.raises(CorruptDataError, match=rf"{first}.*byte {at} of .*CRC"):
            r.read_index([first, second], int(bounds[3]) + 10, int(bounds[4]) + 10)


def test_arguments_that_would_take_the_kernel_outside_its_arrays_are_refused(blocks):
    """The kernel has no bounds checks: a row or an end outside the arrays never reaches it."""
    buf, offsets, counts = blocks
    out = np.zeros((1, int(counts[0])), np.int32)
    one, ends = np.zeros(1, np.int64), np.full(1, len(buf), np.int64)
    decode = kernels.load().decode_blocks
    with pytest.raises(ValueError, match="row is outside"):
        decode(buf, offsets[:1], counts[:1], one, one + 1, ends, out)
    with pytest.raises(ValueError, match="outside buf"):
        decode(buf, offsets[:1], counts[:1], one, one, ends + 1, out)
    with pytest.raises(ValueError, match="contiguous rows"):
        decode(buf, offsets[:1], counts[:1], one, one, ends, np.zeros((1, 8), np.int32)[:, ::2])
    with pytest.raises(ValueError, match="in order"):  # rows backwards: the kernel would write
        decode(buf, offsets[:1], counts[:1], one, one, ends, np.zeros((2, 8), np.int32)[::-1])
    assert decode(buf, offsets[:1], counts[:1], one, one, ends, out) == (blockformat.OK, -1)


def _resumed_in_steps(buf, offsets, counts, cuts):
    """Blocks 0 and 1 decoded into one row in calls that each end at the next of `cuts`."""
    decode = kernels.load().decode_blocks
    n = int(counts[:2].sum())
    row = np.full(n, -7, np.int32)
    state = np.zeros((2, kernels.STATE_FIELDS), np.int64)
    k0 = 0
    for k1 in [*cuts, n]:
        out = np.zeros((1, k1 - k0), np.int32)
        firsts = np.array([0, counts[0]], np.int64) - k0
        left = np.zeros_like(state)
        ends = np.full(2, len(buf), np.int64)
        status = decode(buf, offsets[:2], counts[:2], firsts, np.zeros(2, np.int64), ends, out,
                        state, left)  # fmt: skip
        assert status == (red.OK, -1)
        # a block stopped in before the cut's end keeps what it did; one not reached: nothing
        assert ((left[:, 0] == 0) | (firsts + left[:, 0] == k1 - k0)).all()
        row[k0:k1], state, k0 = out[0], left, k1
    return row, state


def test_a_block_decoded_in_steps_equals_one_decoded_at_once(blocks):
    buf, offsets, counts = blocks
    whole, _ = _resumed_in_steps(buf, offsets, counts, [])  # one call
    c0 = int(counts[0])
    rng = np.random.default_rng(2)
    for cuts in (
        [1],  # one sample, then the rest
        [c0 - 1, c0, c0 + 1],  # around the blocks' border
        sorted({int(k) for k in rng.integers(1, 2 * c0 - 1, 40)}),  # many small steps
        list(range(1, 300)),  # a sample at a time (key samples among them)
    ):
        row, state = _resumed_in_steps(buf, offsets, counts, cuts)
        assert (row == whole).all(), cuts
        assert (state == 0).all()  # both blocks ended


def test_a_resume_state_that_is_not_the_kernels_own_is_refused(blocks):
    buf, offsets, counts = blocks
    decode = kernels.load().decode_blocks
    one, ends = np.zeros(1, np.int64), np.full(1, len(buf), np.int64)
    left = np.zeros((1, kernels.STATE_FIELDS), np.int64)
    decode(buf, offsets[:1], counts[:1], one, one, ends, np.zeros((1, 10), np.int32), None, left)
    assert left[0, 0] == 10  # stopped after the ten samples its row holds
    out = np.zeros((1, 5), np.int32)
    later = one + (-10)  # the block's sample 10 at the row's start
    assert decode(buf, offsets[:1], counts[:1], later, one, ends, out, left) == (red.OK, -1)
    for field, value in ((1, -5), (1, 10**9), (3, 0), (2, 2**32), (4, 256), (0, int(counts[0]))):
        bad = left.copy()
        bad[0, field] = value
        with pytest.raises(ValueError, match="resume state"):
            decode(buf, offsets[:1], counts[:1], later, one, ends, out, bad)
    with pytest.raises(ValueError, match="samples its row needs"):  # it would skip samples 5-9
        decode(buf, offsets[:1], counts[:1], one - 5, one, ends, out, left)
