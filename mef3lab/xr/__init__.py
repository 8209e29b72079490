"""The ``mef3`` xarray engine: a recording as a lazy, dask-chunked `xarray.Dataset`, and its ``.mef3`` accessor."""

from .backend import Mef3BackendEntrypoint, open_recording, rate_label

__all__ = ["Mef3BackendEntrypoint", "open_recording", "rate_label"]
