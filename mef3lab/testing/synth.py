"""Synthetic EEG-like MEF 3.0 recordings with known content, for demos, benchmarks and tests.

`synthesize` writes one; `plan` describes it without writing, and `SynthPlan.signal`
regenerates any channel's samples exactly (deterministic in the seed), which is what tests
compare reads against. Channels are written one by one, so memory stays at a few channels'
worth whatever the session size.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: 2024-01-15 08:00:00 UTC, in µs since the epoch.
DEFAULT_START_UUTC = 1_705_305_600_000_000

ALPHA_HZ = 10.0


@dataclass(frozen=True)
class SynthPlan:
    """Everything `synthesize` writes; `signal` regenerates a channel exactly.

    Attributes
    ----------
    names : tuple of str
        Channel names.
    rates : tuple of float
        Each channel's sampling rate in Hz.
    starts_uutc : tuple of int
        Each channel's first sample (µUTC).
    n_samples : tuple of int
        Each channel's grid length, gaps included.
    gaps_uutc : tuple of (int, int)
        ``[start, end)`` holes (µUTC) shared by every channel.
    annotations : tuple of dict
        Records as ``mef3io.Writer`` takes them, plus ``"channel"`` for channel-level ones.
    precision : int
        Decimals of µV kept.
    seed : int
        The random seed.
    start_uutc : int
        Start of the recording (µUTC).
    units : str
        The units of the values.
    """

    names: tuple[str, ...]
    rates: tuple[float, ...]
    starts_uutc: tuple[int, ...]
    n_samples: tuple[int, ...]
    gaps_uutc: tuple[tuple[int, int], ...]
    annotations: tuple[dict, ...]
    precision: int
    seed: int
    start_uutc: int
    units: str = "uV"

    @property
    def factor(self) -> float:
        """The conversion factor: µV per stored count."""
        return 10.0**-self.precision

    def index(self, name: str) -> int:
        """The index of channel `name`."""
        return self.names.index(name)

    def times(self, i: int, k: np.ndarray | int) -> np.ndarray:
        """Exact µUTC (float) of samples k of channel i."""
        return self.starts_uutc[i] + np.asarray(k, dtype=np.float64) * 1e6 / self.rates[i]

    def gap_slices(self, i: int) -> list[slice]:
        """Sample ranges of channel i that fall into a gap (written as NaN)."""
        fs, t0, n = self.rates[i], self.starts_uutc[i], self.n_samples[i]
        out = []
        for g0, g1 in self.gaps_uutc:
            k0 = min(max(math.ceil((g0 - t0) * fs / 1e6 - 1e-9), 0), n)
            k1 = min(max(math.ceil((g1 - t0) * fs / 1e6 - 1e-9), 0), n)
            if k1 > k0:
                out.append(slice(k0, k1))
        return out

    def signal(self, i: int) -> np.ndarray:
        """Channel i as written: float64 µV on the 10**-precision grid, NaN in gaps."""
        x = _eeg(self.n_samples[i], self.rates[i], np.random.default_rng([self.seed, i]))
        x = np.rint(x * 10.0**self.precision) * self.factor
        for s in self.gap_slices(i):
            x[s] = np.nan
        return x


def plan(
    channels: int | Sequence[str] = 64,
    fs: float | Sequence[float] = 256.0,
    seconds: float = 7200.0,
    precision: int = 2,
    gaps: int | Sequence[tuple[float, float]] = 3,
    mixed_rates: bool = False,
    stagger_s: float = 0.0,
    annotations: bool | Sequence[dict] = True,
    seed: int = 0,
    start_uutc: int = DEFAULT_START_UUTC,
) -> SynthPlan:
    """Describe a synthetic recording without writing it.

    The arguments are `synthesize`'s (those that shape the content).

    Returns
    -------
    SynthPlan
        What `synthesize` with the same arguments writes.

    Raises
    ------
    ValueError
        If there is no channel, a rate or the duration is not positive, the stagger leaves a
        channel without samples, or gaps lie outside the recording or overlap.
    """
    names = (
        tuple(f"ch{i:03d}" for i in range(channels))
        if isinstance(channels, int)
        else tuple(channels)
    )
    if not names:
        raise ValueError("a recording needs at least one channel")
    rate_list = [float(fs)] if np.isscalar(fs) else [float(r) for r in fs]
    if mixed_rates and len(rate_list) == 1:
        rate_list = [rate_list[0], 4 * rate_list[0]]
    if any(not (r > 0 and math.isfinite(r)) for r in rate_list) or seconds <= 0:
        raise ValueError("sampling rates and the duration must be positive")
    rates = tuple(rate_list[i % len(rate_list)] for i in range(len(names)))
    end = start_uutc + round(seconds * 1e6)
    starts, lengths = [], []
    for i, r in enumerate(rates):
        # Staggered channels start late and end early by whole samples of their own rate.
        k_late, k_early = round((i % 3) * stagger_s * r), round(((i + 1) % 3) * stagger_s * r / 2)
        starts.append(start_uutc + round(k_late * 1e6 / r))
        lengths.append(round((end - start_uutc) * r / 1e6) - k_late - k_early)
    if min(lengths) <= 0:
        raise ValueError("the stagger leaves a channel without samples; shorten it")
    rng = np.random.default_rng([seed, 1_000_003])
    gap_list = _gaps(gaps, seconds, start_uutc, rng)
    notes = _annotations(annotations, names, seconds, start_uutc)
    return SynthPlan(
        names,
        rates,
        tuple(starts),
        tuple(lengths),
        gap_list,
        notes,
        int(precision),
        seed,
        start_uutc,
    )


def synthesize(
    path: str | os.PathLike,
    channels: int | Sequence[str] = 64,
    fs: float | Sequence[float] = 256.0,
    seconds: float = 7200.0,
    precision: int = 2,
    gaps: int | Sequence[tuple[float, float]] = 3,
    mixed_rates: bool = False,
    stagger_s: float = 0.0,
    annotations: bool | Sequence[dict] = True,
    password1: str | None = None,
    password2: str | None = None,
    seed: int = 0,
    start_uutc: int = DEFAULT_START_UUTC,
    overwrite: bool = False,
) -> Path:
    """Write a synthetic EEG recording and return its path.

    Every channel is a 1/f (pink) background plus a waxing and waning 10 Hz alpha rhythm, about
    ±70 µV, rounded to ``10**-precision`` µV exactly as MEF stores it, so what is read back
    equals what was generated, bit for bit. Gaps are real discontinuities, shared by all
    channels.

    Parameters
    ----------
    path : str or os.PathLike
        The session folder to create; its name ends in ``.mefd``.
    channels : int or sequence of str
        A count (named ch000, ch001, ...) or the names.
    fs : float or sequence of float
        One sampling rate in Hz, or rates the channels cycle through (a mixed-rate session).
    seconds : float
        Duration.
    precision : int
        Decimals of µV kept.
    gaps : int or sequence of (float, float)
        A count of seeded random gaps (the first shorter than a second, then 1-30 s), or
        ``(start_s, duration_s)`` pairs from the start.
    mixed_rates : bool
        With one `fs`, give every other channel 4x the rate.
    stagger_s : float
        Channel i starts ``(i % 3) * stagger_s`` late and ends ``((i + 1) % 3) * stagger_s / 2``
        early (different start and end times).
    annotations : bool or sequence of dict
        True for a few session- and channel-level records, or mef3io-style dicts (``time``,
        ``type``, ``text``, ``duration``, optional ``channel``).
    password1, password2 : str, optional
        Level-1 and level-2 passwords (encrypt the session).
    seed : int
        The random seed: the same seed writes the same samples.
    start_uutc : int
        Start of the recording (µUTC).
    overwrite : bool
        Replace `path` if it exists.

    Returns
    -------
    pathlib.Path
        The session folder.

    Raises
    ------
    FileExistsError
        If `path` exists and `overwrite` is False.
    ValueError
        If `path` does not end in ``.mefd``, a level-2 password comes without a level-1
        one, or the arguments describe no valid recording (as `plan` says).

    Examples
    --------
    >>> import mef3lab
    >>> path = mef3lab.synthesize("demo.mefd", channels=4, seconds=60)  # doctest: +SKIP
    >>> mef3lab.open_reader(path).info.names  # doctest: +SKIP
    ('ch000', 'ch001', 'ch002', 'ch003')
    """
    import mef3io  # the writer, imported only when writing

    p = Path(path).expanduser()
    if p.suffix != ".mefd":
        raise ValueError(f"a MEF 3.0 session is a folder ending in .mefd, not {p.name!r}")
    if p.exists() and not overwrite:
        raise FileExistsError(f"{p} exists; pass overwrite=True (--overwrite) to replace it")
    if (password1 or "") == "" and password2:
        raise ValueError("a level-2 password needs a level-1 password too")
    spec = plan(
        channels,
        fs,
        seconds,
        precision,
        gaps,
        mixed_rates,
        stagger_s,
        annotations,
        seed,
        start_uutc,
    )
    with mef3io.Writer(
        str(p),
        overwrite=overwrite,
        password1=password1 or "",
        password2=password2 or "",
        units=spec.units,
    ) as w:
        for i, name in enumerate(spec.names):
            w.write(
                name, spec.signal(i), spec.starts_uutc[i], spec.rates[i], precision=spec.precision
            )
        by_level: dict[str | None, list[dict]] = {}
        for a in spec.annotations:
            rec = {k: v for k, v in a.items() if k != "channel"}
            by_level.setdefault(a.get("channel"), []).append(rec)
        for channel, recs in by_level.items():
            w.write_annotations(recs, channel=channel)
    return p


def _eeg(n: int, fs: float, rng: np.random.Generator) -> np.ndarray:
    """Pink background (1/f power) plus a modulated 10 Hz alpha rhythm, float64 µV."""
    white = rng.standard_normal(n, dtype=np.float32)
    spec = np.fft.rfft(white)
    f = np.arange(spec.size, dtype=np.float32)
    f[0] = np.inf  # no DC offset
    spec /= np.sqrt(f)
    pink = np.fft.irfft(spec, n).astype(np.float64)
    pink *= 15.0 / (pink.std() or 1.0)
    t = np.arange(n) / fs
    phase, mod_phase = rng.uniform(0, 2 * np.pi, 2)
    amp = 12.0 * (1.0 + 0.6 * np.sin(2 * np.pi * 0.07 * t + mod_phase))
    pink += amp * np.sin(2 * np.pi * ALPHA_HZ * t + phase)
    return pink


def _gaps(
    gaps, seconds: float, start_uutc: int, rng: np.random.Generator
) -> tuple[tuple[int, int], ...]:
    if isinstance(gaps, int):
        # One gap in each of `gaps` equal slots of the middle 90 %, so they never overlap.
        pairs = []
        slot = 0.9 * seconds / max(gaps, 1)
        for j in range(gaps):
            d = float(rng.uniform(0.1, 0.9)) if j == 0 else float(rng.uniform(1.0, 30.0))
            d = min(d, slot / 3)
            pairs.append((0.05 * seconds + j * slot + float(rng.uniform(0.1, 0.6)) * slot, d))
    else:
        pairs = [(float(a), float(d)) for a, d in gaps]
    out = []
    for a, d in sorted(pairs):
        g0, g1 = start_uutc + round(a * 1e6), start_uutc + round((a + d) * 1e6)
        if d <= 0 or a < 0 or a + d > seconds:
            raise ValueError(f"gap ({a} s, {d} s) must lie inside the recording of {seconds} s")
        if out and g0 < out[-1][1]:
            raise ValueError("gaps must not overlap")
        out.append((g0, g1))
    return tuple(out)


def _annotations(
    annotations, names: Sequence[str], seconds: float, start_uutc: int
) -> tuple[dict, ...]:
    if annotations is False or annotations is None:
        return ()
    if annotations is not True:
        return tuple(dict(a) for a in annotations)

    def at(frac: float) -> int:
        return start_uutc + round(frac * seconds * 1e6)

    return (
        {"time": at(0.0) + 1_000, "type": "Note", "text": "recording started"},
        {"time": at(0.3), "type": "EDFA", "duration": 2_500_000, "text": "eyes closed"},
        {"time": at(0.6), "type": "Note", "text": "patient moved"},
        {
            "time": at(0.45),
            "type": "Note",
            "text": f"electrode check {names[0]}",
            "channel": names[0],
        },
    )
