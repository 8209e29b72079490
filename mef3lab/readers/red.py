"""RED, MEF 3.0's sample codec (range-encoded differences), decoded by numba-compiled kernels.

Decoding is what a server of MEF recordings spends its CPU on, so mef3lab has a decoder of its
own: meflib's stream format (``RED_decode``) with a per-block lookup table from count to symbol
(meflib and mef3io walk up to 256 cumulative counts per symbol), one 32-bit division per
symbol (the other is a multiplication), and two blocks decoded in step. Every block's CRC is
checked before it is decoded. The kernel is a C function (`decode`), which `kernels` loads,
without numba once it was compiled. It only decodes: which blocks to read and where their
samples land is the engine's business (`mef3lab.readers.numba`). Why and how:
``docs/readers.md``.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import carray, cfunc, njit, types
from numba.extending import intrinsic

from .blockformat import (
    BAD_CRC,
    BAD_HEADER,
    BAD_STREAM,
    HEADER_BYTES,
    LEVEL_1,
    LEVEL_2,
    OK,
    STATE_FIELDS,
    UNSUPPORTED,
    WRONG_COUNT,
)


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

    numba widens integers to 64 bits, whose division is slower (the decoder's division per
    symbol is much of its time).
    """

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        q = builder.udiv(builder.trunc(args[0], i32), builder.trunc(args[1], i32))
        return builder.zext(q, ir.IntType(64))

    return types.int64(types.int64, types.int64), codegen


@intrinsic
def mul_shift63(typingctx, a, m):
    """``(a * m) >> 63`` of unsigned 64-bit `a` and `m`, from their 128-bit product."""

    def codegen(context, builder, signature, args):
        i128 = ir.IntType(128)
        prod = builder.mul(builder.zext(args[0], i128), builder.zext(args[1], i128))
        return builder.trunc(builder.lshr(prod, ir.Constant(i128, 63)), ir.IntType(64))

    return types.int64(types.int64, types.uint64), codegen


@njit(inline="always")
def reciprocal(total):
    """``ceil(2**63 / total)``: ``mul_shift63(r, it)`` is ``r // total`` for r < 2**32.

    Exact because `total` < 2**16: the product exceeds ``r / total`` by less than
    ``r / 2**63`` < 2**-31, and a quotient that is not a whole number is at least
    ``1 / total`` below the next one. A block's total count is fixed, so this replaces one
    of the two divisions per symbol by a multiplication.
    """
    return (np.uint64(0x7FFFFFFFFFFFFFFF) + np.uint64(total)) // np.uint64(total)


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
def _symbol(buf, stats, end, cum, lut, total, inv, low, rng, p, byte):
    """One step of meflib's range decoder (7 extra bits, bottom value 2**23).

    `inv` is ``reciprocal(total)``.

    Returns the symbol and the decoder's new state.
    """
    while rng <= 0x800000:
        low = ((low << 8) | ((byte << 7) & 0xFF)) & 0xFFFFFFFF
        byte = np.int64(buf[p]) if p < end else np.int64(0)
        p += 1
        low |= byte >> 1
        rng = (rng << 8) & 0xFFFFFFFF
    per_count = mul_shift63(rng, inv)
    c = _udiv32(low, per_count)
    if c >= total:
        c = total - 1
    sym = lut[c]
    taken = per_count * cum[sym]
    low = (low - taken) & 0xFFFFFFFF
    rng = (per_count * buf[stats + sym]) & 0xFFFFFFFF if sym < 255 else (rng - taken) & 0xFFFFFFFF
    return sym, low, rng, p, byte


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
def _samples(diffs, last, j, value, k0, k1, j0, out, width):
    """Samples k0 to k1 of a block from its differences ``diffs[j:last]``.

    Sample k goes into ``out[j0 + k]`` if that is before `width`. `value` is sample k0 - 1
    (a block's first difference byte is the key-sample flag 0x80, implied: ``diffs[0]``).
    A difference byte 0x80 flags a 4-byte little-endian key sample.

    Returns the status and the last sample.
    """
    for k in range(k0, k1):
        if j >= last:
            return BAD_STREAM, value
        d = diffs[j]
        if d == 0x80:
            if j + 5 > last:
                return BAD_STREAM, value
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
    return OK, value


