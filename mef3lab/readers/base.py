"""The one reader interface every engine implements (`Reader`), and the checks at opening.

Engines implement four small hooks (`_open`, `_read_float`, `_read_counts`,
`_block_envelope`); everything that must be identical across engines (validation, grids,
rate groups, error detection, NaN handling) lives here and in `mef3lab.model`, once.
What one reader parsed at opening can open another reader of the same files without
parsing them again (`ReaderMetadata`; two more hooks, `_share` and `_adopt`).
"""

from __future__ import annotations

import hashlib
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CorruptDataError, NotAMefSessionError, RecordingNotFoundError, TimeRangeError
from ..model import DTYPES, RAW_NAN, RateGroup, RawSamples, SessionInfo, inverted_range
from .changes import FileState, fingerprint


def check_session_path(path: str | os.PathLike) -> Path:
    """The session folder `path` names, checked.

    Returns
    -------
    pathlib.Path
        The folder, ``~`` expanded.

    Raises
    ------
    RecordingNotFoundError
        If nothing is at `path`.
    NotAMefSessionError
        If it is not a ``.mefd`` folder with a time-series channel.
    """
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


@dataclass(frozen=True)
class ReaderMetadata:
    """What a reader parsed when it opened a recording: enough to open it again without that.

    Made by `Reader.metadata`, picklable, and taken by `open_reader(..., metadata=...)`,
    which uses it only for the same engine, recording, password and files, unchanged since
    (their `fingerprint`); otherwise the reader parses the files itself.

    Parameters
    ----------
    engine : str
        The engine that parsed it (a key of `ENGINES`).
    path : str
        The session folder.
    access : str
        A digest of the password it was opened with: a level-1 opening never lends its
        metadata to a level-2 one, nor the reverse.
    files : tuple of FileState
        The session's `fingerprint`, taken before its files were parsed.
    info : SessionInfo
        The recording as the reader saw it (damaged channels included).
    state : dict
        The engine's own (block tables, rate changes...).
    """

    engine: str
    path: str
    access: str
    files: tuple[FileState, ...]
    info: SessionInfo
    state: dict[str, Any]

    def fits(self, engine: str, path: Path, password: str, files: tuple[FileState, ...]) -> bool:
        """Whether a reader of `engine` opening `path` with `password` may use it now."""
        return (
            self.engine == engine
            and self.path == str(path)
            and self.access == password_digest(password)
            and self.files == files
        )


def password_digest(password: str) -> str:
    """A digest of a password: tells openings apart without keeping the password."""
    return hashlib.sha256(password.encode("utf-8")).hexdigest()


