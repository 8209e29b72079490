"""MEF 3.0's block and index layout, and what a block decode can report: plain numpy.

Kept apart from the numba kernels (`red`) so that opening a recording, which reads the
index, does not wait for numba to be imported.
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

# What `decode_blocks` reports (with the number of the block it stopped at).
OK, BAD_HEADER, BAD_CRC, BAD_STREAM, WRONG_COUNT, UNSUPPORTED = range(6)
PROBLEMS = {
    BAD_HEADER: "its header does not fit the file",
    BAD_CRC: "its CRC does not match its contents",
    BAD_STREAM: "its compressed samples do not decode",
    WRONG_COUNT: "it holds a different number of samples than the index lists",
    UNSUPPORTED: "a block is encrypted, lossy or detrended",
}
