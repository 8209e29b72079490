"""Damaged blocks whose CRC still matches (a writer's bug, not a flipped bit) never make the
kernels read or write out of bounds: run with numba's bounds checks on, every mutation must
end in a status, never in an IndexError (or, without the checks, in memory corruption).
An IndexError in the kernel leaves it without a result, which raises in the child."""

from __future__ import annotations

import json
import os
import subprocess
import sys

CHILD = r"""
import json, sys
import numpy as np
from mef3lab.readers import blockformat, kernels, open_reader, red
from mef3lab.testing.synth import synthesize

try:  # the bounds checks are on: an access past the end raises
    red.crc32(np.zeros(2, np.uint8), 0, 3, blockformat.CRC_TABLE)
    raise SystemExit("numba's bounds checks are off")
except IndexError:
    pass
decoder = kernels.load()
assert decoder.origin == "numba"  # compiled here, with the checks: never kept object code
path = synthesize(sys.argv[1] + "/f.mefd", channels=1, seconds=40.0, gaps=[], seed=4)
with open_reader(path, engine="numba") as r:
    b = r._blocks[r.info.names[0]]
    pristine = np.fromfile(b.files[0], np.uint8)
firsts = np.concatenate([[0], np.cumsum(b.counts)[:-1]]).astype(np.int64)
out = np.empty((1, int(b.counts.sum())), np.int32)
rows = np.zeros(len(b.offsets), np.int64)
ends = np.full(len(b.offsets), len(pristine), np.int64)
seen = {}
for seed in sys.argv[2:]:  # one compilation with the checks, several runs
    rng = np.random.default_rng(int(seed))
    seen[seed] = counts = {}
    for trial in range(400):
        buf = pristine.copy()
        k = int(rng.integers(len(b.offsets)))
        off, size = int(b.offsets[k]), int(b.sizes[k])
        # counts, statistics, stream
        where = rng.choice([28, 32, 48, 300, 304], p=[0.15, 0.1, 0.25, 0.1, 0.4])
        span = 4 if where < 48 else (256 if where == 48 else size - where)
        for _ in range(int(rng.integers(1, 6))):
            buf[off + where + int(rng.integers(span))] = rng.integers(256)
        crc = red.crc32(buf, off + 4, off + size, blockformat.CRC_TABLE)
        buf[off:off + 4] = np.frombuffer(np.uint32(crc).tobytes(), np.uint8)
        status, _ = decoder.decode_blocks(buf, b.offsets, b.counts, firsts, rows, ends, out)
        counts[int(status)] = counts.get(int(status), 0) + 1
print(json.dumps(seen))
"""


SEEDS = ("1", "2")


def test_mutated_blocks_with_matching_crcs_stay_in_bounds(tmp_path):
    env = {**os.environ, "NUMBA_BOUNDSCHECK": "1", "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path), *SEEDS],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(runs) == set(SEEDS)
    for seed, counts in runs.items():
        seen = {int(k): v for k, v in counts.items()}
        assert sum(seen.values()) == 400, seed
        assert set(seen) <= {0, 3, 4}, seed  # OK, BAD_STREAM or WRONG_COUNT: never an exception
        # the mutations do reach the decoder's checks
        assert seen.get(3, 0) + seen.get(4, 0) >= 40, seed
