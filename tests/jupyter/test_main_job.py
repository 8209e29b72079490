"""The README's first command, `make demo`, as a newcomer runs it: the demo recording is generated,
JupyterLab answers on notebooks/ at the URL it prints, this user's mef3lab server is already up
(eager), and stopping it (SIGTERM, as on Ctrl-C) leaves nothing running.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from _jupyter import Jupyter, free_port

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # writes the 1-hour 64-channel demo recording (~6 s) and starts JupyterLab
def test_make_demo_opens_jupyterlab_and_stops_clean(tmp_path, process_tag):
    port = free_port()
    env = dict(
        os.environ,
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"),
    )
    env.pop("MEF3LAB_SERVER", None)
    lab = Jupyter(
        ["make", "-s", "demo", f"ARGS=--port {port} --data {tmp_path / 'data'}"],
        port,
        env,
        str(REPO),
        str(tmp_path / "demo.log"),
    )
    try:
        lab.wait("lab", timeout=180)
        out = lab.output()
        assert f"demo recording  {tmp_path / 'data' / 'demo.mefd'}" in out
        token = re.search(rf"http://127\.0\.0\.1:{port}/lab\?token=(\w+)", out).group(
            1
        )  # the URL it printed
        assert "JupyterLab" in lab.get(f"lab?token={token}")[2].decode()
        assert (tmp_path / "data" / "demo.mefd" / ".complete").exists()
        assert {"01-quickstart.ipynb", "02-dask-reduction.ipynb"} <= {
            c["name"] for c in lab.get_json(f"api/contents?token={token}")["content"]
        }
        deadline = time.monotonic() + 30  # eager: the user server starts with JupyterLab, unasked
        while not (tmp_path / "runtime" / "mef3lab-server.json").exists():
            assert time.monotonic() < deadline, "the user server did not start with JupyterLab"
            time.sleep(0.2)
    finally:
        lab.stop()
    assert process_tag.leftovers(within=15) == []
