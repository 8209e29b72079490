"""The soak, short: well-behaved clients (every reply compared with a direct read) while four
attackers take turns at the attacks of `mef3lab.testing.attacks`.

Stalled streams, requests out of proportion to their reply (a million names, an envelope of
a billion bins, refused segment sizes), opens under made-up client ids, half-sent HTTP
requests and a flood of made-up tokens, four at a time for the whole run. The victims must
see no error and no wrong sample, and the server's peak memory may exceed that of the same
load without attackers (measured first, on the same server) only by what the attacks are
allowed to hold. The victims' p50/p99 are printed beside those of the quiet run. The long
form is table K of the benchmarks (``python -m benchmarks --only K``).
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from mef3lab.testing.attacks import ATTACK_ALLOWANCE_MB, Target, take_turns
from mef3lab.testing.synth import synthesize

from .conftest import clean_env

REPO = str(Path(__file__).resolve().parents[2])
if REPO not in sys.path:  # `benchmarks` is a folder of the repository, not an installed package
    sys.path.insert(0, REPO)

from benchmarks.load import drive, whole_recording  # noqa: E402

pytestmark = pytest.mark.slow

CLIENTS, SECONDS, TURN_S, ATTACKERS = 20, 12.0, 2.0, 4
TOKENS = {"alice": "alice-token-5d0c", "mallory": "mallory-token-e27a"}


def test_victims_read_right_while_attackers_take_turns(module_launch, recording, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("".join(f"{user} {token}\n" for user, token in TOKENS.items()))
    spares = [
        synthesize(tmp_path / f"spare{i}.mefd", channels=2, fs=256.0, seconds=20.0, seed=i)
        for i in range(3)
    ]
    srv = module_launch(
        env=clean_env(),
        token_file=str(tokens),
        max_open_per_client=3,  # the attacker's recording and two spares; the third is refused
        n_process_workers=2,
        n_prefetch=1,
        segment_seconds=30.0,
        max_read_mb=4.0,  # an envelope of one bin per sample is 9.4 MiB: refused
        http_port=0,
        stream_write_timeout_s=5.0,
    )
    path = str(recording)
    reference = whole_recording(recording)
    victims = dict(
        clients=CLIENTS, segment_s=30.0, window_s=4.0, token=TOKENS["alice"], server_pid=srv.pid
    )
    quiet = drive(srv.address, path, reference, seconds=SECONDS / 2, **victims)
    assert not quiet.failures, quiet.failures[:5]
    target = Target(srv.address, path, srv.http_urls[0], TOKENS["mallory"], tuple(map(str, spares)))
    stop = threading.Event()
    attackers, turns = take_turns(target, ATTACKERS, TURN_S, stop)
    try:
        result = drive(srv.address, path, reference, seconds=SECONDS, **victims)
    finally:
        stop.set()
        for t in attackers:
            t.join()
    for name, r in (("quiet", quiet), ("under attack", result)):
        print(
            f"\n{CLIENTS} clients {name}, {r.seconds:.1f} s: {r.calls} calls, "
            f"p50 {r.p(50):.1f} ms, p99 {r.p(99):.1f} ms; server RSS peak {r.rss_peak_mb:.0f} MB"
        )
    print(f"attack turns: {dict(turns.runs)}")
    assert not turns.errors, turns.errors[:5]
    assert set(turns.runs) == {
        "stalled_streams",
        "bad_requests",
        "made_up_ids",
        "half_sent_http",
        "made_up_tokens",
    }
    assert not result.failures, result.failures[:5]
    assert len(result.latencies_ms) >= CLIENTS
    assert result.rss_peak_mb <= quiet.rss_peak_mb + ATTACK_ALLOWANCE_MB
