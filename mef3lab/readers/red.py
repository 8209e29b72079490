"""RED, MEF 3.0's sample codec (range-encoded differences), decoded by numba-compiled kernels.

Decoding is what a server of MEF recordings spends its CPU on, so mef3lab has a decoder of its
own: meflib's stream format (``RED_decode``) with a per-block lookup table from count to symbol
(meflib and mef3io walk up to 256 cumulative counts per symbol), 32-bit divisions, and two
blocks decoded in step. Every block's CRC is checked before it is decoded. The kernels only
decode: which blocks to read and where their samples land is the engine's business
(`mef3lab.readers.numba`). Why and how: ``docs/readers.md``.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from .blockformat import (
    BAD_CRC,
    BAD_HEADER,
    BAD_STREAM,
    HEADER_BYTES,
    LEVEL_1,
    LEVEL_2,
    OK,
    UNSUPPORTED,
    WRONG_COUNT,
)


def _crc_tables() -> np.ndarray:
    """Meflib's CRC-32 table in row 0, and the rows that let `crc32` take 8 bytes per step.

    Row 0: Koopman polynomial, reflected (entry 1 is 0x9695C4CA); rows 1-7: "slicing-by-8".
    """
    poly = 0xEB31D82E
    t = np.zeros((8, 256), np.uint32)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        t[0, i] = c
    for k in range(1, 8):
        t[k] = (t[k - 1] >> 8) ^ t[0][t[k - 1] & 0xFF]
    return t


CRC_TABLE = _crc_tables()


@njit(cache=True, nogil=True)
def _u32(buf, at):
    return (
        np.int64(buf[at])
        | (np.int64(buf[at + 1]) << 8)
        | (np.int64(buf[at + 2]) << 16)
        | (np.int64(buf[at + 3]) << 24)
    )


@njit(cache=True, nogil=True)
def crc32(buf, start, stop, table):
    """Meflib's CRC_calculate over ``buf[start:stop]`` (start value 0xFFFFFFFF, no final xor)."""
    crc = np.int64(0xFFFFFFFF)
    i = start
    while i + 8 <= stop:
        one = crc ^ _u32(buf, i)
        two = _u32(buf, i + 4)
        crc = (
            np.int64(table[7, one & 0xFF])
            ^ np.int64(table[6, (one >> 8) & 0xFF])
            ^ np.int64(table[5, (one >> 16) & 0xFF])
            ^ np.int64(table[4, one >> 24])
            ^ np.int64(table[3, two & 0xFF])
            ^ np.int64(table[2, (two >> 8) & 0xFF])
            ^ np.int64(table[1, (two >> 16) & 0xFF])
            ^ np.int64(table[0, two >> 24])
        )
        i += 8
    for k in range(i, stop):
        crc = (crc >> 8) ^ np.int64(table[0, (crc ^ buf[k]) & 0xFF])
    return crc


@intrinsic
def _udiv32(typingctx, a, b):
    """Unsigned 32-bit ``a // b``.

    numba widens integers to 64 bits, whose division is slower (the decoder's two divisions
    per symbol are most of its time).
    """

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        q = builder.udiv(builder.trunc(args[0], i32), builder.trunc(args[1], i32))
        return builder.zext(q, ir.IntType(64))

    return types.int64(types.int64, types.int64), codegen


@njit(cache=True, nogil=True)
def _prepare(buf, off, size, count, table, cum, lut, room):
    """Check the block at `off`, which must end by byte `size`, and build its symbol tables.

    Returns ``(status, number of difference bytes, total count)``.
    """
    if off < 0 or off + HEADER_BYTES > size:
        return BAD_HEADER, 0, 0
    block_bytes = _u32(buf, off + 36)
    if block_bytes < HEADER_BYTES or off + block_bytes > size:
        return BAD_HEADER, 0, 0
    if crc32(buf, off + 4, off + block_bytes, table) != _u32(buf, off):
        return BAD_CRC, 0, 0
    if buf[off + 4] & (LEVEL_1 | LEVEL_2):
        return UNSUPPORTED, 0, 0
    # meflib unscales when scale_factor > 1 and retrends when slope or intercept != 0;
    # a positive float's bits order like the float, so this reads them as integers.
    scale, slope, intercept = _u32(buf, off + 24), _u32(buf, off + 16), _u32(buf, off + 20)
    if (scale > 0x3F800000 and scale < 0x80000000) or slope & 0x7FFFFFFF or intercept & 0x7FFFFFFF:
        return UNSUPPORTED, 0, 0
    if _u32(buf, off + 32) != count:
        return WRONG_COUNT, 0, 0
    if count == 0:
        return OK, 0, 1
    n_diff = _u32(buf, off + 28)
    if n_diff + 1 > room:
        return BAD_STREAM, 0, 0
    cum[0] = 0
    for s in range(256):
        cum[s + 1] = cum[s] + buf[off + 48 + s]
        for c in range(cum[s], cum[s + 1]):
            lut[c] = s
    if cum[256] == 0:
        return BAD_STREAM, 0, 0
    return OK, n_diff, cum[256]


