"""`Mef3Raw`: one rate group of a recording as a lazy `mne.io.BaseRaw`, read through its source.

Samples keep their time: sample k of the Raw is sample k of the rate group's grid (gaps
included, zeros there unless NaN is asked for), so every sample and every annotation sits
at its true time. Reads go through the recording's `RecordingSource` (the segment cache and
prefetch of a server, or a reader of this process), one segment at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import mne
import numpy as np
import pandas as pd

from ..errors import MixedRatesError, ServerUnavailableError
from ..model import RAW_NAN, Grid, SessionInfo
from ..sources import REGISTRY, SourceSpec
from .annotations import events_to_annotations, gap_annotations, meas_date, record_annotations
from .units import volts_per_unit

__all__ = ["GAP_FILLS", "Mef3Raw", "to_mne"]

log = logging.getLogger(__name__)

#: What samples in gaps become: MNE's convention (zeros, annotated), or NaN.
GAP_FILLS = ("zeros", "nan")


class Mef3Raw(mne.io.BaseRaw):
    """One rate group of a MEF 3.0 recording as an `mne.io.BaseRaw`, read lazily.

    Made by `to_mne` (or ``rec.mef3.to_mne()``), which builds its `mne.Info` and
    annotations. Reads ask the recording's source (looked up by its `SourceSpec` in the
    process's `mef3lab.sources.REGISTRY`) for whole segments, hinting the next one while
    reads go forwards.

    Parameters
    ----------
    spec : SourceSpec
        The recording and where it is read.
    info : mne.Info
        Channel names (the recording's), types, rate, calibrations (volts per unit in
        ``cal``), bads, dates.
    grid : Grid
        The rate group's sample grid: the Raw's samples.
    factors : numpy.ndarray
        Each channel's conversion factor (units per stored count), NaN for a channel whose
        factor changes within the recording: the others are read as their stored counts
        (half the bytes of float64) and scaled here, exactly as a float64 read scales them.
    gaps : {"zeros", "nan"}
        What samples without data become.
    orig_units : dict of str to str
        Each channel's units as the file writes them.
    preload : bool
        Read every sample now.
    verbose : bool, str, int or None
        MNE's verbosity.
    """

    def __init__(
        self,
        spec: SourceSpec,
        info: mne.Info,
        grid: Grid,
        factors: np.ndarray,
        gaps: str,
        orig_units: dict[str, str],
        preload: bool = False,
        verbose: Any = None,
    ) -> None:
        extras = {
            "spec": spec,
            "names": list(info.ch_names),
            "factors": np.asarray(factors, np.float64),
            "grid": grid,
            "nan": gaps == "nan",
            "next": None,  # where a read going forwards would start
            "blocks": None,  # where the first channel's blocks start (embedded reads)
            "window": None,  # the last short read, widened to whole blocks (embedded reads)
        }
        super().__init__(
            info,
            preload=preload,
            last_samps=[grid.n_samples - 1],
            filenames=[None],
            raw_extras=[extras],
            orig_format="double",
            orig_units=orig_units,
            verbose=verbose,
        )

    def _read_segment_file(
        self,
        data: np.ndarray,
        idx: Any,
        fi: int,
        start: int,
        stop: int,
        cals: np.ndarray | None,
        mult: np.ndarray | None,
    ) -> None:
        """Samples ``[start, stop)`` of rows `idx`, calibrated (or projected) into `data`."""
        extras = self._raw_extras[fi]
        names = extras["names"]
        picked = np.arange(len(names))[idx]
        rows = [names[i] for i in picked]
        factors = extras["factors"][picked]
        dtype = "int32" if np.isfinite(factors).all() else "float64"
        grid = extras["grid"]
        source = REGISTRY.acquire(extras["spec"])
        step = max(1, source.segment_samples(grid.fs))
        short = stop - start < step and not extras["spec"].remote
        sequential = extras["next"] == start
        a = start
        while a < stop:
            b = min(stop, (a // step + 1) * step)  # segment-aligned pieces
            if sequential or b < stop:
                _hint(source, rows, b, min(b + step, grid.n_samples), dtype)
            try:
                if short:
                    values, missing = _from_blocks(extras, source, rows, a, b, factors, dtype)
                else:
                    values, missing = _values(
                        source, rows, a, b, factors if dtype == "int32" else None
                    )
            except ServerUnavailableError:
                # reading again once the server is back reconnects at once
                REGISTRY.discard(extras["spec"], source)
                raise
            values[missing] = np.nan if extras["nan"] else 0.0
            out = data[:, a - start : b - start]
            if mult is None:
                np.multiply(values, cals, out=out, casting="unsafe")
            else:
                out[:] = mult @ values
            a = b
        extras["next"] = stop


def _values(
    source: Any, rows: list[str], k0: int, k1: int, factors: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Samples ``[k0, k1)`` as float64 in channel units, and where there are none.

    With `factors`, read as stored counts and scaled by them (the float64 read's arithmetic).
    """
    if factors is None:
        values = source.read_index(rows, k0, k1, "float64")
        return values, np.isnan(values)
    counts = source.read_index(rows, k0, k1, "int32")
    return np.multiply(counts, factors[:, None], dtype=np.float64), counts == RAW_NAN