@njit(inline="always")
def _start(buf, offsets, resume, b, end):
    """Where block b's decoding starts: its first byte, or where an earlier call left it.

    Returns ``(byte position, low, range, byte, differences done, key-sample bytes to
    come)``; `_resumed` says the rest.
    """
    if resume[b, 0] > 0:
        r = resume[b]
        return offsets[b] + r[1], r[2], r[3], r[4], r[5], np.int64(0)
    p = offsets[b] + HEADER_BYTES
    byte = np.int64(buf[p]) if p < end else np.int64(0)
    # the first key-sample flag is implied, not coded: 4 bytes of a key sample to come
    return p + 1, byte >> 1, np.int64(128), byte, np.int64(0), np.int64(4)


@njit(inline="always")
def _resumed(resume, b):
    """Block b's samples done, where its samples start in `diffs`, and its last sample.

    Read again after decoding rather than kept through the loop, which needs every register.
    """
    if resume[b, 0] > 0:
        return resume[b, 0], resume[b, 5] + 1, resume[b, 6]
    return np.int64(0), np.int64(0), np.int64(0)


@njit(inline="always")
def _leave(left, b, count, done, off, p, low, rng, byte, i, value):
    """Note where block b stopped, for a later call to go on from (nothing once it ended)."""
    if done < count:
        left[b, 0], left[b, 1], left[b, 2], left[b, 3] = done, p - off, low, rng
        left[b, 4], left[b, 5], left[b, 6] = byte, i, value
    else:
        left[b, 0] = 0


@njit(cache=True, nogil=True)
def _decode_pairs(
    buf, offsets, counts, firsts, rows, ends, out, width, table, order, wanted, cum, lut, diffs,
    resume, left,
):  # fmt: skip
    """The blocks decoded two at a time in `order`; the first problem (see `decode`).

    `cum`, `lut` and `diffs` are each block of a pair's symbol tables and differences;
    `resume` and `left`: where each block starts, and where it stopped (`_start`, `_leave`).
    """
    n_blocks, room = offsets.shape[0], diffs.shape[1]
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
        inv_a, inv_b = reciprocal(total_a), reciprocal(total_b)
        end_a, end_b = (
            offsets[a] + _u32(buf, offsets[a] + 36),
            offsets[b] + _u32(buf, offsets[b] + 36),
        )
        p_a, low_a, rng_a, byte_a, i_a, key_a = _start(buf, offsets, resume, a, end_a)
        p_b, low_b, rng_b, byte_b, i_b, key_b = _start(buf, offsets, resume, b, end_b)
        stats_a, stats_b = offsets[a] + 48, offsets[b] + 48
        # Samples that land before the row's end; those after it are not decoded. Each block's
        # differences are decoded until they hold that many samples (`_needs`): `want`
        # samples still to complete, `key` bytes still to come of a key sample. A block an
        # earlier call left goes on where it stopped (`resume`), after a whole sample: its
        # differences go on in `diffs` from where they stopped.
        m_a, m_b = wanted[a], wanted[b] if b != a else 0
        want_a, want_b = m_a - resume[a, 0], m_b - resume[b, 0] if b != a else 0
        diffs[0, 0] = diffs[1, 0] = 0x80
        while want_a > 0 and i_a < nd_a and want_b > 0 and i_b < nd_b:
            sym, low_a, rng_a, p_a, byte_a = _symbol(
                buf, stats_a, end_a, cum[0], lut[0], total_a, inv_a, low_a, rng_a, p_a, byte_a
            )
            i_a += 1
            diffs[0, i_a] = sym
            want_a, key_a = _needs(sym, want_a, key_a)
            sym, low_b, rng_b, p_b, byte_b = _symbol(
                buf, stats_b, end_b, cum[1], lut[1], total_b, inv_b, low_b, rng_b, p_b, byte_b
            )
            i_b += 1
            diffs[1, i_b] = sym
            want_b, key_b = _needs(sym, want_b, key_b)
        while want_a > 0 and i_a < nd_a:
            sym, low_a, rng_a, p_a, byte_a = _symbol(
                buf, stats_a, end_a, cum[0], lut[0], total_a, inv_a, low_a, rng_a, p_a, byte_a
            )
            i_a += 1
            diffs[0, i_a] = sym
            want_a, key_a = _needs(sym, want_a, key_a)
        while want_b > 0 and i_b < nd_b:
            sym, low_b, rng_b, p_b, byte_b = _symbol(
                buf, stats_b, end_b, cum[1], lut[1], total_b, inv_b, low_b, rng_b, p_b, byte_b
            )
            i_b += 1
            diffs[1, i_b] = sym
            want_b, key_b = _needs(sym, want_b, key_b)
        done_a, j_a, v_a = _resumed(resume, a)
        status, v_a = _samples(
            diffs[0], i_a + 1, j_a, v_a, done_a, m_a, firsts[a], out[rows[a]], width
        )
        if status != OK:
            return BAD_STREAM, a
        _leave(
            left, a, counts[a], max(m_a, done_a), offsets[a], p_a, low_a, rng_a, byte_a, i_a, v_a
        )
        if b != a:
            done_b, j_b, v_b = _resumed(resume, b)
            status, v_b = _samples(
                diffs[1], i_b + 1, j_b, v_b, done_b, m_b, firsts[b], out[rows[b]],
                width,
            )  # fmt: skip
            if status != OK:
                return BAD_STREAM, b
            _leave(
                left, b, counts[b], max(m_b, done_b), offsets[b], p_b, low_b, rng_b, byte_b, i_b,
                v_b,
            )  # fmt: skip
    return OK, -1


