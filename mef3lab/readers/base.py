"""The one reader interface every engine implements, and the sample-grid rules they share.

Why a grid of our own: MEF stores blocks with their own start times, and an engine
places a window's samples relative to the window's start. If every read is issued on
one grid per sampling rate (sample k of rate fs lies at ``grid.start_uutc + k * 1e6 / fs``,
anchored at the earliest channel of that rate), the same sample always lands at the same
index, whoever asks, for whatever channel subset and window. Segments of a server, dask
chunks and direct reads then agree sample for sample.

Engines implement three small hooks (`_open`, `_read_float`, `_read_counts`, plus
`_block_envelope`); everything that must be identical across engines (validation,
grids, rate groups, error detection, NaN handling) lives here, once.
"""

from __future__ import annotations

import math
import os
from abc import ABC, abstractmethod
from bisect import bisect_right
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from ..errors import (
    CorruptDataError,
    FactorChangeError,
    MixedRatesError,
    NotAMefSessionError,
    RecordingNotFoundError,
    TimeRangeError,
    UnknownChannelError,
)

#: The int32 value that marks "no sample here" in raw (count) reads: meflib's RED_NAN.
RAW_NAN = np.int32(-(2**31))

#: Values in channel units (what `Reader.read` returns).
DTYPES = {"float32": np.float32, "float64": np.float64}
#: Everything samples travel as: values, or the stored int32 counts (`Reader.read_raw`).
SAMPLE_TYPES = {**DTYPES, "int32": np.int32}


@dataclass(frozen=True)
class ChannelInfo:
    """What a scientist needs to know about one channel before reading it."""

    name: str
    fs: float
    start_uutc: int
    end_uutc: int
    n_samples: int  # samples stored (gaps not counted)
    units: str
    conversion_factor: float  # physical units per stored count


@dataclass(frozen=True)
class Span:
    """A contiguous run of recorded data, ``[start_uutc, end_uutc)``."""

    start_uutc: int
    end_uutc: int


@dataclass(frozen=True)
class Annotation:
    """One MEF record (annotation), at session level (`channel` None) or channel level."""

    time_uutc: int
    type: str
    text: str
    duration_us: int | None = None
    channel: str | None = None


@dataclass(frozen=True)
class Grid:
    """The regular sample grid of one sampling rate: sample k lies at start + k * 1e6 / fs µs."""

    fs: float
    start_uutc: int
    n_samples: int

    @property
    def period_us(self) -> float:
        return 1e6 / self.fs

    @property
    def end_uutc(self) -> int:
        """Time just past the last sample of the grid."""
        return self.uutc_of(self.n_samples)

    def time_of(self, k: int | np.ndarray) -> float | np.ndarray:
        """Exact (fractional) µUTC of sample k."""
        return self.start_uutc + np.asarray(k, dtype=np.float64) * self.period_us

    def uutc_of(self, k: int) -> int:
        """µUTC of sample k, rounded to the microsecond (MEF's time resolution)."""
        return int(round(self.start_uutc + k * self.period_us))

    def index_at(self, t_uutc: float) -> int:
        """Index of the first sample at or after time t (half-open windows include their start)."""
        # The tolerance absorbs the microsecond rounding of uutc_of: index_at(uutc_of(k)) == k.
        return math.ceil((t_uutc - self.start_uutc) * self.fs / 1e6 - 1e-3)

    def indices(self, start_uutc: float, end_uutc: float) -> tuple[int, int]:
        """Half-open sample index range of the window ``[start_uutc, end_uutc)``."""
        return self.index_at(start_uutc), self.index_at(end_uutc)

    def window(self, start_uutc: float, end_uutc: float, what: str = "these channels") -> tuple[int, int]:
        """`indices` of a window a user asked for: an inverted one, or one wholly outside the grid, is refused."""
        if end_uutc <= start_uutc:
            raise TimeRangeError(_inverted(start_uutc, end_uutc))
        if end_uutc <= self.start_uutc or start_uutc >= self.end_uutc:
            raise TimeRangeError(
                f"the window [{int(start_uutc)}, {int(end_uutc)}) µUTC lies wholly outside the recording "
                f"[{self.start_uutc}, {self.end_uutc}) of {what}"
            )
        return self.indices(start_uutc, end_uutc)


