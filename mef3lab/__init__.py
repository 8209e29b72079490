"""mef3lab: MEF 3.0 recordings in Jupyter, fast and correct.

Public names are imported lazily (PEP 562) so that ``import mef3lab`` in a notebook
neither loads a C decoder nor starts gRPC machinery until something is used.
"""

from __future__ import annotations

import importlib
from typing import Any

from .version import __version__

_LAZY = {
    "open_reader": "mef3lab.readers",
    "synthesize": "mef3lab.testing.synth",
    "Mef3Client": "mef3lab.client",
    "open_recording": "mef3lab.xr.backend",
    "Server": "mef3lab.server.app",
    "ServerConfig": "mef3lab.server.config",
    "ServerProcess": "mef3lab.server.process",
    "set_default_address": "mef3lab.sources",
    # `%load_ext mef3lab` looks these up on the package.
    "load_ipython_extension": "mef3lab.jupyter",
    "unload_ipython_extension": "mef3lab.jupyter",
    "Scroller": "mef3lab.widget",
}

__all__ = sorted(_LAZY) + ["errors", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "errors":
        return importlib.import_module("mef3lab.errors")
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'mef3lab' has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), name)
