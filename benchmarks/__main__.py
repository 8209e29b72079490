"""``python -m benchmarks`` (or ``make bench``): the performance tables, each against a direct read.

    python -m benchmarks                 # 64 ch × 256 Hz × 2 h, all tables (a few minutes)
    python -m benchmarks --quick         # 16 ch × 20 min, 1-min segments: a development run
    python -m benchmarks --only A,C --repeat 3 --json results.json

Tables: A access pattern (mef3lab.v1 client), B the legacy gRPCMef3Server API,
C the xarray engine, D the decoders alone, E 50 clients at once (load),
F the scroller (widget model and a real browser), G many clients reading random channel subsets,
H clinical review (a 24-h recording: overview, filtered bipolar flips, 1-hour pages),
I MNE-Python (rec.mef3.to_mne() against mne.io.read_raw_mef: an hour, 200 epochs),
J the first look (fresh processes: open, first page, jumps, three recordings beside MNE),
K the soak (50 clients while four attackers take turns, 5 min, behind a real JupyterHub),
L 50 hub users' small reads on a server with --hub-auth behind a real JupyterHub,
M the scroller's first page and a jump in a real browser at 8 and 32 kHz.
Ratios compare with the direct read measured in the same run, so
they are meaningful on any machine; absolute times are not (and are noisy when other
work shares the CPU).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

from . import (
    access_pattern,
    clinical,
    compat,
    decoders,
    first_look,
    first_page,
    hub_load,
    load,
    mixed_subsets,
    mne_raw,
    scroller,
    soak,
    xarray_read,
)
from .common import FULL_RUN, QUICK_RUN, Params
from .data import DATA_DIR, ensure_recording, warm_page_cache
from .report import Table, save_json, summary

TABLES = {
    "A": access_pattern.run,
    "B": compat.run,
    "C": xarray_read.run,
    "D": decoders.run,
    "E": load.run,
    "F": scroller.run,
    "G": mixed_subsets.run,
    "H": clinical.run,
    "I": mne_raw.run,
    "J": first_look.run,
    "K": soak.run,
    "L": hub_load.run,
    "M": first_page.run,
}


def run(
    params: Params, only: str = "ABCDEFGHIJKLM", data_dir: Path = DATA_DIR, log=print
) -> list[Table]:
    """Write (or reuse) the recording, then measure the tables named in `only`, in order."""
    path = ensure_recording(params.recording, data_dir, log=log)
    tables = []
    for key in only:
        warm_page_cache(path)  # every table starts from the OS page cache, not the disk
        tables.append(TABLES[key](path, params, log=log))
    return tables


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--quick", action="store_true", help="a small recording for development runs"
    )
    parser.add_argument(
        "--only", default="A,B,C,D,E,F,G,H,I,J,K,L,M", help="tables to run, e.g. A,C (default: all)"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="repeat each measurement, keep the best"
    )
    parser.add_argument("--json", metavar="OUT", help="also save the results to this JSON file")
    args = parser.parse_args(argv)
    only = "".join(k.strip().upper() for k in args.only.split(",") if k.strip())
    if not only or set(only) - set(TABLES):
        parser.error(
            f"--only takes a comma-separated subset of {','.join(TABLES)}, not {args.only!r}"
        )
    params = (QUICK_RUN if args.quick else FULL_RUN).with_repeat(args.repeat)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731 - progress, not results

    t = time.perf_counter()
    try:
        tables = run(params, only, log=log)
    except KeyboardInterrupt:
        log("interrupted (every server started here has been stopped)")
        return 130
    meta = {
        "recording": params.recording.label,
        "params": repr(params),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_avg": os.getloadavg(),
        "seconds": round(time.perf_counter() - t, 1),
    }
    print(
        f"mef3lab benchmarks: {params.recording.label}; {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f} at the end\n"
    )
    if args.quick:
        print(
            "(--quick: the targets are set for the full recording; "
            "here they only show the layout)\n"
        )
    for table in tables:
        print(table.render() + "\n")
    print(summary(tables))
    if args.json:
        save_json(args.json, tables, meta)
        print(f"results saved to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
