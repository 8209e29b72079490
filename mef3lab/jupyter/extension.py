"""``%load_ext mef3lab`` / ``%unload_ext mef3lab``: one connection per kernel, magic, progress.

Loading twice starts nothing new (IPython refuses a second ``%load_ext``, and a direct second
call finds the kernel's connection). Unloading stops the kernel's own server; a kernel that
ends any other way (restart, shutdown, kill -9) loses it too, since the server watches the
kernel process (`ServerProcess`).

Loading imports neither xarray nor dask: it returns at once, and a thread then imports what
the first open needs (`PRELOAD`) while the user types the next cell, and turns the progress
bars on.
"""

from __future__ import annotations

import importlib
import sys
import threading
from typing import Any

from IPython.display import display

from .connection import Connection
from .magics import Mef3Magics

#: Imported in the background once the extension is loaded (the first open needs them).
PRELOAD = ("dask.array", "xarray", "mef3lab.xr")

_connection: Connection | None = None
_lock = threading.Lock()  # progress bars are turned on only while loaded


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


def _preload() -> None:
    """Import `PRELOAD`, load the decoder, then show progress bars unless unloaded meanwhile."""
    for name in PRELOAD:
        importlib.import_module(name)
    from ..readers import warm_up
    from . import progress

    warm_up()  # the decoder's kernels, for reads in this process

    with _lock:
        if _connection is not None:
            progress.enable()


def unload(ipython: Any) -> None:
    """Close the kernel's connection (stopping its own server), remove the magic and the bars."""
    global _connection
    if _connection is None:
        return
    _connection.close()
    with _lock:
        _connection = None
    if f"{__package__}.progress" in sys.modules:  # maybe still importing: wait for it
        from . import progress

        progress.disable()
    for kind in ("line", "cell"):
        ipython.magics_manager.magics[kind].pop("mef3", None)
