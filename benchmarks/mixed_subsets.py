"""Table G: many clients reading random channel subsets of one recording at once (a lab's hub).

Each of `mixed_clients` threads has its own connection and client id and, for
`mixed_s` seconds, reads whole segments (the server's default size) of a random subset
of the recording's channels, in a random order, through mef3lab's own API; every reply is
compared with a direct read. What matters is what the server does for it: samples decoded
÷ samples in the recording (1.0 = every channel-segment decoded once), the peak of its
cache ÷ the recording's size as int32 counts, and the latency the clients see. The last
row times what serving a cache hit adds per 5 M samples, in this process: gathering cached
counts and converting them to float32 message by message, against slicing the bytes of a
cached float32 array as before.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import numpy as np

from mef3lab.client import Mef3Client

from .common import Params, check_same, server
from .data import ensure_recording
from .report import Table, Target, best, percentile


def run(path: Path, params: Params, log=print) -> Table:
    rec = params.mixed_recording
    table = Table(
        "G",
        f"Mixed subsets: {params.mixed_clients} clients, random channel subsets and orders of one "
        f"{rec.label} recording, {params.mixed_s:g} s",
    )
    mixed = ensure_recording(rec, path.parent, log=log)
    log(f"E mixed-subset workload, {params.mixed_clients} clients ...")
    w = workload(mixed, params)
    table.add(
        "decoded samples ÷ samples in the recording",
        w["decoded_ratio"],
        "×",
        None,
        Target("value", "<=", 1.1),
        note=f"{w['decoded'] / 1e6:.1f} M of {w['samples'] / 1e6:.2f} M",
    )
    table.add(
        "peak cache bytes ÷ recording as int32",
        w["cache_ratio"],
        "×",
        None,
        Target("value", "<=", 1.2),
        note=f"{w['peak_cache'] / 1e6:.1f} MB, {w['entries']} entries at the end",
    )
    table.add(
        "read latency p50", w["p50"] * 1e3, "ms", note=f"{w['reads']} reads, {w['errors']} errors"
    )
    table.add("read latency p95", w["p95"] * 1e3, "ms")
    extra, total, changing = conversion_ms(params.repeat)
    table.add(
        "conversion a cache hit adds, 5 M samples → float32",
        extra,
        "ms",
        None,
        Target("value", "<=", 2.0),
        note=f"{total:.1f} ms to convert the reply and cut it into messages",
    )
    table.add(
        "the same, every channel's factor changing mid-window",
        changing,
        "ms",
        note="MEF segments of different conversion factors: converted piece by piece",
    )
    table.notes += [
        f"default server settings ({params.workers} readers, prefetch {params.n_prefetch}, "
        "segments of the server's default size); every reply checked against a direct read."
    ]
    return table


def workload(path: Path, params: Params) -> dict:
    """Run the clients against a fresh server; the server's counters and the clients' latencies."""
    from mef3lab.readers import open_reader

    with open_reader(path, engine="pymef") as direct:
        names = list(direct.info.names)
        n = direct.info.group_of(names).grid.n_samples
        full = direct.read_index(names, 0, n)
    row = {name: i for i, name in enumerate(names)}
    latencies: list[float] = []
    errors: list[str] = []
    peak = [0]
    lock = threading.Lock()
    stop = threading.Event()
    with server(params, segment_seconds=300.0) as srv:
        with Mef3Client(srv.address, client_id="setup") as c:
            c.open_file(str(path))
            grid = c.segment_grid(str(path)).groups[0]
            length, n_seg = grid.segment_samples, grid.n_segments

        def client(k: int) -> None:
            rng = random.Random(params.seed * 1000 + k)
            try:
                with Mef3Client(srv.address, client_id=f"mixed-{k}") as c:
                    c.open_file(str(path))
                    while not stop.is_set():
                        subset = rng.sample(names, rng.randint(1, len(names)))
                        i = rng.randrange(n_seg)
                        t = time.perf_counter()
                        got = c.get_signal_segment(str(path), i, channels=subset)
                        dt = time.perf_counter() - t
                        check_same(
                            f"segment {i} of {subset}",
                            got,
                            full[[row[s] for s in subset], i * length : min((i + 1) * length, n)],
                        )
                        with lock:
                            latencies.append(dt)
            except Exception as exc:  # noqa: BLE001 - counted and reported in the table
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")

        def monitor(c: Mef3Client) -> None:
            while not stop.wait(0.05):
                peak[0] = max(peak[0], c.stats()["cache_bytes"])

        with Mef3Client(srv.address, client_id="monitor") as mon:
            threads = [
                threading.Thread(target=client, args=(k,), daemon=True)
                for k in range(params.mixed_clients)
            ]
            threads.append(threading.Thread(target=monitor, args=(mon,), daemon=True))
            for t in threads:
                t.start()
            time.sleep(params.mixed_s)
            stop.set()
            for t in threads:
                t.join()
            stats = mon.stats()
    if errors or not latencies:
        raise RuntimeError(f"mixed-subset clients failed ({len(errors)} errors): {errors[:3]}")
    samples = len(names) * n
    peak_cache = max(peak[0], stats["cache_bytes"])
    return dict(
        decoded=stats["decoded_samples"],
        samples=samples,
        decoded_ratio=stats["decoded_samples"] / samples,
        peak_cache=peak_cache,
        cache_ratio=peak_cache / (4 * samples),
        entries=stats["cache_entries"],
        reads=len(latencies),
        errors=len(errors),
        p50=percentile(latencies, 50),
        p95=percentile(latencies, 95),
    )


def conversion_ms(repeat: int) -> tuple[float, float, float]:
    """What a cache hit's conversion adds per 5 M samples: (ms, ms of the whole reply's bytes,
    ms added when every channel's conversion factor changes mid-window).

    A hit converts 64 cached rows of counts to float32 message by message (`convert.Window`);
    before, the reply's bytes were sliced out of a cached float32 array. The difference of the
    two is the cost of one representation. Rows whose factor changes (MEF segments of
    different factors) are converted the same way, piece by piece."""
    from mef3lab.model import FactorRuns
    from mef3lab.protocol.wire import MAX_MESSAGE_BYTES
    from mef3lab.server.core.convert import Window

    rng = np.random.default_rng(0)
    names = [f"ch{i:03d}" for i in range(64)]
    n = 78_125
    rows = {name: rng.integers(-4000, 4000, n).astype(np.int32) for name in names}
    factors = [0.01] * len(names)
    runs = [FactorRuns.single(f) for f in factors]
    cached = np.stack([rows[name] for name in names]).astype(np.float32)

    def sent(factors: list[FactorRuns]) -> None:
        for _ in Window([(0, rows)], names, factors, 0, n).pieces("float32", MAX_MESSAGE_BYTES):
            pass

    def sliced(values: np.ndarray) -> None:
        raw = memoryview(values).cast("B")
        for a in range(0, len(raw), MAX_MESSAGE_BYTES):
            bytes(raw[a : a + MAX_MESSAGE_BYTES])

    def before() -> None:
        sliced(cached)

    changing = [FactorRuns((0, n // 2), (f, f / 2)) for f in factors]

    def timed(fn) -> float:
        fn()  # compiled, memory touched: not timed
        times = []
        for _ in range(max(10, 10 * repeat)):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return best(times) * 1e3

    total, base = timed(lambda: sent(runs)), timed(before)
    return total - base, total, timed(lambda: sent(changing)) - base
