"""The ``mef3lab`` command: one small function per subcommand.

To add a subcommand, write ``add_<name>(subparsers)`` (it sets ``func`` to the function
that runs it and returns an exit code) and list it in `SUBCOMMANDS`. mef3lab errors
become one line on stderr and exit status 1; usage errors exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence

from .errors import Mef3LabError
from .formatting import count as _count
from .formatting import hms as _hms
from .readers import ENGINES


def add_synth(sub: argparse._SubParsersAction) -> None:
    """Add ``mef3lab synth``."""
    p = sub.add_parser(
        "synth", help="write a synthetic EEG recording", description=run_synth.__doc__
    )
    p.add_argument("out", metavar="OUT.mefd", help="session folder to create")
    p.add_argument("--channels", type=int, default=64, help="number of channels (default 64)")
    p.add_argument(
        "--fs",
        type=float,
        nargs="+",
        default=[256.0],
        help="sampling rate(s) in Hz; "
        "several rates are given to the channels in turn (default 256)",
    )
    p.add_argument("--seconds", type=float, default=7200.0, help="duration (default 7200)")
    p.add_argument("--precision", type=int, default=2, help="decimals of µV kept (default 2)")
    p.add_argument(
        "--gaps", type=int, default=3, help="number of gaps, the first shorter than 1 s (default 3)"
    )
    p.add_argument(
        "--mixed-rates", action="store_true", help="give every other channel 4x the rate"
    )
    p.add_argument(
        "--stagger",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="start and end channels at different times (default 0)",
    )
    p.add_argument("--no-annotations", action="store_true", help="write no annotations")
    p.add_argument("--password1", help="level-1 password (encrypts the session)")
    p.add_argument("--password2", help="level-2 password")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.set_defaults(func=run_synth)


def run_synth(args: argparse.Namespace) -> int:
    """Write a seeded synthetic EEG recording (pink noise + 10 Hz alpha, real gaps, annotations)."""
    from .testing.synth import plan, synthesize

    opts = dict(
        channels=args.channels,
        fs=args.fs,
        seconds=args.seconds,
        precision=args.precision,
        gaps=args.gaps,
        mixed_rates=args.mixed_rates,
        stagger_s=args.stagger,
        annotations=not args.no_annotations,
        seed=args.seed,
    )
    spec = plan(**opts)
    t = time.perf_counter()
    path = synthesize(
        args.out,
        **opts,
        password1=args.password1,
        password2=args.password2,
        overwrite=args.overwrite,
    )
    took = time.perf_counter() - t
    n = sum(
        spec.n_samples[i] - sum(s.stop - s.start for s in spec.gap_slices(i))
        for i in range(len(spec.names))
    )
    rates = ", ".join(f"{r:g}" for r in dict.fromkeys(spec.rates))
    print(
        f"wrote {path}: {len(spec.names)} channels, {args.seconds:g} s at {rates} Hz, "
        f"{n:,} samples written in {took:.1f} s ({n / took / 1e6:.1f} M samples/s)"
    )
    return 0


def add_info(sub: argparse._SubParsersAction) -> None:
    """Add ``mef3lab info``."""
    p = sub.add_parser("info", help="summarize a recording", description=run_info.__doc__)
    p.add_argument("path", metavar="PATH", help="a MEF 3.0 session folder (.mefd)")
    p.add_argument("--password", help="the session's password, if it is encrypted")
    p.add_argument("--engine", choices=sorted(ENGINES), help="decoder (default: numba)")
    p.set_defaults(func=run_info)


def run_info(args: argparse.Namespace) -> int:
    """Print channels, rates, duration, start time, gaps and annotations of a recording."""
    from .readers import open_reader

    with open_reader(args.path, args.password, args.engine) as r:
        for line in describe(r):
            print(line)
    return 0


def describe(reader) -> list[str]:
    """The lines `mef3lab info` prints for an open reader."""
    from .xr.summary import ORDER_TEXT, units_text

    info = reader.info
    clock = info.clock
    enc = "encrypted" if info.encrypted else "not encrypted"
    lines = [
        f"{info.path}  (read with {reader.engine}; {enc})",
        f"start        {clock(info.start_uutc, digits=3)}",
        f"end          {clock(info.end_uutc, digits=3)}",
    ]
    if info.utc_offset_s:
        lines.append(f"start (UTC)  {clock(info.start_uutc, utc=True, digits=3)}")
    lines += [f"note         {n}" for n in info.notes]
    lines += [
        f"duration     {info.duration_s:.3f} s ({_hms(info.duration_s)})",
        f"channels     {len(info.channels)}: {_names(info.names)}",
        f"order        {ORDER_TEXT[info.order]}",
        f"units        {units_text(info)}",
    ]
    for g in info.rate_groups:
        lines.append(
            f"rate         {g.fs:g} Hz: {_count(len(g.channels), 'channel')} "
            f"({_names(g.channels, 4)}), {g.grid.n_samples:,} samples from "
            f"{clock(g.grid.start_uutc, digits=3)}"
        )
    for name in getattr(reader, "rate_changes", {}):
        lines.append(f"unreadable   {name}: changes sampling rate between segments")
    for name, why in info.damaged.items():
        lines.append(f"damaged      {name}: {why}")
    here = getattr(reader, "decoded_here", None)
    if here is not None and len(here) < len(info.channels):  # the numba engine hands some to mef3io
        others = [n for n in info.names if n not in here]
        lines.append(
            f"decoded by   mef3io: {_count(len(others), 'channel')} ({_names(others, 4)}; "
            "see the INFO log for why)"
        )
    gaps = {c.name: info.gaps(c.name) for c in info.channels}
    distinct = set(gaps.values())
    if len(distinct) == 1:
        only = next(iter(distinct))
        lines.append(f"gaps         {len(only)} (the same in every channel){':' if only else ''}")
        lines += [
            f"  {clock(g.start_uutc, digits=3)}  {(g.end_uutc - g.start_uutc) / 1e6:.3f} s"
            for g in only
        ]
    else:
        lines.append("gaps         differ between channels:")
        lines += [
            f"  {n}: {_count(len(g), 'gap')}, "
            f"{sum(s.end_uutc - s.start_uutc for s in g) / 1e6:.3f} s missing"
            for n, g in gaps.items()
        ]
    locked = getattr(reader, "annotations_locked", False)
    lines.append(
        "annotations  unavailable: the records need the level-2 password"
        if locked
        else f"annotations  {len(info.annotations)}"
    )
    for a in info.annotations:
        where = f" [{a.channel}]" if a.channel else ""
        dur = f" ({a.duration_us / 1e6:g} s)" if a.duration_us else ""
        lines.append(f"  {clock(a.time_uutc, digits=3)}  {a.type}{where}{dur}  {a.text}")
    return lines


def add_serve(sub: argparse._SubParsersAction) -> None:
    """Add ``mef3lab serve``, with every server setting as a flag."""
    from .server.config import ServerConfig

    p = sub.add_parser(
        "serve", help="run the mef3lab server in the foreground", description=run_serve.__doc__
    )
    ServerConfig.add_arguments(p)
    p.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    """Serve MEF 3.0 recordings over gRPC until SIGTERM or Ctrl-C.

    Flags override environment variables.
    """
    import os

    from .server.app import serve
    from .server.config import OWNER_PID_ENV, ServerConfig

    config = ServerConfig.from_args(args)
    _log_to_stderr(config.log_level)
    owner = os.environ.get(OWNER_PID_ENV)
    return serve(config, owner_pid=int(owner) if owner else None)


def add_health(sub: argparse._SubParsersAction) -> None:
    """Add ``mef3lab health``, with the server's flags (its variables are read the same way)."""
    from .server.config import ServerConfig

    p = sub.add_parser(
        "health",
        help="ask a server's status listener whether it is up (Docker's HEALTHCHECK)",
        description=run_health.__doc__,
    )
    ServerConfig.add_arguments(p)
    p.set_defaults(func=run_health)


