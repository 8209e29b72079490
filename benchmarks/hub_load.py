"""Table L: many hub users at once on a server that checks every call's token with a real
JupyterHub (``--hub-auth``).

Each client is a hub user of its own, with an API token the hub issued (made through its
REST API, `benchmarks.hub`). All make small reads for a fixed time: one channel, one
second, at random within the recording's first minute (which the server's cache holds
after the first reads), so what a call costs is mostly the token check and the call
itself. Every reply is compared with a direct read. Reported: latency p50/p95/p99 and
calls per second, and the same load on the same server code without authentication, which
tells what checking the tokens adds.

``python -m benchmarks.hub_load --tree DIR`` measures the server of another checkout of
mef3lab (``git worktree add DIR COMMIT``) with this same benchmark.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from mef3lab.client import Mef3Client
from mef3lab.readers import open_reader

from .common import FULL_RUN, QUICK_RUN, Params
from .data import DATA_DIR, ensure_recording
from .hub import REPO, hub_server, jupyterhub
from .load import LoadResult
from .report import Table, Target, percentile

#: The p95 a hub user's small read should stay within.
P95_TARGET_MS = 250.0
#: The span the reads fall in, seconds from the start.
SPAN_S = 60.0
#: Times a client tries to open the recording (its first call, the first check of its token).
OPEN_TRIES = 5
#: Calls one client makes at most (a bound even if the clock misbehaves).
MAX_CALLS = 100_000


def drive(
    address: str,
    tokens: list[str | None],
    path: str,
    first: np.ndarray,
    names: list[str],
    fs: float,
    seconds: float,
    seed: int = 0,
) -> LoadResult:
    """One client per token (None: none), reading one channel × one second at random within
    `first` (the first samples of the channels `names`, read directly) for `seconds`, every
    reply checked.

    Each client first opens the recording (its token's first check), trying again after a
    failure; the opens count as calls, and a client that could not open makes no reads.
    """
    result = LoadResult()
    lock = threading.Lock()
    stop = threading.Event()
    start_line = threading.Barrier(len(tokens) + 1)
    n = int(round(fs))

    def record(ms: float | None, failure: str | None) -> None:
        with lock:
            result.calls += 1
            if failure:
                result.failures.append(failure)
            else:
                result.latencies_ms.append(ms)

    def opened(c: Mef3Client, i: int) -> bool:
        """Open the recording, trying again after a failure (each one counted) a few times."""
        for _ in range(OPEN_TRIES):
            t = time.perf_counter()
            try:
                c.open_file(path)
            except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
                record(None, f"client {i}: open: {type(exc).__name__}: {exc}")
                time.sleep(1.0)
            else:
                record((time.perf_counter() - t) * 1e3, None)
                return True
        return False

    def client(i: int, token: str) -> None:
        rng = random.Random(seed * 1000 + i)
        with Mef3Client(address, client_id=f"hub-load-{i}", token=token, timeout=60.0) as c:
            ready = opened(c, i)
            start_line.wait()
            for _ in range(MAX_CALLS if ready else 0):
                if stop.is_set():
                    break
                ch, k0 = rng.randrange(len(names)), rng.randrange(first.shape[1] - n)
                t = time.perf_counter()
                try:
                    got = c.read_index(path, k0, k0 + n, [names[ch]], prefetch=False)
                except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
                    record(None, f"client {i}: {type(exc).__name__}: {exc}")
                    continue
                ms = (time.perf_counter() - t) * 1e3
                same = np.array_equal(got, first[ch : ch + 1, k0 : k0 + n], equal_nan=True)
                record(ms, None if same else f"client {i}: [{k0}, {k0 + n}) of {names[ch]} differ")

    threads = [
        threading.Thread(target=client, args=(i, tok), daemon=True) for i, tok in enumerate(tokens)
    ]
    for t in threads:
        t.start()
    start_line.wait(timeout=300)
    t0 = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=120)
    result.seconds = time.perf_counter() - t0
    return result


def direct_ms(path: Path, n: int = 200) -> tuple[float, np.ndarray, list[str], float]:
    """The baseline and the reference: (p50 of direct reads of one channel × one second,
    every channel's first `SPAN_S`, the channels' names, the sampling rate).
    """
    with open_reader(path, engine="pymef") as r:
        grid = r.info.rate_groups[0].grid
        span = min(grid.n_samples, int(SPAN_S * grid.fs))
        first = r.read_index(None, 0, span)
        names, fs = list(r.info.names), grid.fs
        rng, times = random.Random(1), []
        for _ in range(n):
            k0 = rng.randrange(span - int(fs))
            t = time.perf_counter()
            r.read_index([rng.choice(names)], k0, k0 + int(fs))
            times.append((time.perf_counter() - t) * 1e3)
    return percentile(times, 50), first, names, fs


def run(path: Path, params: Params, log=print, tree: Path | None = None) -> Table:
    who = f"the server of {tree}" if tree else "this server"
    table = Table(
        "L",
        f"{params.hub_clients} hub users at once, {params.hub_s:g} s of small reads "
        f"(1 channel × 1 s) from {who} with --hub-auth behind a real JupyterHub",
    )
    base, first, names, fs = direct_ms(path)
    table.add("1. direct pymef read of 1 channel × 1 s, p50 (baseline)", base, "ms", 1.0)
    n, args = params.hub_clients, (str(path), first, names, fs, params.hub_s, params.seed)
    with jupyterhub(log) as hub:
        log(f"L hub load: {n} hub users and their tokens ...")
        tokens = hub.user_tokens(n, prefix="reader")
        with hub_server(hub, tree, params.workers, params.n_prefetch) as srv:
            log(f"L hub load: {n} clients for {params.hub_s:g} s ...")
            res = drive(srv.address, tokens, *args)
    with hub_server(None, tree, params.workers, params.n_prefetch) as srv:
        log(f"L hub load: the same without authentication, {params.hub_s:g} s ...")
        free = drive(srv.address, [None] * n, *args)
    for row, q in enumerate((50, 95, 99), start=2):
        target = Target("value", "<=", P95_TARGET_MS) if q == 95 else None
        note = f"{res.p(q) / free.p(q):.2f}× without authentication"
        table.add(
            f"{row}. latency of a call, p{q}", res.p(q), "ms", res.p(q) / base, target, note=note
        )
    table.add("5. calls answered per second, all clients", _rate(res), "calls/s")
    table.add(
        "6. failed calls (errors or wrong samples)",
        float(len(res.failures)),
        "calls",
        target=Target("value", "<=", 0),
        note="; ".join(res.failures[:3]),
    )
    for row, q in ((7, 50), (8, 95)):
        label = f"{row}. the same load without authentication (same code), p{q}"
        table.add(label, free.p(q), "ms", free.p(q) / base)
    table.add("9. ... calls answered per second", _rate(free), "calls/s")
    table.add(
        "10. ... failed calls",
        float(len(free.failures)),
        "calls",
        target=Target("value", "<=", 0),
        note="; ".join(free.failures[:3]),
    )
    failed_opens = sum(": open: " in f for f in res.failures)
    table.notes.append(
        f"{res.calls} calls in {res.seconds:.1f} s ({failed_opens} failed opens); "
        "one token per hub user; "
        f"the server's code at commit {commit_of(tree or REPO)}"
    )
    return table


def _rate(res: LoadResult) -> float:
    return len(res.latencies_ms) / res.seconds


def commit_of(tree: Path) -> str:
    """The commit a checkout is at (short), or "?" where git cannot tell."""
    done = subprocess.run(
        ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return done.stdout.strip() or "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.hub_load", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="the small recording, 15 s")
    parser.add_argument("--tree", type=Path, help="a checkout of mef3lab whose server to measure")
    args = parser.parse_args(argv)
    params = QUICK_RUN if args.quick else FULL_RUN
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731 - progress, not results
    path = ensure_recording(params.recording, DATA_DIR, log=log)
    tree = args.tree.resolve() if args.tree else None
    print(run(path, params, log, tree).render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
