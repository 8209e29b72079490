"""The one reader interface every engine implements (`Reader`), and opening checks.

Engines implement three small hooks (`_open`, `_read_float`, `_read_counts`, plus
`_block_envelope`); everything that must be identical across engines (validation,
grids, rate groups, error detection, NaN handling) lives here and in `session.py`, once.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import CorruptDataError, NotAMefSessionError, RecordingNotFoundError, TimeRangeError
from ..model import DTYPES, RAW_NAN, RateGroup, RawSamples, SessionInfo, inverted_range


def check_session_path(path: str | os.PathLike) -> Path:
    """The session folder, or the error a person understands when it is not one."""
    p = Path(path).expanduser()
    if not p.exists():
        raise RecordingNotFoundError(f"no such file or folder: {p}")
    if not p.is_dir() or p.suffix != ".mefd":
        raise NotAMefSessionError(
            f"{p} is not a MEF 3.0 session (expected a folder ending in .mefd)"
        )
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

    def __init__(
        self, path: str | os.PathLike, password: str | None = None, threads: int = 0
    ) -> None:
        """threads: how many threads one read may decode on (0: one per core). Engines that
        hold the GIL ignore it; the server's reader processes use 1 each.
        """
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
        every sample; an engine that returns fewer samples than asked raises CorruptDataError.
        """

    @abstractmethod
    def _read_counts(self, names: Sequence[str], t0: int, t1: int, out: np.ndarray) -> None:
        """Fill `out` (len(names), n) int32 with the stored counts, RAW_NAN in gaps, for ``[t0, t1)``.

        Into `out` for the same reason as `_read_float`: the server's segment store reads
        counts, and a fresh array copied into the shared block cost every cold segment.
        """

    @abstractmethod
    def _block_envelope(self, name: str, t0: int | None, t1: int | None) -> dict[str, np.ndarray]:
        """Per-block ``start_uutc``, ``end_uutc``, ``min``, ``max`` (channel units) overlapping the window."""

    def close(self) -> None:
        """Release files and engine state. Idempotent."""

    # -- public API ---------------------------------------------------------------------
    def __enter__(self) -> Reader:
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

    def read_raw(
        self,
        channels: Sequence[str] | str | None,
        k0: int,
        k1: int,
        out: np.ndarray | None = None,
    ) -> RawSamples:
        """Stored int32 counts ``[k0, k1)`` plus each channel's conversion factor (compact
        transport), and where a channel's factor changes within the window (`RawSamples`).
        `out`, when given (int32, channels × samples), receives the counts.
        """
        names = self.info.check_channels(channels)
        group = self.info.group_of(names)
        if k1 < k0:
            raise TimeRangeError(f"sample range [{k0}, {k1}) ends before it starts")
        n = k1 - k0
        runs = [self.info.factor_runs(c).window(k0, k1) for c in names]
        factors = np.array([r.factors[0] for r in runs], np.float64)
        changes = {i: r for i, r in enumerate(runs) if len(r.factors) > 1}
        counts = np.empty((len(names), n), np.int32) if out is None else out
        if n == 0:
            return RawSamples(counts, factors)
        t0, t1 = group.grid.uutc_of(k0), group.grid.uutc_of(k1)
        self._read_counts(names, t0, t1, counts)
        self._verify(names, counts, n, t0, t1, lambda row: (row == RAW_NAN).all())
        return RawSamples(counts, factors, changes)

    def block_envelope(
        self, channel: str, start_uutc: int | None = None, end_uutc: int | None = None
    ) -> dict[str, np.ndarray]:
        """Min/max of every stored block overlapping the window, from the index (nothing decoded)."""
        self.info.channel(channel)
        if start_uutc is not None and end_uutc is not None and end_uutc <= start_uutc:
            raise TimeRangeError(inverted_range(start_uutc, end_uutc))
        return self._block_envelope(channel, start_uutc, end_uutc)

    # -- shared checks ------------------------------------------------------------------
    def _window(
        self, channels: Sequence[str] | str | None, start_uutc: float | None, end_uutc: float | None
    ) -> tuple[tuple[str, ...], RateGroup, int, int]:
        names = self.info.check_channels(channels)
        group = self.info.group_of(names)
        g = group.grid
        k0, k1 = g.window(
            g.start_uutc if start_uutc is None else start_uutc,
            g.end_uutc if end_uutc is None else end_uutc,
        )
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
        return any(
            min(s.end_uutc, t1) - max(s.start_uutc, t0) >= period for s in self.info.spans[name]
        )
