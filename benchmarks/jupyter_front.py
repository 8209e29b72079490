"""``python -m benchmarks.jupyter_front``: the notebook front door, measured.

1. Time from ``%load_ext mef3lab`` to a healthy server (the magic returns once the gRPC health
   check says SERVING), p50 of N: *cold* = the first load in a fresh kernel (imports included),
   *warm* = ``%unload_ext`` + ``%load_ext`` again in the same kernel; the baseline, measured in
   the same run, is starting a bare `ServerProcess` from this process.
2. The status JSON through jupyter-server-proxy (``<jupyter>/mef3lab/api/status``) while a
   kernel of the same user has the demo recording open and has read a minute of it.
3. The orphan check: every process started here (tagged by an environment variable) is gone
   within 15 s of stopping Jupyter and the kernels.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from mef3lab.server.process import ServerProcess
from mef3lab.testing.demo import demo_recording

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path[:0] = [str(TESTS), str(TESTS / "jupyter")]
from _jupyter import Jupyter, Kernel, free_port  # noqa: E402 - the tests' real kernels and Jupyter
from _processes import ProcessTag  # noqa: E402

TIMED_LOAD = (
    "import time; _t = time.perf_counter(); get_ipython().run_line_magic('load_ext', 'mef3lab'); "
    "print(f'@@{time.perf_counter() - _t:.4f}')"
)


def _seconds(out) -> float:
    return float(out.stdout.rsplit("@@", 1)[1].split()[0])


def startup(n: int, env: dict[str, str], cwd: str) -> dict[str, list[float]]:
    bare = []
    for _ in range(n):
        t = time.perf_counter()
        with ServerProcess(
            n_process_workers=2, port=-1, unix_socket=os.path.join(cwd, "bare.sock")
        ):
            bare.append(time.perf_counter() - t)
    cold, warm = [], []
    for _ in range(n):
        k = Kernel(env, cwd)
        try:
            cold.append(_seconds(k.ok(TIMED_LOAD)))
        finally:
            k.close()
    k = Kernel(env, cwd)
    try:
        for _ in range(n):
            k.ok("%unload_ext mef3lab" if warm or cold else "pass")
            warm.append(_seconds(k.ok(TIMED_LOAD)))
            k.ok("%unload_ext mef3lab")
    finally:
        k.close()
    return {
        "bare ServerProcess start (baseline)": bare,
        "%load_ext mef3lab, cold (fresh kernel)": cold,
        "%load_ext mef3lab, warm (same kernel)": warm,
    }


def status_through_proxy(env: dict[str, str], cwd: str, recording: Path) -> dict:
    j = Jupyter.server(free_port(), env, cwd, os.path.join(cwd, "jupyter.log"))
    try:
        j.wait()
        j.get("mef3lab/")  # the launcher tile's first visit starts the user server
        k = Kernel(env, cwd)
        try:
            k.ok("%load_ext mef3lab")
            k.ok(
                f"import mef3lab; rec = mef3lab.open_recording({str(recording)!r}); "
                "rec.signal.sel(time=slice(0, 60)).values"
            )
            return j.get_json("mef3lab/api/status")
        finally:
            k.close()
    finally:
        j.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.jupyter_front", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("-n", type=int, default=10, help="loads per row (default 10)")
    parser.add_argument(
        "--data", default="demo-data", help="folder of the demo recording (default demo-data)"
    )
    args = parser.parse_args(argv)
    recording = demo_recording(Path(args.data).resolve())  # absolute: the kernels run elsewhere
    tag = ProcessTag(uuid.uuid4().hex)
    os.environ[ProcessTag.VAR] = tag.value  # everything started from here inherits it
    with tempfile.TemporaryDirectory(prefix="mef3lab-front-") as cwd:
        env = {k: v for k, v in os.environ.items() if k != "MEF3LAB_SERVER"}
        env["JUPYTER_RUNTIME_DIR"] = os.path.join(cwd, "runtime")
        rows = startup(args.n, env, cwd)
        base = statistics.median(rows["bare ServerProcess start (baseline)"])
        print(f"\nload average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores\n")
        print("| what | p50 | min | max | × baseline |\n|---|---|---|---|---|")
        for name, xs in rows.items():
            p50 = statistics.median(xs)
            print(
                f"| {name} | {p50 * 1e3:.0f} ms | {min(xs) * 1e3:.0f} ms | "
                f"{max(xs) * 1e3:.0f} ms | {p50 / base:.2f} |"
            )
        status = status_through_proxy(env, cwd, recording)
        print("\nGET <jupyter>/mef3lab/api/status with the demo recording open:\n")
        print(json.dumps(status, indent=1))
    left = tag.leftovers(within=15)
    print(
        f"\norphan check: {len(left)} process(es) started here still running 15 s after the end"
        + "".join(f"\n  {p.pid} {' '.join(p.cmdline())}" for p in left)
    )
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
