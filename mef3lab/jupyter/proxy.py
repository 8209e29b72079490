"""The jupyter-server-proxy entry point ``mef3lab``: the status page at ``<jupyter>/mef3lab/``.

jupyter-server-proxy carries HTTP, not gRPC, so it proxies to the user server's HTTP Unix
socket. The ``command`` callable starts that server on first visit (or finds it started by
the server extension) and returns no command, so the proxy does not manage a second process:
the server's life is `user_server`'s, shared with the server extension and the kernels.
A server that died after the first visit is restarted by the next kernel that asks
(``%mef3 restart``) or by restarting Jupyter; the proxy does not re-run the callable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import user_server

ICON = Path(__file__).with_name("mef3lab.svg")


def _start() -> list[str]:
    user_server.get().ensure()
    return []


def setup_mef3lab() -> dict[str, Any]:
    """jupyter-server-proxy's description of the mef3lab entry (a launcher tile "mef3lab")."""
    return {
        "command": _start,
        "unix_socket": str(user_server.get().http_socket),
        "timeout": 60,
        "new_browser_tab": False,
        # The "Notebook" category (the default) is where JupyterLab shows an entry's icon.
        "launcher_entry": {"title": "mef3lab", "icon_path": str(ICON)},
    }
