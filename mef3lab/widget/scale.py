"""Readable defaults for a page: each trace's baseline and the gain, by one robust rule.

Clinical viewers draw each trace around its own baseline and scale by what the page
shows, so a DC offset or one artefact does not decide the picture. The rule works on the
values the front end draws (raw samples, or per-column minima and maxima), so a zoomed-out
page is scaled as readably as a 10-s one; the first second of a recording (an
amplifier's settling) is left out.
"""

from __future__ import annotations

import numpy as np

__all__ = ["GAINS", "SETTLE_S", "baselines", "gain_for", "step_gain"]

#: µV per division the gain steps through (↑ / ↓), a 1-2-5 series.
GAINS = tuple(m * 10.0**e for e in range(-1, 6) for m in (1, 2, 5))
#: Seconds at a recording's start left out of baselines and gain (an amplifier settling).
SETTLE_S = 1.0
#: The percentile of |x - baseline| that sets a trace's spread.
PERCENTILE = 98.0
#: At most about this many values of a trace (evenly spaced) make its median and spread.
STAT_VALUES = 512


def baselines(
    traces: list[dict], buffer: bytes, page_start_s: float, settle_s: float = SETTLE_S
) -> tuple[np.ndarray, np.ndarray]:
    """Each trace's median and spread (`PERCENTILE` of its distance from the median).

    Both come from at most about `STAT_VALUES` evenly spaced values of the trace.

    Parameters
    ----------
    traces : list of dict
        The descriptions `display.encode` gives (``kind``, ``n``, ``t0``, ``dt``, ``offset``).
    buffer : bytes
        The float32 values they index.
    page_start_s : float
        The page start in seconds from the recording start.
    settle_s : float, default `SETTLE_S`
        Values before this time (seconds from the recording start) are left out, unless
        nothing else is on the page.

    Returns
    -------
    median, spread : numpy.ndarray
        One float per trace; NaN for a trace without values.
    """
    data = np.frombuffer(buffer, np.float32)
    median = np.full(len(traces), np.nan)
    spread = np.full(len(traces), np.nan)
    same_length: dict[int, list[tuple[int, np.ndarray]]] = {}
    for i, tr in enumerate(traces):
        x = _values(data, tr, page_start_s, settle_s)
        if x.size:
            same_length.setdefault(x.size, []).append((i, x))
    for group in same_length.values():  # one vectorized pass per length (usually one)
        rows = [i for i, _ in group]
        x = np.stack([x for _, x in group])
        median[rows] = np.median(x, axis=1)
        spread[rows] = np.percentile(np.abs(x - median[rows, None]), PERCENTILE, axis=1)
    return median, spread


def _values(data: np.ndarray, tr: dict, page_start_s: float, settle_s: float) -> np.ndarray:
    """The finite values of trace `tr` after the settling (all, if none after), evenly thinned.

    A min/max trace is thinned by columns, so its minima and maxima stay as many.
    """
    n = tr["n"]
    times = page_start_s + tr["t0"] + np.arange(n) * tr["dt"]
    if tr["kind"] == "minmax":
        values = data[tr["offset"] : tr["offset"] + 2 * n].reshape(2, n)
    else:
        values = data[tr["offset"] : tr["offset"] + n].reshape(1, n)
    settled = values[:, times >= settle_s]
    if not np.isfinite(settled).any():
        settled = values
    thinned = settled[:, :: max(1, settled.size // STAT_VALUES)]  # a page's statistic
    return thinned[np.isfinite(thinned)]


def gain_for(spread: np.ndarray) -> float:
    """The gain that keeps the typical trace's `PERCENTILE` within 2/3 division of its baseline.

    Parameters
    ----------
    spread : numpy.ndarray
        The traces' spreads in µV (NaN: a trace without values).

    Returns
    -------
    float
        A value of `GAINS`: the smallest at least 1.5 times the median spread (50 if none).
    """
    finite = spread[np.isfinite(spread) & (spread > 0)]
    if not finite.size:
        return 50.0
    target = 1.5 * float(np.median(finite))
    return min([g for g in GAINS if g >= target], default=GAINS[-1])


def step_gain(gain: float, finer: bool) -> float:
    """The next value of `GAINS` below (finer: more sensitive) or above `gain`."""
    if finer:
        return max([g for g in GAINS if g < gain * (1 - 1e-9)], default=GAINS[0])
    return min([g for g in GAINS if g > gain * (1 + 1e-9)], default=GAINS[-1])
