"""A real Jupyter server (or JupyterLab) process for tests: started on a free port with a known token,
waited for until its API answers, stopped with SIGTERM as Ctrl-C would."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

TOKEN = "mef3lab-test-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Jupyter:
    def __init__(self, cmd: list[str], port: int, env: dict[str, str], cwd: str, log: str) -> None:
        self.port, self.base = port, f"http://127.0.0.1:{port}/"
        self.log = log
        with open(log, "w") as f:
            self.proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=f, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)

    @classmethod
    def server(cls, port: int, env: dict[str, str], cwd: str, log: str, *args: str) -> "Jupyter":
        cmd = [sys.executable, "-m", "jupyter_server", "--no-browser", f"--ServerApp.port={port}",
               f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={cwd}", *args]
        if os.geteuid() == 0:
            cmd.append("--allow-root")
        return cls(cmd, port, env, cwd, log)

    def wait(self, path: str = "api/status", timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"Jupyter exited ({self.proc.returncode}):\n{self.output()[-3000:]}"
            try:
                self.get(path, timeout=2)
                return
            except (OSError, urllib.error.URLError):
                time.sleep(0.2)
        raise AssertionError(f"Jupyter did not answer {path} in {timeout} s:\n{self.output()[-3000:]}")

    def get(self, path: str, timeout: float = 60) -> tuple[int, str, bytes]:
        req = urllib.request.Request(self.base + path, headers={} if "token=" in path else {"Authorization": f"token {TOKEN}"})
        with urllib.request.urlopen(req, timeout=timeout) as reply:
            return reply.status, reply.headers.get("Content-Type", ""), reply.read()

    def get_json(self, path: str) -> Any:
        return json.loads(self.get(path)[2])

    def output(self) -> str:
        with open(self.log) as f:
            return f.read()

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM (Jupyter shuts down as on Ctrl-C), SIGKILL if it hangs; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode
