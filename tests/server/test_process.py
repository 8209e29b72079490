"""ServerProcess: a background server that reports its address and never outlives its owner."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from mef3lab.client import Mef3Client
from mef3lab.readers import open_reader
from mef3lab.server.app import Server
from mef3lab.server.process import ServerProcess


def _gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.05)
    return False


def test_start_read_stop_leaves_nothing(recording):
    with ServerProcess(n_process_workers=1) as srv:
        kids = psutil.Process(srv.pid).children(recursive=True)
        with Mef3Client(srv.address) as c:
            c.open_file(str(recording))
            assert c.get_signal_segment(str(recording), 0).shape == (8, 76800)
        assert "<mef3lab.ServerProcess running" in repr(srv) and srv.address in srv._repr_html_()
    assert srv.proc.returncode == 0
    assert all(_gone(k.pid, 5) for k in kids)
    assert "listening on" in Path(srv.log_path).read_text()


def test_server_dies_with_a_killed_owner():
    owner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent("""
        import time
        from mef3lab.server.process import ServerProcess
        srv = ServerProcess(n_process_workers=1).start()
        print(srv.pid, flush=True)
        time.sleep(60)
    """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        server_pid = int(owner.stdout.readline())
        assert psutil.pid_exists(server_pid)
        owner.send_signal(signal.SIGKILL)
        owner.wait(10)
        assert _gone(server_pid, 15), "the server outlived its owner"
    finally:
        owner.kill()
        owner.wait()


def test_startup_failure_is_reported_not_hung():
    with (
        Server(port=0, n_process_workers=0) as busy,
        pytest.raises(RuntimeError, match="did not start"),
    ):
        ServerProcess(port=busy.port, startup_timeout=30).start()


def test_unix_socket(tmp_path, recording):
    sock = tmp_path / "mef3lab.sock"
    with (
        Server(port=0, unix_socket=str(sock), n_process_workers=0),
        Mef3Client(f"unix:{sock}") as c,
    ):
        c.open_file(str(recording))
        np.testing.assert_array_equal(
            c.get_signal_segment(str(recording), 0, channels=["ch001"]),
            open_reader(recording).read_index(["ch001"], 0, 76800),
        )