class Reader(ABC):
    """An open MEF 3.0 recording, read with one engine (made by `open_reader`).

    Engines subclass this; callers use only what is defined here. Times are µUTC
    (microseconds since the epoch); a read returns one row per channel, on the sample grid
    of the channels' sampling rate (`SessionInfo.rate_groups`), NaN (or `RAW_NAN`) in gaps.

    Parameters
    ----------
    path : str or os.PathLike
        The session folder (``.mefd``).
    password : str, optional
        The password of an encrypted session.
    threads : int
        How many threads one read may decode on (0: one per core). Engines that hold the
        GIL ignore it; the server's reader processes use 1 each.
    metadata : ReaderMetadata, optional
        What another reader of this engine parsed when it opened the same recording with
        the same password: used instead of parsing the files again when they are unchanged
        since (`ReaderMetadata.fits`), ignored otherwise.

    Attributes
    ----------
    engine : str
        The engine's name (a key of `ENGINES`).
    thread_safe : bool
        True when reads may run from several threads at once (the engine keeps no global
        state and releases the GIL); False (pymef) makes every caller take turns.
    path : pathlib.Path
        The session folder.
    info : SessionInfo
        Everything known about the recording without decoding samples.
    adopted : bool
        True when it was opened from another reader's `metadata`, False when it parsed
        the files itself.

    Raises
    ------
    RecordingNotFoundError, NotAMefSessionError, PasswordError, CorruptDataError
        As `open_reader` says.
    ValueError
        If `threads` is negative.
    """

    engine: str = ""
    thread_safe: bool = False

    def __init__(
        self,
        path: str | os.PathLike,
        password: str | None = None,
        threads: int = 0,
        metadata: ReaderMetadata | None = None,
    ) -> None:
        if threads < 0:
            raise ValueError(f"threads must be >= 0 (0 = one per core), not {threads}")
        self.path = check_session_path(path)
        self.password = password or ""
        self.threads = threads or os.cpu_count() or 1
        # Before the files are parsed: a write landing meanwhile makes the metadata not fit.
        self._files = fingerprint(self.path)
        self.adopted = metadata is not None and metadata.fits(
            self.engine, self.path, self.password, self._files
        )
        if self.adopted:
            self.info: SessionInfo = metadata.info
            self._adopt(metadata.state)
        else:
            self.info = self._open()

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
        """Fill `out` (len(names), n) int32 with stored counts, RAW_NAN in gaps, for ``[t0, t1)``.

        Into `out` for the same reason as `_read_float`: the server's segment store reads
        counts, and a fresh array copied into the shared block cost every cold segment.
        """

    @abstractmethod
    def _block_envelope(self, name: str, t0: int | None, t1: int | None) -> dict[str, np.ndarray]:
        """Each block's ``start_uutc``, ``end_uutc``, ``min`` and ``max`` in the window."""

    def _block_table(self, name: str) -> tuple[np.ndarray, np.ndarray] | None:
        """Each block's first-sample µUTC and sample count, in time order; None: unknown.

        Engines that know their block index override it, so that `block_bounds` can cut a
        read between blocks; without it a read is never cut.
        """
        return None

    def _share(self) -> dict[str, Any] | None:
        """What `_adopt` needs beside `info`, picklable; None: this engine does not share."""
        return None

    def _adopt(self, state: dict[str, Any]) -> None:
        """Open from `info` (already set) and another reader's `_share`, parsing no metadata."""
        raise NotImplementedError(f"the {self.engine} engine does not open from metadata")

    def resume_from(self, stops: Sequence[tuple]) -> None:  # noqa: B027 - most cannot
        """Go on from where another reader's decoder stopped inside blocks.

        Parameters
        ----------
        stops : sequence of tuple
            What `stops_left` gave another reader of the same recording. Engines that
            cannot resume a block ignore them.
        """

    @contextmanager
    def stops_left(self) -> Iterator[list[tuple]]:
        """Where reads on this thread stop inside blocks at their windows' ends, meanwhile.

        The next read of those channels, here or by a reader given them (`resume_from`),
        goes on from there instead of decoding the blocks from their start again.

        Yields
        ------
        list of tuple
            Filled as reads end; empty for engines that cannot resume a block.
        """
        yield []

    def close(self) -> None:  # noqa: B027 - engines without state to release keep this one
        """Release files and engine state. Idempotent."""

    def metadata(self) -> ReaderMetadata | None:
        """What this reader parsed at opening, for other readers of the same recording.

        Returns
        -------
        ReaderMetadata or None
            None for an engine that cannot open from metadata.

        Examples
        --------
        >>> import mef3lab
        >>> first = mef3lab.open_reader("demo.mefd")  # doctest: +SKIP
        >>> other = mef3lab.open_reader("demo.mefd", metadata=first.metadata())  # doctest: +SKIP
        >>> other.adopted  # doctest: +SKIP
        True
        """
        state = self._share()
        if state is None:
            return None
        return ReaderMetadata(
            self.engine,
            str(self.path),
            password_digest(self.password),
            self._files,
            self.info,
            state,
        )

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
        """Samples of channels of one sampling rate in ``[start_uutc, end_uutc)``.

        Parameters
        ----------
        channels : sequence of str, str or None
            Channel names (None: all; they must share one sampling rate).
        start_uutc, end_uutc : float, optional
            The window in µUTC (None: from the start, to the end of the channels' grid).
        dtype : {"float32", "float64"}
            The type of the values.

        Returns
        -------
        numpy.ndarray
            (n_channels, n_samples) values in channel units, NaN in gaps: the samples of the
            channels' grid at or after `start_uutc` and before `end_uutc`.

        Raises
        ------
        UnknownChannelError
            If a channel is unknown.
        MixedRatesError
            If the channels have different sampling rates (see `read_groups`).
        TimeRangeError
            If the window is empty, inverted, or wholly outside the channels' recording.
        RateChangeError
            If a channel changes sampling rate between MEF segments.
        CorruptDataError
            If the files are damaged where the window lies (or the channel is).
        """
        names, group, k0, k1 = self._window(channels, start_uutc, end_uutc)
        return self.read_index(names, k0, k1, dtype)

    def read_groups(
        self,
        channels: Sequence[str] | str | None = None,
        start_uutc: float | None = None,
        end_uutc: float | None = None,
        dtype: str = "float32",
    ) -> dict[float, tuple[tuple[str, ...], np.ndarray]]:
        """Like `read`, for channels of any sampling rates: one read per rate group.

        Returns
        -------
        dict of float to (tuple of str, numpy.ndarray)
            ``{fs: (names, array)}``, fastest rate first.
        """
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
        """Samples ``[k0, k1)`` of the channels' rate-group grid.

        Parameters
        ----------
        channels : sequence of str, str or None
            Channel names of one sampling rate (None: all).
        k0, k1 : int
            Sample indices on the grid (`RateGroup.grid`); they may lie outside the recording,
            whose samples there are NaN.
        dtype : {"float32", "float64"}
            The type of the values.
        out : numpy.ndarray, optional
            (n_channels, k1 - k0) of `dtype`, to receive the result (e.g. a shared-memory block).

        Returns
        -------
        numpy.ndarray
            (n_channels, k1 - k0) values in channel units, NaN in gaps; `out` if given.

        Raises
        ------
        TimeRangeError
            If ``k1 < k0``.
        ValueError
            If `dtype` is not a float type.
        UnknownChannelError, MixedRatesError, RateChangeError, CorruptDataError
            As `read` says.
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
        """Stored int32 counts ``[k0, k1)`` of the grid, with the factors that make them values.

        Half the bytes of float64 and exact: the compact way to move samples.

        Parameters
        ----------
        channels : sequence of str, str or None
            Channel names of one sampling rate (None: all).
        k0, k1 : int
            Sample indices on the channels' grid, as in `read_index`.
        out : numpy.ndarray, optional
            int32 (n_channels, k1 - k0), to receive the counts.

        Returns
        -------
        RawSamples
            The counts (`RAW_NAN` in gaps), each channel's conversion factor, and where a
            channel's factor changes within the window.

        Raises
        ------
        TimeRangeError
            If ``k1 < k0``.
        UnknownChannelError, MixedRatesError, RateChangeError, CorruptDataError
            As `read` says.
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
        """Min and max of every stored block in the window, from the index (nothing decoded).

        Parameters
        ----------
        channel : str
            A channel name.
        start_uutc, end_uutc : int, optional
            The window in µUTC (None: from the channel's start, to its end).

        Returns
        -------
        dict of str to numpy.ndarray
            Per block overlapping the window: ``start_uutc``, ``end_uutc``, ``min`` and ``max``
            (in channel units).

        Raises
        ------
        UnknownChannelError
            If the channel is unknown.
        TimeRangeError
            If the window is inverted.
        """
        self.info.channel(channel)
        if start_uutc is not None and end_uutc is not None and end_uutc <= start_uutc:
            raise TimeRangeError(inverted_range(start_uutc, end_uutc))
        return self._block_envelope(channel, start_uutc, end_uutc)

    def block_bounds(self, channels: Sequence[str] | str | None, k0: int, k1: int) -> np.ndarray:
        """Grid indices in ``[k0, k1]`` at which a read of the channels cuts no block.

        Reads ``[k0, c)`` and ``[c, k1)`` at such a `c` decode each block once between them,
        as one read of ``[k0, k1)`` does: where a read may be split to answer part of it
        first.

        Parameters
        ----------
        channels : sequence of str, str or None
            Channel names of one sampling rate (None: all).
        k0, k1 : int
            Grid samples, ``k0 <= k1``.

        Returns
        -------
        numpy.ndarray
            int64, sorted, always holding `k0` and `k1`; nothing between them for an engine
            that does not know its blocks, or for a channel that changes rate.

        Raises
        ------
        UnknownChannelError, MixedRatesError
            As `read` says.
        """
        names = self.info.check_channels(channels)
        grid = self.info.group_of(names).grid
        tables = [self._block_table(n) for n in names]
        if any(t is None for t in tables):
            return np.array([k0, k1], np.int64)
        edges = []
        for starts, counts in tables:
            first = np.ceil((starts - grid.start_uutc) / grid.period_us - 0.5).astype(np.int64)
            edges.append((first, np.maximum.accumulate(first + counts)))
        cuts = np.unique(np.concatenate([np.concatenate(e) for e in edges] + [[k0, k1]]))
        cuts = cuts[(cuts >= k0) & (cuts <= k1)]
        ok = np.ones(len(cuts), bool)
        for first, end in edges:
            i = np.searchsorted(first, cuts, side="right") - 1
            j = np.maximum(i, 0)
            ok &= ~((i >= 0) & (first[j] < cuts) & (cuts < end[j]))
        ok[[0, -1]] = True
        return cuts[ok]

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
            got = data.shape[-1] if data.ndim else 0
            raise CorruptDataError(
                f"{self.path}: the {self.engine} engine returned {got} samples for {n} requested "
                f"in [{t0}, {t1}); the recording may be damaged"
            )
        for i, name in enumerate(names):
            if empty(data[i]) and self._has_data(name, t0, t1):
                raise CorruptDataError(
                    f"{self.path}: channel {name!r} returned no data in [{t0}, {t1}) although its "
                    "index lists recorded samples there; the files may be damaged"
                )

    def _has_data(self, name: str, t0: int, t1: int) -> bool:
        period = 1e6 / self.info.channel(name).fs
        return any(
            min(s.end_uutc, t1) - max(s.start_uutc, t0) >= period for s in self.info.spans[name]
        )
