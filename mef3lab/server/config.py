"""Server settings: one dataclass, filled from defaults < environment variables < flags.

The seed server's variables (PORT, N_PREFETCH, CACHE_CAPACITY_MULTIPLIER,
N_PROCESS_WORKERS) keep their meaning so an existing deployment keeps working.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

#: Set by a process that owns a server (`ServerProcess`): the server stops when it is gone.
OWNER_PID_ENV = "MEF3LAB_OWNER_PID"
#: The lines `mef3lab serve` prints on stdout once it listens (what `ServerProcess` waits for):
#: the status page's URLs first, then the gRPC address.
HTTP_PREFIX = "mef3lab status page on "
READY_PREFIX = "mef3lab server listening on "


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``mef3lab serve`` can be told, each setting also an env var and a flag.

    Each field has an environment variable, its name in upper case (``N_PREFETCH``), and a
    flag (``--n-prefetch``); a flag wins over its variable, a variable over the default. A
    list setting's variable separates its items with ``os.pathsep``. The settings of a shared
    server (roots, tokens, TLS) are explained in ``docs/serving.md``.

    Parameters
    ----------
    host : str, default "127.0.0.1"
        Where to listen. Localhost by default: listening beyond it needs authentication
        or `insecure_public`.
    port : int, default 50051
        The gRPC port; 0 picks a free one, -1 opens no TCP listener (then `unix_socket`
        is the only one).
    unix_socket : str, default ""
        Also listen on this Unix socket path.
    http_port : int, default -1
        The status page, ``/api/status`` and ``/metrics`` on `host`: -1 none, 0 a free port.
    http_socket : str, default ""
        The same pages on this Unix socket path (what jupyter-server-proxy connects to).
    discovery_file : str, default ""
        While it runs, write where the server listens to this JSON file (`discovery`).
    n_prefetch : int, default 3
        Segments decoded ahead in a reader's direction.
    cache_capacity_multiplier : int, default 3
        Segments of history the cache keeps when `cache_mb` is 0.
    cache_mb : float, default 0.0
        The segment cache's budget in MiB; 0 derives it (`cache_budget_bytes`).
    n_process_workers : int, default 2
        Reader processes; 0 decodes inside the server process (debugging).
    segment_seconds : float, default 300.0
        The segment size of a client that sets none...
    segment_mb : float, default 256.0
        ...shortened to whole seconds where a segment of a rate group's channels would
        exceed this many MiB (float32) or half of `max_read_mb`.
    max_read_mb : float, default 1024.0
        A larger single read, or a segment size whose segments would be larger, is refused
        (RESOURCE_EXHAUSTED).
    client_idle_s : float, default 21600.0
        A client silent this long has its recordings closed.
    max_open_per_client : int, default 32
        Recordings one identity may have open at once, over all its client ids (the
        authenticated user, else the peer's host); 0: no limit.
    max_open_total : int, default 256
        Recordings open on the server at once, all clients together; 0: no limit.
    engine : str, default "numba"
        The decoder of recordings opened without one (``numba``, ``pymef``, ``mef3io``).
    grpc_threads : int, default 16
        Threads doing the work of gRPC calls (replies are sent by an event loop: a client
        that stops reading holds none).
    stream_write_timeout_s : float, default 60.0
        A reply stream whose client takes no message for this long is ended
        (DEADLINE_EXCEEDED); 0: never.
    max_calls_per_client : int, default 64
        Calls one identity (the authenticated user, else the peer's host) may have in
        progress at once; more are refused (RESOURCE_EXHAUSTED). 0: no limit.
    max_bytes_in_flight_mb : float, default 2048.0
        Reply bytes one identity's calls in progress may hold at once (every read is
        counted at its full size from before it starts until its call ends); a read beyond
        it is refused (RESOURCE_EXHAUSTED), unless it is the identity's only one. 0: no limit.
    read_timeout_s : float, default 60.0
        A decode still running after this long has its reader process killed and
        replaced, and the read fails; 0: never.
    reader_engine : tuple of str, default ()
        ``NAME=package.module.Class`` items: extra decoders (`Reader` subclasses) a client
        may name as its engine.
    quarantine_crashes : int, default 3
        A recording whose reads crashed (or hung) this many reader processes is refused
        until a restart; 0: never.
    log_level : str, default "INFO"
        The level of the server's own logger (the root logger is never touched).
    root : tuple of str, default ()
        ``DIR`` or ``NAME=DIR`` items: only recordings under these open; none: any path.
    allow_group : tuple of str, default ()
        ``NAME=GROUP`` items: root ``NAME`` only for these hub groups (needs `hub_auth`).
    token_file : str, default ""
        Static bearer tokens, one a line (``TOKEN`` or ``USER TOKEN``); the variable
        ``MEF3LAB_TOKEN`` adds one more.
    hub_auth : bool, default False
        Check bearer tokens with the JupyterHub this server is a service of.
    insecure_public : bool, default False
        Allow listening beyond localhost without authentication.
    tls_cert : str, default ""
        A PEM certificate chain: serve TLS (with `tls_key`).
    tls_key : str, default ""
        The PEM private key of `tls_cert`.

    Raises
    ------
    ValueError
        `port` is -1 and there is no `unix_socket` to listen on.

    See Also
    --------
    Server : A server running with these settings.

    Examples
    --------
    >>> from mef3lab import ServerConfig
    >>> ServerConfig(port=0, n_process_workers=1).n_process_workers
    1
    >>> ServerConfig.from_env({"PORT": "50052", "ROOT": "/data/eeg"}, n_prefetch=5).root
    ('/data/eeg',)
    """

    host: str = "127.0.0.1"
    port: int = 50051
    unix_socket: str = ""
    http_port: int = -1
    http_socket: str = ""
    discovery_file: str = ""
    n_prefetch: int = 3
    cache_capacity_multiplier: int = 3
    cache_mb: float = 0.0
    n_process_workers: int = 2
    segment_seconds: float = 300.0
    segment_mb: float = 256.0
    max_read_mb: float = 1024.0
    client_idle_s: float = 6 * 3600.0
    max_open_per_client: int = 32
    max_open_total: int = 256
    engine: str = "numba"
    grpc_threads: int = 16
    stream_write_timeout_s: float = 60.0
    max_calls_per_client: int = 64
    max_bytes_in_flight_mb: float = 2048.0
    read_timeout_s: float = 60.0
    reader_engine: tuple[str, ...] = ()
    quarantine_crashes: int = 3
    log_level: str = "INFO"
    # -- a shared server (see rpc/auth.py, core/roots.py) --
    root: tuple[str, ...] = ()
    allow_group: tuple[str, ...] = ()
    token_file: str = ""
    hub_auth: bool = False
    insecure_public: bool = False
    tls_cert: str = ""
    tls_key: str = ""

    def cache_budget_bytes(self, segment_bytes: int, readers: int = 1) -> int:
        """The segment cache's budget in bytes.

        `cache_mb` when it is set. Otherwise sized in segments like the seed's cache
        (`n_prefetch` ahead plus `cache_capacity_multiplier` behind), but with the prefetches
        counted per active reader, since every sequential reader keeps its own in flight;
        at most a quarter of the machine's memory. Either way at most three quarters of
        ``/dev/shm``, where the segments live (a container's is small unless given
        ``--shm-size``): beyond it every new segment would fail for everyone.

        Parameters
        ----------
        segment_bytes : int
            The size of one segment.
        readers : int, default 1
            Readers reading at the moment (at least one is counted).

        Returns
        -------
        int
            The budget in bytes.
        """
        if self.cache_mb > 0:
            budget = int(self.cache_mb * 2**20)
        else:
            segments = self.cache_capacity_multiplier + max(1, readers) * (self.n_prefetch + 1)
            budget = min(segments * segment_bytes, _physical_memory() // 4)
        shm = _shm_bytes()
        return min(budget, shm * 3 // 4) if shm else budget

    @property
    def max_read_bytes(self) -> int:
        """`max_read_mb` in bytes."""
        return int(self.max_read_mb * 2**20)

    @property
    def address(self) -> str:
        """The gRPC listener as ``host:port`` (an IPv6 host in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def reader_engines(self) -> dict[str, str]:
        """`reader_engine` as the pool takes it: name -> ``"module:Class"``.

        The setting writes the class dotted (``NAME=package.module.Class``), since its variable
        separates items with ``:``.

        Raises
        ------
        ValueError
            An item is not of the form ``NAME=package.module.Class``.
        """
        engines = {}
        for spec in self.reader_engine:
            name, sep, target = spec.partition("=")
            module, dot, cls = target.rpartition(".")
            if not (sep and name and dot and module and cls):
                raise ValueError(f"--reader-engine {spec!r}: write NAME=package.module.Class")
            engines[name] = f"{module}:{cls}"
        return engines

    def __post_init__(self) -> None:
        # An IPv6 host may be written as in a URL ("[::1]"): the brackets are not part of it.
        object.__setattr__(self, "host", self.host.strip().removeprefix("[").removesuffix("]"))
        if self.port < 0 and not self.unix_socket:
            raise ValueError(
                "port -1 (no TCP listener) needs a Unix socket to listen on (--unix-socket)"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ServerConfig:
        """The settings from the defaults, then environment variables, then `overrides`.

        Parameters
        ----------
        environ : Mapping of str to str, optional
            The environment variables (default: ``os.environ``); empty ones are ignored.
        **overrides
            Settings by field name; a None value leaves that setting as it is.

        Returns
        -------
        ServerConfig
            The settings.

        Raises
        ------
        ValueError
            A variable's value is not of its setting's type, or the settings do not go
            together.
        TypeError
            An override names no setting.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f.name.upper())
            if raw not in (None, ""):
                values[f.name] = _parse(f.type, raw, f.name.upper())
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add one ``--flag`` per field to `parser`.

        A flag's default is None, so a flag not given leaves its variable in force. A list
        setting's flag repeats (``--root a --root b``; an empty value clears it); a switch's
        flag may stand alone (``--hub-auth``) or take a value (``--hub-auth false``).

        Parameters
        ----------
        parser : argparse.ArgumentParser
            The parser of ``mef3lab serve`` (or any other).
        """
        for f in fields(cls):
            flag = "--" + f.name.replace("_", "-")
            help = f"(env {f.name.upper()}, default {f.default!r})"
            if f.type in _LISTS:
                parser.add_argument(flag, dest=f.name, action="append", default=None, help=help)
            elif f.type == "bool":
                parser.add_argument(
                    flag, dest=f.name, type=_bool, nargs="?", const=True, default=None, help=help
                )
            else:
                parser.add_argument(flag, dest=f.name, type=_TYPES[f.type], default=None, help=help)

    @classmethod
    def from_args(
        cls, args: argparse.Namespace | Sequence[str], environ: Mapping[str, str] | None = None
    ) -> ServerConfig:
        """The settings from the defaults, then environment variables, then command-line flags.

        Parameters
        ----------
        args : argparse.Namespace or sequence of str
            Flags parsed by a parser that `add_arguments` set up, or the flags themselves.
        environ : Mapping of str to str, optional
            The environment variables (default: ``os.environ``).

        Returns
        -------
        ServerConfig
            The settings.

        Raises
        ------
        ValueError
            A variable's value is not of its setting's type, or the settings do not go
            together.
        SystemExit
            `args` are strings that do not parse (argparse has printed why).
        """
        if not isinstance(args, argparse.Namespace):
            parser = argparse.ArgumentParser()
            cls.add_arguments(parser)
            args = parser.parse_args(list(args))
        values = {f.name: getattr(args, f.name, None) for f in fields(cls)}
        for name in (f.name for f in fields(cls) if f.type in _LISTS):
            # Given on the command line: it wins, even when cleared with "".
            if values[name] is not None:
                values[name] = tuple(v for v in values[name] if v)
        return cls.from_env(environ, **values)


def _bool(raw: str) -> bool:
    text = raw.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{raw!r} is not a yes/no value (use true or false)")


def _list(raw: str) -> tuple[str, ...]:
    return tuple(v for v in raw.split(os.pathsep) if v)


_LISTS = ("tuple[str, ...]",)
_TYPES = {"str": str, "int": int, "float": float, "bool": _bool, "tuple[str, ...]": _list}


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 16 * 2**30


def _shm_bytes() -> int:
    """The size of ``/dev/shm`` (0: unknown, no such file system)."""
    try:
        st = os.statvfs("/dev/shm")
    except (OSError, AttributeError):
        return 0
    return st.f_blocks * st.f_frsize


def _parse(type_name: str, raw: str, var: str) -> Any:
    try:
        return _TYPES[type_name](raw)
    except ValueError:
        raise ValueError(f"environment variable {var}={raw!r} is not a valid {type_name}") from None
