"""Which server this kernel reads through, and the one it owns if it started one.

In order: the server named by ``MEF3LAB_SERVER`` (a shared hub's: nothing is started, and a
wrong address fails on first use with `ServerUnavailableError` naming it); else this user's
server announced in the Jupyter runtime directory (started by Jupyter, see `user_server`), if
it answers its health check; else a server of this kernel's own, private to this user: it
listens only on Unix sockets in a fresh 0700 directory, and dies with the kernel however the
kernel ends. If none can be had, reads stay in this process and `problem` says why.

A named server's token (``MEF3LAB_TOKEN``, ``MEF3LAB_TOKEN_FILE``, a hub kernel's own token)
and CA are sent by every client this kernel makes (`mef3lab.client.credentials`), not here.
"""

from __future__ import annotations

import contextlib
import glob
import html
import json
import os
import shutil
import tempfile
import time
import weakref
from typing import Any

from .. import sources
from ..client import Mef3Client
from ..server import discovery
from ..server.http.health import UnixHTTPConnection
from ..server.http.status import render_html
from ..server.process import ServerProcess

SERVER_ENV = "MEF3LAB_SERVER"
#: The prefix of the private folder a kernel's own server listens in.
KERNEL_DIR_PREFIX = "mef3lab-kernel-"

OWN, USER, NAMED, NONE = "own", "user", "named", "none"
_DESCRIBE = {
    OWN: "started by this kernel (private to you; stops with the kernel)",
    USER: "your Jupyter's shared server (one cache for all your notebooks)",
    NAMED: f"named by {SERVER_ENV}",
    NONE: "none: recordings are read in this process",
}


