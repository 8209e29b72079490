"""How mef3lab writes times and counts for people (the CLI, the status page, notebook summaries)."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(uutc: int) -> str:
    """µUTC as an ISO 8601 UTC time, to the millisecond."""
    return datetime.fromtimestamp(uutc / 1e6, tz=UTC).isoformat(timespec="milliseconds")


def hms(seconds: float) -> str:
    """A duration as clock time, H:MM:SS."""
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def count(n: int, noun: str) -> str:
    """``3 gaps``, ``1 gap``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"