@njit(inline="always")
def _symbol(buf, stats, end, cum, lut, total, low, rng, p, byte):
    """One step of meflib's range decoder (7 extra bits, bottom value 2**23).

    Returns the symbol and the decoder's new state.
    """
    while rng <= 0x800000:
        low = ((low << 8) | ((byte << 7) & 0xFF)) & 0xFFFFFFFF
        byte = np.int64(buf[p]) if p < end else np.int64(0)
        p += 1
        low |= byte >> 1
        rng = (rng << 8) & 0xFFFFFFFF
    per_count = _udiv32(rng, total)
    c = _udiv32(low, per_count)
    if c >= total:
        c = total - 1
    sym = lut[c]
    taken = per_count * cum[sym]
    low = (low - taken) & 0xFFFFFFFF
    rng = (per_count * buf[stats + sym]) & 0xFFFFFFFF if sym < 255 else (rng - taken) & 0xFFFFFFFF
    return sym, low, rng, p, byte


@njit(inline="always")
def _wanted(count, first, width):
    """How many of a block's `count` samples land before `width`, its first at `first`.

    Those before index 0 count too: each sample follows from the one before.
    """
    return max(0, min(count, width - first))


@njit(inline="always")
def _needs(sym, want, key):
    """After one more difference byte `sym`: samples still wanted, key-sample bytes to come.

    A byte 0x80 flags a key sample whose 4 bytes follow; any other byte is one sample.
    """
    if key > 0:
        key -= 1
        if key == 0:
            want -= 1
    elif sym == 0x80:
        key = 4
    else:
        want -= 1
    return want, key


@njit(inline="always")
def _samples(diffs, n_diff, n, j0, out):
    """Differences to samples, sample k into ``out[j0 + k]``.

    A difference byte 0x80 flags a 4-byte little-endian key sample.
    """
    j, last, value, width = 0, n_diff + 1, np.int64(0), out.shape[0]
    for k in range(n):
        if j >= last:
            return BAD_STREAM
        d = diffs[j]
        if d == 0x80:
            if j + 5 > last:
                return BAD_STREAM
            value = _u32(diffs, j + 1)
            if value >= 0x80000000:
                value -= 0x100000000
            j += 5
        else:
            value += d if d < 128 else d - 256
            # int32 wrap-around, as meflib
            value = ((value + 0x80000000) & 0xFFFFFFFF) - 0x80000000
            j += 1
        at = j0 + k
        if at >= 0 and at < width:
            out[at] = value
    return OK


@njit(cache=True, nogil=True)
def decode_blocks(buf, offsets, counts, firsts, rows, ends, out, table):
    """Decode the blocks at `offsets` of `buf` into the rows of `out`.

    Blocks are decoded two at a time, their range decoders interleaved: each is a chain of
    dependent divisions, and two independent chains keep the CPU busy while one waits. The
    blocks of several channels (one row each) go in one call, so that blocks pair across
    channels too (a page is often one block of each). A block is decoded only as far as its
    row needs: a window that ends inside a block stops decoding it there.

    Parameters
    ----------
    buf : numpy.ndarray
        uint8: bytes of ``.tdat`` files that hold the blocks, one run after another.
    offsets, counts, firsts, rows, ends : numpy.ndarray
        int64, per block: where it starts in `buf`, how many samples it holds (as the index
        lists), where its first sample goes in its row (samples outside the row are dropped),
        its row of `out`, and the end of the bytes read for it (of its run of `buf`: a block
        must end there).
    out : numpy.ndarray
        int32, 2-D: block b's k-th sample goes to ``out[rows[b], firsts[b] + k]``.
    table : numpy.ndarray
        `CRC_TABLE`.

    Returns
    -------
    status : int
        `OK`, or what is wrong with block b (a key of `PROBLEMS`).
    b : int
        The block decoding stopped at (-1 when all are decoded).
    """
    n_blocks, width = offsets.shape[0], out.shape[1]
    room = 1
    wanted = np.empty(n_blocks, np.int64)
    for b in range(n_blocks):
        room = max(room, 5 * counts[b] + 1)
        wanted[b] = _wanted(counts[b], firsts[b], width)
    # Blocks that need as many samples go in pairs: one needed in part would otherwise end
    # early and leave its partner to go on alone. If one is damaged, the blocks are decoded
    # again in order, so that the first damaged one is reported, as one after another would.
    pairs = np.argsort(-wanted, kind="mergesort")
    status, b = _decode_pairs(
        buf, offsets, counts, firsts, rows, ends, out, table, pairs, wanted, room
    )
    if status != OK:
        status, b = _decode_pairs(
            buf, offsets, counts, firsts, rows, ends, out, table, np.arange(n_blocks), wanted, room
        )
    return status, b


