"""A mef3lab server in a child process that dies with its owner: start, address, stop.

For the notebook extension, tests and benchmarks. The child is ``python -m mef3lab serve``
with every setting as a flag; how it is tied to its owner is in ``docs/serving.md``.
"""

from __future__ import annotations

import contextlib
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
    """The command line that runs a server with exactly `config`.

    Every setting is a flag, so no inherited environment variable can make the child run
    something else than `config` says.

    Parameters
    ----------
    config : ServerConfig
        The settings.

    Returns
    -------
    list of str
        ``[sys.executable, "-m", "mef3lab", "serve", flags...]``.
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
    """A mef3lab server in a child process owned by this Python process.

    `start` runs ``mef3lab serve`` and returns once it listens. The child stops however its
    owner ends: `stop`, garbage collection, interpreter exit, even a SIGKILL of the owner
    (the child watches its parent). It runs in its own process group, so a Ctrl-C meant for
    the owner does not kill it in the middle of a call. Its log (stderr) goes to a file.

    Parameters
    ----------
    config : ServerConfig, optional
        The settings. Without them: `ServerConfig.from_env` on `env`, then `overrides`.
    startup_timeout : float, default 60.0
        Seconds `start` waits for the server to listen.
    env : dict of str to str, optional
        The child's environment (default: this process's), also read for the settings
        when there is no `config`.
    **overrides
        Settings by field name, used only without `config`; ``port`` defaults to 0 (a free
        port) here.

    Attributes
    ----------
    config : ServerConfig
        The settings the child runs with.
    address : str or None
        Where clients connect, once started.
    http_urls : list of str
        Where its status page answers (with ``http_port`` or ``http_socket``).
    log_path : str or None
        The file its log goes to, once started; removed with the handle after a clean
        exit (kept after a failed start or a crash).
    proc : subprocess.Popen or None
        The child, once started.

    See Also
    --------
    Server : The same server in this process.

    Examples
    --------
    >>> from mef3lab import Mef3Client, ServerProcess
    >>> with ServerProcess(n_process_workers=2) as srv:  # doctest: +SKIP
    ...     Mef3Client(srv.address).open_file("/data/patient1.mefd")
    """

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
        self.http_urls: list[str] = []
        self.log_path: str | None = None
        self.proc: subprocess.Popen | None = None
        self._finalizer: weakref.finalize | None = None

    def start(self) -> ServerProcess:
        """Start the child and wait until it listens; a started one is kept.

        Returns
        -------
        ServerProcess
            This handle, its `address` set.

        Raises
        ------
        RuntimeError
            The child exited (the message ends with its log) or did not report ready within
            `startup_timeout`; it is stopped.
        """
        if self.proc is not None:
            return self
        env = dict(os.environ if self.env is None else self.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env[OWNER_PID_ENV] = str(os.getpid())
        # The log goes to a file, never to an unread pipe that would stall a chatty server.
        fd, self.log_path = tempfile.mkstemp(prefix="mef3lab-server-", suffix=".log")
        with os.fdopen(fd, "w") as log:
            # Its own process group: a signal to the owner's group (Ctrl-C in a terminal, a
            # kernel manager's killpg) does not kill it mid-request; it stops by SIGTERM or by
            # watching its owner. `process_group`, not a preexec_fn: no Python code may run
            # between fork and exec in a process that holds gRPC channels.
            proc = subprocess.Popen(
                serve_command(self.config),
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
                text=True,
                env=env,
                process_group=0,
            )
        tidy = weakref.finalize(self, _remove_log, proc, self.log_path)
        self._finalizer = weakref.finalize(self, _terminate, proc, 10.0)
        try:
            self.address, self.http_urls = _await_ready(proc, self.startup_timeout, self.log_path)
        except BaseException:
            tidy.detach()  # the error names the log: it stays
            self._finalizer()
            raise
        self.proc = proc
        return self

    @property
    def pid(self) -> int | None:
        """The child's process id (None before `start`)."""
        return self.proc.pid if self.proc else None

    @property
    def running(self) -> bool:
        """Whether the child has been started and has not exited."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> int | None:
        """Stop the child: SIGTERM (it drains in-flight calls), then SIGKILL after `timeout`.

        Parameters
        ----------
        timeout : float, default 10.0
            Seconds the child has to exit after SIGTERM.

        Returns
        -------
        int or None
            The child's exit code (0 after a clean stop), or None if it was never started.
        """
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
            f"{self.config.n_process_workers} reader processes, "
            f"prefetch {self.config.n_prefetch}</div>"
        )


def _await_ready(proc: subprocess.Popen, timeout: float, log_path: str) -> tuple[str, list[str]]:
    """The address and status page URLs the child prints once it listens.

    A clear error if it dies or hangs instead. Reads the pipe's bytes itself: a buffered
    readline could swallow the ready line together with the one before it and leave select()
    waiting for nothing.
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


def _remove_log(proc: subprocess.Popen, log_path: str) -> None:
    """When the handle is gone: the child stopped, its log removed after a clean exit only."""
    if _terminate(proc, 10.0) == 0:
        with contextlib.suppress(OSError):
            os.unlink(log_path)


def _terminate(proc: subprocess.Popen, timeout: float) -> int | None:
    """SIGTERM, SIGKILL after `timeout`; the exit code."""
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
