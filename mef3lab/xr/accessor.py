"""The ``.mef3`` accessor on what `open_recording` returns: gaps, annotations, rate groups.

It finds the recording again from the object's ``mef3_*`` attrs, and its tables follow
the object they are asked on (its channels, its time extent); docs/xarray.md has examples.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import replace
from importlib.metadata import entry_points
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..model import SessionInfo
from ..sources import REGISTRY, SourceSpec

__all__ = ["Mef3Accessor", "Mef3DataArrayAccessor", "Mef3DatasetAccessor", "viewer"]

#: The entry-point group where packages above this one offer ``.mef3`` viewers (``scroll``).
VIEWERS_GROUP = "mef3lab.viewers"

GAP_COLUMNS = ["channel", "start_s", "end_s", "start_uutc", "end_uutc", "duration_s"]
ANNOTATION_COLUMNS = ["time_s", "time_uutc", "type", "text", "duration_s", "channel"]
EVENT_COLUMNS = ["onset", "duration", "trial_type"]

#: The revisions `Mef3Accessor.refresh` gives its specs: each refresh is an opening of its own.
_REVISIONS = itertools.count(1)


@functools.cache
def viewer(name: str) -> Any:
    """The viewer registered as `name` in the ``mef3lab.viewers`` entry points.

    Looked up once per process (reading every installed package's entry points takes a
    while; a viewer installed later needs a new kernel).

    Parameters
    ----------
    name : str
        The entry point's name, e.g. ``"scroll"``.

    Returns
    -------
    callable
        What the entry point names, called with the object and keywords.

    Raises
    ------
    RuntimeError
        When no such viewer is installed.
    """
    found = entry_points(group=VIEWERS_GROUP, name=name)
    if not found:
        raise RuntimeError(
            f"no {name!r} viewer is installed ({VIEWERS_GROUP} entry points); "
            "reinstall mef3lab, or use mef3lab.Scroller(rec)"
        )
    return next(iter(found)).load()


class Mef3Accessor:
    """What ``.mef3`` offers on a DataArray and on a Dataset: its recording, gaps, annotations.

    Tables follow the object they are asked on: only its channels, and only rows that
    overlap its time extent (a Dataset's extent is that of all its time axes together).
    Times are given twice: seconds from the recording start (like the ``time``
    coordinate) and absolute µUTC.

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
        What `open_recording` returned, or a selection of it (with its attrs).
    """

    def __init__(self, obj: xr.DataArray | xr.Dataset) -> None:
        self._obj = obj

    # -- where it came from -----------------------------------------------------------
    @property
    def spec(self) -> SourceSpec:
        """How to reopen the recording this object was read from.

        From the object's ``mef3_*`` attrs; the password, never stored in attrs, is the
        one this process opened the recording with.

        Raises
        ------
        ValueError
            When the object has lost those attrs (an operation dropped them).
        """
        attrs = self._obj.attrs
        if "mef3_path" not in attrs:
            raise ValueError(
                "this object has lost the mef3_* attrs that name its recording (an operation "
                "dropped attrs); ask .mef3 on the object open_recording returned, or a selection "
                "of it"
            )
        return REGISTRY.known_spec(
            attrs["mef3_path"], attrs.get("mef3_address") or None, attrs.get("mef3_engine") or None
        )

    @property
    def info(self) -> SessionInfo:
        """The recording's description: channels, rate groups, spans, annotations."""
        return REGISTRY.acquire(self.spec).info

    @property
    def start_uutc(self) -> int:
        """µUTC of ``time == 0`` (the recording start)."""
        start = self._obj.attrs.get("start_uutc")
        return int(start) if start is not None else self.info.start_uutc

    # -- what this object covers ------------------------------------------------------
    def _axes(self) -> list[tuple[str, str]]:
        """(channel coordinate, time coordinate) name pairs present, one per rate group."""
        obj = self._obj
        out = []
        for name, coord in obj.coords.items():
            name = str(name)
            if coord.dims not in ((), (name,)):  # e.g. channel_type, a coordinate along channel
                continue
            if name == "channel" or name.startswith("channel_"):
                out.append((name, "time" + name[len("channel") :]))
        return out

    def _channels(self) -> list[str]:
        names: list[str] = []
        for cname, _ in self._axes():
            names.extend(str(v) for v in np.atleast_1d(self._obj[cname].values))
        if not names and "mef3_path" in self._obj.attrs:
            names = list(self.info.names)
        return names

    def _extent(self) -> tuple[float, float] | None:
        """[first, last] sample time in seconds covered, or None when no time axis is left."""
        lo, hi = np.inf, -np.inf
        found = False
        for _, tname in self._axes():
            if tname not in self._obj.coords:
                continue
            found = True
            index = self._obj.xindexes.get(tname)
            if getattr(index, "step", None) is not None and hasattr(index, "size"):
                if index.size == 0:
                    continue
                a = index.start
                b = index.start + (index.size - 1) * index.step
                a, b = min(a, b), max(a, b)
            else:
                values = np.atleast_1d(self._obj[tname].values)
                if values.size == 0:
                    continue
                a, b = float(values.min()), float(values.max())
            lo, hi = min(lo, a), max(hi, b)
        if not found:
            return None
        return (lo, hi)

    # -- tables -----------------------------------------------------------------------
    @property
    def gaps(self) -> pd.DataFrame:
        """The recording gaps of this object's channels in its time extent, one row each.

        Columns: channel, start_s, end_s (seconds from the recording start), start_uutc,
        end_uutc (µUTC), duration_s. A gap is a NaN run between stored spans; samples
        before a channel's first or after its last stored sample are NaN too but are not
        gaps (see ``info.channel(name)``).

        Examples
        --------
        >>> rec.mef3.gaps  # doctest: +SKIP
        >>> rec.signal.sel(channel="LA1", time=slice(60, 120)).mef3.gaps  # doctest: +SKIP
        """
        info, t0 = self.info, self.start_uutc
        extent = self._extent()
        rows = []
        for name in self._channels():
            for g in info.gaps(name):
                a, b = (g.start_uutc - t0) / 1e6, (g.end_uutc - t0) / 1e6
                if extent is not None and (b <= extent[0] or a > extent[1]):
                    continue
                rows.append((name, a, b, g.start_uutc, g.end_uutc, b - a))
        df = pd.DataFrame(rows, columns=GAP_COLUMNS)
        return df.astype(
            {
                "start_uutc": "int64",
                "end_uutc": "int64",
                "start_s": "float64",
                "end_s": "float64",
                "duration_s": "float64",
            }
        )

    @property
    def annotations(self) -> pd.DataFrame:
        """The MEF records (annotations) of this object's channels in its time extent.

        Session-level records are included. Columns: time_s (seconds from the recording
        start), time_uutc, type, text, duration_s (NaN when the record has none), channel
        (None for session-level records).

        Examples
        --------
        >>> rec.signal.sel(time=slice(60, 120)).mef3.annotations  # doctest: +SKIP
        """
        info, t0 = self.info, self.start_uutc
        extent = self._extent()
        channels = set(self._channels())
        rows = []
        for a in info.annotations:
            if a.channel is not None and a.channel not in channels:
                continue
            t = (a.time_uutc - t0) / 1e6
            dur = a.duration_us / 1e6 if a.duration_us is not None else np.nan
            end = t + (0.0 if np.isnan(dur) else dur)
            if extent is not None and (end < extent[0] or t > extent[1]):
                continue
            rows.append((t, a.time_uutc, a.type, a.text, dur, a.channel))
        df = pd.DataFrame(rows, columns=ANNOTATION_COLUMNS)
        df = df.astype({"time_s": "float64", "time_uutc": "int64", "duration_s": "float64"})
        return df.sort_values("time_uutc", kind="stable").reset_index(drop=True)

    @property
    def events(self) -> pd.DataFrame:
        """The events of the run this recording was opened as (BIDS ``events.tsv``).

        Read from the file the ``events_tsv`` attr names (`mef3lab.open_bids` sets it);
        without one, no events. Columns as the file has them, at least onset, duration
        (seconds from the recording start) and trial_type; ``n/a`` is missing.
        """
        path = self._obj.attrs.get("events_tsv")
        df = _read_tsv(path) if path else pd.DataFrame(columns=EVENT_COLUMNS)
        for c in EVENT_COLUMNS:
            if c not in df:
                df[c] = None
        return df.astype({"onset": "float64", "duration": "float64", "trial_type": "object"})

    @property
    def electrodes(self) -> pd.DataFrame | None:
        """The run's electrodes (BIDS ``electrodes.tsv``: name, x, y, z, size, group, ...).

        Read from the file the ``electrodes_tsv`` attr names (`mef3lab.open_bids` sets
        it); None without one.
        """
        path = self._obj.attrs.get("electrodes_tsv")
        return _read_tsv(path) if path else None

    @property
    def electrode_groups(self) -> dict[str, list[str]]:
        """The channels of this object by electrode group (the shaft), from `electrodes`.

        Channels without an electrode row or a group are left out; empty without
        electrodes.
        """
        table = self.electrodes
        if table is None or "group" not in table or "name" not in table:
            return {}
        group_of = dict(zip(table["name"].astype(str), table["group"], strict=True))
        out: dict[str, list[str]] = {}
        for name in self._channels():
            g = group_of.get(name)
            if isinstance(g, str) and g:
                out.setdefault(g, []).append(name)
        return out

    def to_mne(
        self,
        fs: float | None = None,
        *,
        ch_types: Any = None,
        bads: Any = None,
        events: pd.DataFrame | None = None,
        gaps: str = "zeros",
        preload: bool = False,
        verbose: Any = None,
    ) -> Any:
        """The channels of one rate as a lazy `mne.io.BaseRaw` (MNE-Python needed).

        Samples keep their time: gaps are zeros (or NaN) annotated ``BAD_ACQ_SKIP`` with
        their exact onset and duration; the MEF records and the run's events are
        annotations too. Reads go through the recording's source, in this process or
        through its server. The whole recording's time is covered (crop with
        ``raw.crop``). docs/mne-bids.md has the details.

        Parameters
        ----------
        fs : float, optional
            The rate group to take when the channels have several rates.
        ch_types : str, mapping or sequence of str, optional
            MNE channel types; None: the ``channel_type`` coordinate when there is one
            (a BIDS run), else ``"seeg"``.
        bads : sequence of str, optional
            Bad channels; None: the ``bads`` attr (a BIDS run's), else none.
        events : pandas.DataFrame, optional
            Events to annotate (onset, duration, trial_type); None: `events`.
        gaps : {"zeros", "nan"}
            What samples without data become.
        preload : bool
            Read every sample now.
        verbose : bool, str, int or None
            MNE's verbosity.

        Returns
        -------
        mef3lab.mne_bridge.raw.Mef3Raw
            The Raw; values in volts, ``meas_date`` its first sample's time (UTC).

        Raises
        ------
        ImportError
            Without MNE-Python (the message says which extra to install).
        mef3lab.errors.MixedRatesError
            When the channels have several rates and `fs` is None (the message lists them).

        Examples
        --------
        >>> raw = rec.mef3.to_mne()  # doctest: +SKIP
        >>> raw.filter(1.0, 40.0).plot()  # doctest: +SKIP
        """
        from .. import mne_bridge  # MNE loads only when asked for

        mne_bridge.require_mne()
        names = self._channels()
        if ch_types is None:
            ch_types = self._channel_types() or "seeg"
        if bads is None:
            bads = list(np.atleast_1d(self._obj.attrs.get("bads", [])))
        return mne_bridge.to_mne(
            self.spec,
            names,
            fs,
            ch_types=ch_types,
            bads=[str(b) for b in bads],
            events=self.events if events is None else events,
            line_freq=self._obj.attrs.get("power_line_frequency"),
            gaps=gaps,
            preload=preload,
            verbose=verbose,
        )

    def _channel_types(self) -> dict[str, str]:
        """Channel name -> ``channel_type`` coordinate value, for each rate group present."""
        out: dict[str, str] = {}
        for cname, _ in self._axes():
            tname = "channel_type" + cname[len("channel") :]
            if tname in self._obj.coords:
                names = np.atleast_1d(self._obj[cname].values)
                types = np.atleast_1d(self._obj[tname].values)
                out.update(zip(map(str, names), map(str, types), strict=True))
        return out

    def refresh(self) -> xr.Dataset:
        """The recording as it is on disk now, opened again: a growing recording's new samples.

        A recording a writer appends to (monitoring) keeps, in the objects opened before, the
        extent it had then. This opens it again, embedded or through the same server, as a
        new Dataset with this object's channels and sample type over the whole recording.
        The object it is asked on is left as it was: it reads its extent as before, unless
        the recording was written again (not only appended to) meanwhile, when its reads
        raise `mef3lab.errors.RecordingChangedError`.

        Returns
        -------
        xarray.Dataset
            As `mef3lab.open_recording` returns it, chunked the same way; close it when done.

        Raises
        ------
        mef3lab.errors.Mef3LabError
            When the recording cannot be opened now (gone, unreadable, a channel missing).

        Examples
        --------
        >>> rec = mef3lab.open_recording("/data/monitoring.mefd")  # doctest: +SKIP
        >>> rec = rec.mef3.refresh()  # doctest: +SKIP
        >>> rec.sizes["time"]  # doctest: +SKIP
        """
        obj = self._obj
        signals = [v for v in obj.data_vars.values()] if isinstance(obj, xr.Dataset) else [obj]
        ds = xr.open_dataset(
            replace(self.spec, revision=next(_REVISIONS)),
            engine="mef3",
            chunks={},
            channels=self._channels(),
            dtype=str(signals[0].dtype) if signals else "float32",
        )
        # as open_recording leaves them: per-channel coordinates in memory, not dask arrays
        for name, coord in ds.coords.items():
            if name not in ds.xindexes and coord.chunks is not None:
                ds[name].load()
        return ds

    def _repr_html_(self) -> str:
        from .summary import recording_html  # only notebooks ask

        return recording_html(self)

    def scroll(self, **kwargs: Any) -> Any:
        """A `mef3lab.Scroller` on this recording (or this selection's channels).

        The widget package sits above this one, so the scroller is found through the
        ``mef3lab.viewers`` entry point that the package declares, and loads only when
        asked for.

        Parameters
        ----------
        **kwargs
            As `mef3lab.Scroller`'s.

        Returns
        -------
        mef3lab.Scroller
            The widget; the last line of a notebook cell shows it.
        """
        return viewer("scroll")(self._obj, **kwargs)

    def to_uutc(self, seconds: Any) -> Any:
        """Seconds from the recording start as µUTC.

        Parameters
        ----------
        seconds : float or array_like
            Seconds from the recording start (the ``time`` coordinate's values).

        Returns
        -------
        numpy.int64 or numpy.ndarray
            µUTC, rounded to the microsecond (the shape of `seconds`).
        """
        return np.round(np.asarray(seconds, np.float64) * 1e6).astype(np.int64) + self.start_uutc


def _read_tsv(path: str) -> pd.DataFrame:
    """A BIDS TSV (tab-separated, ``n/a`` missing) as a DataFrame."""
    return pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False)


@xr.register_dataarray_accessor("mef3")
class Mef3DataArrayAccessor(Mef3Accessor):
    """``da.mef3``: gaps, annotations and session info of a recording's DataArray."""


@xr.register_dataset_accessor("mef3")
class Mef3DatasetAccessor(Mef3Accessor):
    """``ds.mef3``: gaps, annotations, session info and the rate groups of a recording's Dataset."""

    @property
    def groups(self) -> dict[float, xr.DataArray]:
        """Each rate group's signal, by rate, fastest first.

        Each with plain ``channel``, ``time``, ``fs`` and ``units`` names, whatever the
        Dataset calls them (``channel_256Hz``...).
        """
        out: dict[float, xr.DataArray] = {}
        for name, da in self._obj.data_vars.items():
            name = str(name)
            if name != "signal" and not name.startswith("signal_"):
                continue
            suffix = name[len("signal") :]
            if suffix:
                rename = {
                    k + suffix: k
                    for k in ("channel", "time", "fs", "units")
                    if k + suffix in da.coords
                }
                da = da.rename(rename)
            out[float(da.attrs["fs"])] = da.rename("signal")
        return dict(sorted(out.items(), key=lambda kv: -kv[0]))
