"""The pymef engine (meflib's own Python binding): what the lab's files are written with.

Its results equal mef3io's bit for bit: pymef's unscaled counts are scaled here, each MEF
segment by its own conversion factor. It cannot decode with a level-1 password, holds the GIL,
and can crash the process on some damaged files, so mef3io first finds the damaged channels,
which pymef then never opens. The details: ``docs/readers.md``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..errors import (
    CorruptDataError,
    Level1PasswordError,
    Mef3LabError,
    NotAMefSessionError,
    PasswordError,
)
from ..model import RAW_NAN, ChannelInfo, SessionInfo, Span, canonical_units, spans_from_toc
from ._common import (
    annotation,
    check_index,
    check_rates,
    effective_factor,
    rate_change_message,
    recorded_gmt_offset,
    sorted_annotations,
    stored_units,
)
from .base import Reader
from .blockformat import UNIVERSAL_HEADER_BYTES
from .mef3io import Mef3ioReader
from .salvage import Shadow, being_written, channel_dirs

log = logging.getLogger(__name__)


class PymefReader(Reader):
    """A recording decoded by pymef.

    Opened by ``open_reader(path, engine="pymef")``; `Reader` describes the interface.

    Attributes
    ----------
    rate_changes : dict of str to str
        Channels whose sampling rate changes between segments -> the message of the
        `RateChangeError` reading one raises.
    """

    engine = "pymef"

    def _open(self) -> SessionInfo:
        from pymef.mef_file.pymef3_file import check_mef_password

        self._s = None
        self.rate_changes: dict[str, str] = {}
        self._span_arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._shadow: Shadow | None = None
        level = self._password_level(check_mef_password)
        # meflib crashes the process on some damaged files (an empty or missing .tmet or .tidx):
        # mef3io, which does not, says first which channels are damaged, and pymef never sees them.
        with Mef3ioReader(self.path, self.password, threads=1) as scan:
            damaged = dict(scan.info.damaged)
            # pymef applies none but the first segment's
            factor_changes = dict(scan.info.factor_changes)
        if damaged or any(being_written(d) for d in channel_dirs(self.path).values()):
            self._shadow = Shadow(
                self.path, [n for n in channel_dirs(self.path) if n not in damaged]
            )
        with self._mapped("open"):
            md = self._session()
            self._segs, channels, spans = {}, [], {}
            for name in sorted(md):
                if "segments" not in md[name]:  # meflib read none of its segments (an empty .tdat)
                    damaged[name] = (
                        "pymef reads none of its segments (is a .tdat empty or cut short?)"
                    )
                    continue
                self._segs[name] = [md[name]["segments"][k] for k in sorted(md[name]["segments"])]
                try:
                    found = self._channel(name)
                except CorruptDataError as exc:  # its index and metadata disagree: leave it out
                    session = self.path if self._shadow is None else self._shadow.path
                    damaged[name] = str(exc).replace(str(session), str(self.path))
                    continue
                if found is not None:
                    channels.append(found[0])
                    spans[name] = found[1]
            if not channels:
                raise NotAMefSessionError(f"{self.path} holds no channel with recorded samples")
            self._chan = {c.name: c for c in channels}
            notes = self._annotations(md)
        return SessionInfo(
            str(self.path),
            tuple(channels),
            spans,
            notes,
            level > 0,
            damaged,
            {n: f for n, f in factor_changes.items() if n in spans},
            recorded_gmt_offset(self._segs[channels[0].name][0]["section_3"]["GMT_offset"][0]),
        ).in_recording_order()

    def _session(self) -> dict:
        """Open pymef's session (through the shadow, if any); its channels' metadata."""
        from pymef.mef_session import MefSession

        session = self.path if self._shadow is None else self._shadow.path
        self._s = MefSession(str(session), self.password, check_all_passwords=False)
        return self._s.session_md["time_series_channels"]

    def _share(self) -> dict[str, Any]:
        """The channels that change rate: the rest is in `info` (pymef parses its own again)."""
        return {"rate_changes": dict(self.rate_changes)}

    def _adopt(self, state: dict[str, Any]) -> None:
        """Open pymef's session without the damaged channels; mef3io is not asked again."""
        self._s = None
        self.rate_changes = dict(state["rate_changes"])
        self._span_arrays = {}
        self._shadow = None
        if self.info.damaged:
            self._shadow = Shadow(
                self.path, [n for n in channel_dirs(self.path) if n not in self.info.damaged]
            )
        with self._mapped("open"):
            md = self._session()
            self._segs = {
                name: [md[name]["segments"][k] for k in sorted(md[name]["segments"])]
                for name in self.info.names
            }
        self._chan = {c.name: c for c in self.info.channels}

    def _password_level(self, check) -> int:
        """0 (not encrypted), 1 or 2, from the first metadata file; raises for bad passwords."""
        tmet = next(
            iter(
                sorted(
                    f
                    for f in self.path.glob("*.timd/*.segd/*.tmet")
                    if f.stat().st_size > UNIVERSAL_HEADER_BYTES
                )
            ),
            None,
        )  # an empty one crashes meflib
        if tmet is None:
            raise NotAMefSessionError(
                f"{self.path} has channel folders but no segment metadata (.tmet)"
            )
        if len(self.password.encode("utf-8")) > 15:  # meflib's 16-byte buffer: pymef would crash
            raise PasswordError(
                f"pymef cannot use passwords longer than 15 bytes, so it cannot open {self.path} "
                "with this one; the mef3io engine can (engine='mef3io')"
            )
        level = check(str(tmet), self.password)
        if level < 0:
            if not self.password:
                raise PasswordError(f"{self.path} is encrypted: give its password")
            raise PasswordError(f"the password does not open {self.path}")
        if level == 1:
            raise Level1PasswordError(
                f"{self.path} was opened with its level-1 password, with which pymef cannot decode "
                "samples; use the level-2 password, or the mef3io engine"
            )
        return int(level)

    def _channel(self, name: str) -> tuple[ChannelInfo, tuple[Span, ...]] | None:
        segs = self._segs[name]
        rates = [float(s["section_2"]["sampling_frequency"][0]) for s in segs]
        toc = self._s.get_channel_toc(name)
        if not segs or toc.shape[1] == 0:
            log.warning("%s: channel %r has no samples; left out", self.path, name)
            return None
        fs = rates[0]
        if any(r != fs for r in rates):
            self.rate_changes[name] = rate_change_message(self.path, name, rates)
        if name in self.rate_changes:  # each segment timed by its own rate
            spans = tuple(
                sp
                for s, r in zip(segs, rates, strict=True)
                for sp in spans_from_toc(s["TOC"][3], s["TOC"][1], r)
            )
        else:
            spans = spans_from_toc(toc[3], toc[1], fs)
        spec = self._s.session_md["time_series_channels"][name]["channel_specific_metadata"]
        check_index(
            self.path,
            name,
            fs,
            toc[3],
            toc[1],
            spans[-1].end_uutc,
            sum(int(s["section_2"]["number_of_samples"][0]) for s in segs),
            int(spec["earliest_start_time"][0]),
            int(spec["latest_end_time"][0]),
            self._tdat_problem(name),
        )
        s2 = segs[0]["section_2"]
        units = stored_units(s2["units_description"][0])
        return ChannelInfo(
            name=name,
            fs=fs,
            start_uutc=spans[0].start_uutc,
            end_uutc=spans[-1].end_uutc,
            n_samples=int(toc[1].sum()),
            units=canonical_units(units),
            conversion_factor=effective_factor(float(s2["units_conversion_factor"][0])),
            acquisition_number=int(s2["acquisition_channel_number"][0]),
            units_text=units,
        ), spans

    def _tdat_problem(self, name: str) -> str | None:
        """Why a segment's data file cannot hold the blocks its index lists (pymef reads NaN)."""
        md = self._s.session_md["time_series_channels"][name]["segments"]
        for seg in sorted(md):
            idx = md[seg]["indices"]
            tdat = self.path / f"{name}.timd" / f"{seg}.segd" / f"{seg}.tdat"
            size = tdat.stat().st_size if tdat.exists() else 0
            if idx.size and int((idx["file_offset"] + idx["block_bytes"]).max()) > size:
                return f"{tdat.name} is shorter than its index says ({size} bytes; truncated?)"
        return None

    def _annotations(self, md) -> tuple:
        """Session-, channel- and segment-level records (pymef lacks the keys of absent files)."""
        s = self._s
        notes = (
            [annotation(r, None) for r in s.read_records()]
            if s.session_md.get("records_info")
            else []
        )
        for name in md:
            if md[name].get("records_info"):
                notes += [annotation(r, name) for r in s.read_records(name)]
            for k, seg in sorted(md[name].get("segments", {}).items()):
                if seg.get("records_info"):
                    notes += [
                        annotation(r, name) for r in s.read_records(name, int(k.rsplit("-", 1)[1]))
                    ]
        return sorted_annotations(notes)

    def _read_channel(self, name: str, t0: int, t1: int, n: int) -> np.ndarray:
        """Counts (float64, NaN in gaps) of one channel for ``[t0, t1)``."""
        c = self._chan[name]
        if t1 <= c.start_uutc or t0 >= c.end_uutc:
            # pymef sizes an all-outside window by truncation, not by the read rule.
            return np.full(n, np.nan)
        with self._mapped("read"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # "window exceeds the recording"
            data = self._s.read_ts_channels_uutc(name, [int(t0), int(t1)])
        if data is None or np.shape(data) != (n,):
            got = np.size(data) if data is not None else 0
            raise CorruptDataError(
                f"{self.path}: pymef returned {got} samples of {name!r} for {n} requested in "
                f"[{t0}, {t1}); the recording may be damaged"
            )
        got, listed = int(np.count_nonzero(~np.isnan(data))), self._listed(name, t0, n)
        if got != listed:
            # pymef does not check block CRCs: an undecodable block comes back as NaN, a fake gap.
            raise CorruptDataError(
                f"{self.path}: channel {name!r} gave {got} samples in [{t0}, {t1}) where its "
                f"index lists {listed}; a data block could not be decoded, the files may be damaged"
            )
        return data

    def _listed(self, name: str, t0: int, n: int) -> int:
        """How many of the n samples from t0 lie in the channel's recorded spans."""
        if name not in self._span_arrays:
            sp = self.info.spans[name]
            self._span_arrays[name] = (
                np.array([s.start_uutc for s in sp], np.float64),
                np.array([s.end_uutc for s in sp], np.float64),
            )
        starts, ends = self._span_arrays[name]
        p = 1e6 / self._chan[name].fs
        # Sample j lies at t0 + j * p; span edges sit on sample times, so half a period decides.
        a = np.clip(np.ceil((starts - p / 2 - t0) / p), 0, n)
        b = np.clip(np.ceil((ends - p / 2 - t0) / p), 0, n)
        return int((b - a).sum())

    def _read_float(self, names: Sequence[str], t0: int, t1: int, out: np.ndarray) -> None:
        check_rates(self.rate_changes, names)
        n = out.shape[1]
        for i, name in enumerate(names):
            counts = self._read_channel(name, t0, t1, n)
            k0 = self.info.group_of([name]).grid.index_at(t0)
            for a, b, factor in self.info.factor_runs(name).window(k0, k0 + n).pieces(0, n):
                # Computed in float64 and rounded once into out's type: exactly
                # (counts * factor).astype(...), each segment's samples by its own factor
                # (as mef3io; pymef scales all by the first's).
                np.multiply(counts[a:b], factor, out=out[i, a:b], casting="same_kind")

    def _read_counts(self, names: Sequence[str], t0: int, t1: int, out: np.ndarray) -> None:
        check_rates(self.rate_changes, names)
        n = out.shape[1]
        for i, name in enumerate(names):
            counts = self._read_channel(name, t0, t1, n)
            gap = np.isnan(counts)
            counts[gap] = 0
            out[i] = counts
            out[i][gap] = RAW_NAN

    def _block_envelope(self, name: str, t0: int | None, t1: int | None) -> dict[str, np.ndarray]:
        check_rates(self.rate_changes, [name])
        c = self._chan[name]
        idx = np.concatenate([s["indices"] for s in self._segs[name]])
        start = idx["start_time"].astype(np.int64)
        n = idx["number_of_samples"].astype(np.int64)
        # Block end as mef3io reports it: start + n / fs, rounded half up.
        end = np.floor(start + n * 1e6 / c.fs + 0.5).astype(np.int64)
        lo = c.start_uutc if t0 is None else t0
        hi = c.end_uutc if t1 is None else t1
        keep = (end > lo) & (start < hi)
        f = self.info.factors_at(name, start[keep])  # each block by its own segment's factor
        return {
            "start_uutc": start[keep],
            "end_uutc": end[keep],
            "min": idx["minimum_sample_value"][keep].astype(np.float64) * f,
            "max": idx["maximum_sample_value"][keep].astype(np.float64) * f,
        }

    def close(self) -> None:
        """Close pymef's session and remove the shadow session, if any. Idempotent."""
        s, self._s = getattr(self, "_s", None), None
        if s is not None:
            s.close()
        shadow, self._shadow = getattr(self, "_shadow", None), None
        if shadow is not None:
            shadow.remove()

    @contextmanager
    def _mapped(self, what: str):
        """Turn pymef's exceptions into the mef3lab errors a scientist can act on."""
        try:
            yield
        except Mef3LabError:
            raise
        except RuntimeError as exc:
            if "password" in str(exc).lower():
                raise PasswordError(f"the password does not open {self.path}") from exc
            raise CorruptDataError(
                f"{self.path}: pymef could not {what} the recording, which looks damaged ({exc})"
            ) from exc
        except (OSError, ValueError, KeyError, IndexError, TypeError, ArithmeticError) as exc:
            raise CorruptDataError(
                f"{self.path}: pymef could not {what} the recording, which looks damaged ({exc!r})"
            ) from exc