#: The most a short read is widened to, in bytes of float64 (all its channels).
WINDOW_BYTES = 32 * 2**20


def _from_blocks(
    extras: dict, source: Any, rows: list[str], a: int, b: int, factors: np.ndarray, dtype: str
) -> tuple[np.ndarray, np.ndarray]:
    """`_values` of a short read, through the last read widened to whole MEF blocks.

    A reader decodes whole blocks whatever part of them is asked for, so a short read is
    widened to the blocks it touches and kept: the next short read inside them (the next
    epoch, the next second of a plot) costs no decoding.
    """
    window = extras["window"]
    key = (tuple(rows), dtype)
    if window is None or window[0] != key or not (window[1] <= a and b <= window[2]):
        grid = extras["grid"]
        if extras["blocks"] is None:
            starts = source.block_envelope(extras["names"][0])["start_uutc"]
            extras["blocks"] = np.array([grid.index_at(t) for t in starts], np.int64)
        blocks = extras["blocks"]
        lo = (
            blocks[np.searchsorted(blocks, a, "right") - 1] if blocks.size and blocks[0] <= a else a
        )
        after = np.searchsorted(blocks, b, "left")
        hi = blocks[after] if after < blocks.size else grid.n_samples
        if (hi - lo) * len(rows) * 8 > WINDOW_BYTES:
            lo, hi = a, b
        values, missing = _values(source, rows, lo, hi, factors if dtype == "int32" else None)
        window = extras["window"] = (key, int(lo), int(hi), values, missing)
    lo = window[1]
    return window[3][:, a - lo : b - lo].copy(), window[4][:, a - lo : b - lo]


def _hint(source: Any, rows: list[str], k0: int, k1: int, dtype: str) -> None:
    if k1 <= k0:
        return
    try:
        source.hint(rows, k0, k1, dtype)
    except Exception:  # a hint must never fail a read
        log.debug("hint failed", exc_info=True)


def _group(info: SessionInfo, names: Sequence[str], fs: float | None) -> tuple[list[str], Grid]:
    """The channels of `names` at rate `fs` (or of the one rate they share), and their grid."""
    groups = [(g, [n for n in names if n in g.channels]) for g in info.rate_groups]
    groups = [(g, mine) for g, mine in groups if mine]
    if fs is not None:
        for g, mine in groups:
            if g.fs == float(fs):
                return mine, g.grid
        rates = ", ".join(f"{g.fs:g} Hz" for g, _ in groups)
        raise ValueError(f"no channel asked for is sampled at {fs:g} Hz; their rates: {rates}")
    if len(groups) > 1:
        listing = "; ".join(
            f"{g.fs:g} Hz: {', '.join(mine[:6])}{' …' if len(mine) > 6 else ''}"
            for g, mine in groups
        )
        raise MixedRatesError(
            f"an MNE Raw has one sampling rate, and these channels have {len(groups)} "
            f"({listing}); pass fs= one of them, or channels= of one rate"
        )
    g, mine = groups[0]
    return mine, g.grid


def _types(names: Sequence[str], ch_types: str | Mapping[str, str] | Sequence[str]) -> list[str]:
    if isinstance(ch_types, str):
        return [ch_types] * len(names)
    if isinstance(ch_types, Mapping):
        return [ch_types.get(n, "seeg") for n in names]
    types = list(ch_types)
    if len(types) != len(names):
        raise ValueError(f"ch_types has {len(types)} entries for {len(names)} channels")
    return types


