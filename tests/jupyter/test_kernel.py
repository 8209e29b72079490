"""`%load_ext mef3lab` in real kernels: the server it starts, reads through it, the magics, and that
no mef3lab process outlives the kernel however it ends (unload, restart, kill -9)."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import psutil

from mef3lab.readers import open_reader
from mef3lab.server.process import ServerProcess

LOAD = "%load_ext mef3lab"
WHO = (
    "from mef3lab.jupyter.extension import connection\n"
    "c = connection(); print(c.kind, c.address, c.process.pid if c.process else 0)"
)


def _who(kernel) -> tuple[str, str, int]:
    kind, address, pid = kernel.ok(WHO).stdout.split()
    return kind, address, int(pid)


def _read_and_compare(kernel, recording, tmp_path, k0: int = 15_000, k1: int = 40_000) -> str:
    """Read samples [k0, k1) of every channel in the kernel; they must equal a direct read. Returns
    the address the dataset was read through."""
    out = tmp_path / f"x{k0}.npy"
    address = kernel.ok(
        "import mef3lab, numpy as np\n"
        f"rec = mef3lab.open_recording({str(recording)!r})\n"
        f"np.save({str(out)!r}, rec.signal.isel(time=slice({k0}, {k1})).values)\n"
        "print(rec.attrs['mef3_address'] or 'embedded')"
    ).stdout.strip()
    with open_reader(recording) as r:
        np.testing.assert_array_equal(np.load(out), r.read_index(list(r.info.names), k0, k1))
    return address


def _gone(pid: int, within: float = 15.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


def test_load_ext_reads_through_its_own_server_and_kill_9_leaves_nothing(
    start_kernel, recording, tmp_path, process_tag
):
    k = start_kernel()
    shown = k.ok(LOAD).text
    kind, address, server_pid = _who(k)
    assert kind == "own" and address.startswith("unix:/") and "started by this kernel" in shown
    assert psutil.Process(server_pid).ppid() == k.pid
    folder = os.path.dirname(address[len("unix:") :])
    assert os.stat(folder).st_mode & 0o777 == 0o700  # only this user reaches its sockets
    assert _read_and_compare(k, recording, tmp_path) == address
    engine = k.ok(
        f"import xarray as xr; print(xr.open_dataset({str(recording)!r}, engine='mef3')"
        ".attrs['mef3_address'])"
    )
    assert (
        engine.stdout.strip() == address
    )  # the xarray engine reads through the same default server

    # The scroller reads through the kernel's server too: a page equals a direct read, and the
    # server counts its reads (a cache hit, or a miss that joins the load of the read above
    # while that segment's fill still runs).
    page = tmp_path / "page.npy"
    reads = f"s_ = Mef3Client({address!r}).stats(); print(s_['hits'] + s_['misses'])"
    before = k.ok(f"from mef3lab import Mef3Client\n{reads}").stdout.strip()
    k.ok(
        "s = rec.mef3.scroll(start=120, page_seconds=10); assert s.wait()\n"
        f"np.save({str(page)!r}, s.page_data().values)"
    )
    after = k.ok(reads).stdout.strip()
    with open_reader(recording) as r:
        k0 = int(round(120 * 256))
        np.testing.assert_array_equal(
            np.load(page), r.read_index(list(r.info.names), k0, k0 + 2560)
        )
    assert int(after) > int(before)

    status = k.ok("%mef3 status").text
    assert address in status and str(recording) in status and "reader processes" in status
    assert "1 recordings open" in status
    summary = k.ok("rec.mef3").text
    assert "8 channels at 256 Hz" in summary and "0:10:00" in summary and "4 per channel" in summary

    for misuse, says in [
        ("%mef3 bogus", "unknown subcommand 'bogus'"),
        ("%mef3 open", "expected a path"),
        ("%mef3 progress maybe", "expected on or off"),
        ("%mef3 stop now", "takes no arguments"),
    ]:
        out = k.run(misuse)
        assert out.error is None and says in out.stdout, misuse
    assert "%mef3 open PATH [NAME]" in k.ok("%mef3 help").stdout

    again = k.ok(
        LOAD
    ).text  # IPython: already loaded; and a direct second load starts nothing either
    again += k.ok("import mef3lab; mef3lab.load_ipython_extension(get_ipython())").text
    assert "already loaded" in again and _who(k)[2] == server_pid

    os.kill(k.pid, signal.SIGKILL)
    assert process_tag.leftovers(within=15) == []


def test_unload_ext_stops_the_server_and_reads_go_on_in_process(start_kernel, recording, tmp_path):
    k = start_kernel()
    k.ok(LOAD)
    _, _, server_pid = _who(k)
    k.ok("%unload_ext mef3lab")
    assert _gone(server_pid)
    assert _read_and_compare(k, recording, tmp_path) == "embedded"
    assert (
        "UsageError" in k.run("%mef3 status").text or k.run("%mef3 status").error
    )  # the magic is gone
    k.ok(LOAD)  # and can come back
    assert _who(k)[0] == "own"


def test_kernel_restart_leaves_no_server(start_kernel, process_tag):
    k = start_kernel()
    k.ok(LOAD)
    _, _, server_pid = _who(k)
    k.km.restart_kernel(
        now=False
    )  # as JupyterLab's "Restart Kernel": a shutdown request, then a new kernel
    assert _gone(server_pid)
    k.kc.wait_for_ready(timeout=60)
    k.ok("print('back')")
    assert [p for p in process_tag.tagged() if "serve" in " ".join(p.cmdline())] == []


def test_named_server_is_used_and_nothing_is_started(start_kernel, recording, tmp_path):
    with ServerProcess(n_process_workers=1) as shared:
        k = start_kernel(MEF3LAB_SERVER=shared.address)
        assert "named by MEF3LAB_SERVER" in k.ok(LOAD).text
        assert _who(k)[:2] == ("named", shared.address)
        assert _read_and_compare(k, recording, tmp_path) == shared.address
        assert [
            p
            for p in psutil.Process(k.pid).children(recursive=True)
            if "mef3lab" in " ".join(p.cmdline())
        ] == []
        assert "1 recordings open, 1 clients" in k.ok("%mef3 status").text


def test_named_server_that_is_not_there_fails_on_first_use_naming_it(start_kernel, recording):
    k = start_kernel(MEF3LAB_SERVER="127.0.0.1:1")
    k.ok(LOAD)
    t = time.monotonic()
    out = k.run(f"import mef3lab; mef3lab.open_recording({str(recording)!r})")
    assert (
        out.error and out.error.startswith("ServerUnavailableError") and "127.0.0.1:1" in out.error
    )
    assert time.monotonic() - t < 15


def test_announced_user_server_is_shared(start_kernel, recording, tmp_path):
    runtime = tmp_path / "runtime"
    with ServerProcess(
        n_process_workers=1,
        port=-1,
        unix_socket=str(tmp_path / "u.sock"),
        discovery_file=str(runtime / "mef3lab-server.json"),
    ) as user:
        k = start_kernel(JUPYTER_RUNTIME_DIR=str(runtime))
        assert "shared server" in k.ok(LOAD).text
        assert _who(k)[:2] == ("user", user.address)
        assert _read_and_compare(k, recording, tmp_path) == user.address


def test_no_server_can_start_the_kernel_explains_and_reads_in_process(
    start_kernel, recording, tmp_path
):
    k = start_kernel(LOG_LEVEL="NOT-A-LEVEL")  # the server process crashes at start
    text = k.ok(LOAD).text
    assert (
        "No mef3lab server could be started" in text
        and "%mef3 restart" in text
        and "Traceback" not in text
    )
    assert _who(k)[0] == "none"
    assert _read_and_compare(k, recording, tmp_path) == "embedded"