@dataclass(frozen=True)
class FactorRuns:
    """A channel's conversion factor along its grid: ``factors[i]`` from sample ``starts[i]`` on.

    Why runs: MEF stores a factor per segment (a gain change mid-recording starts a new one),
    and values are each count times the factor of the segment it was stored in. Nearly every
    channel has one run; samples before ``starts[0]`` (outside the channel) take the first."""

    starts: tuple[int, ...]
    factors: tuple[float, ...]

    @classmethod
    def single(cls, factor: float) -> "FactorRuns":
        return cls((0,), (factor,))

    def pieces(self, a: int, b: int) -> Iterator[tuple[int, int, float]]:
        """The sub-ranges ``[lo, hi)`` of ``[a, b)`` with the factor of each (none when empty)."""
        if len(self.factors) == 1:
            if b > a:
                yield a, b, self.factors[0]
            return
        i = max(bisect_right(self.starts, a) - 1, 0)
        while a < b:
            hi = min(b, self.starts[i + 1]) if i + 1 < len(self.starts) else b
            yield a, hi, self.factors[i]
            a, i = hi, i + 1

    def window(self, k0: int, k1: int) -> "FactorRuns":
        """The runs of samples ``[k0, k1)``, indexed from k0 (one run when nothing changes there)."""
        parts = list(self.pieces(k0, k1)) or [(k0, k1, self.factors[max(bisect_right(self.starts, k0) - 1, 0)])]
        return FactorRuns(tuple(lo - k0 for lo, _, _ in parts), tuple(f for _, _, f in parts))


@dataclass(frozen=True)
class RateGroup:
    """Channels that share one sampling rate, hence one grid."""

    fs: float
    channels: tuple[str, ...]
    grid: Grid


@dataclass(frozen=True)
class SessionInfo:
    """Everything known about a recording without decoding samples."""

    path: str
    channels: tuple[ChannelInfo, ...]
    spans: dict[str, tuple[Span, ...]] = field(repr=False)
    annotations: tuple[Annotation, ...] = ()
    encrypted: bool = False
    #: Channels left out because their files are damaged: name -> why (reading one says so).
    damaged: dict[str, str] = field(default_factory=dict, compare=False)
    #: Channels whose MEF segments store different conversion factors: name -> ((µUTC of the
    #: first sample stored with a factor, that factor), ...), first segment first. Their
    #: ChannelInfo.conversion_factor is the first segment's; `factor_runs` places the rest.
    factor_changes: dict[str, tuple[tuple[int, float], ...]] = field(default_factory=dict, compare=False)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.channels)

    @property
    def start_uutc(self) -> int:
        return min(c.start_uutc for c in self.channels)

    @property
    def end_uutc(self) -> int:
        return max(c.end_uutc for c in self.channels)

    @property
    def duration_s(self) -> float:
        return (self.end_uutc - self.start_uutc) / 1e6

    @cached_property
    def _by_name(self) -> dict[str, ChannelInfo]:
        return {c.name: c for c in self.channels}

    def channel(self, name: str) -> ChannelInfo:
        found = self._by_name.get(name)
        if found is not None:
            return found
        if name in self.damaged:
            raise CorruptDataError(f"{self.path}: channel {name!r} is damaged and cannot be read "
                                   f"({self.damaged[name]}); the other channels read normally")
        raise UnknownChannelError(
            f"no channel {name!r} in {self.path}; it has {len(self.channels)} channels: "
            f"{_short_list(self.names)}"
        )

    def check_channels(self, names: Iterable[str] | None) -> tuple[str, ...]:
        """The requested channel names (all when None), validated, in the caller's order."""
        if names is None:
            return self.names
        if isinstance(names, str):
            names = [names]
        names = tuple(names)
        if not names:
            raise UnknownChannelError("no channels were asked for")
        for n in names:
            self.channel(n)
        return names

    @cached_property  # every read asks; the description never changes
    def rate_groups(self) -> tuple[RateGroup, ...]:
        """One group per sampling rate, fastest first; each with the grid all its channels share."""
        by_fs: dict[float, list[ChannelInfo]] = {}
        for c in self.channels:
            by_fs.setdefault(c.fs, []).append(c)
        groups = []
        for fs in sorted(by_fs, reverse=True):
            chans = by_fs[fs]
            start = min(c.start_uutc for c in chans)
            end = max(c.end_uutc for c in chans)
            n = math.ceil((end - start) * fs / 1e6 - 1e-3)
            groups.append(RateGroup(fs, tuple(c.name for c in chans), Grid(fs, start, n)))
        return tuple(groups)

    def group_of(self, names: Sequence[str]) -> RateGroup:
        """The rate group of `names`; MixedRatesError naming the groups when they differ."""
        rates = {self.channel(n).fs for n in names}
        if len(rates) > 1:
            parts = "; ".join(
                f"{g.fs:g} Hz: {_short_list([n for n in names if n in g.channels])}"
                for g in self.rate_groups
                if g.fs in rates
            )
            raise MixedRatesError(
                f"the channels asked for have {len(rates)} different sampling rates ({parts}); "
                "read each rate group separately (Reader.read_groups does this)"
            )
        fs = rates.pop()
        return next(g for g in self.rate_groups if g.fs == fs)

    def factor_runs(self, name: str) -> FactorRuns:
        """`name`'s conversion factors on its rate group's grid. A segment's first sample lands
        at the grid index nearest its time (half a period decides), as the engines place blocks."""
        c = self.channel(name)
        changes = self.factor_changes.get(name)
        if not changes:
            return FactorRuns.single(c.conversion_factor)
        grid = self.group_of([name]).grid
        starts = tuple(math.ceil((t - grid.start_uutc) * grid.fs / 1e6 - 0.5) for t, _ in changes)
        return FactorRuns(starts, tuple(f for _, f in changes))

    def factors_at(self, name: str, times_uutc: np.ndarray) -> np.ndarray:
        """`name`'s conversion factor at each of `times_uutc` (e.g. its blocks' starts)."""
        changes = self.factor_changes.get(name) or ((0, self.channel(name).conversion_factor),)
        at = np.searchsorted(np.array([t for t, _ in changes], np.int64), times_uutc, "right") - 1
        return np.array([f for _, f in changes], np.float64)[np.maximum(at, 0)]

    def check_one_factor(self, names: Iterable[str]) -> None:
        """Raise FactorChangeError for any of `names` that one conversion factor cannot describe."""
        for n in names:
            changes = self.factor_changes.get(n)
            if changes:
                shown = ", ".join(f"{f:g}" for _, f in changes)
                raise FactorChangeError(
                    f"{self.path}: channel {n!r} stores different conversion factors in its MEF segments "
                    f"({shown} units per count), so its counts cannot be given with one factor; "
                    "read it as float32 or float64 (each sample scaled by its own segment's factor)")

    def gaps(self, name: str) -> tuple[Span, ...]:
        """The holes between a channel's contiguous spans (data missing there)."""
        spans = self.spans[self.channel(name).name]
        return tuple(
            Span(a.end_uutc, b.start_uutc) for a, b in zip(spans, spans[1:]) if b.start_uutc > a.end_uutc
        )


