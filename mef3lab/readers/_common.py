"""Small pieces both engines share: annotations, rate-change detection, messages."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from ..errors import CorruptDataError, RateChangeError
from ..model import Annotation


def annotation(rec: dict, channel: str | None) -> Annotation:
    """One engine record dict (``time``, ``type``, ``text``, ``duration``) as an Annotation."""
    text = rec.get("text")
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    duration = rec.get("duration")
    return Annotation(
        time_uutc=int(rec["time"]),
        type=str(rec.get("type", "")),
        text="" if text is None else str(text).rstrip("\x00"),
        duration_us=None if duration is None else int(duration),
        channel=channel,
    )


def sorted_annotations(items: Iterable[Annotation]) -> tuple[Annotation, ...]:
    """Annotations in one order whatever the engine: by time, then level and content."""
    return tuple(sorted(items, key=lambda a: (a.time_uutc, a.channel or "", a.type, a.text)))


#: MEF's GMT offset "not entered".
GMT_OFFSET_NO_ENTRY = -86401


def recorded_gmt_offset(value: object) -> int | None:
    """A stored GMT offset (s east of UTC), or None when the file records none."""
    if value is None or int(value) == GMT_OFFSET_NO_ENTRY:
        return None
    return int(value)


def stored_units(raw: object) -> str:
    """The units text a file stores, as text (bytes decoded, NULs and spaces stripped)."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    return "" if raw is None else str(raw).replace("\x00", "").strip()


def effective_factor(f: float | None) -> float:
    """A stored conversion factor as reads apply it: unset (<= 0, None, NaN) means 1."""
    return float(f) if f is not None and f > 0 else 1.0


def rate_change_message(path: object, name: str, rates: Sequence[float]) -> str:
    """The message of the RateChangeError a channel that changes rate raises."""
    shown = ", ".join(f"{r:g} Hz" for r in dict.fromkeys(rates))
    return (
        f"{path}: channel {name!r} changes sampling rate between MEF segments ({shown}); "
        "no single sample grid exists for it, so it cannot be read. Read the other channels, "
        "or split the recording into sessions of one rate each"
    )


def check_rates(changes: dict[str, str], names: Sequence[str]) -> None:
    """Raise RateChangeError when any of `names` changes rate between segments."""
    for n in names:
        if n in changes:
            raise RateChangeError(changes[n])


def implied_rate(
    starts: np.ndarray, counts: np.ndarray, disc: np.ndarray, seg_end: int, fs: float
) -> float | None:
    """The rate a segment's block index implies when it is not `fs`, else None.

    For engines that store no rate per segment. A block followed seamlessly (no
    discontinuity) by the next spans ``next.start - start`` µs; only when a segment has
    no such pair is its last block measured against the segment's end time. A rate off
    `fs` by more than one sample per block is a different rate.
    """
    seamless = np.flatnonzero(~disc[1:].astype(bool))
    if seamless.size:
        n, dt = counts[seamless], (starts[seamless + 1] - starts[seamless]).astype(np.float64)
    else:
        n, dt = counts[-1:], np.array([seg_end - starts[-1]], np.float64)
    ok = (n > 1) & (dt > 0)
    if not ok.any():
        return None
    n, dt = n[ok], dt[ok]
    # more than a sample off (plus µs rounding)
    off = np.abs(n * 1e6 / dt - fs) * dt / 1e6 > 1.0 + 2e-6 * fs
    return float(round(float(np.median(n[off] * 1e6 / dt[off])), 3)) if off.any() else None


def check_index(
    path: object,
    name: str,
    fs: float,
    starts: np.ndarray,
    counts: np.ndarray,
    last_end: int,
    n_meta: int,
    t_start: int,
    t_end: int,
    extra: str | None = None,
) -> None:
    """CorruptDataError when a channel's metadata and block index cannot both be right.

    Damaged metadata or index files otherwise turn into absurd grids (petabyte reads)
    or silently missing samples; checked at open, from what is already in memory.
    """
    problem = extra
    if not (math.isfinite(fs) and 0 < fs <= 1e7):
        problem = f"its sampling rate reads as {fs:g} Hz"
    elif (counts <= 0).any():
        problem = "its block index lists blocks without samples"
    elif int(counts.sum()) != int(n_meta):
        problem = f"its block index lists {int(counts.sum())} samples, its metadata {int(n_meta)}"
    elif (np.diff(starts) < 0).any():
        problem = "the block times in its index go backwards"
    elif starts[0] < t_start - 1e6 or last_end > t_end + 1e6:
        problem = "its block index places samples outside the time its metadata gives"
    if problem:
        raise CorruptDataError(
            f"{path}: channel {name!r} is damaged: {problem}. The session cannot be read safely; "
            "a copy repaired with mef3io's validate/recover tools may be"
        )