def run_health(args: argparse.Namespace) -> int:
    """Ask /healthz of the server these settings describe: HTTPS when it serves TLS.

    Exit status 0 when it answers, 1 when it does not.
    """
    from .server.config import ServerConfig
    from .server.http.health import check_health

    print(f"ok: {check_health(ServerConfig.from_args(args))}")
    return 0


def add_demo(sub: argparse._SubParsersAction) -> None:
    """Add ``mef3lab demo``."""
    p = sub.add_parser(
        "demo",
        help="the demo recording, then JupyterLab on the notebooks",
        description=run_demo.__doc__,
    )
    p.add_argument(
        "--notebooks", default="notebooks", help="folder JupyterLab opens (default notebooks)"
    )
    p.add_argument(
        "--data", default="demo-data", help="folder for the generated recording (default demo-data)"
    )
    p.add_argument(
        "--port",
        type=int,
        default=8888,
        help="JupyterLab's port (default 8888; the next free one if taken)",
    )
    p.add_argument("--browser", action="store_true", help="also open a browser")
    p.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    """Generate the demo recording if needed and run JupyterLab on the notebooks.

    JupyterLab prints the URL to open.
    """
    from pathlib import Path

    from .jupyter.lab import run

    run(Path(args.notebooks), Path(args.data), args.port, args.browser)
    return 0  # not reached: this process became JupyterLab


