"""End-to-end fixtures: real `mef3lab serve` processes on real ports, real reader workers and files.

`launch(**overrides)` starts a server (`ServerProcess`, so exactly what a notebook runs)
with an environment cleared of the server's own variables, so that only what a test
asks for is in force. Every server a test starts is stopped at its end, and the stop
is checked: exit code 0 and none of its processes left. `reference(path, password)` is a
direct reader (pymef, the server's default engine) in this process: what every
comparison is made against. The session ends by checking that no process any server
had (server, reader workers, resource tracker) is still alive.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import fields

import numpy as np
import psutil
import pytest

from mef3lab.client import Mef3Client
from mef3lab.readers import open_reader
from mef3lab.server.config import ServerConfig
from mef3lab.server.process import ServerProcess

#: Environment variables the server reads: removed from every server's environment.
CONFIG_VARS = {f.name.upper() for f in fields(ServerConfig)}


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without the server's settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in CONFIG_VARS}
    env.update(extra)
    return env


def wait_for(
    predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.02, what: str = ""
):
    """Poll `predicate` until it returns something truthy (returned); fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what or predicate}")
        time.sleep(interval)


def alive(pids) -> list[int]:
    """Those of `pids` that are live processes (zombies count as gone)."""
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def worker_pids(server_pid: int) -> list[int]:
    """The server's reader workers (its spawned children; the resource tracker is not one)."""
    out = []
    for p in descendants(server_pid):
        try:
            if (
                any("spawn_main" in part for part in p.cmdline())
                and p.status() != psutil.STATUS_ZOMBIE
            ):
                out.append(p.pid)
        except psutil.NoSuchProcess:
            pass
    return out


def cpu_seconds(pid: int) -> float:
    try:
        t = psutil.Process(pid).cpu_times()
        return t.user + t.system
    except psutil.NoSuchProcess:
        return 0.0


def busy_worker(pids: list[int], baseline: dict[int, float]) -> int | None:
    """One of `pids` that has used CPU since `baseline` (it is decoding), or None."""
    for pid in pids:
        if cpu_seconds(pid) > baseline[pid] + 0.02:
            return pid
    return None


def assert_same(actual: np.ndarray, expected: np.ndarray) -> None:
    """Same dtype, same shape, same values sample for sample (NaN where the other has NaN)."""
    assert actual.dtype == expected.dtype, f"dtype {actual.dtype} != {expected.dtype}"
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    np.testing.assert_array_equal(actual, expected)


class Servers:
    """Starts servers, remembers every process they ever had, and stops them with checks."""

    def __init__(self) -> None:
        # Process objects, not pids: a pid of a server long gone may be reused by anything by the
        # end of the session, and psutil tells the two apart by their start time.
        self.seen: dict[int, psutil.Process] = {}
        self._lock = threading.Lock()

    def start(
        self, env: dict[str, str] | None = None, config: ServerConfig | None = None, **overrides
    ) -> ServerProcess:
        srv = ServerProcess(config, env=clean_env() if env is None else env, **overrides).start()
        self.note(srv)
        return srv

    def note(self, srv: ServerProcess) -> None:
        with self._lock:
            with contextlib.suppress(psutil.NoSuchProcess):
                self.seen.setdefault(srv.pid, psutil.Process(srv.pid))
            for p in descendants(srv.pid):
                self.seen.setdefault(p.pid, p)

    def stop(self, srv: ServerProcess, timeout: float = 10.0) -> None:
        """SIGTERM; assert exit code 0 and that every process of the server is gone."""
        if srv.proc is None:
            return
        self.note(srv)
        family = [srv.pid] + [p.pid for p in descendants(srv.pid)]
        code = srv.stop(timeout)
        with open(srv.log_path) as f:
            log = f.read()[-3000:]
        assert code == 0, f"the server exited with {code}; its log:\n{log}"
        deadline = time.monotonic() + 5.0
        while alive(family) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not alive(family), (
            f"processes {alive(family)} of server {srv.pid} outlived it; log:\n{log}"
        )


def _running(p: psutil.Process) -> bool:
    """`p` itself (not a later process with its pid) is still running and not a zombie."""
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _server_like(p: psutil.Process) -> bool:
    try:
        cmd = " ".join(p.cmdline())
        if "resource_tracker" in cmd and p.ppid() == os.getpid():
            # This test process's own tracker (in-process pools of other tests): it ends with us.
            return False
        return p.status() != psutil.STATUS_ZOMBIE and ("mef3lab" in cmd or "multiprocessing" in cmd)
    except psutil.NoSuchProcess:
        return False


@pytest.fixture(scope="session", autouse=True)
def _servers() -> Servers:
    """After the whole e2e session, no server or worker process that it started is alive."""
    servers = Servers()
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    yield servers
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        left = {p.pid for p in servers.seen.values() if _running(p)}
        left |= {
            p.pid
            for p in psutil.Process().children(recursive=True)
            if p.pid not in before and _server_like(p)
        }
        if not left:
            return
        time.sleep(0.05)
    described = []
    for pid in sorted(left):
        with contextlib.suppress(psutil.NoSuchProcess):
            described.append(f"{pid}: {' '.join(psutil.Process(pid).cmdline())}")
    assert not described, "mef3lab server/worker processes left after the e2e tests:\n" + "\n".join(
        described
    )


def _launching(servers: Servers):
    """Yield a `start(**overrides)` function; stop (and check) what it started afterwards."""
    started: list[ServerProcess] = []

    def start(**kw) -> ServerProcess:
        srv = servers.start(**kw)
        started.append(srv)
        return srv

    yield start
    for srv in reversed(started):
        servers.stop(srv)


@pytest.fixture
def launch(_servers):
    """`launch(**overrides)`: a server for this test only; stopped (and checked) at its end."""
    yield from _launching(_servers)


@pytest.fixture(scope="module")
def module_launch(_servers):
    """`module_launch(**overrides)`: like `launch`, but the server lives for the whole module."""
    yield from _launching(_servers)


@pytest.fixture(scope="module")
def server(module_launch) -> ServerProcess:
    """One server shared by a module's tests (2 workers, readahead 2, the default cache)."""
    return module_launch(n_prefetch=2, n_process_workers=2)


@pytest.fixture
def connect():
    """`connect(server_or_address, client_id=None)`: a Mef3Client closed after the test."""
    made: list[Mef3Client] = []

    def make(target, client_id: str | None = None) -> Mef3Client:
        address = target if isinstance(target, str) else target.address
        c = Mef3Client(address, client_id=client_id, timeout=120.0)
        made.append(c)
        return c

    yield make
    for c in made:
        c.shutdown()


@pytest.fixture(scope="session")
def big_recording(tmp_path_factory):
    """64 channels x 15 min at 256 Hz: a cold read keeps the workers decoding for a good while."""
    from mef3lab.testing.synth import synthesize

    return synthesize(
        tmp_path_factory.mktemp("big") / "big.mefd",
        channels=64,
        fs=256.0,
        seconds=900.0,
        gaps=2,
        annotations=False,
        seed=11,
    )


@pytest.fixture(scope="session")
def reference():
    """`reference(path, password=None)`: a direct reader of `path` in this process (pymef, cached).

    Readers are not thread-safe; use `reference.lock` around reads made from threads.
    """
    opened = {}

    def get(path, password=None):
        key = (str(path), password)
        if key not in opened:
            opened[key] = open_reader(path, password, "pymef")
        return opened[key]

    get.lock = threading.Lock()
    yield get
    for r in opened.values():
        r.close()
