"""The engine's counters as Prometheus metrics (``/metrics``), through `prometheus_client`.

Taken generically from `Engine.stats()`: every numeric entry becomes ``mef3lab_<key>``, a
counter when it only ever grows (`COUNTERS`), a gauge otherwise, so counters another module
adds to the stats show up without a change here (as gauges until listed).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric

from ...version import __version__
from ..core.engine import Engine

#: Stats that only grow (exposed as ``mef3lab_<key>_total``).
COUNTERS = frozenset(
    {"hits", "misses", "prefetches", "prefetch_hits", "decoded_samples", "worker_restarts"}
)

__all__ = ["CONTENT_TYPE_LATEST", "EngineCollector", "exposition"]


class EngineCollector:
    """A custom collector: reads the engine's stats at scrape time (nothing is kept in between)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        """The server's build, then one metric per numeric engine stat."""
        yield InfoMetricFamily(
            "mef3lab_server", "mef3lab server build", value={"version": __version__}
        )
        for key, value in sorted(self.engine.stats().items()):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            name = "mef3lab_" + re.sub(r"[^a-zA-Z0-9_]", "_", key)
            family = CounterMetricFamily if key in COUNTERS else GaugeMetricFamily
            yield family(name, f"mef3lab engine stat {key!r}", value=value)


def exposition(engine: Engine) -> bytes:
    """The Prometheus text exposition of `engine`'s stats, right now."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EngineCollector(engine))
    return generate_latest(registry)
