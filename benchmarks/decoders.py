"""Table D: the decoders alone, each reading the same segments in this process (no server).

Why it matters: a server of MEF recordings is decode-bound, so a decoder's CPU time per
segment is the server's throughput. mef3io decodes channels on several threads (its wall
time is lower than its CPU time); pymef and the numba engine use one core per read.
"""

from __future__ import annotations

import time
from pathlib import Path

from .common import Direct, Params, check_same
from .report import Table, best

ENGINES = ("pymef", "mef3io", "numba")


def run(path: Path, params: Params, log=print) -> Table:
    n = params.n_segments
    table = Table("D", f"Decoders in this process: {n} sequential {params.segment_s:g} s segments, all channels, "
                       "float32")
    base, want = None, None
    for engine in ENGINES:
        log(f"D {engine} ...")
        with Direct(path, params, engine) as direct:
            first = direct.segment(0)  # opened and warmed up (numba loads its kernels): not timed
            want = first if want is None else want
            check_same(f"{engine} segment 0", first, want)
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
        table.add(f"{engine}", samples / wall / 1e6, "M samples/s", wall / base, samples=walls,
                  note=f"{best(cpus) / n:.3f} CPU-s per segment")
    table.notes += ["×direct: time ÷ pymef's time for the same segments (segments 1 to "
                    f"{n}; segment 0 opens the reader and is compared with pymef's)."]
    return table