def add_walkthrough(sub: argparse._SubParsersAction) -> None:
    """Add ``mef3lab walkthrough``."""
    p = sub.add_parser(
        "walkthrough",
        help="serve a recording (a generated one by default) and show it working",
        description=run_walkthrough.__doc__,
    )
    p.add_argument(
        "path",
        nargs="?",
        metavar="PATH.mefd",
        help="recording to serve (default: a generated demo)",
    )
    p.add_argument("--password", help="password of an encrypted recording")
    p.add_argument(
        "--port", type=int, default=50051, help="port to listen on (default 50051, 0 = any free)"
    )
    p.add_argument(
        "--data", default="demo-data", help="folder for the generated recording (default demo-data)"
    )
    p.add_argument(
        "--once", action="store_true", help="stop after the walkthrough instead of serving on"
    )
    p.set_defaults(func=run_walkthrough)


def run_walkthrough(args: argparse.Namespace) -> int:
    """Start a server on a recording, read it through the server once, then serve until Ctrl-C."""
    from pathlib import Path

    from .server.app import Server
    from .testing.demo import demo_recording, walkthrough

    path = Path(args.path) if args.path else demo_recording(Path(args.data))
    _log_to_stderr("WARNING")
    with Server(port=args.port) as server:
        walkthrough(server.address, str(path.resolve()), args.password, out=print)
        if args.once:
            return 0
        print(f"\nServing on {server.address}; Ctrl-C to stop.", flush=True)
        try:
            server.wait()
        except KeyboardInterrupt:
            print("stopping", flush=True)
    return 0


#: Each adds one subcommand.
SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    add_synth,
    add_info,
    add_serve,
    add_health,
    add_demo,
    add_walkthrough,
]


def build_parser() -> argparse.ArgumentParser:
    """The parser of the ``mef3lab`` command, with every subcommand of `SUBCOMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="mef3lab", description="MEF 3.0 recordings, fast and correct."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``mef3lab`` command.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status: 0 on success, 1 for a mef3lab error, 2 for a usage error, 130 when
        interrupted (the parser itself exits with 2 on arguments it cannot read).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except Mef3LabError as exc:
        print(f"mef3lab {args.command}: {exc}", file=sys.stderr)
        return 1
    except (FileExistsError, FileNotFoundError, ValueError) as exc:
        # bad arguments the parser could not see
        print(f"mef3lab {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mef3lab {args.command}: interrupted", file=sys.stderr)
        return 130


def _log_to_stderr(level: str) -> None:
    """Send mef3lab's own log records to stderr, leaving the root logger alone."""
    import logging

    log = logging.getLogger("mef3lab")
    log.setLevel(level.upper())
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)
        log.propagate = False


def _names(names: Sequence[str], most: int = 6) -> str:
    shown = ", ".join(names[:most])
    return shown + (f", ... ({len(names) - most} more)" if len(names) > most else "")
