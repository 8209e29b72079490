"""Display filters: zero-phase high-pass, low-pass and notch, with no transient at page edges.

Each filter is a scipy.signal design in second-order sections, run forward and back
(`sosfiltfilt`), so nothing shifts in time. A page is filtered together with `pad_s`
seconds of neighbouring samples on each side and then cut back to the page: the pad is
long enough for the filter's response to die away to below float32 precision, so a page
read on its own shows the same values as those samples inside a long filtered read.
Each contiguous run between gaps (NaN) is filtered on its own: a gap stays a gap and
the samples beside it are not smeared into it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import signal

__all__ = ["DisplayFilter", "MAX_PAD_PAGES"]

#: Filter orders (Butterworth); the notch's quality factor (bandwidth = f0 / Q).
HIGHPASS_ORDER, LOWPASS_ORDER, NOTCH_Q = 2, 4, 30.0
#: Time constants of each filter's slowest pole that the pad spans (e^-24 ≪ float32's 2^-23, with margin).
SETTLE = 24.0
#: The pad may be at most this many page lengths on each side (a longer one reads too much per page).
MAX_PAD_PAGES = 10.0


@dataclass(frozen=True)
class DisplayFilter:
    """High-pass and low-pass cut-offs and notch frequencies in Hz (None / empty: off)."""

    highpass: float | None = None
    lowpass: float | None = None
    notch: tuple[float, ...] = ()

    @property
    def active(self) -> bool:
        return self.highpass is not None or self.lowpass is not None or bool(self.notch)

    def check(self, fs: float, page_s: float) -> None:
        """Raise ValueError (saying what would work) if this filter cannot be applied at `fs` to pages of `page_s`."""
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
                f"the high-pass ({self.highpass:g} Hz) must be below the low-pass ({self.lowpass:g} Hz)"
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
        """Seconds of neighbouring samples each side of a page needs so its edges show no transient."""
        taus = [
            1 / (2 * math.pi * f * _damping(order))
            for f, order in ((self.highpass, HIGHPASS_ORDER), (self.lowpass, LOWPASS_ORDER))
            if f is not None
        ]
        taus += [NOTCH_Q / (math.pi * f) for f in self.notch]  # a notch rings for ~Q/(π f0)
        return SETTLE * max(taus, default=0.0) + (
            16 / fs if taus else 0.0
        )  # and a few samples for the fastest

    def apply(self, data: np.ndarray, fs: float) -> np.ndarray:
        """Rows of `data` filtered run by run between NaN gaps (float32 out, NaN kept)."""
        sos = _sos(self, fs)
        out = np.array(data, np.float32, copy=True)
        if sos is None:
            return out
        for row in out:
            for a, b in _runs(np.isfinite(row)):
                padlen = min(3 * (2 * len(sos) + 1), b - a - 1)
                if padlen > 0:
                    row[a:b] = signal.sosfiltfilt(sos, row[a:b].astype(np.float64), padlen=padlen)
        return out


def _damping(order: int) -> float:
    """Damping ratio of a Butterworth filter's least damped pole pair (its slowest-dying ringing)."""
    return math.sin(math.pi / (2 * order)) if order > 1 else 1.0


@lru_cache(maxsize=64)
def _sos(f: DisplayFilter, fs: float) -> np.ndarray | None:
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
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))
