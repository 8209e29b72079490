"""`Connection` in this process: a misspelt MEF3LAB_SERVER is explained, not raised; reads stay
in-process.
"""

from __future__ import annotations

from pathlib import Path

from mef3lab import sources as source
from mef3lab.jupyter.connection import NONE, Connection


def test_a_misspelt_server_address_is_explained_and_reads_stay_here():
    c = Connection({"MEF3LAB_SERVER": "not-an-address"}).connect()
    assert c.kind == NONE and c.address is None and source.get_default_address() is None
    assert "MEF3LAB_SERVER='not-an-address' is not a usable server address" in c.problem
    assert "unix:/path/to/socket" in c.summary() and "read in this process" in c.summary()
    assert c._repr_html_().startswith("<p>mef3lab: none")


def test_a_kernel_server_folder_left_by_a_kill_9_goes_when_the_next_kernel_starts_its_own(
    tmp_path, monkeypatch
):
    import os
    import shutil
    import tempfile
    import time

    from mef3lab.jupyter.connection import KERNEL_DIR_PREFIX, OWN

    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))  # no user server
    monkeypatch.delenv("MEF3LAB_SERVER", raising=False)
    stale, young, busy = (tempfile.mkdtemp(prefix=KERNEL_DIR_PREFIX) for _ in range(3))
    (Path(busy) / "grpc.sock").touch()
    hour_ago = time.time() - 3600
    for d in (stale, busy):
        os.utime(d, (hour_ago, hour_ago))
    c = Connection().connect()
    try:
        assert c.kind == OWN
        assert not os.path.exists(stale)  # empty and old: a killed kernel's
        assert os.path.isdir(young) and os.path.isdir(busy)  # maybe starting / in use
    finally:
        c.close()
        shutil.rmtree(young, ignore_errors=True)
        shutil.rmtree(busy, ignore_errors=True)


def test_a_tcp_servers_summary_has_its_version_prefetch_depth_and_reader_pids():
    # A TCP server's status page is not reachable from here: the summary comes from gRPC stats.
    import time

    from mef3lab import __version__
    from mef3lab.server.process import ServerProcess

    with ServerProcess(n_process_workers=2, n_prefetch=3) as srv:
        c = Connection({"MEF3LAB_SERVER": srv.address}).connect()
        try:
            # The server answers before its readers are all started (they start one after the
            # other on its pool's thread); the summary lists those alive, so wait for both.
            deadline = time.monotonic() + 60
            s = c.status()
            while len(s["workers"]["pids"]) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
                s = c.status()
            assert s["version"] == __version__ and s["prefetch"]["depth"] == 3
            assert s["workers"]["configured"] == 2 and len(s["workers"]["pids"]) == 2
            page = c._repr_html_()
            assert f"<td style='text-align:left'>{__version__}</td>" in page
            assert "depth 3:" in page and "pids none" not in page and "?" not in page
        finally:
            c.close()
            source.set_default_address(None)
