"""The Jupyter server extension: this user's mef3lab server, started with Jupyter or on first use.

Enabled on install (``etc/jupyter/jupyter_server_config.d/mef3lab.json``). Setting::

    # start it with Jupyter (default "lazy": on the first visit to the mef3lab/ page;
    # kernels that come first start their own)
    c.Mef3Lab.start_server = "eager"

It stops when Jupyter stops (`user_server`).
"""

from __future__ import annotations

import threading
from typing import Any

from traitlets import Enum
from traitlets.config import Configurable

from . import user_server


class Mef3Lab(Configurable):
    """Settings of the mef3lab server extension."""

    start_server = Enum(
        ["eager", "lazy"],
        default_value="lazy",
        config=True,
        help="'eager': start this user's mef3lab server with Jupyter; 'lazy': on the first "
        "visit to its status page (the mef3lab launcher tile)",
    )


def _load_jupyter_server_extension(serverapp: Any) -> None:
    settings = Mef3Lab(parent=serverapp)
    if settings.start_server == "eager":
        # In the background: Jupyter answers at once; the first request waits on the same lock.
        threading.Thread(
            target=_start, args=(serverapp.log,), name="mef3lab-start", daemon=True
        ).start()
    serverapp.log.info("mef3lab: server extension loaded (start_server=%s)", settings.start_server)


def _start(log: Any) -> None:
    try:
        user_server.get().ensure()
    except Exception:  # noqa: BLE001 - Jupyter keeps running; kernels start their own servers
        log.exception("mef3lab: this user's server did not start")