_P64, _P32, _PU32, _P8 = (
    types.CPointer(types.int64),
    types.CPointer(types.int32),
    types.CPointer(types.uint32),
    types.CPointer(types.uint8),
)
#: `decode`'s C signature: each array as its first element's address (the sizes follow it).
SIGNATURE = types.void(
    *(_P8, types.int64),  # buf, its bytes
    *(_P64,) * 5 + (types.int64,),  # offsets, counts, firsts, rows, ends; number of blocks
    *(_P32, types.int64, types.int64, types.int64),  # out, its rows, row stride, width
    *(_PU32, _P64, _P64),  # CRC table, order, wanted
    *(_P64, _P8, _P8, types.int64),  # cum, lut, diffs, room
    *(_P64, _P64),  # resume, left: STATE_FIELDS per block
    _P64,  # result: (status, block)
)


@cfunc(SIGNATURE)
def decode(buf, n_buf, offsets, counts, firsts, rows, ends, n_blocks, out, n_rows, stride, width,
           table, order, wanted, cum, lut, diffs, room, resume, left, result):  # fmt: skip
    """The blocks at `offsets` of `buf`, decoded into the rows of `out` in pairs by `order`.

    A C function: every array is its first element's address, so that it can be called
    without numba (`kernels`). It allocates nothing; what each argument holds:
    `kernels.Kernels.decode_blocks`. Writes ``(status, block)`` into `result`.
    """
    status, b = _decode_pairs(
        carray(buf, (n_buf,)),
        carray(offsets, (n_blocks,)),
        carray(counts, (n_blocks,)),
        carray(firsts, (n_blocks,)),
        carray(rows, (n_blocks,)),
        carray(ends, (n_blocks,)),
        carray(out, (n_rows, stride)),
        width,
        carray(table, (8, 256)),
        carray(order, (n_blocks,)),
        carray(wanted, (n_blocks,)),
        carray(cum, (2, 257)),
        carray(lut, (2, 256 * 255)),
        carray(diffs, (2, room)),
        carray(resume, (n_blocks, STATE_FIELDS)),
        carray(left, (n_blocks, STATE_FIELDS)),
    )
    got = carray(result, (2,))
    got[0], got[1] = status, b


def object_code() -> tuple[str, bytes]:
    """`decode`'s symbol, and the object code numba compiled it into in this process.

    numba (0.68) has no public way to a compiled function's object code: this is the one
    place that reaches into it.
    """
    return decode.native_name, decode._library.serialize_using_object_code()[2][0]
