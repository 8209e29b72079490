"""Load, bounded and on loopback: 50 clients at once (half paging, half random windows) for a few
seconds against one server; no call fails, every reply equals a direct read, the server's memory
stays within its cache budget plus a fixed overhead. The full 60 s run is table E of the
benchmarks.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = str(Path(__file__).resolve().parents[2])
if REPO not in sys.path:  # `benchmarks` is a folder of the repository, not an installed package
    sys.path.insert(0, REPO)

from benchmarks.load import RSS_OVERHEAD_MB, drive, whole_recording  # noqa: E402

pytestmark = pytest.mark.slow

CLIENTS, SECONDS = 50, 8.0


def test_fifty_clients_at_once(module_launch, recording):
    srv = module_launch(n_process_workers=2, n_prefetch=1, segment_seconds=30.0)
    result = drive(
        srv.address,
        str(recording),
        whole_recording(recording),
        srv.pid,
        CLIENTS,
        SECONDS,
        segment_s=30.0,
        window_s=4.0,
    )
    print(
        f"\n{CLIENTS} clients, {result.seconds:.1f} s: {result.calls} calls, "
        f"p50 {result.p(50):.1f} ms, p95 {result.p(95):.1f} ms, p99 {result.p(99):.1f} ms; "
        f"server RSS {result.rss_start_mb:.0f} -> {result.rss_peak_mb:.0f} MB "
        f"(cache budget {result.cache_budget_mb:.0f} MB)"
    )
    assert not result.failures, result.failures[:5]
    assert (
        len(result.latencies_ms) >= CLIENTS
    )  # every client was answered, more than once on average
    assert result.rss_peak_mb <= result.cache_budget_mb + RSS_OVERHEAD_MB
