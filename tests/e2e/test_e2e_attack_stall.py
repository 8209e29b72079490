"""Attacks on a real server through file work that hangs: blame goes to the hung recording only.

A recording whose opening never returns (a stalled network filesystem, simulated by a reader
engine that sleeps for one named session) holds one reader process until the read timeout
kills it, however many open it at once, and is then quarantined; meanwhile other users read
other recordings on the other reader process, sample for sample, and none of their
recordings is quarantined. Before, the pre-open went to every reader process without a
deadline, the victims' reads were handed to processes stuck in it, timed out, and
quarantined the victims' recordings.
"""

from __future__ import annotations

import shutil
import statistics
import textwrap
import threading
import time

import numpy as np
import pytest

from mef3lab.errors import QuarantinedError, ReadTimeoutError

from .conftest import assert_same, clean_env

STALLING_READER = """
import os
import time

from mef3lab.readers import open_reader


def open_stalling(path, password=None, threads=0):
    # Opening a session named stalled*.mefd never returns, as on a hung filesystem.
    if os.path.basename(os.fspath(path).rstrip("/")).startswith("stalled"):
        time.sleep(3600)
    return open_reader(path, password, threads=threads)
"""


@pytest.fixture
def stalling_engine(tmp_path):
    """A folder holding `stallmod.open_stalling`, for the server's PYTHONPATH."""
    (tmp_path / "stallmod.py").write_text(textwrap.dedent(STALLING_READER))
    return tmp_path


def test_a_hung_opening_is_blamed_on_its_recording_and_nobody_elses(
    launch, connect, recording, reference, stalling_engine, tmp_path
):
    stalled = tmp_path / "stalled.mefd"
    other = tmp_path / "other.mefd"
    shutil.copytree(recording, stalled)
    shutil.copytree(recording, other)
    srv = launch(
        env=clean_env(PYTHONPATH=str(stalling_engine)),
        n_process_workers=2,
        n_prefetch=0,
        read_timeout_s=6.0,
        quarantine_crashes=1,
        engine="stall",
        reader_engine=("stall=stallmod.open_stalling",),
    )
    want = reference(recording).read_index(None, 0, 2560)
    victims = {}
    for name, path in (("victim-a", recording), ("victim-b", other)):
        victims[name] = (connect(srv, client_id=name), str(path))
        victims[name][0].open_file(str(path))
    wrong, errors, latencies, stop = [], [], [], threading.Event()

    def read_along(client, path):
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                got = client.read_index(path, 0, 2560)
            except Exception as exc:  # noqa: BLE001 - every failure is a finding
                errors.append(exc)
                continue
            latencies.append(time.monotonic() - t0)
            if not np.array_equal(got, want, equal_nan=True):
                wrong.append(path)

    threads = [threading.Thread(target=read_along, args=v) for v in victims.values()]
    for t in threads:
        t.start()
    try:
        # Three attackers open it at once: one opening, one reader process held, for all three.
        attackers = [connect(srv, client_id=f"attacker-{i}") for i in range(3)]
        failures = []

        def open_stalled(client):
            try:
                client.open_file(str(stalled))
            except Exception as exc:  # noqa: BLE001 - examined below
                failures.append(exc)

        t0 = time.monotonic()
        opens = [threading.Thread(target=open_stalled, args=(a,)) for a in attackers]
        for t in opens:
            t.start()
        for t in opens:
            t.join()
        hung_for = time.monotonic() - t0
        assert len(failures) == 3 and all(
            isinstance(f, ReadTimeoutError) and "opening" in str(f) for f in failures
        ), failures
        attacker = attackers[0]
        with pytest.raises(QuarantinedError, match="stalled.mefd is quarantined.*hung one"):
            attacker.open_file(str(stalled))
        time.sleep(1.0)  # victims read on after the quarantine too
    finally:
        stop.set()
        for t in threads:
            t.join()
    print(
        f"victims' reads while the opening hung {hung_for:.1f} s: {len(latencies)}, p50 "
        f"{statistics.median(latencies) * 1e3:.0f} ms, max {max(latencies) * 1e3:.0f} ms"
    )
    assert 5.5 < hung_for < 40, hung_for  # the read timeout ended it, not a hang
    assert not errors, errors[:3]
    assert not wrong
    assert len(latencies) > 10
    # The victims' reads kept their own reader process: none waited for the hung one.
    assert max(latencies) < 5.0, sorted(latencies)[-5:]
    # Nobody else's recording was quarantined: a new client opens and reads both.
    fresh = connect(srv, client_id="fresh")
    for path in (recording, other):
        fresh.open_file(str(path))
        assert_same(fresh.read_index(str(path), 0, 2560), want)
