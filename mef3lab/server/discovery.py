"""Where a user's shared mef3lab server listens: a small JSON file in Jupyter's runtime directory.

The server writes it once it listens (``mef3lab serve --discovery-file PATH``) and removes it
when it stops; a kernel that loads the extension reads it (`find`) and uses that server
instead of starting its own, so one user's notebooks share one cache. The runtime directory
is the user's own (Jupyter makes it 0700) and the file is written 0600.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ..version import __version__

FILENAME = "mef3lab-server.json"


def runtime_dir() -> Path:
    """Jupyter's runtime directory (``JUPYTER_RUNTIME_DIR`` or the platform default)."""
    try:
        from jupyter_core.paths import jupyter_runtime_dir
    except ImportError:  # a headless server without Jupyter: jupyter_core's default on Linux
        return Path(
            os.environ.get("JUPYTER_RUNTIME_DIR") or Path.home() / ".local/share/jupyter/runtime"
        )
    return Path(jupyter_runtime_dir())


def default_path() -> Path:
    """The discovery file of this user's shared server."""
    return runtime_dir() / FILENAME


def write(path: str | os.PathLike, address: str, http_urls: list[str]) -> None:
    """Announce this process's server, atomically, in a file only this user can read.

    Parameters
    ----------
    path : str or os.PathLike
        The discovery file; its folder is created (0700) if need be.
    address : str
        Where the server's gRPC API listens.
    http_urls : list of str
        Where its status page answers.

    Raises
    ------
    OSError
        The file cannot be written.
    """
    path = Path(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    record = {"address": address, "http": http_urls, "pid": os.getpid(), "version": __version__}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".mef3lab-", suffix=".json")  # mode 0600
    with os.fdopen(fd, "w") as f:
        json.dump(record, f)
    os.replace(tmp, path)


def remove(path: str | os.PathLike) -> None:
    """Withdraw the announcement if it is still this process's (a newer server may own it).

    Parameters
    ----------
    path : str or os.PathLike
        The discovery file.
    """
    record = _load(Path(path))
    if record is not None and record.get("pid") == os.getpid():
        with contextlib.suppress(OSError):
            os.unlink(path)


def find(path: str | os.PathLike | None = None) -> dict[str, Any] | None:
    """The announced server's record, if its process is still there.

    Parameters
    ----------
    path : str or os.PathLike, optional
        The discovery file (default: `default_path`).

    Returns
    -------
    dict or None
        ``address``, ``http``, ``pid`` and ``version``; None when there is no valid file or
        its process is gone (a stale file, e.g. after a kill -9).
    """
    record = _load(Path(path) if path is not None else default_path())
    if record is None or not isinstance(record.get("address"), str):
        return None
    try:
        os.kill(int(record.get("pid", 0)), 0)
    except (OSError, ValueError):
        return None
    return record


def _load(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None
