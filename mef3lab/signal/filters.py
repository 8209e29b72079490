"""Display filters: zero-phase high-pass, low-pass and notch, with no transient at page edges.

Each filter is a scipy.signal design in second-order sections, run forward and back
(`sosfiltfilt`), so nothing shifts in time. A page is filtered together with `pad_s`
seconds of neighbouring samples on each side and then cut back to the page: the pad is
long enough for the filter's response to die away to below float32 precision, so a page
read on its own shows the same values as those samples inside a long filtered read.
Each contiguous run between gaps (NaN) is filtered on its own: a gap stays a gap and
the samples beside it are not smeared into it. scipy.signal is imported by the first
filter designed: importing it is a large part of a first scroller's wait, and an unfiltered
page never needs it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

__all__ = ["HFO_BANDS", "MAX_PAD_PAGES", "DisplayFilter", "hfo_band", "hfo_bands"]

#: Filter orders (Butterworth); the notch's quality factor (bandwidth = f0 / Q).
HIGHPASS_ORDER, LOWPASS_ORDER, NOTCH_Q = 2, 4, 30.0
#: Time constants of each filter's slowest pole that the pad spans (e^-24 ≪ float32's 2^-23,
#: with margin).
SETTLE = 24.0
#: The pad may be at most this many page lengths on each side (a longer one reads too much).
MAX_PAD_PAGES = 10.0


#: The bands high-frequency oscillations (HFO) are reviewed in, Hz: (high-pass, low-pass).
HFO_BANDS = {"ripple": (80.0, 250.0), "fast ripple": (250.0, 500.0)}


def hfo_bands(fs: float) -> tuple[str, ...]:
    """The HFO bands (`HFO_BANDS`) channels sampled at `fs` can show: below their Nyquist."""
    return tuple(name for name, (_, hi) in HFO_BANDS.items() if hi < fs / 2)


def hfo_band(name: str, fs: float) -> tuple[float, float]:
    """The cut-offs of HFO band `name` for channels sampled at `fs`, checked.

    Parameters
    ----------
    name : str
        A key of `HFO_BANDS` (``"ripple"`` or ``"fast ripple"``; case and spaces aside).
    fs : float
        The fastest sampling rate of the channels it is shown on, in Hz.

    Returns
    -------
    tuple of float
        ``(highpass, lowpass)`` in Hz: the band-pass is a `DisplayFilter` with both.

    Raises
    ------
    ValueError
        For a band it does not know, or one at or above the channels' Nyquist frequency.

    Examples
    --------
    >>> hfo_band("ripple", 2000.0)
    (80.0, 250.0)
    """
    key = " ".join(str(name).lower().replace("_", " ").split())
    if key not in HFO_BANDS:
        raise ValueError(f"unknown HFO band {name!r}: use one of {', '.join(map(repr, HFO_BANDS))}")
    lo, hi = HFO_BANDS[key]
    if hi >= fs / 2:
        raise ValueError(
            f"a {key} view ({lo:g}-{hi:g} Hz) needs channels sampled above {2 * hi:g} Hz; "
            f"these are sampled at {fs:g} Hz"
        )
    return lo, hi


@dataclass(frozen=True)
class DisplayFilter:
    """High-pass and low-pass cut-offs and notch frequencies for display.

    Attributes
    ----------
    highpass : float or None
        High-pass cut-off in Hz (None: off).
    lowpass : float or None
        Low-pass cut-off in Hz (None: off).
    notch : tuple of float
        Notch frequencies in Hz (e.g. ``(50.0,)`` for mains hum; empty: none).
    """

    highpass: float | None = None
    lowpass: float | None = None
    notch: tuple[float, ...] = ()

    @property
    def active(self) -> bool:
        """Whether any filter is on."""
        return self.highpass is not None or self.lowpass is not None or bool(self.notch)

    def check(self, fs: float, page_s: float) -> None:
        """Check that this filter can be applied to pages of `page_s` seconds sampled at `fs`.

        Parameters
        ----------
        fs : float
            Sampling rate in Hz.
        page_s : float
            Page length in seconds.

        Raises
        ------
        ValueError
            Saying what would work, if a frequency is not positive or not below Nyquist, the
            high-pass is not below the low-pass, or the pad would exceed `MAX_PAD_PAGES` pages.
        """
        nyquist = fs / 2
        for what, f in (
            ("high-pass", self.highpass),
            ("low-pass", self.lowpass),
            *(("notch", n) for n in self.notch),
        ):
            if f is None:
                continue
            if not (math.isfinite(f) and f > 0):
                raise ValueError(f"a {what} frequency must be a positive number of Hz, not {f!r}")
            if f >= nyquist:
                raise ValueError(
                    f"a {what} at {f:g} Hz is at or above the Nyquist frequency ({nyquist:g} Hz) "
                    f"of channels sampled at {fs:g} Hz"
                )
        if self.highpass is not None and self.lowpass is not None and self.highpass >= self.lowpass:
            raise ValueError(
                f"the high-pass ({self.highpass:g} Hz) must be below the low-pass "
                f"({self.lowpass:g} Hz)"
            )
        limit = MAX_PAD_PAGES * page_s
        if self.pad_s(fs) > limit:
            lowest = SETTLE / (2 * math.pi * _damping(HIGHPASS_ORDER) * limit)
            raise ValueError(
                f"a high-pass of {self.highpass:g} Hz needs {self.pad_s(fs):.0f} s of neighbouring "
                f"samples on each side of the page; on {page_s:g} s pages the lowest is "
                f"{lowest:.2g} Hz (or show longer pages)"
            )

    def pad_s(self, fs: float) -> float:
        """Seconds of neighbouring samples a page needs on each side to show no edge transient."""
        taus = [
            1 / (2 * math.pi * f * _damping(order))
            for f, order in ((self.highpass, HIGHPASS_ORDER), (self.lowpass, LOWPASS_ORDER))
            if f is not None
        ]
        taus += [NOTCH_Q / (math.pi * f) for f in self.notch]  # a notch rings for ~Q/(π f0)
        # and a few samples for the fastest
        return SETTLE * max(taus, default=0.0) + (16 / fs if taus else 0.0)

    def apply(self, data: np.ndarray, fs: float) -> np.ndarray:
        """Filter each row of `data`, run by run between NaN gaps.

        Parameters
        ----------
        data : numpy.ndarray
            (channels, samples), NaN in gaps.
        fs : float
            Sampling rate in Hz.

        Returns
        -------
        numpy.ndarray
            A filtered float32 copy, NaN where `data` is NaN.
        """
        sos = _sos(self, fs)
        out = np.array(data, np.float32, copy=True)
        if sos is None:
            return out
        filtfilt = _signal().sosfiltfilt
        for row in out:
            for a, b in _runs(np.isfinite(row)):
                padlen = min(3 * (2 * len(sos) + 1), b - a - 1)
                if padlen > 0:
                    row[a:b] = filtfilt(sos, row[a:b].astype(np.float64), padlen=padlen)
        return out


def _damping(order: int) -> float:
    """Damping ratio of a Butterworth filter's least damped pole pair (its slowest ringing)."""
    return math.sin(math.pi / (2 * order)) if order > 1 else 1.0


def _signal() -> Any:
    """scipy.signal, imported on first use (see the module's docstring)."""
    from scipy import signal  # noqa: PLC0415 - imported when a filter is first designed

    return signal


@lru_cache(maxsize=64)
def _sos(f: DisplayFilter, fs: float) -> np.ndarray | None:
    signal = _signal()
    parts = []
    if f.highpass is not None:
        parts.append(signal.butter(HIGHPASS_ORDER, f.highpass, "highpass", fs=fs, output="sos"))
    if f.lowpass is not None:
        parts.append(signal.butter(LOWPASS_ORDER, f.lowpass, "lowpass", fs=fs, output="sos"))
    for f0 in f.notch:
        parts.append(signal.tf2sos(*signal.iirnotch(f0, NOTCH_Q, fs=fs)))
    return np.concatenate(parts) if parts else None


def _runs(finite: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of True in `finite`."""
    edges = np.flatnonzero(np.diff(np.concatenate([[False], finite, [False]]).astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))
