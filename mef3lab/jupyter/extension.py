"""``%load_ext mef3lab`` / ``%unload_ext mef3lab``: one connection per kernel, magic, progress.

Loading twice starts nothing new (IPython refuses a second ``%load_ext``, and a direct second
call finds the kernel's connection). Unloading stops the kernel's own server; a kernel that
ends any other way (restart, shutdown, kill -9) loses it too, since the server watches the
kernel process (`ServerProcess`).
"""

from __future__ import annotations

from typing import Any

from IPython.display import display

from . import progress
from .connection import Connection
from .magics import Mef3Magics

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
    progress.enable()
    display(_connection)


def unload(ipython: Any) -> None:
    """Close the kernel's connection (stopping its own server), remove the magic and the bars."""
    global _connection
    if _connection is None:
        return
    _connection.close()
    _connection = None
    progress.disable()
    for kind in ("line", "cell"):
        ipython.magics_manager.magics[kind].pop("mef3", None)
