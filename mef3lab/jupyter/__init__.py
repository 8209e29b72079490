"""mef3lab in Jupyter: the kernel extension, its magic, progress bars, and the per-user server.

The ``%load_ext mef3lab`` extension and its ``%mef3`` magic, the per-user server behind
jupyter-server-proxy, and the Jupyter server extension. Nothing heavy is imported here; each
entry point imports its own module on use.

* kernels: `load_ipython_extension` / `unload_ipython_extension` (`extension`);
* Jupyter server: `_jupyter_server_extension_points` (`serverext`), and the
  ``jupyter_serverproxy_servers`` entry point `proxy.setup_mef3lab`.
"""

from __future__ import annotations

from typing import Any


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext mef3lab``: a server for this kernel, the ``%mef3`` magic, progress bars.

    The kernel reads through the server named by ``MEF3LAB_SERVER``, else the one this user's
    Jupyter announced, else one it starts for itself; if none can be had, it reads in-process
    and says why. Loading twice starts nothing new.

    Parameters
    ----------
    ipython : IPython.core.interactiveshell.InteractiveShell
        The kernel's shell (IPython passes it).

    Examples
    --------
    In a notebook cell::

        %load_ext mef3lab
        %mef3 status
    """
    from .extension import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext mef3lab``: stop this kernel's own server and read in-process again.

    Parameters
    ----------
    ipython : IPython.core.interactiveshell.InteractiveShell
        The kernel's shell (IPython passes it).
    """
    from .extension import unload

    unload(ipython)


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """Where Jupyter finds the server extension."""
    return [{"module": "mef3lab.jupyter.serverext"}]
