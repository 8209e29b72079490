"""``mef3lab demo`` (``make demo``): the demo recording, then JupyterLab on ``notebooks/``.

JupyterLab runs in the foreground (this process becomes it: Ctrl-C stops it and, with it, the
per-user mef3lab server it starts at once, ``Mef3Lab.start_server=eager``, so every notebook
shares one cache). Jupyter prints the URL to open; ``MEF3LAB_DEMO_DATA`` tells the notebooks
where the demo recording is.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..testing.demo import DEMO_DATA_ENV, demo_recording


def lab_command(notebooks: Path, port: int, browser: bool) -> list[str]:
    """The JupyterLab command line: this interpreter's JupyterLab, the user server eagerly."""
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={notebooks}",
        f"--ServerApp.port={port}",
        "--Mef3Lab.start_server=eager",
    ]
    if not browser:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers and CI run as root; Jupyter refuses it otherwise
    return cmd


def run(notebooks: Path, data: Path, port: int = 8888, browser: bool = False) -> None:
    """Generate the demo recording if needed, then replace this process with JupyterLab."""
    if not notebooks.is_dir():
        raise FileNotFoundError(
            f"no notebooks folder at {notebooks} (run this from the mef3lab repository, "
            "or give --notebooks)"
        )
    data = data.resolve()
    recording = demo_recording(data)
    env = dict(os.environ, **{DEMO_DATA_ENV: str(data)})
    # Kernels and terminals find this environment's programs first (jupyter, mef3lab).
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    print(
        f"demo recording  {recording}\nJupyterLab      starting on {notebooks.resolve()}: "
        "open the http://127.0.0.1:.../lab?token=... address it prints below; Ctrl-C stops it",
        flush=True,
    )
    cmd = lab_command(notebooks.resolve(), port, browser)
    os.execve(cmd[0], cmd, env)
