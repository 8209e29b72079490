"""The mef3io engine: a C++ decoder that releases the GIL and reads with a level-1 password.

It also opens sessions for the other engines: the numba engine extends it, and the pymef
engine asks it first which channels are damaged. How it treats level-1 passwords, rate and
factor changes and damaged channels: ``docs/readers.md``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import warnings
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CorruptDataError, Mef3LabError, NotAMefSessionError, PasswordError
from ..model import RAW_NAN, ChannelInfo, SessionInfo, Span, canonical_units, spans_from_toc
from ._common import (
    annotation,
    check_index,
    check_rates,
    effective_factor,
    implied_rate,
    rate_change_message,
    recorded_gmt_offset,
    sorted_annotations,
    stored_units,
)
from .base import Reader
from .changes import fingerprint
from .salvage import (
    METADATA_BYTES,
    Shadow,
    being_written,
    channel_dirs,
    file_problem,
    open_salvaged,
)

log = logging.getLogger(__name__)

#: Opens of a session whose files a writer changes meanwhile, at most (see `Mef3ioReader._open`).
OPEN_ATTEMPTS = 5
#: Seconds between two of them: a writer rewrites a metadata file in far less.
REOPEN_PAUSE_S = 0.05


@dataclass(frozen=True)
class BlockTable:
    """One channel's blocks as mef3io reads them at open, kept for engines built on this one."""

    starts: np.ndarray  # µUTC of each block's first sample
    counts: np.ndarray  # samples per block
    discontinuity: np.ndarray  # bool: the block starts a new contiguous run
    segments: list[dict]  # mef3io's description of each MEF segment


