"""``%load_ext mef3lab`` / ``%unload_ext mef3lab``: one connection per kernel, magic, progress.

Loading twice starts nothing new (IPython refuses a second ``%load_ext``, and a direct second
call finds the kernel's connection). Unloading stops the kernel's own server; a kernel that
ends any other way (restart, shutdown, kill -9) loses it too, since the server watches the
kernel process (`ServerProcess`).

Loading imports neither xarray nor dask: it returns at once, and a thread then imports what
the first open and the first scroller need (`PRELOAD`) while the user types the next cell.
The progress bars are turned on just before that next cell runs, on the kernel's main thread:
dask swaps its set of callbacks while a compute runs, so one registered from another thread
meanwhile would be lost.
"""

from __future__ import annotations

import importlib
import sys
import threading
from typing import Any

from IPython.display import display

from .connection import Connection
from .magics import Mef3Magics

#: Imported in the background once the extension is loaded: what the first open needs, and
#: the scroller's module (with anywidget and ipywidgets).
PRELOAD = ("dask.array", "xarray", "mef3lab.xr", "mef3lab.widget.scroller")

_connection: Connection | None = None


def connection() -> Connection | None:
    """The kernel's connection, once the extension is loaded (else None)."""
    return _connection


def load(ipython: Any) -> None:
    """Connect this kernel, register the magic, enable progress bars, show the connection."""
    global _connection
    if _connection is not None:
        print(f"mef3lab is already loaded: {_connection.summary()}")
        return
    _connection = Connection().connect()
    ipython.register_magics(Mef3Magics(ipython, _connection))
    display(_connection)
    threading.Thread(target=lambda: _preload(), name="mef3lab-preload", daemon=True).start()
    ipython.events.register("pre_run_cell", _progress_on)


def _preload() -> None:
    """Import `PRELOAD`, and load the decoder if recordings are read in this process.

    Through a server they are decoded there: the kernels would cost this process a
    moment of its GIL and their memory for nothing (``address=False`` still loads them,
    at its first pause).
    """
    for name in PRELOAD:
        importlib.import_module(name)
    if _connection is not None and _connection.address is None:
        from ..readers import warm_up

        warm_up()  # the decoder's kernels, for reads in this process


def _progress_on(*_: Any) -> None:
    """Before the first cell after loading: show progress bars (once)."""
    from IPython import get_ipython

    get_ipython().events.unregister("pre_run_cell", _progress_on)
    from . import progress

    progress.enable()


def unload(ipython: Any) -> None:
    """Close the kernel's connection (stopping its own server), remove the magic and the bars."""
    global _connection
    if _connection is None:
        return
    _connection.close()
    _connection = None
    if _progress_on in ipython.events.callbacks["pre_run_cell"]:
        ipython.events.unregister("pre_run_cell", _progress_on)
    if f"{__package__}.progress" in sys.modules:
        from . import progress

        progress.disable()
    for kind in ("line", "cell"):
        ipython.magics_manager.magics[kind].pop("mef3", None)
