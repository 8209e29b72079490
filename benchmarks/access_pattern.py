"""Table A, the seed's access pattern: sequential segments with client work after each.

Rows: the direct read (baseline), the server without and with prefetch through
`Mef3Client.get_signal_segment`, several concurrent clients, a cold segment and
repeated cache hits. Every server row starts its own server, so nothing is cached
from a previous row.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path
from queue import Empty

from mef3lab.client import Mef3Client

from .common import Direct, Params, check_same, sequence, server
from .report import Stopwatch, Table, Target, best, repeat

#: The concurrent clients' segments overlap (offsets 0, 8, 14 of 24): a cache that holds the
#: recording's working set lets them share decodes instead of evicting each other's prefetches.
CONCURRENT_CACHE_MB = 1024


def run(path: Path, params: Params, log=print) -> Table:
    n, w, offsets = params.n_segments, params.work_s, params.offsets
    table = Table(
        "A",
        f"Access pattern: {n} sequential {params.segment_s:g} s segments, all channels, "
        f"{w:g} s of client work after each",
    )
    with Direct(path, params) as direct:
        seq = list(range(n))
        mb = direct.segment(0).nbytes / 1e6

        log("A1 direct read ...")
        runs = [sequence(direct.segment, seq, w) for _ in range(params.repeat)]
        base, want = best(t for t, _ in runs), runs[0][1]
        table.add("1. direct pymef read (baseline)", base, "s", 1.0, samples=[t for t, _ in runs])

        stats = {}

        def client_sequence(**config) -> float:
            with server(params, **config) as srv, Mef3Client(srv.address) as client:
                client.open_file(str(path))
                client.set_signal_chunk_size(str(path), params.segment_s)
                seconds, got = sequence(lambda i: client.get_signal_segment(str(path), i), seq, w)
                stats[config["n_prefetch"]] = client.stats()
            for i in got:  # the first segment (decoded on demand) and the last (prefetched, if on)
                check_same(f"server segment {i} ({config})", got[i], want[i])
            return seconds

        log("A2 server without prefetch ...")
        s = repeat(params.repeat, lambda: client_sequence(n_prefetch=0))
        table.add("2. server, no prefetch", best(s), "s", best(s) / base, samples=s)

        log(f"A3 server with prefetch {params.n_prefetch} ...")
        s = repeat(params.repeat, lambda: client_sequence(n_prefetch=params.n_prefetch))
        one = best(s)
        prefetched = table.add(
            f"3. server, prefetch {params.n_prefetch}, {params.workers} readers",
            one,
            "s",
            one / base,
            Target("ratio", "<=", 0.5, "aim 0.42"),
            samples=s,
        )

        log(f"A4 {len(offsets)} concurrent clients ...")
        s = repeat(params.repeat, lambda: concurrent(path, params, direct.n_total, want, stats))
        wall = best(s)
        k = len(offsets)
        table.add(
            f"4. {k} concurrent clients ({k}×{n} segments, cache {CONCURRENT_CACHE_MB} MB), wall",
            wall,
            "s",
            wall / (k * base),
            samples=s,
        )
        gain = (k * n * mb / wall) / (n * mb / one)
        table.add(
            "   aggregate throughput ÷ one client (row 3)",
            gain,
            "×",
            None,
            Target("value", ">=", 1.7),
            note=f"{k * n * mb / wall:.0f} vs {n * mb / one:.0f} MB/s",
        )

        log("A5 cold segment and cache hits ...")
        cold, hit, cold_direct = cold_and_hits(path, params, direct)
        # Row 3 can at best wait for one cold read, then only for its own work.
        prefetched.target = Target(
            "ratio", "<=", 0.5, f"aim 0.42, limit ≈{(cold + n * w) / base:.2f}"
        )
        table.add(
            "cold segment via server (no prefetch)",
            cold * 1e3,
            "ms",
            cold / cold_direct,
            Target("ratio", "<=", 1.1),
        )
        table.add(
            f"cache hit over TCP ({mb:.0f} MB segment)",
            mb / hit,
            "MB/s",
            hit / cold_direct,
            Target("value", ">=", 400),
            note=f"{hit * 1e3:.1f} ms per read",
        )
    table.notes += [
        f"×direct: time ÷ the direct read of the same segments (row 4: ÷ {k}× row 1); "
        f"cold/hit rows: ÷ one direct segment read ({cold_direct * 1e3:.0f} ms).",
        f"one segment = {len(direct.names)} ch × {direct.length} samples float32 = {mb:.1f} MB; "
        f"times are the best of {params.repeat}; "
        f"offsets of the concurrent clients: {', '.join(map(str, offsets))}.",
        *(
            f"server after row {row}: {_stats_text(stats[key], len(direct.names) * direct.length)}"
            for row, key in [(2, 0), (3, params.n_prefetch), (4, "concurrent")]
            if key in stats
        ),
    ]
    return table


def _stats_text(s: dict, segment_samples: int) -> str:
    return (
        f"{s['hits']} hits ({s['prefetch_hits']} prefetched), {s['misses']} misses, "
        f"{s['prefetches']} prefetches, "
        f"{s['decoded_samples'] / segment_samples:.1f} segments decoded, "
        f"cache budget {s['cache_budget_bytes'] / 1e6:.0f} MB"
    )


def concurrent(path: Path, params: Params, n_total: int, want: dict, stats: dict) -> float:
    """Clients in their own processes, each with its own connection, reading from their offsets at
    once.

    The wall time runs from the common start to the last client's last segment (each client
    reports its own monotonic clock readings, comparable across processes on one machine).
    """
    ctx = mp.get_context("spawn")  # no fork of a process holding gRPC state
    go, ready, done = ctx.Event(), ctx.Queue(), ctx.Queue()
    with server(params, cache_mb=CONCURRENT_CACHE_MB) as srv:
        procs = [
            ctx.Process(
                target=_client,
                daemon=True,
                name=f"bench-client-{off}",
                args=(srv.address, str(path), params, off, n_total, set(want), go, ready, done),
            )
            for off in params.offsets
        ]
        try:
            for p in procs:
                p.start()
            for _ in procs:
                _receive(ready, procs, 120)
            go.set()
            results = [_receive(done, procs, 600) for _ in procs]
            with Mef3Client(srv.address) as c:
                stats["concurrent"] = c.stats()
        except BaseException:
            for p in procs:
                if p.is_alive():
                    p.terminate()
            raise
        finally:
            for p in procs:
                if p.pid is not None:
                    p.join()
    for _, _, kept in results:
        for i, data in kept.items():
            check_same(f"concurrent client, segment {i}", data, want[i])
    return max(r[1] for r in results) - min(r[0] for r in results)


def _receive(queue, procs, timeout: float):
    """The next message of a client; an error if one reported a failure, died, or all went
    silent.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            msg = queue.get(timeout=0.5)
        except Empty:
            dead = [p for p in procs if p.exitcode not in (None, 0)]
            if dead:
                raise RuntimeError(
                    f"concurrent client {dead[0].name} died (exit code {dead[0].exitcode})"
                ) from None
            if time.monotonic() > deadline:
                raise TimeoutError(f"no concurrent client reported within {timeout:g} s") from None
            continue
        if isinstance(msg, str):
            raise RuntimeError(f"a concurrent client failed: {msg}")
        return msg


