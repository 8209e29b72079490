"""Table C: the xarray engine, through a server and in this process.

Warm windows: ``rec.signal.sel(time=slice(t, t + window)).values`` at random t, timed
after one untimed pass has decoded every segment they touch (the server's cache holds
the whole recording here), beside the same windows read directly in this process.
Full reduction: ``rec.signal.mean("time").compute()`` through a fresh server with
prefetch, beside the engine's reader in this process going segment by segment.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

import mef3lab
from mef3lab.client import Mef3Client

from .common import Direct, Params, check_same, server
from .report import Stopwatch, Table, Target, best, percentile, repeat


def run(path: Path, params: Params, log=print) -> Table:
    table = Table(
        "C",
        "xarray engine, through a server and in this process "
        f"({params.recording.channels} channels)",
    )
    with Direct(path, params) as direct:
        log(f"C1 warm {params.window_s:g} s windows ...")
        remote_ms, direct_ms = warm_windows(path, params, direct)
        p50d = percentile(direct_ms, 50)
        for q, target in [(50, Target("value", "<=", 10)), (90, None)]:
            v = percentile(remote_ms, q)
            table.add(
                f"warm sel(time=slice(t, t+{params.window_s:g})).values p{q}",
                v,
                "ms",
                v / percentile(direct_ms, q),
                target,
                samples=remote_ms if q == 50 else [],
            )
        log("C2 full-recording mean ...")
        runs = [direct_mean(direct) for _ in range(params.repeat)]
        d, want = [t for t, _ in runs], runs[0][1]
        stats: dict = {}
        s = repeat(params.repeat, lambda: remote_mean(path, params, want, stats))
        decoded = stats["decoded_samples"] / (len(direct.names) * direct.length)
        e = repeat(params.repeat, lambda: timed_mean(path, None, want))
    table.add(
        'mean("time") of the whole recording, direct (baseline)', best(d), "s", 1.0, samples=d
    )
    table.add(
        f'mean("time") via server, prefetch {params.n_prefetch}',
        best(s),
        "s",
        best(s) / best(d),
        Target("ratio", "<=", 0.6),
        samples=s,
    )
    table.add(
        'mean("time") in this process (numba engine, dask threads)',
        best(e),
        "s",
        best(e) / best(d),
        samples=e,
    )
    table.notes += [
        f"windows: {params.n_windows} random t; ×direct = ÷ the same window read in this process "
        f"(p50 {p50d:.1f} ms); the mean: times are the best of {params.repeat}, "
        "dask's default scheduler.",
        f"server after the mean: {stats['hits']} hits ({stats['prefetch_hits']} prefetched), "
        f"{stats['misses']} misses, {stats['prefetches']} prefetches, "
        f"{decoded:.1f} segments decoded of {direct.n_total}.",
    ]
    return table


def warm_windows(path: Path, params: Params, direct: Direct) -> tuple[list[float], list[float]]:
    """Milliseconds per window through the server (warm) and directly, same windows."""
    rng = np.random.default_rng(params.seed)
    duration = direct.grid.n_samples / direct.grid.fs
    starts = rng.uniform(0, duration - params.window_s, params.n_windows)
    cache_mb = 1.25 * len(direct.names) * direct.grid.n_samples * 4 / 2**20 + 64
    with server(params, cache_mb=cache_mb) as srv:
        rec = mef3lab.open_recording(str(path), address=srv.address)
        try:
            sig = rec.signal
            first = sig.sel(time=slice(starts[0], starts[0] + params.window_s))
            k0 = int(round(float(first.time[0]) * direct.grid.fs))
            check_same(
                "xarray window",
                first.values,
                direct.reader.read_index(direct.names, k0, k0 + first.sizes["time"]),
            )
            for t in starts:  # warm: decode every touched segment once
                _ = sig.sel(time=slice(t, t + params.window_s)).values
            remote = []
            for t in starts:
                with Stopwatch() as sw:
                    _ = sig.sel(time=slice(t, t + params.window_s)).values
                remote.append(sw.seconds * 1e3)
        finally:
            rec.close()
    local = []
    for t in starts:
        k0 = int(np.ceil(t * direct.grid.fs))
        with Stopwatch() as sw:
            direct.reader.read_index(
                direct.names, k0, k0 + int(params.window_s * direct.grid.fs) + 1
            )
        local.append(sw.seconds * 1e3)
    return remote, local


def direct_mean(direct: Direct) -> tuple[float, np.ndarray]:
    """Seconds to average every channel segment by segment in this process, and the means.

    NaN are skipped.
    """
    t = time.perf_counter()
    total = np.zeros(len(direct.names))
    count = np.zeros(len(direct.names))
    for i in range(direct.n_total):
        k0, k1 = direct.bounds(i)
        x = direct.reader.read_index(direct.names, k0, k1)
        total += np.nansum(x, axis=1, dtype=np.float64)
        count += np.count_nonzero(~np.isnan(x), axis=1)
    return time.perf_counter() - t, total / count


def remote_mean(path: Path, params: Params, want: np.ndarray, stats: dict) -> float:
    with server(params) as srv:
        seconds = timed_mean(path, srv.address, want)
        with Mef3Client(srv.address) as client:
            stats.update(client.stats())
    return seconds


def timed_mean(path: Path, address: str | None, want: np.ndarray) -> float:
    """Seconds of ``rec.signal.mean("time").compute()`` (opened untimed), checked against `want`."""
    rec = mef3lab.open_recording(str(path), address=address)
    try:
        with Stopwatch() as sw:
            got = rec.signal.mean("time").compute().values
    finally:
        rec.close()
    if not np.allclose(got, want, rtol=1e-4, atol=1e-4):
        where = "via the server" if address else "in this process"
        raise AssertionError(
            f"the mean {where} differs from the direct one by up to "
            f"{np.nanmax(np.abs(got - want)):.3g}"
        )
    return sw.seconds
