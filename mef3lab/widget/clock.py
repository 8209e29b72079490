"""Times as a reviewer reads and types them: wall-clock labels and jump targets.

A page's position is kept as seconds from the recording start (like the ``time``
coordinate of `open_recording`); people think in clock time. Labels are UTC (MEF stores
µUTC); a jump accepts either form.
"""

from __future__ import annotations

import datetime as dt
import math
import re

__all__ = ["clock_label", "parse_time"]

_UTC = dt.UTC
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}(?:\.\d*)?))?$")


def clock_label(start_uutc: int, seconds: float) -> str:
    """``2026-01-01 08:00:10.000 UTC (+10.000 s)`` for `seconds` after the recording start."""
    t = dt.datetime.fromtimestamp(0, _UTC) + dt.timedelta(
        microseconds=start_uutc + round(seconds * 1e6)
    )
    return f"{t:%Y-%m-%d %H:%M:%S}.{t.microsecond // 1000:03d} UTC (+{seconds:.3f} s)"


def parse_time(text: str, start_uutc: int, duration_s: float) -> float:
    """Seconds from the recording start of what a person typed.

    Accepts seconds (``"3600"``, ``"12.5"``), a clock time ``"HH:MM[:SS[.fff]]"`` (UTC,
    the first such time at or after the recording start), or an ISO date-time
    (``"2026-01-01T09:00:00"``, UTC unless it names a zone). Raises ValueError with a
    message for the widget when the text is none of these or lies outside the recording.
    """
    s = text.strip()
    try:
        seconds = float(s)
    except ValueError:
        seconds = _clock_seconds(s, start_uutc)
    if not math.isfinite(seconds) or not 0 <= seconds <= duration_s:
        raise ValueError(
            f"{text!r} is outside the recording (0 to {duration_s:.3f} s, "
            f"{clock_label(start_uutc, 0)[:23]} to {clock_label(start_uutc, duration_s)[:23]} UTC)"
        )
    return seconds


def _clock_seconds(s: str, start_uutc: int) -> float:
    start = dt.datetime.fromtimestamp(start_uutc / 1e6, _UTC)
    m = _CLOCK.match(s)
    if m:
        h, mi, sec = int(m[1]), int(m[2]), float(m[3] or 0)
        if h > 23 or mi > 59 or sec >= 60:
            raise ValueError(f"{s!r} is not a clock time (HH:MM:SS)")
        day = start.replace(hour=0, minute=0, second=0, microsecond=0)
        t = day + dt.timedelta(hours=h, minutes=mi, seconds=sec)
        if t < start - dt.timedelta(microseconds=1):
            t += dt.timedelta(days=1)
        return (t - start).total_seconds()
    try:
        t = dt.datetime.fromisoformat(s)
    except ValueError:
        raise ValueError(
            f"{s!r} is neither seconds from the start (e.g. 3600) nor a clock time "
            "(HH:MM:SS, or an ISO date-time)"
        ) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=_UTC)
    return (t - start).total_seconds()
