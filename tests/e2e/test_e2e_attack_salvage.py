"""Salvage folders of a real server's reader processes: gone when a reader is killed, and at stop.

A damaged recording is read through a shadow folder (``mef3lab-salvage-<pid>-*``) in every
reader process that opens it (before: one left behind by every reader the server killed or
that was killed, ten after one clean SIGTERM).
"""

from __future__ import annotations

import os
import signal
import tempfile
from pathlib import Path

from mef3lab.testing.damage import damaged_copy

from .conftest import assert_same, wait_for, worker_pids


def shadows(pid: int) -> list[Path]:
    return sorted(Path(tempfile.gettempdir()).glob(f"mef3lab-salvage-{pid}-*"))


def test_no_salvage_folder_outlives_a_reader_or_the_server(
    _servers, launch, connect, recording, reference, tmp_path
):
    damaged = damaged_copy(recording, tmp_path / "d.mefd", "tmet-truncated-half", "ch001")
    srv = launch(n_process_workers=2, n_prefetch=0)
    client = connect(srv, "salvage")
    client.open_file(damaged)
    want = reference(damaged).read_index(None, 0, 2000)
    assert_same(client.read_index(damaged, 0, 2000), want)
    first = worker_pids(srv.pid)
    holder = wait_for(
        lambda: next((p for p in first if shadows(p)), None), what="a reader's salvage folder"
    )
    os.kill(holder, signal.SIGKILL)
    wait_for(lambda: not shadows(holder), what="the killed reader's folder to go")
    wait_for(
        lambda: len(p := worker_pids(srv.pid)) == 2 and holder not in p and p,
        what="a replacement reader",
    )
    client.close_file(damaged)
    client.open_file(damaged)  # a new reader salvages it again: same samples
    assert_same(client.read_index(damaged, 0, 2000), want)
    readers = set(first) | set(worker_pids(srv.pid))
    assert any(shadows(p) for p in readers)
    _servers.stop(srv)  # SIGTERM, exit code 0, every process gone
    assert {p: shadows(p) for p in readers if shadows(p)} == {}
