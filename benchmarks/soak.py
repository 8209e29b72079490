"""Table K, the soak: well-behaved clients while attackers take turns at a shared server.

The server checks tokens with a real JupyterHub (`benchmarks.hub`); the victims are one hub
user, the attackers another. The victims load it as table E does (`load.drive`: half
paging segments, half reading random windows, every reply compared sample for sample with
a direct read of the whole recording), first alone (after every segment was read once, so
that the cache is full), then while `Params.attackers` attackers run
`mef3lab.testing.attacks` in turn: stalled streams, requests out of proportion to their
reply, opens under made-up client ids, half-sent requests to the status port, a flood of
made-up tokens. The run fails (AssertionError, after the table is logged) on any wrong
value or failed victim call, any attack the server served, or a server peak RSS above the
quiet run's by more than `ATTACK_ALLOWANCE_MB`.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

from mef3lab.client import Mef3Client
from mef3lab.server.process import ServerProcess
from mef3lab.testing.attacks import ATTACK_ALLOWANCE_MB, Target, take_turns
from mef3lab.testing.synth import synthesize

from .common import Params
from .hub import jupyterhub, service_process_env
from .load import LoadResult, drive, whole_recording
from .report import Table
from .report import Target as Bound

#: Seconds at the start of each run whose calls (every client's first at once) are checked
#: but not timed: alike in both runs, they would weigh five times more in the shorter one.
SETTLE_S = 5.0
#: Recordings besides the victims', opened under made-up ids: one more than the open limit
#: leaves room for, with the victims' recording.
SPARES = 3


def run(path: Path, params: Params, log=print) -> Table:
    table = Table(
        "K",
        f"soak: {params.soak_clients} clients (values checked) while {params.attackers} "
        f"attackers take turns of {params.turn_s:g} s for {params.soak_s:g} s; "
        f"the same load alone first ({params.soak_quiet_s:g} s, same server, cache full)",
    )
    log("K soak: reading the whole recording directly (the reference) ...")
    reference = whole_recording(path)
    # A read may be a quarter of the recording: segments and windows pass, an envelope of
    # the whole recording at one bin per sample (twice the recording) is refused.
    max_read_mb = max(reference.nbytes / 2**20 / 4, 0.05)
    with tempfile.TemporaryDirectory(prefix="mef3lab-soak-") as tmp, jupyterhub(log) as hub:
        spares = tuple(
            str(synthesize(Path(tmp) / f"spare{i}.mefd", channels=2, fs=256.0, seconds=20.0))
            for i in range(SPARES)
        )
        victim_token, attacker_token = hub.user_tokens(2, prefix="soak")
        with ServerProcess(
            env=service_process_env(hub),
            hub_auth=True,
            http_port=0,
            n_process_workers=params.workers,
            n_prefetch=params.n_prefetch,
            segment_seconds=float(params.segment_s),
            max_read_mb=max_read_mb,
            max_open_per_client=SPARES,
            log_level="WARNING",
        ) as srv:
            victims = dict(
                server_pid=srv.pid,
                clients=params.soak_clients,
                segment_s=float(params.segment_s),
                window_s=params.window_s,
                seed=params.seed,
                token=victim_token,
                settle_s=min(SETTLE_S, params.soak_quiet_s / 4),
            )
            log("K soak: every segment read once (the cache full before the quiet run) ...")
            read_every_segment(srv.address, str(path), float(params.segment_s), victim_token)
            log(f"K soak: {params.soak_clients} clients alone for {params.soak_quiet_s:g} s ...")
            quiet = drive(srv.address, str(path), reference, seconds=params.soak_quiet_s, **victims)
            target = Target(srv.address, str(path), srv.http_urls[0], attacker_token, spares)
            log(f"K soak: ... and with {params.attackers} attackers for {params.soak_s:g} s ...")
            stop = threading.Event()
            attackers, turns = take_turns(target, params.attackers, params.turn_s, stop)
            try:
                attacked = drive(
                    srv.address, str(path), reference, seconds=params.soak_s, **victims
                )
            finally:
                stop.set()
                for t in attackers:
                    t.join(timeout=params.turn_s + 120)
    bound = quiet.rss_peak_mb + ATTACK_ALLOWANCE_MB
    _rows(table, quiet, attacked, turns.errors, bound)
    table.notes += [
        f"attack turns: {', '.join(f'{k} {v}' for k, v in sorted(turns.runs.items()))}",
        f"victims: one hub user, {quiet.calls} calls alone, {attacked.calls} under attack; "
        f"server reads limited to {max_read_mb:.1f} MiB, {SPARES} open recordings per user",
    ]
    problems = [
        *[f"victim: {f}" for f in (quiet.failures + attacked.failures)[:5]],
        *[f"attack: {e}" for e in turns.errors[:5]],
        *(
            [f"server RSS peak {attacked.rss_peak_mb:.0f} MB > {bound:.0f} MB"]
            if attacked.rss_peak_mb > bound
            else []
        ),
    ]
    if problems:
        log(table.render())
        raise AssertionError("the soak failed:\n  " + "\n  ".join(problems))
    return table


def read_every_segment(address: str, path: str, segment_s: float, token: str) -> None:
    """Every segment of `path` read once, so that the server's cache holds the recording."""
    with Mef3Client(address, client_id="soak-warm-up", token=token, timeout=120.0) as c:
        c.open_file(path)
        grid = c.set_signal_chunk_size(path, segment_s).groups[0]
        for i in range(int(grid.n_segments)):
            c.get_signal_segment(path, i)
        c.close_file(path)


def _rows(
    table: Table, quiet: LoadResult, attacked: LoadResult, errors: list[str], bound: float
) -> None:
    rows = [(f"victims' latency alone, p{q}", quiet.p(q), "ms", "") for q in (50, 95, 99)]
    rows += [
        (
            f"victims' latency under attack, p{q}",
            attacked.p(q),
            "ms",
            f"{attacked.p(q) / quiet.p(q):.2f}× alone",
        )
        for q in (50, 95, 99)
    ]
    rows += [
        (
            f"victims' calls answered per second, {name}",
            len(r.latencies_ms) / r.seconds,
            "calls/s",
            "",
        )
        for name, r in (("alone", quiet), ("under attack", attacked))
    ]
    for n, (label, value, unit, note) in enumerate(rows, start=1):
        table.add(f"{n}. {label}", value, unit, note=note)
    failures = quiet.failures + attacked.failures
    table.add(
        "9. victims' failed calls (errors or wrong samples)",
        float(len(failures)),
        "calls",
        target=Bound("value", "<=", 0),
        note="; ".join(failures[:3]),
    )
    table.add(
        "10. attacks served, or refused otherwise than they must be",
        float(len(errors)),
        "turns",
        target=Bound("value", "<=", 0),
        note="; ".join(errors[:3]),
    )
    table.add("11. server RSS peak, alone", quiet.rss_peak_mb, "MB")
    table.add(
        "12. server RSS peak, under attack",
        attacked.rss_peak_mb,
        "MB",
        target=Bound("value", "<=", round(bound), f"alone + {ATTACK_ALLOWANCE_MB:g} MB"),
    )
