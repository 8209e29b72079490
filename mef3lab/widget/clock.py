"""Times as a reviewer reads and types them: wall-clock labels and jump targets.

A page's position is kept as seconds from the recording start (like the ``time``
coordinate of `open_recording`); people think in clock time: the recording's local time
(its recorded GMT offset; UTC when none is recorded or when asked), or, for de-identified
times, time relative to MEF's offset epoch. A jump accepts seconds or a clock time.
"""

from __future__ import annotations

import datetime as dt
import math
import re

from ..model import clock_text

__all__ = ["clock_label", "parse_time"]

_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}(?:\.\d*)?))?$")


def clock_label(
    start_uutc: int, seconds: float, offset_s: int | None = None, relative: bool = False
) -> str:
    """``2026-01-01 08:00:10.000 +00:00 (+10.000 s)`` for `seconds` after the recording start.

    Parameters
    ----------
    start_uutc : int
        The recording start (µUTC).
    seconds : float
        Seconds after it.
    offset_s : int, optional
        The recording's UTC offset in seconds (None: UTC).
    relative : bool
        The times are de-identified: ``+09:01:17.000 (de-identified) (+10.000 s)``.

    Returns
    -------
    str
        The label.
    """
    t = clock_text(start_uutc + round(seconds * 1e6), offset_s, relative, digits=3)
    return f"{t} (+{seconds:.3f} s)"


def parse_time(
    text: str,
    start_uutc: int,
    duration_s: float,
    offset_s: int | None = None,
    relative: bool = False,
) -> float:
    """Seconds from the recording start of what a person typed.

    Parameters
    ----------
    text : str
        Seconds (``"3600"``, ``"12.5"``), a clock time ``"HH:MM[:SS[.fff]]"`` (the first
        such time at or after the recording start), or an ISO date-time
        (``"2026-01-01T09:00:00"``, in the recording's clock unless it names a zone).
    start_uutc : int
        The recording start (µUTC).
    duration_s : float
        The recording's length in seconds.
    offset_s : int, optional
        The UTC offset clock times are in (None: UTC).
    relative : bool
        The times are de-identified: a clock time is time after MEF's offset epoch, and
        dates are refused.

    Returns
    -------
    float
        Seconds from the recording start.

    Raises
    ------
    ValueError
        With a message for the widget, when the text is none of these or lies outside the
        recording.
    """
    s = text.strip()
    tz = dt.timezone(dt.timedelta(seconds=offset_s or 0))
    try:
        seconds = float(s)
    except ValueError:
        seconds = _clock_seconds(s, start_uutc, tz, relative)
    if not math.isfinite(seconds) or not 0 <= seconds <= duration_s:
        first = clock_label(start_uutc, 0, offset_s, relative).split(" (+")[0]
        last = clock_label(start_uutc, duration_s, offset_s, relative).split(" (+")[0]
        raise ValueError(
            f"{text!r} is outside the recording (0 to {duration_s:.3f} s, {first} to {last})"
        )
    return seconds


def _clock_seconds(s: str, start_uutc: int, tz: dt.tzinfo, relative: bool) -> float:
    start = dt.datetime.fromtimestamp(start_uutc / 1e6, dt.UTC).astimezone(tz)
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
    if relative:
        raise ValueError(
            f"{s!r} is not seconds from the start or a clock time (HH:MM:SS); this recording's "
            "times are de-identified, so it has no dates"
        )
    try:
        t = dt.datetime.fromisoformat(s)
    except ValueError:
        raise ValueError(
            f"{s!r} is neither seconds from the start (e.g. 3600) nor a clock time "
            "(HH:MM:SS, or an ISO date-time)"
        ) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=tz)
    return (t - start).total_seconds()
