"""The user's shared server, owned by the Jupyter server process.

Started eagerly with Jupyter (the server extension, ``c.Mef3Lab.start_server = "eager"``) or
on the first visit to the proxy's ``mef3lab/`` page (`proxy`), whichever comes first; stopped
when Jupyter stops (at exit, or by its owner watch if Jupyter is killed). It listens only on
Unix sockets in a 0700 folder of the Jupyter runtime directory and announces itself there
(`discovery`), so this user's kernels read through it and share its cache.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import weakref
from pathlib import Path

from ..server import discovery
from ..server.process import ServerProcess

log = logging.getLogger(__name__)


class UserServer:
    """Start-once, thread-safe holder of the per-user `ServerProcess`."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or discovery.runtime_dir() / f"mef3lab-{os.getpid()}"
        self.grpc_socket = self.folder / "grpc.sock"
        self.http_socket = self.folder / "http.sock"
        self.process: ServerProcess | None = None
        self._lock = threading.Lock()
        # Runs at exit after the server's own finalizer (finalizers run newest first): the
        # folder goes last.
        weakref.finalize(self, shutil.rmtree, self.folder, True)

    def ensure(self) -> ServerProcess:
        """The running server, started now if it is not running (a crashed one is replaced)."""
        with self._lock:
            if self.process is None or not self.process.running:
                try:
                    self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
                    os.chmod(self.folder, 0o700)
                except OSError as exc:
                    raise RuntimeError(
                        f"mef3lab cannot create its socket folder {self.folder} ({exc}); "
                        "point JUPYTER_RUNTIME_DIR at a writable folder"
                    ) from exc
                self.process = ServerProcess(
                    port=-1,
                    unix_socket=str(self.grpc_socket),
                    http_socket=str(self.http_socket),
                    http_port=-1,
                    discovery_file=str(discovery.default_path()),
                ).start()
                log.info("mef3lab: this user's server listens on %s", self.process.address)
            return self.process

    def stop(self) -> None:
        """Stop the server, if it runs."""
        with self._lock:
            if self.process is not None:
                self.process.stop()
                self.process = None


_server: UserServer | None = None
_server_lock = threading.Lock()


def get() -> UserServer:
    """The one `UserServer` of this (Jupyter server) process."""
    global _server
    with _server_lock:
        if _server is None:
            _server = UserServer()
        return _server
