"""A reader worker SIGKILLed in the middle of a read: that read fails clearly, the rest goes on."""

from __future__ import annotations

import os
import signal
import threading

from mef3lab.errors import CorruptDataError

from .conftest import assert_same, busy_worker, cpu_seconds, wait_for, worker_pids

N_WORKERS = 2


def shm_blocks(server_pid: int) -> list[str]:
    return [n for n in os.listdir("/dev/shm") if n.startswith(f"mef3lab_{server_pid}_")]


def workers_back(server_pid: int, killed: int):
    pids = worker_pids(server_pid)
    return len(pids) == N_WORKERS and killed not in pids and pids


def kill_mid_read(srv, victim_client, big_recording, n: int, reference) -> str:
    """One attempt: a cold read of everything, its worker SIGKILLed once it decodes."""
    victim_client.open_file(big_recording)  # cold: the last close dropped every cached segment
    pids = wait_for(lambda: len(p := worker_pids(srv.pid)) == N_WORKERS and p, what="the workers")
    baseline = {pid: cpu_seconds(pid) for pid in pids}
    result: dict[str, object] = {}

    def read():
        try:
            result["data"] = victim_client.read_index(big_recording, 0, n)
        except Exception as exc:  # examined below
            result["error"] = exc

    reader = threading.Thread(target=read)
    reader.start()
    killed = wait_for(
        lambda: busy_worker(pids, baseline) or (not reader.is_alive() and -1),
        timeout=20,
        interval=0.005,
        what="a worker to start decoding",
    )
    if killed > 0:
        os.kill(killed, signal.SIGKILL)
    reader.join(60)
    assert not reader.is_alive(), "the read hung after its worker was killed"
    if "error" in result:
        err = result["error"]
        assert isinstance(err, CorruptDataError), repr(err)
        assert str(big_recording) in str(err) and "SIGKILL" in str(err), str(err)
        outcome = "failed"
    else:
        data = result["data"]
        assert data.shape == (64, n)
        assert_same(
            data[:, 100_000:100_500],
            reference(big_recording).read_index(None, 100_000, 100_500),
        )
        outcome = "succeeded"
    assert victim_client.close_file(big_recording)
    if killed > 0:
        wait_for(lambda: workers_back(srv.pid, killed), timeout=20, what="a replacement worker")
    return outcome


def test_worker_killed_mid_read(launch, connect, big_recording, recording, reference):
    srv = launch(n_process_workers=N_WORKERS, n_prefetch=0)
    other = connect(srv, "bystander")
    other.open_file(recording)
    ref_small = reference(recording)
    assert_same(other.read_index(recording, 0, 3000), ref_small.read_index(None, 0, 3000))
    victim_client = connect(srv, "victim")
    n = reference(big_recording).info.rate_groups[0].grid.n_samples
    outcomes = []
    for _ in range(6):
        outcomes.append(kill_mid_read(srv, victim_client, big_recording, n, reference))
        if "failed" in outcomes:
            break
    assert "failed" in outcomes, f"no kill landed mid-read in {len(outcomes)} attempts: {outcomes}"

    # The server serves on, correctly, to both clients; the pool is whole again, nothing left.
    stats = other.stats()
    assert stats["worker_restarts"] >= 1 and stats["workers"] == N_WORKERS, stats
    assert len(worker_pids(srv.pid)) == N_WORKERS
    assert_same(
        other.read_index(recording, 40_000, 60_000), ref_small.read_index(None, 40_000, 60_000)
    )
    victim_client.open_file(big_recording)
    victim_client.set_signal_chunk_size(big_recording, 60.0)
    ref = reference(big_recording)
    assert_same(
        victim_client.get_signal_segment(big_recording, 3),
        ref.read_index(None, 3 * 15360, 4 * 15360),
    )
    assert_same(
        victim_client.read_index(big_recording, 70_000, 140_000, ["ch063", "ch000", "ch031"]),
        ref.read_index(["ch063", "ch000", "ch031"], 70_000, 140_000),
    )
    wait_for(
        lambda: not shm_blocks(srv.pid), timeout=5, what="no shared-memory block left in /dev/shm"
    )


def test_idle_worker_killed_is_replaced(launch, connect, recording, reference):
    srv = launch(n_process_workers=N_WORKERS, n_prefetch=0)
    c = connect(srv)
    c.open_file(recording)
    pids = wait_for(lambda: len(p := worker_pids(srv.pid)) == N_WORKERS and p, what="the workers")
    os.kill(pids[0], signal.SIGKILL)
    wait_for(lambda: workers_back(srv.pid, pids[0]), timeout=20, what="a replacement worker")
    assert c.stats()["worker_restarts"] == 1
    for k0 in (0, 50_000, 150_000):
        assert_same(
            c.read_index(recording, k0, k0 + 3000),
            reference(recording).read_index(None, k0, k0 + 3000),
        )
