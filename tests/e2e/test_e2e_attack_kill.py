"""A reader process killed from outside a real server (operator, OOM killer) mid-read.

The read fails saying so ("a reader process was killed (signal 15: SIGTERM)"), not that the
recording may be damaged, and the recording is not quarantined, even with a quarantine after
one crash: it reads again at once, sample for sample.
"""

from __future__ import annotations

import os
import signal
import threading

from mef3lab.errors import CorruptDataError

from .conftest import assert_same, busy_worker, cpu_seconds, wait_for, worker_pids


def sigterm_mid_read(srv, client, big_recording, n: int) -> BaseException | None:
    """One attempt: a cold read of everything, its reader sent SIGTERM once it decodes."""
    client.open_file(big_recording)  # cold: closing it dropped every cached segment
    pids = wait_for(lambda: len(p := worker_pids(srv.pid)) == 2 and p, what="the readers")
    baseline = {pid: cpu_seconds(pid) for pid in pids}
    errors: list[BaseException] = []
    done = threading.Event()

    def read():
        try:
            client.read_index(big_recording, 0, n)
        except Exception as exc:  # examined by the caller
            errors.append(exc)
        done.set()

    threading.Thread(target=read).start()
    victim = wait_for(
        lambda: busy_worker(pids, baseline) or (done.is_set() and -1),
        timeout=20,
        interval=0.005,
        what="a reader to start decoding",
    )
    if victim > 0:
        os.kill(victim, signal.SIGTERM)
    assert done.wait(60), "the read hung after its reader was killed"
    client.close_file(big_recording)
    if victim > 0:
        wait_for(
            lambda: len(p := worker_pids(srv.pid)) == 2 and victim not in p,
            timeout=20,
            what="a replacement reader",
        )
    return errors[0] if errors else None


def test_a_reader_killed_from_outside_blames_no_recording(
    launch, connect, big_recording, reference
):
    srv = launch(n_process_workers=2, n_prefetch=0, quarantine_crashes=1)
    client = connect(srv, "victim")
    n = reference(big_recording).info.rate_groups[0].grid.n_samples
    for _ in range(6):  # until a kill lands mid-read
        if (err := sigterm_mid_read(srv, client, big_recording, n)) is not None:
            break
    assert err is not None, "no kill landed mid-read in 6 attempts"
    assert isinstance(err, CorruptDataError), repr(err)
    msg = str(err)
    assert "a reader process was killed (signal 15: SIGTERM)" in msg, msg
    assert str(big_recording) in msg and "may be damaged" not in msg, msg
    client.open_file(big_recording)  # not quarantined
    assert_same(
        client.read_index(big_recording, 70_000, 80_000),
        reference(big_recording).read_index(None, 70_000, 80_000),
    )
