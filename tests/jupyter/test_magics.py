"""``%mef3 stop`` / ``restart`` with an open recording, and ``%mef3 open --password``, in a real
kernel.

A recording (and a scroller on it) opened through the kernel's server stays readable after
``%mef3 stop`` (read in the kernel's process) and after ``%mef3 restart`` (through the new
server): the values equal a direct read before, between and after, and each magic says
what it did. ``--password`` asks through the kernel's stdin with echo off.
"""

from __future__ import annotations

import numpy as np
from test_kernel import LOAD, _gone, _who

from mef3lab import Mef3Client
from mef3lab.readers import open_reader

K0, K1 = 1_000, 30_000

READ = """\
np.save({out!r}, rec.signal.isel(time=slice({k0}, {k1})).values)
s.next_page(); s.prev_page(); assert s.wait()
np.save({page!r}, s.page_data().values)
from mef3lab.sources import REGISTRY
print(type(REGISTRY.acquire(rec.mef3.spec)).__name__)"""


def test_stop_and_restart_keep_open_recordings_readable(start_kernel, recording, tmp_path):
    k = start_kernel()
    k.ok(LOAD)
    _, first, first_pid = _who(k)
    k.ok(
        "import mef3lab, numpy as np\n"
        f"rec = mef3lab.open_recording({str(recording)!r})\n"
        "s = rec.mef3.scroll(start=30.0); assert s.wait()"
    )

    def read(step: str) -> tuple[str, np.ndarray, np.ndarray]:
        out, page = tmp_path / f"{step}.npy", tmp_path / f"{step}-page.npy"
        kind = k.ok(READ.format(out=str(out), page=str(page), k0=K0, k1=K1)).stdout.strip()
        return kind, np.load(out), np.load(page)

    kind, values, page = read("before")
    assert kind == "RemoteSource"

    stopped = k.ok("%mef3 stop").stdout
    assert f"{recording}: now read in this process" in stopped, stopped
    assert _gone(first_pid)
    kind, values_stopped, page_stopped = read("stopped")
    assert kind == "EmbeddedSource"

    restarted = k.ok("%mef3 restart").text
    _, second, second_pid = _who(k)
    assert second != first and f"{recording}: now read through {second}" in restarted, restarted
    misses = Mef3Client(second).stats()["misses"]
    kind, values_again, page_again = read("restarted")
    assert kind == "RemoteSource" and Mef3Client(second).stats()["misses"] > misses

    with open_reader(recording) as r:
        want = r.read_index(list(r.info.names), K0, K1)
        k0 = 30 * 256
        want_page = r.read_index(list(r.info.names), k0, k0 + 2560)
    for step, got, got_page in (
        ("before", values, page),
        ("stopped", values_stopped, page_stopped),
        ("restarted", values_again, page_again),
    ):
        np.testing.assert_array_equal(got, want, err_msg=step)
        np.testing.assert_array_equal(got_page, want_page, err_msg=step)


def test_open_with_password_asks_without_echo(
    start_kernel, encrypted_recording, passwords, tmp_path
):
    k = start_kernel()
    k.ok(LOAD)
    asked: list[dict] = []

    def answer(msg: dict) -> None:
        asked.append(msg["content"])
        k.kc.input(passwords.level2)

    printed: list[str] = []
    k.kc.execute_interactive(
        f"%mef3 open {encrypted_recording} enc --password",
        allow_stdin=True,
        stdin_hook=answer,
        output_hook=lambda m: printed.append(m["content"].get("text", "")),
        timeout=120,
    )
    assert len(asked) == 1 and asked[0]["password"] is True, asked
    assert "password=..." in "".join(printed) and passwords.level2 not in "".join(printed)
    shape = k.ok("print(enc.signal.isel(time=slice(0, 100)).values.shape)").stdout
    assert shape.strip() == "(3, 100)"


def test_a_stopped_server_leaves_no_log_once_its_handle_is_gone(tmp_path):
    import gc
    import os

    from mef3lab.server.process import ServerProcess

    srv = ServerProcess(n_process_workers=0).start()
    log = srv.log_path
    srv.stop()
    assert os.path.exists(log)  # still there while the handle is: it can be read
    del srv
    gc.collect()
    assert not os.path.exists(log)
