"""MEF 3.0 (EEG/iEEG) recordings in Jupyter: read them, serve them, scroll through them.

Every name below is imported on first use (PEP 562), so ``import mef3lab`` in a notebook
loads neither a C decoder nor gRPC until something is used.

Reading
    `open_recording`
        A recording as a lazy, dask-chunked `xarray.Dataset`, in this process or through a
        server (the same Dataset as ``xarray.open_dataset(path, engine="mef3")``).
    `open_reader`
        A recording opened with one decoder, for direct reads (`mef3lab.readers.Reader`).
    `set_default_address`
        Read plain paths through a mef3lab server from now on (or in this process again).
    `open_bids`
        An iEEG-BIDS dataset's MEF 3.0 runs, each opened with its sidecars (the ``mne``
        extra); ``rec.mef3.to_mne()`` makes any recording an MNE Raw.
    `errors`
        The exceptions mef3lab raises, the same whether a recording is read here or remotely.

Serving
    `Server`, `ServerConfig`
        A mef3lab server in this process, and its settings.
    `ServerProcess`
        A mef3lab server in a child process.
    `Mef3Client`
        The Python client of a mef3lab server.

Jupyter
    `Scroller`
        A notebook widget that pages through a recording.
    `load_ipython_extension`, `unload_ipython_extension`
        ``%load_ext mef3lab``: a server for the kernel, the ``%mef3`` magic, progress bars.

Testing
    `synthesize`
        Write a synthetic EEG recording with known content.

Examples
--------
>>> import mef3lab
>>> path = mef3lab.synthesize("demo.mefd", channels=4, seconds=60)  # doctest: +SKIP
>>> rec = mef3lab.open_recording(path)  # doctest: +SKIP
>>> rec.signal.sel(time=slice(10, 20)).mean("time")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

from .version import __version__

#: Each public name, lazily imported, and the module it comes from.
_LAZY = {
    # reading
    "open_recording": "mef3lab.xr.backend",
    "open_reader": "mef3lab.readers",
    "set_default_address": "mef3lab.sources",
    "open_bids": "mef3lab.bids",
    # serving
    "Server": "mef3lab.server.app",
    "ServerConfig": "mef3lab.server.config",
    "ServerProcess": "mef3lab.server.process",
    "Mef3Client": "mef3lab.client",
    # Jupyter (`%load_ext mef3lab` looks the two hooks up on the package)
    "Scroller": "mef3lab.widget",
    "load_ipython_extension": "mef3lab.jupyter",
    "unload_ipython_extension": "mef3lab.jupyter",
    # testing
    "synthesize": "mef3lab.testing.synth",
}

__all__ = [*_LAZY, "errors", "__version__"]


def __getattr__(name: str) -> Any:
    """Import a public name on first use."""
    if name == "errors":
        return importlib.import_module("mef3lab.errors")
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'mef3lab' has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), name)
