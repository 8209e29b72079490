"""mef3lab in Jupyter: the ``%load_ext mef3lab`` extension, its ``%mef3`` magics, progress bars,
the per-user server behind jupyter-server-proxy, and the Jupyter server extension.

Nothing heavy is imported here (the server imports `discovery`); each entry point imports
its own module on use.

* kernels: `load_ipython_extension` / `unload_ipython_extension` (`extension`);
* Jupyter server: `_jupyter_server_extension_points` (`serverext`), and the
  ``jupyter_serverproxy_servers`` entry point `proxy.setup_mef3lab`.
"""

from __future__ import annotations

from typing import Any


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext mef3lab``: a server for this kernel (or the one named or announced), magics, progress."""
    from .extension import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext mef3lab``: stop this kernel's server, read in-process again."""
    from .extension import unload

    unload(ipython)


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "mef3lab.jupyter.serverext"}]
