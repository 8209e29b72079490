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

#: Set by a process that owns a server (`ServerProcess`): the server stops when that process is gone.
OWNER_PID_ENV = "MEF3LAB_OWNER_PID"
#: The lines `mef3lab serve` prints on stdout once it listens (what `ServerProcess` waits for):
#: the status page's URLs first, then the gRPC address.
HTTP_PREFIX = "mef3lab status page on "
READY_PREFIX = "mef3lab server listening on "


@dataclass(frozen=True)
class ServerConfig:
    """Everything `mef3lab serve` can be told. Each field has an env var (upper case) and a flag."""

    host: str = "127.0.0.1"  # localhost by default: a shared service must opt in to exposure
    port: int = (
        50051  # 0 = pick a free port; -1 = no TCP listener (then unix_socket is the only one)
    )
    unix_socket: str = ""  # also listen on this Unix socket path
    http_port: int = (
        -1
    )  # the status page, /api/status and /metrics: -1 = none, 0 = a free port (on `host`)
    http_socket: str = (
        ""  # ...and/or on this Unix socket path (what jupyter-server-proxy connects to)
    )
    discovery_file: str = ""  # write where this server listens to this JSON file while it runs
    n_prefetch: int = 3
    cache_capacity_multiplier: int = 3
    cache_mb: float = 0.0  # byte budget of the segment cache; 0 = derive from the two above
    n_process_workers: int = 2  # 0 = decode inside the server process (debugging)
    segment_seconds: float = 300.0  # default segment size of a client that sets none
    segment_mb: float = (
        256.0  # ...shortened (whole seconds) where a rate group's channels would exceed this
    )
    max_read_mb: float = 1024.0  # a single read larger than this is refused (RESOURCE_EXHAUSTED)
    client_idle_s: float = 6 * 3600.0  # a client silent this long has its recordings closed
    max_open_per_client: int = 32  # recordings one client may have open at once (0: no limit)
    max_open_total: int = 256  # recordings open on the server at once, all clients (0: no limit)
    engine: str = "numba"
    grpc_threads: int = 16
    read_timeout_s: float = (
        60.0  # a decode still running after this is killed (its process replaced); 0: never
    )
    reader_engine: tuple[
        str, ...
    ] = ()  # NAME=package.module.Class, repeatable: extra engines (Reader subclasses)
    quarantine_crashes: int = (
        3  # a recording whose reads crashed this many reader processes is refused (0: never)
    )
    log_level: str = "INFO"
    # -- a shared server (see auth.py, roots.py) --
    root: tuple[
        str, ...
    ] = ()  # DIR or NAME=DIR, repeatable: only recordings under these open (none: any path)
    allow_group: tuple[str, ...] = ()  # NAME=GROUP, repeatable: root NAME only for these hub groups
    token_file: str = (
        ""  # static bearer tokens, one a line ("TOKEN" or "USER TOKEN"); also MEF3LAB_TOKEN
    )
    hub_auth: bool = False  # check bearer tokens with the JupyterHub this server is a service of
    insecure_public: bool = False  # allow listening beyond localhost without authentication
    tls_cert: str = ""  # PEM certificate chain: serve TLS (with tls_key)
    tls_key: str = ""  # PEM private key of tls_cert

    def cache_budget_bytes(self, segment_bytes: int, readers: int = 1) -> int:
        """The cache budget: `cache_mb` when set; otherwise sized in segments like the seed
        (N_PREFETCH ahead plus CACHE_CAPACITY_MULTIPLIER behind), but per active reader, since
        every sequential reader keeps its own prefetches in flight — capped at a quarter of RAM.
        """
        if self.cache_mb > 0:
            return int(self.cache_mb * 2**20)
        segments = self.cache_capacity_multiplier + max(1, readers) * (self.n_prefetch + 1)
        return min(segments * segment_bytes, _physical_memory() // 4)

    @property
    def max_read_bytes(self) -> int:
        return int(self.max_read_mb * 2**20)

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def reader_engines(self) -> dict[str, str]:
        """`reader_engine` as the pool takes it: name -> "module:Class" (dotted here, since the
        variable separates items with ":").
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
        if self.port < 0 and not self.unix_socket:
            raise ValueError(
                "port -1 (no TCP listener) needs a Unix socket to listen on (--unix-socket)"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ServerConfig:
        """Defaults, then environment variables, then explicit keyword overrides."""
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
        """One `--flag` per field (default None, so an unset flag leaves the env var in force).

        A list setting's flag repeats (``--root a --root b``; an empty value clears it) and its
        variable separates items with ``os.pathsep``; a switch's flag may stand alone
        (``--hub-auth``) or take a value (``--hub-auth false``).
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
        if not isinstance(args, argparse.Namespace):
            parser = argparse.ArgumentParser()
            cls.add_arguments(parser)
            args = parser.parse_args(list(args))
        values = {f.name: getattr(args, f.name, None) for f in fields(cls)}
        for name in (f.name for f in fields(cls) if f.type in _LISTS):
            if (
                values[name] is not None
            ):  # given on the command line: wins, even when cleared with ""
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


def _parse(type_name: str, raw: str, var: str) -> Any:
    try:
        return _TYPES[type_name](raw)
    except ValueError:
        raise ValueError(f"environment variable {var}={raw!r} is not a valid {type_name}") from None