@dataclass(frozen=True)
class RawSamples:
    """Stored counts for transport: ``counts * factor`` are the values, RAW_NAN marks gaps.

    `factors` holds each row's factor at the window's first sample; a row whose factor changes
    within the window (its MEF segments store different ones) is in `changes` too, with its
    runs indexed from the window's start."""

    counts: np.ndarray  # int32, (n_channels, n_samples)
    factors: np.ndarray  # float64, (n_channels,)
    changes: dict[int, FactorRuns] = field(default_factory=dict)

    def to_float(self, dtype: str = "float32") -> np.ndarray:
        """The physical values, computed exactly as the float read computes them."""
        out = self.counts.astype(np.float64)
        for i, f in enumerate(self.factors):
            runs = self.changes.get(i, FactorRuns.single(f))
            for a, b, factor in runs.pieces(0, out.shape[1]):
                out[i, a:b] *= factor
        out[self.counts == RAW_NAN] = np.nan
        return out.astype(DTYPES[dtype], copy=False)


def check_session_path(path: str | os.PathLike) -> Path:
    """The session folder, or the error a person understands when it is not one."""
    p = Path(path).expanduser()
    if not p.exists():
        raise RecordingNotFoundError(f"no such file or folder: {p}")
    if not p.is_dir() or p.suffix != ".mefd":
        raise NotAMefSessionError(f"{p} is not a MEF 3.0 session (expected a folder ending in .mefd)")
    if not any(c.suffix == ".timd" for c in p.iterdir()):
        raise NotAMefSessionError(f"{p} is a .mefd folder without any time-series channel (.timd)")
    return p


