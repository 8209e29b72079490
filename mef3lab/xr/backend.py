"""The ``mef3`` xarray engine: a MEF 3.0 recording as a lazy, dask-friendly `xarray.Dataset`.

`open_recording` and ``xr.open_dataset(..., engine="mef3")`` open a recording through
`mef3lab.sources` (one counted use, given back when the Dataset closes) and lay it out as
one variable per sampling rate; docs/xarray.md describes the layout, the time axis, gaps,
chunks and reading through a server.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Iterable
from typing import Any

import numpy as np
import xarray as xr
from xarray.backends import BackendEntrypoint
from xarray.core import indexing

from .. import sources
from ..model import RAW_NAN, SAMPLE_TYPES, SessionInfo
from ..sources import SourceHandle, SourceSpec
from . import accessor as _accessor  # noqa: F401 - registers the .mef3 accessors
from .array import Mef3BackendArray
from .index import GridTimeIndex

__all__ = ["Mef3BackendEntrypoint", "open_recording", "rate_label"]


def rate_label(fs: float) -> str:
    """``256`` -> ``"256Hz"``, ``512.5`` -> ``"512p5Hz"`` (usable in variable names)."""
    text = f"{fs:.6f}".rstrip("0").rstrip(".")
    return text.replace(".", "p") + "Hz"


# -- building the Dataset ---------------------------------------------------------------


def _iso(uutc: int) -> str:
    return str(np.datetime64(int(uutc), "us"))


def _spec_attrs(spec: SourceSpec) -> dict[str, str]:
    return {
        "mef3_path": spec.path,
        "mef3_address": spec.address or "",
        "mef3_engine": spec.engine or "",
    }


def _channel_list(info: SessionInfo, channels: Iterable[str] | str | None) -> tuple[str, ...]:
    names = info.check_channels(channels)
    seen = set()
    for n in names:
        if n in seen:
            raise ValueError(f"channel {n!r} is asked for twice")
        seen.add(n)
    return names


def _dataset(
    handle: SourceHandle, channels: Iterable[str] | str | None, dtype: str, drop: set[str]
) -> xr.Dataset:
    """The lazy Dataset of the recording `handle` holds open (its close is the caller's to set)."""
    spec, source = handle.spec, handle.source
    info = source.info
    names = _channel_list(info, channels)
    groups = [
        (g, tuple(n for n in names if n in g.channels))
        for g in info.rate_groups
        if any(n in g.channels for n in names)
    ]
    single = len(groups) == 1
    start = info.start_uutc
    common = {
        "start_uutc": int(start),
        # ISO UTC for programs; de-identified times are never written as dates in 1970
        "start_time": info.clock(start, digits=6) if info.deidentified else _iso(start),
        "start_clock": info.clock(start),  # local time with its offset, for people
        "utc_offset_s": info.utc_offset_s or 0,  # seconds east of UTC the clock uses
        **_spec_attrs(spec),
    }
    if info.notes:
        common["time_notes"] = "; ".join(info.notes)

    data_vars: dict[Hashable, xr.Variable] = {}
    coords: dict[Hashable, Any] = {}
    indexes: list[xr.Coordinates] = []
    for group, mine in groups:
        suffix = "" if single else "_" + rate_label(group.fs)
        var, cdim, tdim = "signal" + suffix, "channel" + suffix, "time" + suffix
        if var in drop:
            continue
        chans = [info.channel(n) for n in mine]
        units = [c.units for c in chans]

        array = Mef3BackendArray(spec, mine, group.grid.n_samples, dtype, float(group.fs))
        attrs = {"long_name": "signal", "fs": float(group.fs), **common}
        if dtype == "int32":  # not `_FillValue`: CF decoding would turn the counts into floats
            attrs.update(
                long_name="stored counts (value = count × conversion_factor)",
                gap_value=int(RAW_NAN),
            )
        elif len(set(units)) == 1:
            attrs["units"] = units[0]
        v = xr.Variable((cdim, tdim), indexing.LazilyIndexedArray(array), attrs=attrs)
        v.encoding = {
            "preferred_chunks": {cdim: len(mine), tdim: source.segment_samples(group.fs)},
            "dtype": np.dtype(dtype),
        }
        data_vars[var] = v

        coords[cdim] = xr.Variable(cdim, np.array(mine, dtype=object))
        coords["fs" + suffix] = xr.Variable(
            cdim, np.array([c.fs for c in chans], np.float64), {"units": "Hz"}
        )
        coords["units" + suffix] = xr.Variable(cdim, np.array(units, dtype=object))
        coords["units_text" + suffix] = xr.Variable(
            cdim,
            np.array([c.units_text for c in chans], dtype=object),
            {"long_name": "units as the file stores them"},
        )
        coords["conversion_factor" + suffix] = xr.Variable(
            cdim,
            np.array([c.conversion_factor for c in chans], np.float64),
            {"long_name": "units per count"},
        )

        offset = (group.grid.start_uutc - start) / 1e6
        index = GridTimeIndex.regular(offset, group.fs, group.grid.n_samples, tdim)
        tcoords = xr.Coordinates.from_xindex(index)
        tcoords[tdim].attrs.update(
            {"units": "s", "long_name": "time from recording start", "fs": float(group.fs)}
        )
        indexes.append(tcoords)

    ds = xr.Dataset(data_vars, coords=coords)
    for tcoords in indexes:
        ds = ds.assign_coords(tcoords)
    ds.attrs.update(
        {
            **common,
            "end_uutc": int(info.end_uutc),
            "duration_s": float(info.duration_s),
            "n_channels": len(names),
        }
    )
    if info.damaged:  # left out of the variables; a string, so the Dataset still writes to netCDF
        ds.attrs["damaged_channels"] = "; ".join(
            f"{name}: {why}" for name, why in info.damaged.items()
        )
    ds.encoding["source"] = spec.path  # xarray's key for the file a Dataset was read from
    return ds


class Mef3BackendEntrypoint(BackendEntrypoint):
    """The ``mef3`` engine of `xarray.open_dataset`: ``xr.open_dataset(path, engine="mef3")``.

    Its keywords are `open_recording`'s, except that the decoder is ``reader_engine`` (so as
    not to clash with xarray's own ``engine``) and ``chunks`` is xarray's.
    """

    description = "MEF 3.0 recordings (.mefd sessions, or mef3://host:port/path URIs) via mef3lab"
    open_dataset_parameters = (
        "filename_or_obj",
        "drop_variables",
        "password",
        "reader_engine",
        "address",
        "channels",
        "dtype",
    )

    def open_dataset(  # type: ignore[override]
        self,
        filename_or_obj: Any,
        *,
        drop_variables: Iterable[str] | str | None = None,
        password: str | None = None,
        reader_engine: str | None = None,
        address: str | None | bool = None,
        channels: Iterable[str] | str | None = None,
        dtype: str = "float32",
    ) -> xr.Dataset:
        """The lazy Dataset of a recording (a path, ``mef3://`` URI or `SourceSpec`).

        Parameters
        ----------
        filename_or_obj : str, os.PathLike or SourceSpec
            The recording.
        drop_variables : str or iterable of str, optional
            Variables (``signal`` or ``signal_<fs>Hz``) to leave out.
        password, address, channels, dtype
            As in `open_recording`.
        reader_engine : str, optional
            `open_recording`'s ``engine``: the decoder for reads in this process.

        Returns
        -------
        xarray.Dataset
            Not chunked yet; closing it gives back its use of the recording's source.
        """
        if dtype not in SAMPLE_TYPES:
            raise ValueError(f"dtype must be one of {list(SAMPLE_TYPES)}, not {dtype!r}")
        if isinstance(drop_variables, str):
            drop_variables = [drop_variables]
        handle = sources.open(filename_or_obj, password, reader_engine, address)
        try:
            ds = _dataset(handle, channels, dtype, set(drop_variables or ()))
        except BaseException:
            handle.close()
            raise
        ds.set_close(handle.close)
        return ds

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        """Whether `filename_or_obj` is a `SourceSpec`, a ``mef3://`` URI or a ``.mefd`` path."""
        if isinstance(filename_or_obj, SourceSpec):
            return True
        try:
            p = os.fspath(filename_or_obj)
        except TypeError:
            return False
        if isinstance(p, bytes):
            return False
        return p.startswith("mef3://") or p.rstrip("/").endswith(".mefd")


def open_recording(
    path: str | os.PathLike,
    *,
    password: str | None = None,
    engine: str | None = None,
    address: str | None | bool = None,
    chunks: Any = {},  # noqa: B006 - xarray's own convention; never mutated
    channels: Iterable[str] | str | None = None,
    dtype: str = "float32",
) -> xr.Dataset:
    """Open a MEF 3.0 recording lazily, as an `xarray.Dataset`.

    The same Dataset as ``xr.open_dataset(path, engine="mef3", chunks={})``: one variable per
    sampling rate, dims ``(channel, time)``, time in seconds from the recording start, gaps
    NaN. Nothing is read until values are needed. docs/xarray.md describes the layout, the
    time axis and its selection rules, gaps, chunks and reading through a server.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.mefd`` folder, or a ``mef3://host:port/abs/path.mefd`` URI (read through that
        server).
    password : str, optional
        The recording's password, if it is encrypted. It is never stored in the Dataset.
    engine : str, optional
        The decoder for reads in this process: "numba" (the default), "pymef" or "mef3io".
    address : str or bool, optional
        "host:port" (or "unix:/path") of a mef3lab server to read a plain path through.
        None (the default) reads in this process, unless `mef3lab.set_default_address`
        named a server; False reads in this process even then.
    chunks : dict or None, optional
        Passed to xarray: ``{}`` (the default) gives dask chunks of one source segment
        (all channels of a rate group per chunk), None a lazy array without dask.
    channels : str or iterable of str, optional
        The channels to open, in the order wanted; None: all of them.
    dtype : {"float32", "float64", "int32"}, optional
        Values in channel units ("float32", the default, or "float64"), or "int32": the
        stored counts, exact, with a per-channel ``conversion_factor`` coordinate
        (``ds.signal * ds.conversion_factor`` is in channel units) and gaps marked by the
        ``gap_value`` attribute (-2**31).

    Returns
    -------
    xarray.Dataset
        ``signal`` on ``("channel", "time")`` when every channel shares one rate, else one
        ``signal_<fs>Hz`` per rate (``ds.mef3.groups`` gives each with plain dims). Closing
        it releases the recording's reader or server connection when no other open Dataset
        uses it.

    Raises
    ------
    ValueError
        When `dtype` is not one of the above, a channel is asked for twice, or the path or
        address is malformed or they contradict each other.
    mef3lab.errors.RecordingNotFoundError
        When there is no recording at `path`.
    mef3lab.errors.NotAMefSessionError
        When `path` is not a MEF 3.0 session.
    mef3lab.errors.UnknownChannelError
        When `channels` names a channel the recording does not have.
    mef3lab.errors.PasswordError
        When the recording is encrypted and `password` does not open it.
    mef3lab.errors.ServerUnavailableError
        When the server it is read through does not answer (also later, on a read).
    mef3lab.errors.FactorChangeError
        On a read as "int32" of a channel whose MEF segments store different conversion
        factors.

    See Also
    --------
    xarray.open_dataset : with ``engine="mef3"``, the same Dataset.
    mef3lab.set_default_address : read plain paths through a server.

    Examples
    --------
    >>> import mef3lab
    >>> rec = mef3lab.open_recording("/data/sub-01.mefd")  # doctest: +SKIP
    >>> rec.signal.sel(channel="LA1", time=slice(10, 20)).values  # doctest: +SKIP
    >>> rec = mef3lab.open_recording("mef3://lab:50051/data/sub-01.mefd")  # doctest: +SKIP
    >>> rec.signal.mean("time").compute()  # doctest: +SKIP
    """
    ds = xr.open_dataset(
        os.fspath(path),
        engine=Mef3BackendEntrypoint,
        chunks=chunks,
        password=password,
        reader_engine=engine,
        address=address,
        channels=channels,
        dtype=dtype,
    )
    # xarray makes every non-index coordinate a dask array; per-channel ones are tiny
    for name, coord in ds.coords.items():
        if name not in ds.xindexes and coord.chunks is not None:
            ds[name].load()
    return ds