class Connection:
    """Where `open_recording` and ``engine="mef3"`` read plain paths in this kernel."""

    #: Seconds a started server may take to answer its health check.
    health_timeout: float = 30.0

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        self._environ = environ  # None: this process's environment as it is at each connect()
        self.kind = NONE
        self.address: str | None = None
        self.http_urls: list[str] = []
        self.process: ServerProcess | None = None
        self.problem: str | None = None  # why no server is used, when none could be had
        self.moves: list[str] = []  # what the last close or restart did to open recordings
        self._dir: str | None = None
        self._moved: list = []  # the specs close() moved here, for restart() to move back

    # -- choosing ---------------------------------------------------------------------
    def connect(self) -> Connection:
        """Use the named, the announced or a new server of our own; never raises."""
        environ = dict(os.environ if self._environ is None else self._environ)
        named = environ.get(SERVER_ENV, "").strip()
        try:
            if named:
                self.kind, self.address = NAMED, named
            elif not self._announced():
                self._start_own(environ)
            sources.set_default_address(self.address)  # checks a named address's spelling
        except Exception as exc:  # noqa: BLE001 - the kernel must keep working whatever went wrong
            self._forget()
            self.problem = _explain(exc, named)
            sources.set_default_address(None)
        return self

    def _announced(self) -> bool:
        found = discovery.find()
        if found is None or not _healthy(found["address"], 2.0):
            return False
        self.kind, self.address = USER, found["address"]
        self.http_urls = list(found.get("http", []))
        return True

    def _start_own(self, environ: dict[str, str]) -> None:
        _remove_stale_dirs()
        # 0700: only this user reaches the sockets
        self._dir = tempfile.mkdtemp(prefix=KERNEL_DIR_PREFIX)
        # Removed at any normal end of the kernel (after the server's own finalizer stopped it);
        # after a kill -9 the server removes its sockets and the next kernel the empty folder.
        weakref.finalize(self, shutil.rmtree, self._dir, True)
        proc = ServerProcess(
            port=-1,
            unix_socket=os.path.join(self._dir, "grpc.sock"),
            http_socket=os.path.join(self._dir, "http.sock"),
            http_port=-1,
            discovery_file="",
            env=environ,
        )
        self.process = proc.start()
        if not _healthy(proc.address, self.health_timeout):
            raise RuntimeError(
                f"the server at {proc.address} started but does not report SERVING "
                f"(its log: {proc.log_path})"
            )
        self.kind, self.address, self.http_urls = OWN, proc.address, list(proc.http_urls)

    # -- ending -----------------------------------------------------------------------
    def close(self) -> Connection:
        """Stop our own server (if any) and read in this process from now on.

        Recordings open through the server are read in this process from their next read
        on; one this process cannot open (a path only the server sees) fails on its next
        read, naming the server. `moves` says what happened to each.

        Returns
        -------
        Connection
            Itself, without a server.
        """
        self.moves = []
        if self.address is not None:
            for spec in sources.REGISTRY.through(self.address):
                try:
                    sources.REGISTRY.reroute(spec, None)
                except Exception as exc:  # noqa: BLE001 - said, and the others still move
                    self.moves.append(f"{spec.path}: not readable here ({exc}); open it again")
                else:
                    self._moved.append(spec)
                    self.moves.append(f"{spec.path}: now read in this process")
        self._forget()
        sources.set_default_address(None)
        return self

    def _forget(self) -> None:
        if self.process is not None:
            self.process.stop()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
        self.kind, self.address, self.http_urls = NONE, None, []
        self.process, self._dir = None, None
        self.problem = None

    def restart(self) -> Connection:
        """Stop, then choose again (a crashed or reconfigured server comes back).

        The recordings moved into this process by this or an earlier `close` are read
        through the new server from then on; `moves` says what happened to each.

        Returns
        -------
        Connection
            Itself, connected again if a server could be had.
        """
        self.close()
        stopped, self.moves = self.moves, []
        self.connect()
        if self.address is not None:
            here = set(sources.REGISTRY.through(None))  # those still open
            for spec in (s for s in self._moved if s in here):
                try:
                    sources.REGISTRY.reroute(spec, self.address)
                except Exception as exc:  # noqa: BLE001 - said; it stays in this process
                    self.moves.append(f"{spec.path}: still read in this process ({exc})")
                else:
                    self.moves.append(f"{spec.path}: now read through {self.address}")
            self._moved = []
        else:
            self.moves = stopped
        return self

    # -- showing ----------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """The server's status (`mef3lab.server.http.status`), empty without a server.

        From its status page when this user can reach it (with paths), else what its gRPC
        stats say.
        """
        if self.address is None:
            return {}
        for url in self.http_urls:
            if url.startswith("unix:"):
                try:
                    return _get_json(url[len("unix:") :], "/api/status")
                except OSError:
                    break
        try:
            with Mef3Client(self.address, timeout=5.0) as client:
                s = client.stats()
        except Exception as exc:  # noqa: BLE001 - shown, not raised
            return {"address": self.address, "error": str(exc)}
        lookups = s["hits"] + s["misses"]
        return {
            "address": self.address,
            "version": s["version"] or "?",  # empty from a server older than the field
            "workers": {
                "alive": s["workers"],
                "configured": s["configured_workers"] or s["workers"],
                "pids": s["worker_pids"],
                "restarts": s["worker_restarts"],
            },
            "cache": {
                "bytes": s["cache_bytes"],
                "budget_bytes": s["cache_budget_bytes"],
                "entries": s["cache_entries"],
                "hit_rate": s["hits"] / lookups if lookups else None,
            },
            "prefetch": {
                "depth": s["prefetch_depth"],
                "started": s["prefetches"],
                "hits": s["prefetch_hits"],
            },
            "clients": s["clients"],
            "recordings": None,
            "stats": s,
        }

    def summary(self) -> str:
        """One line: which server, or why none."""
        if self.address is None:
            return f"mef3lab: {_DESCRIBE[NONE]}" + (f". {self.problem}" if self.problem else "")
        return f"mef3lab server {self.address}: {_DESCRIBE[self.kind]}"

    def __repr__(self) -> str:
        s = self.status()
        if "error" in s:
            return f"{self.summary()}\n  unreachable: {s['error']}"
        lines = [self.summary()]
        if s:
            c = s.get("cache", {})
            mib, budget = c.get("bytes", 0) / 2**20, c.get("budget_bytes", 0) / 2**20
            lines.append(
                f"  cache {mib:.0f} of {budget:.0f} MiB, "
                f"{s.get('stats', {}).get('open_recordings', '?')} recordings open, "
                f"{s.get('clients', 0)} clients, "
                f"{s.get('workers', {}).get('alive', '?')} reader processes"
            )
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = f"<p>{html.escape(self.summary())}</p>"
        if self.address is None:
            return head
        s = self.status()
        if "error" in s:
            return head + f"<p><b>unreachable</b>: {html.escape(s['error'])}</p>"
        return head + render_html(s)


def _remove_stale_dirs(min_age_s: float = 600.0) -> None:
    """Remove this user's empty kernel socket folders older than `min_age_s` (left by a kill -9).

    A folder in use holds its server's sockets; a young empty one may be a kernel's that is
    starting its server, so it is left alone.
    """
    now = time.time()
    for path in glob.glob(os.path.join(tempfile.gettempdir(), KERNEL_DIR_PREFIX + "*")):
        with contextlib.suppress(OSError):
            st = os.stat(path)
            if st.st_uid == os.getuid() and now - st.st_mtime > min_age_s and not os.listdir(path):
                os.rmdir(path)


def _healthy(address: str, timeout: float) -> bool:
    with Mef3Client(address) as client:
        return client.healthy(timeout)


def _get_json(socket_path: str, route: str, timeout: float = 5.0) -> dict[str, Any]:
    conn = UnixHTTPConnection(socket_path, timeout)
    try:
        conn.request("GET", route)
        reply = conn.getresponse()
        if reply.status != 200:
            raise OSError(f"status page answered {reply.status}")
        return json.loads(reply.read())
    finally:
        conn.close()


def _explain(exc: BaseException, named: str) -> str:
    """The paragraph a user reads when no server could be had."""
    if named:
        return (
            f"{SERVER_ENV}={named!r} is not a usable server address ({exc}). Set it to 'host:port' "
            f"or 'unix:/path/to/socket', or unset it to have this kernel start its own server."
        )
    return (
        f"No mef3lab server could be started for this kernel ({type(exc).__name__}: {exc}). "
        "Everything still works, decoded in this process instead (no shared cache, no prefetch). "
        f"To fix it: check that the temporary directory ({tempfile.gettempdir()}) is writable "
        "and the server's settings in the environment (CACHE_MB, N_PROCESS_WORKERS, ...) are "
        f"valid, then run `%mef3 restart`; or point {SERVER_ENV} at a running server."
    )
