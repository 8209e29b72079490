"""The lazy regular time axis of the ``mef3`` engine, and its ``.sel`` rules.

``time`` is float64 seconds from the recording start, kept as a transform instead of an
array of every sample's time; docs/xarray.md gives the selection rules.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import xarray as xr
from xarray.core import indexing
from xarray.core.indexing import IndexSelResult
from xarray.indexes import RangeIndex
from xarray.indexes.range_index import RangeCoordinateTransform

__all__ = ["GridTimeIndex", "GridTransform"]

#: Positions within this many samples of a grid point count as on the grid.
_EPS = 1e-6


class _GridCoordinateArray(indexing.CoordinateTransformIndexingAdapter):
    """The time coordinate's values, computed only for the positions asked for.

    Reported as in memory so that dask chunking (``chunks={}``) leaves the coordinate
    alone instead of wrapping the whole axis in one giant dask chunk.
    """

    @property
    def _in_memory(self) -> bool:
        return True


class GridTransform(RangeCoordinateTransform):
    """Position i -> ``origin + (k_first + i * stride) / fs`` seconds: grid sample k at k / fs.

    Keeping the integer grid index (instead of a float start that drifts as slices of
    slices accumulate) makes a selection's times bit-identical to the full axis's.
    """

    __slots__ = ("fs", "k_first", "origin", "stride")

    def __init__(
        self,
        origin: float,
        fs: float,
        k_first: int,
        stride: int,
        size: int,
        coord_name: Hashable,
        dim: str,
    ) -> None:
        self.origin, self.fs, self.k_first, self.stride = (
            float(origin),
            float(fs),
            int(k_first),
            int(stride),
        )
        start = self.origin + self.k_first / self.fs
        super().__init__(
            start, start + size * stride / self.fs, size, coord_name, dim, step=stride / self.fs
        )

    def forward(self, dim_positions: dict[str, Any]) -> dict[Hashable, Any]:
        """Positions along the dimension -> times in seconds."""
        k = self.k_first + np.asarray(dim_positions[self.dim]) * self.stride
        return {self.coord_name: self.origin + k / self.fs}

    def reverse(self, coord_labels: dict[Hashable, Any]) -> dict[str, Any]:
        """Times in seconds -> (fractional) positions along the dimension."""
        k = (np.asarray(coord_labels[self.coord_name], np.float64) - self.origin) * self.fs
        return {self.dim: (k - self.k_first) / self.stride}

    def slice(self, sl: slice) -> GridTransform:
        """The transform of the positions `sl` selects (still on the same grid)."""
        r = range(self.size)[sl]
        return type(self)(
            self.origin,
            self.fs,
            self.k_first + r.start * self.stride,
            self.stride * r.step,
            len(r),
            self.coord_name,
            self.dim,
        )


class GridTimeIndex(RangeIndex):
    """A regular time axis, sample k at ``origin + k / fs`` seconds, that never lists its values.

    xarray's `RangeIndex` only selects with ``method="nearest"``; this one adds what a
    time axis needs: ``.sel(time=slice(a, b))`` with plain floats (inclusive bounds, like
    pandas), exact scalar/array lookup with a tolerance of a millionth of a sample, and
    ``method="nearest" | "pad" | "backfill"`` with an optional ``tolerance`` in seconds.
    """

    transform: GridTransform

    @classmethod
    def regular(cls, origin: float, fs: float, size: int, dim: str) -> GridTimeIndex:
        """The index of `size` samples at rate `fs` from `origin` seconds, on dimension `dim`.

        Parameters
        ----------
        origin : float
            The time of the first sample, in seconds from the recording start.
        fs : float
            The sampling rate in Hz.
        size : int
            The number of samples.
        dim : str
            The dimension, also the coordinate's name.

        Returns
        -------
        GridTimeIndex
            The index.
        """
        return cls(GridTransform(origin, fs, 0, 1, size, dim, dim))

    def create_variables(
        self, variables: Mapping[Any, xr.Variable] | None = None
    ) -> dict[Hashable, xr.Variable]:
        """The time coordinate, its values computed only where they are read."""
        out = {}
        for name, var in super().create_variables(variables).items():
            data = _GridCoordinateArray(self.transform, name, var.dims)
            out[name] = xr.Variable(var.dims, data, attrs=var.attrs, encoding=var.encoding)
        return out

    def isel(self, indexers: Mapping[Any, Any]) -> Any:
        """The index of a positional selection (still a `GridTimeIndex` where it is regular)."""
        index = super().isel(indexers)
        if isinstance(index, RangeIndex) and not isinstance(index, GridTimeIndex):
            return type(self)(index.transform)
        return index

    def _positions(self, labels: np.ndarray) -> np.ndarray:
        if labels.dtype.kind not in "iuf":
            raise TypeError(
                f"{self.dim} is in seconds from the recording start; select it with numbers, "
                f"not {labels.dtype} values"
            )
        return self.transform.reverse({self.coord_name: labels})[self.dim]

    def sel(
        self, labels: dict[Any, Any], method: str | None = None, tolerance: Any = None
    ) -> IndexSelResult:
        """The positions of times (or a slice of times), as `xarray.Dataset.sel` asks.

        Parameters
        ----------
        labels : dict
            The coordinate's name -> a time, an array of times or a slice (seconds).
        method : {None, "nearest", "pad", "ffill", "backfill", "bfill"}, optional
            None: each time must be on the sample grid; else the nearest sample, the one
            at or before, or the one at or after.
        tolerance : float, optional
            The largest distance in seconds from a time to the sample taken.

        Returns
        -------
        xarray.core.indexing.IndexSelResult
            The positions.

        Raises
        ------
        KeyError
            When a time is off the grid (without `method`), outside the recording, or
            farther than `tolerance` from every sample.
        TypeError
            When the times are not numbers.
        ValueError
            When `method` is none of the above or a slice's step is below one sample.
        """
        label = labels[self.coord_name]
        if isinstance(label, slice):
            return IndexSelResult({self.dim: self._slice(label)})

        if isinstance(label, xr.DataArray | xr.Variable):
            values = np.asarray(label.values)
        else:
            values = np.asarray(label)
        pos = self._positions(values)
        if method is None:
            k = np.rint(pos)
            off = np.abs(pos - k) > _EPS
            if np.any(off):
                bad = np.atleast_1d(values)[np.atleast_1d(off)][0]
                raise KeyError(
                    f"{self.dim}={bad!r} s is not on the sample grid (step {self.step:.9g} s); "
                    "use method='nearest' to take the closest sample"
                )
        elif method == "nearest":
            k = np.clip(np.rint(pos), 0, self.size - 1)
        elif method in ("pad", "ffill"):
            k = np.floor(pos + _EPS)
        elif method in ("backfill", "bfill"):
            k = np.ceil(pos - _EPS)
        else:
            raise ValueError(f"method must be None, 'nearest', 'pad' or 'backfill', not {method!r}")
        outside = (k < 0) | (k >= self.size)
        if np.any(outside):
            bad = np.atleast_1d(values)[np.atleast_1d(outside)][0]
            raise KeyError(
                f"{self.dim}={bad!r} s is outside the recording "
                f"[{self.start:.6g}, {self.start + self.size * self.step:.6g}) s"
            )
        if tolerance is not None:
            dist = np.abs(values - self.transform.forward({self.dim: k})[self.coord_name])
            if np.any(dist > tolerance):
                bad = np.atleast_1d(values)[np.atleast_1d(dist > tolerance)][0]
                raise KeyError(f"no sample of {self.dim} within {tolerance} s of {bad!r} s")
        k = k.astype(np.int64)

        if isinstance(label, xr.DataArray):
            indexer: Any = xr.DataArray(k, coords=label._coords, dims=label.dims)
        elif isinstance(label, xr.Variable):
            indexer = xr.Variable(label.dims, k)
        elif k.ndim == 0:
            indexer = int(k)
        else:
            indexer = k
        return IndexSelResult({self.dim: indexer})

    def _slice(self, label: slice) -> slice:
        def pos(x: Any) -> float:
            return float(self._positions(np.asarray(x)))

        i0 = 0 if label.start is None else max(0, math.ceil(pos(label.start) - _EPS))
        i1 = (
            self.size
            if label.stop is None
            else min(self.size, math.floor(pos(label.stop) + _EPS) + 1)
        )
        i0 = min(i0, self.size)
        step = None
        if label.step is not None:
            step = int(round(abs(label.step / self.step)))
            if step < 1:
                raise ValueError(f"a {self.dim} slice step of {label.step} s is below one sample")
        return slice(i0, max(i0, i1), step)
