"""Real kernels for the extension's tests: `jupyter_client` starts an IPython kernel in its own
process, with the environment a test gives it, and every cell's output comes back as text."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pytest
from jupyter_client import KernelManager

from mef3lab.server.config import ServerConfig

#: The server's settings (as env vars): kept out of kernels, so only what a test sets is in force.
CONFIG_VARS = {name.upper() for name in ServerConfig.__dataclass_fields__}


@dataclass
class Output:
    stdout: str = ""
    stderr: str = ""
    displays: list[dict] = field(default_factory=list)  # the data of display_data / execute_result
    error: str | None = None

    @property
    def text(self) -> str:
        """Everything a person would read: printed text, then every display's plain text and HTML."""
        shown = [d.get("text/plain", "") + "\n" + d.get("text/html", "") for d in self.displays]
        return "\n".join([self.stdout, self.stderr, *shown])


class Kernel:
    """One running kernel; `run(code)` executes a cell and returns its `Output` (errors included)."""

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
            self.km.shutdown_kernel(now=True)


@pytest.fixture
def start_kernel(process_tag, tmp_path):
    """`start_kernel(**env)`: a kernel whose environment is ours (tagged, cleared of server settings and
    of MEF3LAB_SERVER, with a private Jupyter runtime directory) plus `env`. All are shut down at the end."""
    kernels: list[Kernel] = []

    def start(**extra: str) -> Kernel:
        env = {k: v for k, v in os.environ.items() if k not in CONFIG_VARS and k != "MEF3LAB_SERVER"}
        env.setdefault("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
        env.update(extra)
        kernels.append(Kernel(env, str(tmp_path)))
        return kernels[-1]

    yield start
    for k in kernels:
        k.close()
