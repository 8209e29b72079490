"""The server process: SIGTERM drains and leaves nothing behind; health, flags, env variables."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import fields

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mef3lab.errors import ServerUnavailableError
from mef3lab.server.config import ServerConfig

from .conftest import (
    alive,
    assert_same,
    busy_worker,
    clean_env,
    cpu_seconds,
    descendants,
    wait_for,
    worker_pids,
)


def read_some_segments(client, path, n=3):
    client.open_file(path)
    client.set_signal_chunk_size(path, 10.0)
    for i in range(n):
        client.get_signal_segment(path, i)


def test_sigterm_exits_0_and_leaves_no_process(launch, connect, recording):
    srv = launch(n_process_workers=2)
    read_some_segments(connect(srv), recording)
    family = [p.pid for p in descendants(srv.pid)]
    assert len(worker_pids(srv.pid)) == 2 and len(family) >= 3, family  # workers + resource tracker
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(15) == 0
    wait_for(
        lambda: not alive(family + [srv.pid]), timeout=5, what="every child of the server to exit"
    )


def test_sigterm_lets_a_read_in_flight_finish(launch, connect, big_recording, reference):
    srv = launch(n_process_workers=2, n_prefetch=0)
    c = connect(srv)
    c.open_file(big_recording)
    pids = wait_for(lambda: len(p := worker_pids(srv.pid)) == 2 and p, what="the workers")
    family = [p.pid for p in descendants(srv.pid)]
    baseline = {pid: cpu_seconds(pid) for pid in pids}
    result = {}

    def read():
        try:
            result["data"] = c.read_index(
                big_recording, 0, 76_800
            )  # one 300 s segment, 64 channels: cold
        except Exception as exc:  # noqa: BLE001 - examined below
            result["error"] = exc

    reader = threading.Thread(target=read)
    reader.start()
    wait_for(
        lambda: busy_worker(pids, baseline) or not reader.is_alive(),
        timeout=20,
        interval=0.005,
        what="the read to reach the workers",
    )
    srv.proc.send_signal(signal.SIGTERM)
    reader.join(30)
    assert "error" not in result, f"a read in flight at SIGTERM failed: {result.get('error')!r}"
    assert_same(
        result["data"][:, 40_000:40_300], reference(big_recording).read_index(None, 40_000, 40_300)
    )
    assert srv.proc.wait(15) == 0
    wait_for(
        lambda: not alive(family + [srv.pid]), timeout=5, what="every child of the server to exit"
    )


def test_health_service_answers_serving(server):
    with grpc.insecure_channel(server.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "mef3lab.v1.Mef3Lab", "gRPCMef3Server"):
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, service


def test_serve_help_lists_every_setting():
    out = subprocess.run(
        [sys.executable, "-m", "mef3lab", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )
    assert out.returncode == 0, out.stderr
    for flag in (
        "--port",
        "--n-prefetch",
        "--cache-capacity-multiplier",
        "--n-process-workers",
    ):  # the seed's
        assert flag in out.stdout
    for f in fields(ServerConfig):
        assert (
            "--" + f.name.replace("_", "-") in out.stdout and f"env {f.name.upper()}" in out.stdout
        ), f.name


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prefetches_after_a_read(client, path) -> int:
    read_some_segments(
        client, path, 1
    )  # prefetches are counted when queued, before the read returns
    return client.stats()["prefetches"]


def test_environment_variables_are_honoured(connect, recording):
    """`mef3lab serve` itself (no flags) takes the seed's variables from its environment."""
    port = free_port()
    env = clean_env(PORT=str(port), N_PREFETCH="0", N_PROCESS_WORKERS="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mef3lab", "serve"],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        line = proc.stdout.readline()
        assert line.strip().endswith(f":{port}"), line
        c = connect(f"127.0.0.1:{port}")
        assert prefetches_after_a_read(c, recording) == 0
        assert c.stats()["workers"] == 1
        wait_for(lambda: len(worker_pids(proc.pid)) == 1, what="one worker")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0


def test_server_process_takes_the_environment_like_serve(launch):
    srv = launch(env=clean_env(N_PREFETCH="0", N_PROCESS_WORKERS="1"))
    assert (srv.config.n_prefetch, srv.config.n_process_workers) == (0, 1)


def test_a_flag_wins_over_its_environment_variable(launch, connect, recording):
    env_port = free_port()
    srv = launch(
        env=clean_env(PORT=str(env_port), N_PREFETCH="0", N_PROCESS_WORKERS="1"),
        port=0,
        n_prefetch=2,
        n_process_workers=3,
    )
    assert not srv.address.endswith(f":{env_port}")
    c = connect(srv)
    assert prefetches_after_a_read(c, recording) == 2
    assert c.stats()["workers"] == 3
    wait_for(lambda: len(worker_pids(srv.pid)) == 3, what="three workers")


def test_an_explicit_default_wins_over_the_environment(launch, connect, recording):
    srv = launch(
        env=clean_env(N_PREFETCH="0", N_PROCESS_WORKERS="1"), n_prefetch=3, n_process_workers=2
    )
    assert (srv.config.n_prefetch, srv.config.n_process_workers) == (3, 2)
    c = connect(srv)
    assert prefetches_after_a_read(c, recording) == 3
    assert c.stats()["workers"] == 2


def test_sigint_is_a_clean_stop_too(launch, connect, recording):
    srv = launch(n_process_workers=2)
    read_some_segments(connect(srv), recording)
    family = [p.pid for p in descendants(srv.pid)]
    srv.proc.send_signal(signal.SIGINT)
    assert srv.proc.wait(15) == 0
    wait_for(
        lambda: not alive(family + [srv.pid]), timeout=5, what="every child of the server to exit"
    )


def test_a_killed_server_leaves_no_orphans_or_shared_memory(_servers, connect, big_recording):
    """SIGKILL of the server mid-read: its workers, resource tracker and blocks still go."""
    srv = _servers.start(n_process_workers=2, n_prefetch=0)
    try:
        c = connect(srv)
        c.open_file(big_recording)
        pids = wait_for(lambda: len(p := worker_pids(srv.pid)) == 2 and p, what="the workers")
        family = [p.pid for p in descendants(srv.pid)]
        _servers.note(srv)
        baseline = {pid: cpu_seconds(pid) for pid in pids}
        outcome = {}

        def read():
            try:
                outcome["data"] = c.read_index(big_recording, 0, 76_800)
            except Exception as exc:  # noqa: BLE001 - examined below
                outcome["error"] = exc

        reader = threading.Thread(target=read)
        reader.start()
        wait_for(
            lambda: busy_worker(pids, baseline),
            timeout=20,
            interval=0.005,
            what="a worker decoding",
        )
        srv.proc.kill()
        assert srv.proc.wait(10) == -signal.SIGKILL
        reader.join(30)
        assert isinstance(outcome.get("error"), ServerUnavailableError), outcome
        wait_for(
            lambda: not alive(family),
            timeout=10,
            what="the killed server's workers and tracker to exit",
        )
        prefix = f"mef3lab_{srv.pid}_"
        wait_for(
            lambda: not [n for n in os.listdir("/dev/shm") if n.startswith(prefix)],
            timeout=5,
            what="the killed server's shared-memory blocks to be unlinked",
        )
    finally:
        srv.stop()
