"""Real Jupyter parts for tests and benchmarks/jupyter_front.py.

`Kernel`: an IPython kernel in its own process (`jupyter_client`); every cell's output comes
back as text. `Jupyter`: a Jupyter server (or JupyterLab) process, started on a free port with
a known token, waited for until its API answers, stopped with SIGTERM as Ctrl-C would.
"""

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
from dataclasses import dataclass, field
from typing import Any

from jupyter_client import KernelManager

TOKEN = "mef3lab-test-token"


@dataclass
class Output:
    stdout: str = ""
    stderr: str = ""
    displays: list[dict] = field(default_factory=list)  # the data of display_data / execute_result
    error: str | None = None

    @property
    def text(self) -> str:
        """Everything a person would read: printed text, then every display's plain text and
        HTML.
        """
        shown = [d.get("text/plain", "") + "\n" + d.get("text/html", "") for d in self.displays]
        return "\n".join([self.stdout, self.stderr, *shown])


class Kernel:
    """One running kernel; `run(code)` executes a cell and returns its `Output` (errors
    included).
    """

    def __init__(self, env: dict[str, str], cwd: str) -> None:
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(env=env, cwd=cwd)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.pid = int(self.run("import os; print(os.getpid())").stdout)

    def run(self, code: str, timeout: float = 120) -> Output:
        out = Output()

        def hook(msg: dict) -> None:
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                if content["name"] == "stdout":
                    out.stdout += content["text"]
                else:
                    out.stderr += content["text"]
            elif kind in ("display_data", "execute_result"):
                out.displays.append(content["data"])
            elif kind == "error":
                out.error = f"{content['ename']}: {content['evalue']}"

        self.kc.execute_interactive(code, output_hook=hook, timeout=timeout)
        return out

    def ok(self, code: str, timeout: float = 120) -> Output:
        """`run`, failing the test on an exception in the kernel."""
        out = self.run(code, timeout)
        assert out.error is None, f"{out.error}\n{out.stderr}"
        return out

    def close(self) -> None:
        self.kc.stop_channels()
        if self.km.has_kernel:
            self.km.shutdown_kernel(now=False)  # as JupyterLab shuts a kernel down


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Jupyter:
    def __init__(self, cmd: list[str], port: int, env: dict[str, str], cwd: str, log: str) -> None:
        self.port, self.base = port, f"http://127.0.0.1:{port}/"
        self.log = log
        with open(log, "w") as f:
            self.proc = subprocess.Popen(
                cmd,
                env=env,
                cwd=cwd,
                stdout=f,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    @classmethod
    def server(cls, port: int, env: dict[str, str], cwd: str, log: str, *args: str) -> Jupyter:
        cmd = [
            sys.executable,
            "-m",
            "jupyter_server",
            "--no-browser",
            f"--ServerApp.port={port}",
            f"--IdentityProvider.token={TOKEN}",
            f"--ServerApp.root_dir={cwd}",
            *args,
        ]
        if os.geteuid() == 0:
            cmd.append("--allow-root")
        return cls(cmd, port, env, cwd, log)

    def wait(self, path: str = "api/status", timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (
                f"Jupyter exited ({self.proc.returncode}):\n{self.output()[-3000:]}"
            )
            try:
                self.get(path, timeout=2)
                return
            except (OSError, urllib.error.URLError):
                time.sleep(0.2)
        raise AssertionError(
            f"Jupyter did not answer {path} in {timeout} s:\n{self.output()[-3000:]}"
        )

    def get(self, path: str, timeout: float = 60) -> tuple[int, str, bytes]:
        req = urllib.request.Request(
            self.base + path,
            headers={} if "token=" in path else {"Authorization": f"token {TOKEN}"},
        )
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
