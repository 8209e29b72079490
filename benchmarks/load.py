"""Table E: a lab's worth of clients at once, every reply checked sample for sample.

`drive` runs `clients` clients (threads, each its own connection and client id) for
`seconds`: even ones page through the recording segment by segment from a random
start, odd ones read random short windows. Every reply is compared with the whole
recording read directly once beforehand, so a payload that is wrong in any sample
counts as a failure, as does any error. The server's RSS is sampled throughout: it must
stay within its cache budget plus a fixed overhead (the server's own code, gRPC
buffers, replies in flight). Loopback only, bounded in time and in calls.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil

from mef3lab.client import Mef3Client
from mef3lab.readers import open_reader

from .common import Params, server
from .report import Table, Target, percentile

#: Calls one client makes at most (a bound even if the clock misbehaves).
MAX_CALLS = 100_000
#: What the server may hold beyond its cache budget: its own code and libraries, gRPC's
#: buffers and the replies in flight.
RSS_OVERHEAD_MB = 600.0


@dataclass
class LoadResult:
    calls: int = 0
    failures: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0
    rss_start_mb: float = 0.0
    rss_peak_mb: float = 0.0
    cache_budget_mb: float = 0.0

    def p(self, q: float) -> float:
        return percentile(self.latencies_ms, q)


def drive(
    address: str,
    path: str,
    reference: np.ndarray,
    server_pid: int,
    clients: int,
    seconds: float,
    segment_s: float,
    window_s: float,
    seed: int = 0,
    token: str | None = None,
    settle_s: float = 0.0,
) -> LoadResult:
    """Load the server at `address` as the module docstring says; `reference` is every channel of
    `path` on its grid (float32, NaN in gaps), as a direct read gives it; every client sends
    `token` (a server with authentication on).

    With `settle_s`, the load runs that much longer, and calls started in its first
    `settle_s` seconds (every client's first call at once) are checked but not timed.
    """
    result = LoadResult()
    lock = threading.Lock()
    proc = psutil.Process(server_pid)
    result.rss_start_mb = result.rss_peak_mb = proc.memory_info().rss / 2**20
    stop = threading.Event()
    started: list[float] = []  # when every client is at the start line
    start_line = threading.Barrier(clients + 1, action=lambda: started.append(time.perf_counter()))

    def record(ms: float | None, failure: str | None = None) -> None:
        with lock:
            result.calls += 1
            if failure is not None:
                result.failures.append(failure)
            elif ms is not None:
                result.latencies_ms.append(ms)

    def client(i: int) -> None:
        rng = random.Random(seed * 1000 + i)
        with Mef3Client(address, client_id=f"load-{i}", token=token, timeout=60.0) as c:
            c.open_file(path)
            grid = c.set_signal_chunk_size(path, segment_s).groups[0]
            n, length = int(grid.n_samples), int(grid.segment_samples)
            k = rng.randrange(int(grid.n_segments))
            start_line.wait()
            for _ in range(MAX_CALLS):
                if stop.is_set():
                    break
                paging = i % 2 == 0
                if paging:  # the next segment, wrapping around
                    segment, k = k, (k + 1) % int(grid.n_segments)
                    k0, k1 = segment * length, min((segment + 1) * length, n)
                else:  # a random short window
                    k0 = rng.randrange(0, max(1, n - int(window_s * grid.fs)))
                    k1 = k0 + int(window_s * grid.fs)
                t = time.perf_counter()
                try:
                    got = (
                        c.get_signal_segment(path, segment)
                        if paging
                        else c.read_index(path, k0, k1, prefetch=False)
                    )
                except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
                    record(None, f"client {i}: {type(exc).__name__}: {exc}")
                    continue
                ms = (time.perf_counter() - t) * 1e3 if t >= started[0] + settle_s else None
                want = reference[:, k0:k1]
                if got.shape != want.shape or not np.array_equal(got, want, equal_nan=True):
                    record(None, f"client {i}: samples [{k0}, {k1}) differ from the direct read")
                else:
                    record(ms)
            c.close_file(path)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    start_line.wait(timeout=120)
    t0 = started[0] + settle_s
    while time.perf_counter() - t0 < seconds:
        result.rss_peak_mb = max(result.rss_peak_mb, proc.memory_info().rss / 2**20)
        time.sleep(0.1)
    with Mef3Client(
        address, token=token, timeout=30.0
    ) as probe:  # the budget as the load left it (it follows the readers)
        result.cache_budget_mb = probe.stats()["cache_budget_bytes"] / 2**20
    stop.set()
    for t in threads:
        t.join(timeout=120)
    result.seconds = time.perf_counter() - t0
    return result


def whole_recording(path: Path) -> np.ndarray:
    """Every channel on its grid, read directly (pymef), float32 with NaN in gaps."""
    with open_reader(path, engine="pymef") as r:
        return r.read_index(None, 0, r.info.rate_groups[0].grid.n_samples)


def direct_window_ms(path: Path, reference_length: int, window_s: float, n: int = 50) -> float:
    """The baseline: p50 of random `window_s` reads straight from the files, one at a time."""
    with open_reader(path, engine="pymef") as r:
        fs = r.info.rate_groups[0].fs
        rng = random.Random(1)
        times = []
        for _ in range(n):
            k0 = rng.randrange(0, reference_length - int(window_s * fs))
            t = time.perf_counter()
            r.read_index(None, k0, k0 + int(window_s * fs))
            times.append((time.perf_counter() - t) * 1e3)
    return percentile(times, 50)


def run(path: Path, params: Params, log=print) -> Table:
    table = Table(
        "E",
        f"{params.load_clients} concurrent clients for {params.load_s:g} s: half paging "
        f"{params.segment_s} s segments, half reading random {params.window_s:g} s windows",
    )
    log("E load: reading the whole recording directly (the reference) ...")
    reference = whole_recording(path)
    base = direct_window_ms(path, reference.shape[1], params.window_s)
    table.add(
        f"1. direct pymef read of a random {params.window_s:g} s window, p50 (baseline)",
        base,
        "ms",
        1.0,
    )
    log(f"E load: {params.load_clients} clients for {params.load_s:g} s ...")
    with server(params) as srv:
        res = drive(
            srv.address,
            str(path),
            reference,
            srv.pid,
            params.load_clients,
            params.load_s,
            float(params.segment_s),
            params.window_s,
            params.seed,
        )
    for row, q in enumerate((50, 95, 99), start=2):
        table.add(f"{row}. latency of a call under load, p{q}", res.p(q), "ms", res.p(q) / base)
    table.add(
        "5. calls answered per second, all clients", len(res.latencies_ms) / res.seconds, "calls/s"
    )
    table.add(
        "6. failed calls (errors or wrong samples)",
        float(len(res.failures)),
        "calls",
        target=Target("value", "<=", 0),
        note="; ".join(res.failures[:3]),
    )
    budget = res.cache_budget_mb + RSS_OVERHEAD_MB
    table.add(
        "7. server RSS, peak",
        res.rss_peak_mb,
        "MB",
        target=Target("value", "<=", round(budget), "cache budget + overhead"),
    )
    table.notes.append(
        f"{res.calls} calls in {res.seconds:.1f} s; "
        f"server RSS {res.rss_start_mb:.0f} MB at the start; "
        f"cache budget {res.cache_budget_mb:.0f} MB + {RSS_OVERHEAD_MB:g} MB overhead allowed"
    )
    return table
