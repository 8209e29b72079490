"""A real Jupyter server with jupyter-server-proxy: the ``mef3lab`` entry's status page, JSON and
metrics through the proxy path, a kernel of the same user that finds and shares that server, and
nothing left once Jupyter stops.
"""

from __future__ import annotations

import json
import os

import pytest
from _jupyter import Jupyter, free_port
from prometheus_client.parser import text_string_to_metric_families


@pytest.fixture
def jupyter(tmp_path, process_tag):
    runtime = tmp_path / "runtime"
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(runtime))
    env.pop("MEF3LAB_SERVER", None)
    j = Jupyter.server(free_port(), env, str(tmp_path), str(tmp_path / "jupyter.log"))
    try:
        j.wait()
        yield j
    finally:
        j.stop()


def test_status_page_json_and_metrics_through_the_proxy(
    jupyter, tmp_path, start_kernel, recording, process_tag
):
    entries = jupyter.get_json("server-proxy/servers-info")["server_processes"]
    tile = next(e for e in entries if e["name"] == "mef3lab")
    assert (
        tile["launcher_entry"]["title"] == "mef3lab"
        and tile["launcher_entry"]["path_info"] == "mef3lab/"
    )

    code, kind, body = jupyter.get("mef3lab/")  # the first visit starts this user's server
    assert code == 200 and kind.startswith("text/html") and "mef3lab server" in body.decode()
    discovered = json.loads((tmp_path / "runtime" / "mef3lab-server.json").read_text())

    k = start_kernel(JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))  # a kernel of the same user
    assert "your Jupyter's shared server" in k.ok("%load_ext mef3lab").text
    k.ok(
        f"import mef3lab; rec = mef3lab.open_recording({str(recording)!r}); "
        "rec.signal[:, :1000].values"
    )

    status = jupyter.get_json("mef3lab/api/status")
    assert (
        status["address"] == discovered["address"] and status["paths_shown"]
    )  # the proxy is this user
    assert [r["path"] for r in status["recordings"]] == [str(recording)] and status["clients"] == 1
    assert status["stats"]["misses"] >= 1

    text = jupyter.get("mef3lab/metrics")[2].decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["mef3lab_open_recordings"].samples[0].value == 1

    k.close()
    assert jupyter.stop() == 0
    assert process_tag.leftovers(within=15) == []
    assert not (tmp_path / "runtime" / "mef3lab-server.json").exists()
