"""Table D: the decoders alone, each reading the same segments in this process (no server).

Why it matters: a server of MEF recordings is decode-bound, so a decoder's CPU time per
segment is the server's throughput. mef3io and numba decode channels on every core by
default (wall time below CPU time); pymef uses one; numba on one thread is what each of
the server's reader processes does.
"""

from __future__ import annotations

import time
from pathlib import Path

from .common import Direct, Params, check_same
from .report import Table, best

#: (label, engine, threads; 0 = one per core)
DECODERS = (
    ("pymef", "pymef", 0),
    ("mef3io", "mef3io", 0),
    ("numba, 1 thread", "numba", 1),
    ("numba", "numba", 0),
)


def run(path: Path, params: Params, log=print) -> Table:
    n = params.n_segments
    table = Table(
        "D",
        f"Decoders in this process: {n} sequential {params.segment_s:g} s segments, all channels, "
        "float32",
    )
    base, want = None, None
    for label, engine, threads in DECODERS:
        log(f"D {label} ...")
        with Direct(path, params, engine, threads) as direct:
            first = direct.segment(0)  # opened and warmed up (numba loads its kernels): not timed
            want = first if want is None else want
            check_same(f"{label} segment 0", first, want)
            walls, cpus = [], []
            for _ in range(params.repeat):
                wall, cpu = time.perf_counter(), time.process_time()
                for i in range(1, n + 1):
                    direct.segment(i)
                walls.append(time.perf_counter() - wall)
                cpus.append(time.process_time() - cpu)
            samples = n * len(direct.names) * direct.length
        wall = best(walls)
        base = wall if base is None else base
        table.add(
            label,
            samples / wall / 1e6,
            "M samples/s",
            wall / base,
            samples=walls,
            note=f"{best(cpus) / n:.3f} CPU-s per segment",
        )
    table.notes += [
        "×direct: time ÷ pymef's time for the same segments (segments 1 to "
        f"{n}; segment 0 opens the reader and is compared with pymef's)."
    ]
    return table
