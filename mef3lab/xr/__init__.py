"""The ``mef3`` xarray engine: a recording as a lazy, dask-chunked `xarray.Dataset`.

`open_recording` opens one; the ``.mef3`` accessor on what it returns gives its gaps,
annotations and rate groups. docs/xarray.md describes the Dataset.
"""

from .backend import Mef3BackendEntrypoint, open_recording, rate_label

__all__ = ["Mef3BackendEntrypoint", "open_recording", "rate_label"]