@njit(cache=True, nogil=True)
def _decode_pairs(buf, offsets, counts, firsts, rows, ends, out, table, order, wanted, room):
    """`decode_blocks` with the blocks taken two at a time in `order`; the first problem."""
    n_blocks = offsets.shape[0]
    cum = np.zeros((2, 257), np.int64)
    lut = np.zeros((2, 256 * 255), np.uint8)
    diffs = np.empty((2, room), np.uint8)
    for i in range(0, n_blocks, 2):
        a = order[i]
        b = order[i + 1] if i + 1 < n_blocks else a  # an odd last block pairs with nothing
        status, nd_a, total_a = _prepare(
            buf, offsets[a], ends[a], counts[a], table, cum[0], lut[0], room
        )
        if status != OK:
            return status, a
        nd_b, total_b = 0, 1
        if b != a:
            status, nd_b, total_b = _prepare(
                buf, offsets[b], ends[b], counts[b], table, cum[1], lut[1], room
            )
            if status != OK:
                return status, b
        end_a, end_b = (
            offsets[a] + _u32(buf, offsets[a] + 36),
            offsets[b] + _u32(buf, offsets[b] + 36),
        )
        p_a, p_b = offsets[a] + HEADER_BYTES, offsets[b] + HEADER_BYTES
        byte_a = np.int64(buf[p_a]) if p_a < end_a else np.int64(0)
        byte_b = np.int64(buf[p_b]) if p_b < end_b else np.int64(0)
        low_a, low_b, rng_a, rng_b = byte_a >> 1, byte_b >> 1, np.int64(128), np.int64(128)
        p_a, p_b = p_a + 1, p_b + 1
        stats_a, stats_b = offsets[a] + 48, offsets[b] + 48
        diffs[0, 0] = diffs[1, 0] = 0x80  # the first key-sample flag is implied, not coded
        # Samples that land before the row's end; those after it are not decoded. Each block's
        # differences are decoded until they hold that many samples (`_needs`): `want`
        # samples still to complete, `key` bytes still to come of a key sample.
        m_a, m_b = wanted[a], wanted[b] if b != a else 0
        want_a, want_b, key_a, key_b, i_a, i_b = m_a, m_b, 4, 4, 0, 0
        while want_a > 0 and i_a < nd_a and want_b > 0 and i_b < nd_b:
            sym, low_a, rng_a, p_a, byte_a = _symbol(
                buf, stats_a, end_a, cum[0], lut[0], total_a, low_a, rng_a, p_a, byte_a
            )
            i_a += 1
            diffs[0, i_a] = sym
            want_a, key_a = _needs(sym, want_a, key_a)
            sym, low_b, rng_b, p_b, byte_b = _symbol(
                buf, stats_b, end_b, cum[1], lut[1], total_b, low_b, rng_b, p_b, byte_b
            )
            i_b += 1
            diffs[1, i_b] = sym
            want_b, key_b = _needs(sym, want_b, key_b)
        while want_a > 0 and i_a < nd_a:
            sym, low_a, rng_a, p_a, byte_a = _symbol(
                buf, stats_a, end_a, cum[0], lut[0], total_a, low_a, rng_a, p_a, byte_a
            )
            i_a += 1
            diffs[0, i_a] = sym
            want_a, key_a = _needs(sym, want_a, key_a)
        while want_b > 0 and i_b < nd_b:
            sym, low_b, rng_b, p_b, byte_b = _symbol(
                buf, stats_b, end_b, cum[1], lut[1], total_b, low_b, rng_b, p_b, byte_b
            )
            i_b += 1
            diffs[1, i_b] = sym
            want_b, key_b = _needs(sym, want_b, key_b)
        if _samples(diffs[0], i_a, m_a, firsts[a], out[rows[a]]) != OK:
            return BAD_STREAM, a
        if b != a and _samples(diffs[1], i_b, m_b, firsts[b], out[rows[b]]) != OK:
            return BAD_STREAM, b
    return OK, -1


def warm_up() -> None:
    """Compile the kernels, or load them from numba's cache, now rather than in a first read.

    For both kinds of rows a read decodes into: a C-ordered array, and rows with room after
    them (a reader process's shared block, each row on pages of its own), which numba
    compiles apart.
    """
    empty = np.zeros(0, np.int64)
    for out in (np.zeros((0, 0), np.int32), np.zeros((2, 4), np.int32)[:, :2]):
        decode_blocks(np.zeros(0, np.uint8), empty, empty, empty, empty, empty, out, CRC_TABLE)
