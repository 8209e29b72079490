"""The ``mef3`` xarray engine: a MEF 3.0 recording as a lazy, dask-friendly `xarray.Dataset`.

    >>> ds = mef3lab.open_recording("/data/sub-01.mefd")            # dask-backed, nothing read yet
    >>> ds = xr.open_dataset("/data/sub-01.mefd", engine="mef3", chunks={})   # the same
    >>> ds.signal.sel(channel="LA1", time=slice(10, 20)).values     # reads ~10 s of one channel

Layout
    One data variable per sampling rate, dims ``(channel, time)``, values in channel
    units (float32 by default). When every channel shares one rate it is ``signal`` on
    dims ``("channel", "time")``; otherwise ``signal_<fs>Hz`` on
    ``("channel_<fs>Hz", "time_<fs>Hz")`` (e.g. ``signal_256Hz``), never resampled.
    ``ds.mef3.groups`` gives every group with plain ``("channel", "time")`` dims.

Time
    ``time`` is float64 seconds from the recording start (the earliest channel start,
    attrs ``start_uutc`` and ``start_time``), the same reference for every rate group.
    It is a lazy `GridTimeIndex` (no 8 bytes per sample; `mef3lab.xr.index` has
    the selection rules): ``.sel(time=slice(a, b))`` selects the samples with
    ``a <= t <= b``, clipped to the recording (empty wholly outside it); ``.sel(time=t)``
    needs ``t`` on the sample grid unless ``method="nearest"`` (or "pad"/"backfill") is
    given; a time outside the recording raises KeyError.

Gaps and missing data
    Recording gaps are NaN on the regular grid (``ds.mef3.gaps`` lists them), as are
    samples before a channel starts or after it ends. Reductions such as ``.mean`` skip
    NaN (xarray's default ``skipna=True`` for floats); pass ``skipna=False`` to see them.

Chunks
    ``chunks={}`` (open_recording's default) gives dask chunks of one source segment
    (`RecordingSource.segment_samples`, all channels of the group per chunk); ``chunks=None``
    gives xarray's lazy non-dask array; every read goes through `Mef3BackendArray`.
    A long load can show progress with dask's progress bar::

        from dask.diagnostics import ProgressBar
        with ProgressBar():
            ds.signal.load()

    Interrupting a compute (Ctrl-C) leaves the dataset usable; compute again.

Through a server
    ``mef3://host:port/abs/path.mefd``, ``address="host:port"`` or
    `mef3lab.set_default_address` read through a mef3lab server: chunks are the
    server's segments (``mef3lab serve --segment-seconds``), and each chunk read asks the
    server to prefetch the next chunk in the direction reads travel, so decoding overlaps
    the computation (`mef3lab.xr.array` has the details). A server that is down
    raises `mef3lab.errors.ServerUnavailableError` naming its address, at open or
    mid-compute; computing again once the server is back reconnects at once.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Iterable
from typing import Any

import numpy as np
import xarray as xr
from xarray.backends import BackendEntrypoint
from xarray.core import indexing

from ..model import RAW_NAN, SAMPLE_TYPES, SessionInfo
from ..sources import SourceSpec, release, resolve, retain
from . import accessor as _accessor  # noqa: F401 - registers the .mef3 accessors
from .array import Mef3BackendArray
from .index import GridTimeIndex

__all__ = ["Mef3BackendEntrypoint", "build_dataset", "open_recording", "rate_label"]


def rate_label(fs: float) -> str:
    """``256`` -> ``"256Hz"``, ``512.5`` -> ``"512p5Hz"`` (usable in variable names)."""
    text = f"{fs:.6f}".rstrip("0").rstrip(".")
    return text.replace(".", "p") + "Hz"


# -- building the Dataset ---------------------------------------------------------------


def _iso(uutc: int) -> str:
    return str(np.datetime64(int(uutc), "us"))


def _source_attrs(spec: SourceSpec) -> dict[str, str]:
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


class _Release:
    """A Dataset's close(): gives its counted use of the source back, once.

    A pickled copy did not count a use, so its close does nothing (its process's
    source, if any, lives until `mef3lab.sources.close_all` or the process ends).
    """

    def __init__(self, spec: SourceSpec, owned: bool = True) -> None:
        self.spec, self.owned = spec, owned

    def __call__(self) -> None:
        if self.owned:
            self.owned = False
            release(self.spec)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Release, (self.spec, False))


def build_dataset(
    spec: SourceSpec,
    *,
    channels: Iterable[str] | str | None = None,
    dtype: str = "float32",
    drop_variables: Iterable[str] | str | None = None,
) -> xr.Dataset:
    """The lazy Dataset of the recording `spec` names (what the engine returns before chunking)."""
    if dtype not in SAMPLE_TYPES:
        raise ValueError(f"dtype must be one of {list(SAMPLE_TYPES)}, not {dtype!r}")
    if isinstance(drop_variables, str):
        drop_variables = [drop_variables]
    drop = set(drop_variables or ())

    source = retain(spec)
    try:
        info = source.info
        names = _channel_list(info, channels)
        groups = [
            (g, tuple(n for n in names if n in g.channels))
            for g in info.rate_groups
            if any(n in g.channels for n in names)
        ]
        single = len(groups) == 1
        start = info.start_uutc
        common = {"start_uutc": int(start), "start_time": _iso(start), **_source_attrs(spec)}

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
    except BaseException:
        release(spec)
        raise

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
    ds.encoding["source"] = spec.path
    ds.set_close(_Release(spec))
    return ds


class Mef3BackendEntrypoint(BackendEntrypoint):
    """``xr.open_dataset(path_or_uri, engine="mef3", chunks={})``.

    Backend keywords: ``password``, ``reader_engine`` ("numba", the default, "pymef" or "mef3io"; named so as
    not to clash with xarray's own ``engine``), ``address`` ("host:port" of a mef3lab
    server, or False to read in this process even when a default server is set),
    ``channels`` (names, in the order wanted) and ``dtype`` ("float32" / "float64").
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
        if isinstance(filename_or_obj, SourceSpec):
            spec = filename_or_obj
        else:
            spec = resolve(filename_or_obj, password, reader_engine, address)
        return build_dataset(spec, channels=channels, dtype=dtype, drop_variables=drop_variables)

    def guess_can_open(self, filename_or_obj: Any) -> bool:
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
    """Open a MEF 3.0 recording lazily; the same Dataset as ``xr.open_dataset(..., engine="mef3")``.

    `path` is a ``.mefd`` folder or a ``mef3://host:port/abs/path.mefd`` URI (read
    through that server). `address` ("host:port") reads a plain path through a server;
    by default plain paths are read in this process unless
    `mef3lab.set_default_address` named a server (``address=False`` overrides it).
    `engine` picks the decoder for in-process reads ("numba", the default, "pymef" or "mef3io").
    `chunks` is passed to xarray: ``{}`` (default) gives dask chunks of one source segment,
    None a lazy non-dask array. `channels` selects (and orders) channels; an unknown name
    raises `mef3lab.errors.UnknownChannelError`. `dtype` is "float32" (default), "float64",
    or "int32": the stored counts (half the bytes of float64, exact), with a per-channel
    ``conversion_factor`` coordinate (``ds.signal * ds.conversion_factor`` is µV) and gaps
    marked by the ``gap_value`` attribute (-2**31); reading a channel whose MEF segments
    store different factors as int32 raises `mef3lab.errors.FactorChangeError`.

    Nothing is read until values are needed. ``.sel(time=slice(a, b))`` takes seconds
    from the recording start, inclusive, clipped to the recording (empty outside it);
    gaps are NaN and ``.mean()`` etc. skip them. A long load shows progress with
    ``with dask.diagnostics.ProgressBar(): ds.signal.load()``. See the module docstring
    for the full layout and the time-axis rules.
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