def _utc_offset(seconds: int) -> str:
    """A GMT offset in seconds as MNE's ``info["utc_offset"]`` writes it: ``"+0100"``."""
    sign = "+" if seconds >= 0 else "-"
    s = abs(int(seconds))
    return f"{sign}{s // 3600:02d}{(s % 3600) // 60:02d}"


def to_mne(
    spec: SourceSpec,
    channels: Sequence[str] | None = None,
    fs: float | None = None,
    *,
    ch_types: str | Mapping[str, str] | Sequence[str] = "seeg",
    bads: Sequence[str] = (),
    events: pd.DataFrame | None = None,
    line_freq: float | None = None,
    gaps: str = "zeros",
    preload: bool = False,
    verbose: Any = None,
) -> Mef3Raw:
    """One rate group of a recording as a lazy `Mef3Raw` (an `mne.io.BaseRaw`).

    ``rec.mef3.to_mne()`` calls this with what the Dataset knows (its channels, BIDS
    channel types, bads, events and line frequency).

    Parameters
    ----------
    spec : SourceSpec
        The recording and where it is read (in this process or through a server).
    channels : sequence of str, optional
        The channels, in this order; None: all of them.
    fs : float, optional
        The rate group to take when the channels have several rates.
    ch_types : str, mapping or sequence of str
        MNE channel types: one for all (``"seeg"``, as `mne.io.read_raw_mef`), one per
        channel, or by name (others ``"seeg"``).
    bads : sequence of str
        Bad channels (those not among the Raw's channels are ignored).
    events : pandas.DataFrame, optional
        A run's events (``onset``, ``duration``, ``trial_type``; seconds from the recording
        start), added as annotations.
    line_freq : float, optional
        The power-line frequency (``info["line_freq"]``).
    gaps : {"zeros", "nan"}
        Samples without data: zeros (MNE's convention; each stretch is a ``BAD_ACQ_SKIP``
        annotation either way) or NaN.
    preload : bool
        Read every sample now (False: read on demand).
    verbose : bool, str, int or None
        MNE's verbosity.

    Returns
    -------
    Mef3Raw
        Time 0 is the group's first sample (``meas_date``, UTC; the recording's GMT offset,
        when it has one, in ``info["utc_offset"]`` as MNE writes it); values in volts, each
        channel scaled from its units (µV, mV, V in any spelling; other units are kept as
        they are, with a warning); annotations: MEF records, gaps, events.

    Raises
    ------
    mef3lab.errors.MixedRatesError
        When the channels have several rates and `fs` is None (the message lists them).
    ValueError
        When `fs` matches none of the channels, `gaps` is unknown or `ch_types` does not
        fit the channels.
    """
    if gaps not in GAP_FILLS:
        raise ValueError(f"gaps must be one of {GAP_FILLS}, not {gaps!r}")
    info = REGISTRY.acquire(spec).info
    names, grid = _group(info, info.check_channels(channels), fs)
    mne_info = mne.create_info(names, grid.fs, _types(names, ch_types), verbose=False)
    orig_units, odd = {}, []
    for ch in mne_info["chs"]:
        units = info.channel(ch["ch_name"]).units
        orig_units[ch["ch_name"]] = units
        scale = volts_per_unit(units)
        if scale is None:
            odd.append(f"{ch['ch_name']} ({units!r})")
        ch["cal"] = 1.0 if scale is None else scale
    if odd:
        mne.utils.warn(
            f"{len(odd)} channel(s) have units that are not a voltage and are left unscaled: "
            + ", ".join(odd[:6])
        )
    mne_info["bads"] = [b for b in bads if b in names]
    with mne_info._unlock():
        mne_info["meas_date"] = meas_date(grid.start_uutc)
        if line_freq is not None:
            mne_info["line_freq"] = float(line_freq)
        if info.utc_offset_s is not None:
            mne_info["utc_offset"] = _utc_offset(info.utc_offset_s)
    factors = [
        np.nan if info.factor_changes.get(n) else info.channel(n).conversion_factor for n in names
    ]
    raw = Mef3Raw(spec, mne_info, grid, factors, gaps, orig_units, preload, verbose)

    annotations = record_annotations(info, names, grid) + gap_annotations(info, names, grid)
    if events is not None and len(events):
        offset_s = (grid.start_uutc - info.start_uutc) / 1e6
        annotations += events_to_annotations(events, annotations.orig_time, offset_s)
    raw.set_annotations(annotations, verbose="error" if verbose is None else verbose)
    return raw
