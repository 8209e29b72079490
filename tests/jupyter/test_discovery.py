"""The discovery file: written by a running server, found while it runs, ignored when stale,
removed at stop.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mef3lab.client import Mef3Client
from mef3lab.server import discovery
from mef3lab.server.process import ServerProcess


def test_a_server_announces_itself_while_it_runs(tmp_path):
    path = tmp_path / "runtime" / "mef3lab-server.json"
    with ServerProcess(
        n_process_workers=0,
        port=-1,
        unix_socket=str(tmp_path / "g.sock"),
        http_socket=str(tmp_path / "h.sock"),
        discovery_file=str(path),
    ) as srv:
        found = discovery.find(path)
        assert found["address"] == srv.address and found["pid"] == srv.pid
        assert found["http"] == [f"unix:{tmp_path / 'h.sock'}"]
        assert os.stat(path).st_mode & 0o777 == 0o600
    assert not path.exists()


def test_a_stale_file_is_ignored_and_a_newer_server_is_not_unannounced(tmp_path):
    path = tmp_path / "mef3lab-server.json"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    path.write_text(
        json.dumps({"address": "unix:/nowhere", "pid": int(dead.stdout)})
    )  # its server was killed
    assert discovery.find(path) is None
    discovery.write(path, "127.0.0.1:1", [])  # this process announces
    path.write_text(
        json.dumps({"address": "127.0.0.1:2", "pid": 1})
    )  # ...then another server replaced it
    discovery.remove(path)
    assert json.loads(path.read_text())["address"] == "127.0.0.1:2"


def test_an_unwritable_discovery_file_does_not_stop_the_server(tmp_path):
    with (
        ServerProcess(n_process_workers=0, discovery_file="/proc/mef3lab/cannot.json") as srv,
        Mef3Client(srv.address) as c,
    ):
        assert c.healthy()
    assert "cannot write the discovery file" in Path(srv.log_path).read_text()
