"""Real kernels for the extension's tests (`_jupyter.Kernel`), each with the environment a test
gives it.
"""

from __future__ import annotations

import os

import pytest
from _jupyter import Kernel

from mef3lab.server.config import ServerConfig

#: The server's settings (as env vars): kept out of kernels, so only what a test sets is in force.
CONFIG_VARS = {name.upper() for name in ServerConfig.__dataclass_fields__}


@pytest.fixture
def start_kernel(process_tag, tmp_path):
    """`start_kernel(**env)`: a kernel whose environment is ours (tagged, cleared of server settings
    and of MEF3LAB_SERVER, with a private Jupyter runtime directory) plus `env`. All are shut down
    at the end.
    """
    kernels: list[Kernel] = []

    def start(**extra: str) -> Kernel:
        env = {
            k: v for k, v in os.environ.items() if k not in CONFIG_VARS and k != "MEF3LAB_SERVER"
        }
        env.setdefault("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
        env.update(extra)
        kernels.append(Kernel(env, str(tmp_path)))
        return kernels[-1]

    yield start
    for k in kernels:
        k.close()
