"""RED, MEF 3.0's sample codec (range-encoded differences), decoded by numba-compiled kernels.

Why a decoder of our own: decoding is what a server of MEF recordings spends its CPU on.
meflib (pymef) and mef3io find every decoded symbol by walking up to 128 cumulative
counts; EEG stored at fine resolution is mostly 4-byte key samples, whose bytes are
spread over all 256 symbols, so that walk dominates. A per-block lookup table from
count to symbol makes each symbol O(1). The stream format is meflib's (``RED_decode``);
every block's CRC is checked before it is decoded, as meflib does, so a damaged file
reads as an error, never as plausible numbers.

The kernels only decode: which blocks to read and where their samples land is the
engine's business (`readers.numba`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: Bytes of a RED block header; the range-coded stream follows it.
HEADER_BYTES = 304
#: Entries of a time-series index (.tidx) file, after its 1024-byte universal header.
INDEX_DTYPE = np.dtype([
    ("file_offset", "<i8"), ("start_time", "<i8"), ("start_sample", "<i8"),
    ("number_of_samples", "<u4"), ("block_bytes", "<u4"),
    ("maximum_sample_value", "<i4"), ("minimum_sample_value", "<i4"),
    ("protected", "V4"), ("flags", "u1"), ("block_regions", "V11"),
])
UNIVERSAL_HEADER_BYTES = 1024
#: Block flag bits (header byte 4; the index repeats them).
DISCONTINUITY, LEVEL_1, LEVEL_2 = 1, 2, 4

# What `decode_blocks` reports (with the number of the block it stopped at).
OK, BAD_HEADER, BAD_CRC, BAD_STREAM, WRONG_COUNT, UNSUPPORTED = range(6)
PROBLEMS = {
    BAD_HEADER: "its header does not fit the file",
    BAD_CRC: "its CRC does not match its contents",
    BAD_STREAM: "its compressed samples do not decode",
    WRONG_COUNT: "it holds a different number of samples than the index lists",
    UNSUPPORTED: "it is encrypted, lossy or detrended (read by mef3io instead)",
}


def _crc_table() -> np.ndarray:
    """meflib's CRC-32 table (Koopman polynomial, reflected): entry 1 is 0x9695C4CA."""
    poly = 0xEB31D82E
    table = np.zeros(256, np.uint32)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table[i] = c
    return table


CRC_TABLE = _crc_table()


@njit(cache=True, nogil=True)
def _u32(buf, at):
    return (np.int64(buf[at]) | (np.int64(buf[at + 1]) << 8) | (np.int64(buf[at + 2]) << 16)
            | (np.int64(buf[at + 3]) << 24))


@njit(cache=True, nogil=True)
def crc32(buf, start, stop, table):
    """meflib's CRC_calculate over ``buf[start:stop]`` (start value 0xFFFFFFFF, no final xor)."""
    crc = np.int64(0xFFFFFFFF)
    for i in range(start, stop):
        crc = (crc >> 8) ^ np.int64(table[(crc ^ buf[i]) & 0xFF])
    return crc


@njit(cache=True, nogil=True)
def _decode_one(buf, off, count, j0, out, table, cum, lut, diffs):
    """Decode the block at `off` and write its samples to ``out[j0 + k]`` where that lies in `out`."""
    size = buf.shape[0]
    if off < 0 or off + HEADER_BYTES > size:
        return BAD_HEADER
    block_bytes = _u32(buf, off + 36)
    if block_bytes < HEADER_BYTES or off + block_bytes > size:
        return BAD_HEADER
    if crc32(buf, off + 4, off + block_bytes, table) != _u32(buf, off):
        return BAD_CRC
    if buf[off + 4] & (LEVEL_1 | LEVEL_2):
        return UNSUPPORTED
    # meflib unscales when scale_factor > 1 and retrends when slope or intercept != 0;
    # a positive float's bits order like the float, so this reads them as integers.
    scale, slope, intercept = _u32(buf, off + 24), _u32(buf, off + 16), _u32(buf, off + 20)
    if (scale > 0x3F800000 and scale < 0x80000000) or slope & 0x7FFFFFFF or intercept & 0x7FFFFFFF:
        return UNSUPPORTED
    n = _u32(buf, off + 32)
    if n != count:
        return WRONG_COUNT
    if n == 0:
        return OK
    n_diff = _u32(buf, off + 28)
    if n_diff + 1 > diffs.shape[0]:
        return BAD_STREAM
    stats = off + 48
    cum[0] = 0
    for s in range(256):
        cum[s + 1] = cum[s] + buf[stats + s]
        for c in range(cum[s], cum[s + 1]):
            lut[c] = s
    total = cum[256]
    if total == 0:
        return BAD_STREAM
    # The range decoder (meflib's constants: 7 extra bits, bottom value 2**23).
    p, end = off + HEADER_BYTES, off + block_bytes
    byte = np.int64(buf[p]) if p < end else np.int64(0)
    p += 1
    low = byte >> 1
    rng = np.int64(128)
    diffs[0] = 0x80  # the first key-sample flag is implied, not coded
    for i in range(n_diff):
        while rng <= 0x800000:
            low = ((low << 8) | ((byte << 7) & 0xFF)) & 0xFFFFFFFF
            if p < end:
                byte = np.int64(buf[p])
            else:
                byte = 0
            p += 1
            low |= byte >> 1
            rng = (rng << 8) & 0xFFFFFFFF
        per_count = rng // total
        c = low // per_count
        if c >= total:
            c = total - 1
        sym = lut[c]
        taken = per_count * cum[sym]
        low = (low - taken) & 0xFFFFFFFF
        if sym < 255:
            rng = (per_count * buf[stats + sym]) & 0xFFFFFFFF
        else:
            rng = (rng - taken) & 0xFFFFFFFF
        diffs[i + 1] = sym
    # Differences to samples: 0x80 flags a key sample (4 little-endian bytes follow).
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
            value = ((value + 0x80000000) & 0xFFFFFFFF) - 0x80000000  # int32 wrap-around, as meflib
            j += 1
        at = j0 + k
        if at >= 0 and at < width:
            out[at] = value
    return OK


@njit(cache=True, nogil=True)
def decode_blocks(buf, offsets, counts, firsts, out, table):
    """Decode the blocks at `offsets` of `buf`; block b's k-th sample goes to ``out[firsts[b] + k]``.

    Returns ``(status, b)``: OK, or what is wrong with block b (nothing after it is decoded).
    """
    cum = np.zeros(257, np.int64)
    lut = np.zeros(256 * 255, np.uint8)
    longest = 0
    for b in range(offsets.shape[0]):
        longest = max(longest, 5 * counts[b])
    diffs = np.empty(longest + 1, np.uint8)
    for b in range(offsets.shape[0]):
        status = _decode_one(buf, offsets[b], counts[b], firsts[b], out, table, cum, lut, diffs)
        if status != OK:
            return status, b
    return OK, -1


def warm_up() -> None:
    """Compile the kernels, or load them from numba's cache, now rather than in a user's first read."""
    empty = np.zeros(0, np.int64)
    decode_blocks(np.zeros(0, np.uint8), empty, empty, empty, np.zeros(0, np.int32), CRC_TABLE)
