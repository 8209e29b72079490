"""``%mef3``: one line magic, a few subcommands, each with a one-line help.

Misuse prints the usage, never a traceback.
"""

from __future__ import annotations

import getpass
import shlex
from collections.abc import Callable
from typing import Any

from IPython.core.magic import Magics, line_magic, magics_class
from IPython.display import display

from .connection import Connection

#: subcommand -> (arguments, one-line help)
HELP: dict[str, tuple[str, str]] = {
    "status": (
        "",
        "show the server this kernel reads through (address, reader processes, cache, recordings)",
    ),
    "open": (
        "PATH [NAME] [--password]",
        "open a recording as the Dataset NAME (default: rec) and show its summary; "
        "--password asks for its password (not shown as you type)",
    ),
    "stop": (
        "",
        "stop using the server (stopping it if this kernel started it); open recordings "
        "and those opened from now on are read here",
    ),
    "restart": (
        "",
        "stop, then find or start a server again (after a crash or a change of MEF3LAB_SERVER); "
        "open recordings move to it",
    ),
    "progress": ("on|off", "progress bars for dask computes longer than a second"),
    "help": ("", "this list"),
}


def usage() -> str:
    """The list of subcommands, each with its arguments and help."""
    return "\n".join(
        ["%mef3 SUBCOMMAND, one of:"]
        + [
            f"  %mef3 {name} {args}".rstrip().ljust(28) + f"  {text}"
            for name, (args, text) in HELP.items()
        ]
    )


@magics_class
class Mef3Magics(Magics):
    """The ``%mef3`` magic of a kernel that loaded the extension."""

    def __init__(self, shell: Any, connection: Connection) -> None:
        super().__init__(shell)
        self.connection = connection

    @line_magic
    def mef3(self, line: str) -> None:
        """``%mef3 SUBCOMMAND``: run one subcommand of `HELP` (``status`` when none is given)."""
        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:
            print(f"%mef3: cannot read {line!r} ({exc})\n{usage()}")
            return
        name, args = (words[0], words[1:]) if words else ("status", [])
        run: Callable[[list[str]], None] | None = getattr(self, f"_{name}", None)
        if name not in HELP or run is None:
            print(f"%mef3: unknown subcommand {name!r}\n{usage()}")
            return
        try:
            run(args)
        except Exception as exc:  # noqa: BLE001 - a magic reports, it does not raise
            print(f"%mef3 {name}: {type(exc).__name__}: {exc}")

    def _status(self, args: list[str]) -> None:
        if self._no_args("status", args):
            display(self.connection)

    def _open(self, args: list[str]) -> None:
        asks = "--password" in args
        args = [a for a in args if a != "--password"]
        if not 1 <= len(args) <= 2 or (len(args) == 2 and not args[1].isidentifier()):
            print(
                "%mef3 open: expected a path and optionally a Python name: "
                f"%mef3 open {HELP['open'][0]}"
            )
            return
        from ..xr import open_recording  # noqa: PLC0415 - xarray loads only when a recording is opened

        name = args[1] if len(args) == 2 else "rec"
        password = getpass.getpass(f"password of {args[0]}: ") if asks else None
        ds = open_recording(args[0], password=password)
        self.shell.user_ns[name] = ds
        given = ", password=..." if asks else ""
        print(f"{name} = mef3lab.open_recording({args[0]!r}{given})")
        display(ds.mef3)

    def _stop(self, args: list[str]) -> None:
        if self._no_args("stop", args):
            self.connection.close()
            print("\n".join([self.connection.summary(), *self.connection.moves]))

    def _restart(self, args: list[str]) -> None:
        if self._no_args("restart", args):
            display(self.connection.restart())
            if self.connection.moves:
                print("\n".join(self.connection.moves))

    def _progress(self, args: list[str]) -> None:
        from . import progress  # dask's: imported when first wanted

        if args == ["on"]:
            progress.enable()
        elif args == ["off"]:
            progress.disable()
        elif args:
            print(f"%mef3 progress: expected on or off, not {' '.join(args)!r}")
            return
        print(f"progress bars {'on' if progress.enabled() else 'off'}")

    def _help(self, args: list[str]) -> None:
        print(usage())

    @staticmethod
    def _no_args(name: str, args: list[str]) -> bool:
        if args:
            print(f"%mef3 {name} takes no arguments (got {' '.join(args)!r}); see %mef3 help")
        return not args