class Reader(ABC):
    """An open MEF 3.0 recording. Engines subclass this; callers use only what is defined here.

    Thread safety is per engine (`thread_safe`): pymef keeps global state, so its reads
    never share a process's threads; the server reads in a pool of processes either way.
    """

    engine: str = ""
    #: True when reads may run from several threads at once (the engine keeps no global
    #: state and releases the GIL); False (pymef) makes every caller take turns.
    thread_safe: bool = False

    def __init__(self, path: str | os.PathLike, password: str | None = None, threads: int = 0) -> None:
        """threads: how many threads one read may decode on (0: one per core). Engines that
        hold the GIL ignore it; the server's reader processes use 1 each."""
        if threads < 0:
            raise ValueError(f"threads must be >= 0 (0 = one per core), not {threads}")
        self.path = check_session_path(path)
        self.password = password or ""
        self.threads = threads or os.cpu_count() or 1
        self.info: SessionInfo = self._open()

    # -- engine hooks -------------------------------------------------------------------
    @abstractmethod
    def _open(self) -> SessionInfo:
        """Open the session and describe it; raise mef3lab errors for bad passwords etc."""

    @abstractmethod
    def _read_float(self, names: Sequence[str], t0: int, t1: int, out: np.ndarray) -> None:
        """Fill `out` (len(names), n) with values in channel units, NaN in gaps, for ``[t0, t1)``.

        Decoding straight into `out` (a shared-memory block, in the server) saves a copy of
        every sample; an engine that returns fewer samples than asked raises CorruptDataError."""

    @abstractmethod
    def _read_counts(self, names: Sequence[str], t0: int, t1: int, n: int) -> np.ndarray:
        """Stored counts, int32 (len(names), n), RAW_NAN in gaps, for ``[t0, t1)``."""

    @abstractmethod
    def _block_envelope(self, name: str, t0: int | None, t1: int | None) -> dict[str, np.ndarray]:
        """Per-block ``start_uutc``, ``end_uutc``, ``min``, ``max`` (channel units) overlapping the window."""

    def close(self) -> None:
        """Release files and engine state. Idempotent."""

    # -- public API ---------------------------------------------------------------------
    def __enter__(self) -> "Reader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(
        self,
        channels: Sequence[str] | str | None = None,
        start_uutc: float | None = None,
        end_uutc: float | None = None,
        dtype: str = "float32",
    ) -> np.ndarray:
        """Samples of `channels` (one rate) in ``[start_uutc, end_uutc)``: (n_channels, n_samples), NaN in gaps."""
        names, group, k0, k1 = self._window(channels, start_uutc, end_uutc)
        return self.read_index(names, k0, k1, dtype)

    def read_groups(
        self,
        channels: Sequence[str] | str | None = None,
        start_uutc: float | None = None,
        end_uutc: float | None = None,
        dtype: str = "float32",
    ) -> dict[float, tuple[tuple[str, ...], np.ndarray]]:
        """Like `read`, for channels of any rates: ``{fs: (names, array)}``, one entry per rate group."""
        names = self.info.check_channels(channels)
        out = {}
        for g in self.info.rate_groups:
            mine = tuple(n for n in names if n in g.channels)
            if mine:
                out[g.fs] = (mine, self.read(mine, start_uutc, end_uutc, dtype))
        return out

    def read_index(
        self,
        channels: Sequence[str] | str | None,
        k0: int,
        k1: int,
        dtype: str = "float32",
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """Samples ``[k0, k1)`` of the channels' rate-group grid (indices may lie outside the recording: NaN).

        `out`, when given, receives the result (e.g. a shared-memory buffer) and is returned.
        """
        names = self.info.check_channels(channels)
        group = self.info.group_of(names)
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, not {dtype!r}")
        if k1 < k0:
            raise TimeRangeError(f"sample range [{k0}, {k1}) ends before it starts")
        n = k1 - k0
        data = np.empty((len(names), n), DTYPES[dtype]) if out is None else out
        if n:
            t0, t1 = group.grid.uutc_of(k0), group.grid.uutc_of(k1)
            self._read_float(names, t0, t1, data)
            self._verify(names, data, n, t0, t1, lambda row: np.isnan(row).all())
        return data

    def read_raw(self, channels: Sequence[str] | str | None, k0: int, k1: int) -> RawSamples:
        """Stored int32 counts ``[k0, k1)`` plus each channel's conversion factor (compact
        transport), and where a channel's factor changes within the window (`RawSamples`)."""
        names = self.info.check_channels(channels)
        group = self.info.group_of(names)
        if k1 < k0:
            raise TimeRangeError(f"sample range [{k0}, {k1}) ends before it starts")
        n = k1 - k0
        runs = [self.info.factor_runs(c).window(k0, k1) for c in names]
        factors = np.array([r.factors[0] for r in runs], np.float64)
        changes = {i: r for i, r in enumerate(runs) if len(r.factors) > 1}
        if n == 0:
            return RawSamples(np.empty((len(names), 0), np.int32), factors)
        t0, t1 = group.grid.uutc_of(k0), group.grid.uutc_of(k1)
        counts = self._read_counts(names, t0, t1, n)
        self._verify(names, counts, n, t0, t1, lambda row: (row == RAW_NAN).all())
        return RawSamples(counts, factors, changes)

    def block_envelope(
        self, channel: str, start_uutc: int | None = None, end_uutc: int | None = None
    ) -> dict[str, np.ndarray]:
        """Min/max of every stored block overlapping the window, from the index (nothing decoded)."""
        self.info.channel(channel)
        if start_uutc is not None and end_uutc is not None and end_uutc <= start_uutc:
            raise TimeRangeError(_inverted(start_uutc, end_uutc))
        return self._block_envelope(channel, start_uutc, end_uutc)

    # -- shared checks ------------------------------------------------------------------
    def _window(
        self, channels: Sequence[str] | str | None, start_uutc: float | None, end_uutc: float | None
    ) -> tuple[tuple[str, ...], RateGroup, int, int]:
        names = self.info.check_channels(channels)
        group = self.info.group_of(names)
        g = group.grid
        k0, k1 = g.window(g.start_uutc if start_uutc is None else start_uutc,
                          g.end_uutc if end_uutc is None else end_uutc)
        return names, group, k0, k1

    def _verify(self, names, data: np.ndarray, n: int, t0: int, t1: int, empty) -> None:
        """Raise CorruptDataError where the engine returned less than the index promises.

        pymef returns short or all-NaN arrays on some damaged files instead of raising;
        a silent NaN row would be indistinguishable from a real gap, so it is refused.
        """
        if data.shape != (len(names), n):
            raise CorruptDataError(
                f"{self.path}: the {self.engine} engine returned {data.shape[-1] if data.ndim else 0} "
                f"samples for {n} requested in [{t0}, {t1}); the recording may be damaged"
            )
        for i, name in enumerate(names):
            if empty(data[i]) and self._has_data(name, t0, t1):
                raise CorruptDataError(
                    f"{self.path}: channel {name!r} returned no data in [{t0}, {t1}) although its index "
                    "lists recorded samples there; the files may be damaged"
                )

    def _has_data(self, name: str, t0: int, t1: int) -> bool:
        period = 1e6 / self.info.channel(name).fs
        return any(min(s.end_uutc, t1) - max(s.start_uutc, t0) >= period for s in self.info.spans[name])


def run_starts(
    starts_uutc: Sequence[int], n_samples: Sequence[int], discontinuity: Sequence[bool], fs: float
) -> np.ndarray:
    """Which blocks of a table of contents start a contiguous run (bool per block): those
    flagged discontinuous, and those starting more than a sample period after the previous
    block's end (ends rounded to the microsecond, as MEF stores times)."""
    t = np.asarray(starts_uutc, np.int64)
    period = 1e6 / fs
    end = np.round(t + np.asarray(n_samples, np.int64) * period)
    new = np.asarray(discontinuity, bool).copy()
    if t.size:
        new[0] = True
        new[1:] |= t[1:] > end[:-1] + period
    return new


def spans_from_toc(
    starts_uutc: Sequence[int], n_samples: Sequence[int], discontinuity: Sequence[bool], fs: float
) -> tuple[Span, ...]:
    """Contiguous spans from a block table of contents (what both engines expose); a span
    ends where its last block ends."""
    t = np.asarray(starts_uutc, np.int64)
    if t.size == 0:
        return ()
    end = np.round(t + np.asarray(n_samples, np.int64) * (1e6 / fs)).astype(np.int64)
    first = np.flatnonzero(run_starts(t, n_samples, discontinuity, fs))
    last = np.append(first[1:] - 1, t.size - 1)
    return tuple(Span(int(a), int(b)) for a, b in zip(t[first], end[last]))


def _inverted(t0: float, t1: float) -> str:
    return f"the time range ends before it starts (start {int(t0)} µUTC, end {int(t1)} µUTC)"


def _short_list(names: Sequence[str], most: int = 8) -> str:
    shown = ", ".join(map(repr, list(names)[:most]))
    return shown + (f", … ({len(names) - most} more)" if len(names) > most else "")
