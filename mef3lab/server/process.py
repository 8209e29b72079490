"""A mef3lab server in a child process: start it, know its address, always stop it.

Used wherever a server must outlive nothing but its owner: the notebook extension,
tests, benchmarks. The child is `python -m mef3lab serve --port 0 ...`; it prints its
address on its first line. It dies with its owner however the owner ends: `stop()`,
garbage collection or interpreter exit (`weakref.finalize`), and even a SIGKILL of the
owner: the child watches its parent process (MEF3LAB_OWNER_PID) and stops when it is
gone. No `preexec_fn`: forking a process that holds gRPC channels can abort or hang in
gRPC's fork handlers, so the child is started by a plain spawn (its own process group is
set by `process_group`, which needs no Python code between fork and exec).
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from dataclasses import fields
from typing import Any

from .config import HTTP_PREFIX, OWNER_PID_ENV, READY_PREFIX, ServerConfig


def serve_command(config: ServerConfig) -> list[str]:
    """The command line that runs exactly `config`: every setting as a flag, so no inherited
    environment variable can make the child run something else than `config` says.
    """
    cmd = [sys.executable, "-m", "mef3lab", "serve"]
    for f in fields(ServerConfig):
        flag, value = "--" + f.name.replace("_", "-"), getattr(config, f.name)
        if isinstance(value, tuple):
            cmd += [f"{flag}={item}" for item in value] or [f"{flag}="]  # "--root=" clears ROOT
        else:
            cmd += [flag, str(value)]
    return cmd


class ServerProcess:
    """A background mef3lab server process owned by this Python process."""

    def __init__(
        self,
        config: ServerConfig | None = None,
        *,
        startup_timeout: float = 60.0,
        env: dict[str, str] | None = None,
        **overrides: Any,
    ) -> None:
        overrides.setdefault("port", 0)
        # Like `mef3lab serve`: defaults < environment variables < explicit settings.
        self.config = ServerConfig.from_env(env, **overrides) if config is None else config
        self.startup_timeout = startup_timeout
        self.env = env
        self.address: str | None = None
        self.http_urls: list[
            str
        ] = []  # where its status page answers (with http_port / http_socket)
        self.log_path: str | None = None  # the server's log (its stderr)
        self.proc: subprocess.Popen | None = None
        self._finalizer: weakref.finalize | None = None

    def start(self) -> ServerProcess:
        if self.proc is not None:
            return self
        env = dict(os.environ if self.env is None else self.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env[OWNER_PID_ENV] = str(os.getpid())
        # The log goes to a file, never to an unread pipe that would stall a chatty server.
        fd, self.log_path = tempfile.mkstemp(prefix="mef3lab-server-", suffix=".log")
        with os.fdopen(fd, "w") as log:
            # Its own process group: a signal to the owner's group (Ctrl-C in a terminal, a kernel
            # manager's killpg) does not kill it mid-request; it stops by SIGTERM or its owner watch.
            proc = subprocess.Popen(
                serve_command(self.config),
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
                text=True,
                env=env,
                process_group=0,
            )
        self._finalizer = weakref.finalize(self, _terminate, proc, 10.0)
        try:
            self.address, self.http_urls = _await_ready(proc, self.startup_timeout, self.log_path)
        except BaseException:
            self._finalizer()
            raise
        self.proc = proc
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (the server drains in-flight calls), then SIGKILL after `timeout`; the exit code."""
        if self._finalizer is not None and self._finalizer.alive:
            self._finalizer.detach()
            return _terminate(self.proc, timeout)
        return self.proc.returncode if self.proc else None

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"running at {self.address} (pid {self.pid})" if self.running else "stopped"
        return f"<mef3lab.ServerProcess {state}>"

    def _repr_html_(self) -> str:
        state = (
            f"<b>running</b> at <code>{self.address}</code> (pid {self.pid})"
            if self.running
            else "<b>stopped</b>"
        )
        return (
            f"<div><b>mef3lab server</b>: {state}<br>"
            f"{self.config.n_process_workers} reader processes, prefetch {self.config.n_prefetch}</div>"
        )


def _await_ready(proc: subprocess.Popen, timeout: float, log_path: str) -> tuple[str, list[str]]:
    """The address (and status page URLs) the child prints once it listens; a clear error if it
    dies or hangs instead. Reads the pipe's bytes itself: a buffered readline could swallow the
    ready line together with the one before it and leave select() waiting for nothing.
    """
    http: list[str] = []
    pending = b""
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ)
    try:
        while time.monotonic() < deadline:
            if sel.select(timeout=min(0.5, max(0.0, deadline - time.monotonic()))):
                chunk = os.read(fd, 65536)
                if not chunk and proc.poll() is not None:
                    break
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in (raw.decode(errors="replace").strip() for raw in lines):
                    if line.startswith(HTTP_PREFIX):
                        http.append(line[len(HTTP_PREFIX) :])
                    elif line.startswith(READY_PREFIX):
                        return line[len(READY_PREFIX) :], http
                if not chunk:
                    time.sleep(0.05)  # end of file, but the child is still closing
            elif proc.poll() is not None:
                break
    finally:
        sel.close()
    with open(log_path) as f:
        err = f.read().strip()[-2000:]
    raise RuntimeError(
        f"the mef3lab server did not start (exit code {proc.poll()}): {err or 'no message'}"
        if proc.poll() is not None
        else f"the mef3lab server did not report ready within {timeout:g} s"
    )


def _terminate(proc: subprocess.Popen, timeout: float) -> int | None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout:
        proc.stdout.close()
    return proc.returncode