class Mef3ioReader(Reader):
    """A recording decoded by mef3io.

    Opened by ``open_reader(path, engine="mef3io")``; `Reader` describes the interface.

    Attributes
    ----------
    annotations_locked : bool
        True when the records need the level-2 password: the session opened without them.
    rate_changes : dict of str to str
        Channels whose sampling rate changes between segments -> the message of the
        `RateChangeError` reading one raises.
    block_tables : dict of str to BlockTable
        Each channel's blocks, as mef3io read them at open.
    """

    engine = "mef3io"
    thread_safe = True  # mef3io reads from several threads at once, with the GIL released

    def _open(self) -> SessionInfo:
        """Open the session; again when a writer changed its files meanwhile.

        A file being rewritten (the metadata, say) looks damaged for a moment: an open that
        found damage, or no channel at all, while the files changed is done again, up to
        `OPEN_ATTEMPTS` times.
        """
        attempt, before = 1, self._files  # the opening's fingerprint, taken just before
        while True:
            try:
                info = self._open_once()
            except CorruptDataError:
                if not self._again(attempt, before):
                    raise
            else:
                if not info.damaged or not self._again(attempt, before):
                    return info
            attempt += 1
            before = fingerprint(self.path)

    def _again(self, attempt: int, before: tuple) -> bool:
        """Whether to open again after attempt `attempt` (closed, after a pause, if so).

        Yes while the files changed during the attempt, or a metadata file is short and was
        written within the last second (a writer is rewriting it).
        """
        now = fingerprint(self.path)
        rewriting = any(
            name.endswith(".tmet") and size < METADATA_BYTES and mtime > time.time_ns() - 10**9
            for name, size, mtime, _ in now
        )
        if attempt >= OPEN_ATTEMPTS or (now == before and not rewriting):
            return False
        self.close()
        time.sleep(REOPEN_PAUSE_S)
        return True

    def _open_once(self) -> SessionInfo:
        import mef3io

        self._m = mef3io
        self._r = None
        self._closed = False
        self._opening = threading.Lock()
        self.rate_changes: dict[str, str] = {}
        self.factor_changes: dict[str, tuple[tuple[int, float], ...]] = {}
        self.block_tables: dict[str, BlockTable] = {}
        self.annotations_locked = False  # True: the records need the level-2 password
        self._shadow: Shadow | None = None  # the session without its damaged channels (see salvage)
        self.damaged: dict[str, str] = {}
        # files not the size they declare are never handed to mef3io, which would read them whole
        problems = [
            f"{name}: {why}"
            for name, folder in channel_dirs(self.path).items()
            if (why := file_problem(folder)) is not None
        ]
        try:
            if problems:
                raise CorruptDataError(f"{self.path}: " + "; ".join(problems))
            dirs = channel_dirs(self.path)
            if any(being_written(folder) for folder in dirs.values()):
                # a writer is appending: read the entries its index headers declare
                self._shadow = Shadow(self.path, list(dirs))
            self._r = self._reader(self.path if self._shadow is None else self._shadow.path)
        except (CorruptDataError, PasswordError) as exc:  # one channel's files, or its password?
            if self._shadow is not None:
                self._shadow.remove()
            self._r, self._shadow, self.damaged = open_salvaged(self.path, self._reader, exc)
        # the channels mef3io leaves out without a word
        for name, folder in channel_dirs(self.path).items():
            if name not in self._r.channels and name not in self.damaged:
                self.damaged[name] = (
                    file_problem(folder) or "mef3io found no readable segment in it"
                )
        channels, spans = [], {}
        for name in self._r.channels:
            try:
                with self._mapped("open"):
                    found = self._channel(name)
            except CorruptDataError as exc:  # its index and metadata disagree: leave it out
                self.damaged[name] = str(exc)
                continue
            if found is not None:
                channels.append(found[0])
                spans[name] = found[1]
        if not channels:
            if self.damaged:
                raise CorruptDataError(
                    f"{self.path}: every channel is damaged: "
                    + "; ".join(f"{n}: {why}" for n, why in self.damaged.items())
                )
            raise NotAMefSessionError(f"{self.path} holds no channel with recorded samples")
        with self._mapped("open"):
            notes = self._annotations()
        protected = getattr(self._r._impl, "password_protected", None)
        encrypted = bool(protected()) if protected is not None else bool(self.password)
        first = self._r.info(channels[0].name)
        # Without section 3 (level-2 password) times are MEF's de-identified offset times.
        readable = first.get("section3_available", True)
        return SessionInfo(
            str(self.path),
            tuple(channels),
            spans,
            notes,
            encrypted,
            dict(self.damaged),
            {n: f for n, f in self.factor_changes.items() if n in spans},
            recorded_gmt_offset(first.get("gmt_offset")) if readable else None,
            not readable,
        ).in_recording_order()

    def _reader(self, session: Path):
        """mef3io's reader of a session folder (the recording itself or its salvaged shadow)."""
        with self._mapped("open"), warnings.catch_warnings():
            warnings.simplefilter("ignore", self._m.SessionDeclarationWarning)
            return self._m.Reader(
                str(session), self.password, warn_declarations=False, n_threads=self.threads
            )

    def _channel(self, name: str) -> tuple[ChannelInfo, tuple[Span, ...]] | None:
        info = self._r.info(name)
        toc = self._r.toc(name)
        if not toc:
            log.warning("%s: channel %r has no samples; left out", self.path, name)
            return None
        fs = float(info["sampling_frequency"])
        if not (math.isfinite(fs) and fs > 0):
            raise CorruptDataError(
                f"{self.path}: channel {name!r} states a sampling rate of {fs!r} Hz"
            )
        starts = np.array([b["start_uutc"] for b in toc], np.int64)
        counts = np.array([b["number_of_samples"] for b in toc], np.int64)
        disc = np.array([b["discontinuity"] for b in toc], bool)
        first = np.array([b["start_sample"] for b in toc], np.int64)
        segs = self._r.segments(name)
        factor = info["units_conversion_factor"]
        if factor is None:  # segments store different factors: reads scale each by its own
            factor = segs[0]["units_conversion_factor"]
        rates, seg_spans, factors = [], [], []
        for s in segs:  # blocks of each segment, by their channel-wide sample index (sorted)
            a, b = np.searchsorted(
                first, [s["start_sample"], s["start_sample"] + s["number_of_samples"]]
            )
            if b > a:
                f = effective_factor(s["units_conversion_factor"])
                if not factors or f != factors[-1][1]:
                    factors.append((int(starts[a]), f))
                r = implied_rate(starts[a:b], counts[a:b], disc[a:b], s["end_time"], fs)
                rates += [r] if r is not None else []
                seg_spans += spans_from_toc(starts[a:b], counts[a:b], r or fs)
        if rates:
            self.rate_changes[name] = rate_change_message(self.path, name, [fs, *rates])
            spans = tuple(seg_spans)  # each segment timed by its own rate
        else:
            spans = spans_from_toc(starts, counts, fs)
        check_index(
            self.path,
            name,
            fs,
            starts,
            counts,
            spans[-1].end_uutc,
            info["number_of_samples"],
            info["start_time"],
            info["end_time"],
        )
        self.block_tables[name] = BlockTable(starts, counts, disc, segs)
        if len(factors) > 1:  # reads scale each segment by its own factor
            self.factor_changes[name] = tuple(factors)
        return ChannelInfo(
            name=name,
            fs=fs,
            start_uutc=spans[0].start_uutc,
            end_uutc=spans[-1].end_uutc,
            n_samples=int(counts.sum()),
            units=canonical_units(stored_units(info["units_description"])),
            conversion_factor=effective_factor(factor),
            acquisition_number=info.get("acquisition_channel_number"),
            units_text=stored_units(info["units_description"]),
        ), spans

    def _annotations(self):
        try:
            recs = self._r.records(level="all")
        except self._m.PasswordError:
            self.annotations_locked = True
            log.info(
                "%s: the records need the level-2 password; opened without annotations", self.path
            )
            return ()
        return sorted_annotations(annotation(r, r.get("channel")) for r in recs)

    def _read_float(self, names: Sequence[str], t0: int, t1: int, out: np.ndarray) -> None:
        check_rates(self.rate_changes, names)
        with self._mapped("read"):
            data = self._mef3io().read(list(names), t0, t1, dtype=out.dtype.name)
        if data.shape != out.shape:
            raise CorruptDataError(
                f"{self.path}: the mef3io engine returned {data.shape[-1]} samples for "
                f"{out.shape[1]} requested in [{t0}, {t1}); the recording may be damaged"
            )
        out[...] = data

    def _read_counts(self, names: Sequence[str], t0: int, t1: int, out: np.ndarray) -> None:
        check_rates(self.rate_changes, names)
        n = out.shape[1]
        with self._mapped("read"):
            for i, name in enumerate(names):
                raw = self._mef3io().read_raw(name, t0, t1)
                samples, valid = raw["samples"], raw["valid"]
                if samples.shape != (n,):
                    raise CorruptDataError(
                        f"{self.path}: mef3io returned {samples.size} raw samples of {name!r} for "
                        f"{n} requested in [{t0}, {t1}); the recording may be damaged"
                    )
                np.copyto(out[i], np.where(valid != 0, samples, RAW_NAN))

    def _share(self) -> dict[str, Any]:
        """What was parsed beside `info`, with paths inside a shadow made the recording's own.

        A shadow is this process's and goes with it; the files it links are the recording's.
        """
        return {
            "rate_changes": dict(self.rate_changes),
            "factor_changes": dict(self.factor_changes),
            "annotations_locked": self.annotations_locked,
            "block_tables": {
                name: replace(
                    t, segments=[{**s, "path": self._unshadowed(s["path"])} for s in t.segments]
                )
                for name, t in self.block_tables.items()
            },
        }

    def _adopt(self, state: dict[str, Any]) -> None:
        """Take another reader's parse; mef3io's own reader is opened at the first need of it."""
        import mef3io

        self._m = mef3io
        self._r = None
        self._closed = False
        self._opening = threading.Lock()
        self._shadow = None
        self.damaged = dict(self.info.damaged)
        self.rate_changes = dict(state["rate_changes"])
        self.factor_changes = dict(state["factor_changes"])
        self.annotations_locked = state["annotations_locked"]
        self.block_tables = dict(state["block_tables"])

    def _mef3io(self):
        """mef3io's reader of the session: opened now if this reader adopted its metadata.

        Through a shadow without the damaged channels, or with the declared index entries of
        channels being written, as the opening that parsed the metadata read them.
        """
        with self._opening:
            if self._r is None:
                if self._closed:
                    raise ValueError(f"the reader of {self.path} is closed")
                dirs = channel_dirs(self.path)
                if self.damaged or any(being_written(folder) for folder in dirs.values()):
                    self._shadow = Shadow(self.path, [n for n in dirs if n not in self.damaged])
                self._r = self._reader(self.path if self._shadow is None else self._shadow.path)
            return self._r

    def _unshadowed(self, path: str) -> str:
        """`path` inside this reader's shadow as the same path in the recording itself."""
        if self._shadow is None:
            return path
        return path.replace(str(self._shadow.path), str(self.path), 1)

    def _block_table(self, name: str) -> tuple[np.ndarray, np.ndarray] | None:
        table = self.block_tables.get(name)
        if table is None or name in self.rate_changes:
            return None
        return table.starts, table.counts

    def _block_envelope(self, name: str, t0: int | None, t1: int | None) -> dict[str, np.ndarray]:
        check_rates(self.rate_changes, [name])
        with self._mapped("read"):
            return dict(self._mef3io().block_envelope(name, t0, t1))

    def close(self) -> None:
        """Close mef3io's reader and remove the salvage shadow, if any. Idempotent."""
        self._closed = True  # an adopted reader opens mef3io's no more
        r, self._r = getattr(self, "_r", None), None
        if r is not None:
            r.close()
        shadow, self._shadow = getattr(self, "_shadow", None), None
        if shadow is not None:
            shadow.remove()

    @contextmanager
    def _mapped(self, what: str):
        """Turn mef3io's exceptions into the mef3lab errors a scientist can act on."""
        try:
            yield
        except Mef3LabError:
            raise
        except self._m.PasswordError as exc:
            if not self.password:
                msg = (
                    f"{self.path} is encrypted: give its password (level 2, or level 1 for the "
                    "samples only)"
                )
            else:
                msg = f"the password does not open {self.path} (mef3io: {exc})"
            raise PasswordError(msg) from exc
        except (self._m.MefError, RuntimeError, OSError) as exc:
            raise CorruptDataError(
                f"{self.path}: mef3io could not {what} the recording, which looks damaged ({exc})"
            ) from exc
