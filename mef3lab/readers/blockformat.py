"""MEF 3.0's block and index layout, its CRC table, and what a block decode can report.

Plain numpy, kept apart from the numba kernels (`red`) so that opening a recording, which
reads the index, and loading the compiled kernels (`kernels`) need no numba.
"""

from __future__ import annotations

import numpy as np

#: Bytes of a RED block header; the range-coded stream follows it.
HEADER_BYTES = 304
#: Entries of a time-series index (.tidx) file, after its 1024-byte universal header.
INDEX_DTYPE = np.dtype(
    [
        ("file_offset", "<i8"),
        ("start_time", "<i8"),
        ("start_sample", "<i8"),
        ("number_of_samples", "<u4"),
        ("block_bytes", "<u4"),
        ("maximum_sample_value", "<i4"),
        ("minimum_sample_value", "<i4"),
        ("protected", "V4"),
        ("flags", "u1"),
        ("block_regions", "V11"),
    ]
)
UNIVERSAL_HEADER_BYTES = 1024
#: Encryption flag bits of a block (header byte 4, repeated in the index; bit 0: discontinuity).
LEVEL_1, LEVEL_2 = 2, 4


def _crc_tables() -> np.ndarray:
    """Meflib's CRC-32 table in row 0, and the rows that let `red.crc32` take 8 bytes per step.

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

#: What the kernel keeps of a block it stopped in: samples done, byte position (from the
#: block's start), the range decoder's low, range and last byte, difference bytes done,
#: the last sample.
STATE_FIELDS = 7

# What `kernels.Kernels.decode_blocks` reports (with the number of the block it stopped at).
OK, BAD_HEADER, BAD_CRC, BAD_STREAM, WRONG_COUNT, UNSUPPORTED = range(6)
PROBLEMS = {
    BAD_HEADER: "its header does not fit the file",
    BAD_CRC: "its CRC does not match its contents",
    BAD_STREAM: "its compressed samples do not decode",
    WRONG_COUNT: "it holds a different number of samples than the index lists",
    UNSUPPORTED: "a block is encrypted, lossy or detrended",
}