def _client(address, path, params, offset, n_total, keep, go, ready, done) -> None:
    """One concurrent client (a spawned process): set up, wait for the start, read, report."""
    try:
        with Mef3Client(address) as c:
            c.open_file(path)
            c.set_signal_chunk_size(path, params.segment_s)
            ready.put(True)
            go.wait()
            kept, t0 = {}, time.monotonic()
            for j in range(params.n_segments):
                i = (offset + j) % n_total
                data = c.get_signal_segment(path, i)
                if i in keep:
                    kept[i] = data
                if params.work_s:
                    time.sleep(params.work_s)
            done.put((t0, time.monotonic(), kept))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises
        (done if go.is_set() else ready).put(f"{type(exc).__name__}: {exc}")


def cold_and_hits(path: Path, params: Params, direct: Direct) -> tuple[float, float, float]:
    """(cold read via a fresh server, one cache hit, direct read of the same segment), best of the
    repeats.
    """
    cold, cold_direct, hits = [], [], []
    with server(params, n_prefetch=0) as srv, Mef3Client(srv.address) as client:
        client.open_file(str(path))
        client.set_signal_chunk_size(str(path), params.segment_s)
        client.get_signal_segment(str(path), 0)  # readers open the file; segment 0 is not timed
        for r in range(params.repeat):
            i = 1 + r % (direct.n_total - 1)
            with Stopwatch() as sw:
                got = client.get_signal_segment(str(path), i)
            cold.append(sw.seconds)
            with Stopwatch() as sw:
                want = direct.segment(i)
            cold_direct.append(sw.seconds)
            check_same(f"cold segment {i}", got, want)
            for _ in range(params.hit_reads):
                with Stopwatch() as sw:
                    client.get_signal_segment(str(path), i)
                hits.append(sw.seconds)
    return best(cold), best(hits), best(cold_direct)
