"""Readers: one interface (`base.Reader`), one module per decoding engine.

Nothing outside this package imports pymef or mef3io; everything else asks `open_reader`.
Engines are imported lazily, so `import mef3lab` never loads a C decoder.
"""

from __future__ import annotations

import importlib
import os

from ..model import RAW_NAN, Annotation, ChannelInfo, Grid, RateGroup, RawSamples, SessionInfo, Span
from .base import Reader

__all__ = [
    "ENGINES",
    "RAW_NAN",
    "Annotation",
    "ChannelInfo",
    "Grid",
    "RateGroup",
    "RawSamples",
    "Reader",
    "SessionInfo",
    "Span",
    "open_reader",
    "warm_up",
]

#: engine name -> "module:class"
ENGINES = {
    "pymef": "mef3lab.readers.pymef:PymefReader",
    "mef3io": "mef3lab.readers.mef3io:Mef3ioReader",
    "numba": "mef3lab.readers.numba:NumbaReader",
}

DEFAULT_ENGINE = "numba"


def engine_class(engine: str) -> type[Reader]:
    try:
        module, cls = ENGINES[engine].split(":")
    except KeyError:
        raise ValueError(f"unknown engine {engine!r}; choose one of {sorted(ENGINES)}") from None
    return getattr(importlib.import_module(module), cls)


def open_reader(
    path: str | os.PathLike,
    password: str | None = None,
    engine: str | None = None,
    threads: int = 0,
) -> Reader:
    """Open a recording with `engine` (default: numba, mef3lab's own decoder over mef3io's metadata).

    pymef, what the lab's files are written with, stays available by name; it cannot
    decode a session opened with its level-1 password (it raises Level1PasswordError).
    `threads`: how many threads one read may decode on (0: one per core).
    """
    return engine_class(engine or DEFAULT_ENGINE)(path, password, threads)


def warm_up(engine: str = DEFAULT_ENGINE) -> None:
    """Import `engine` and prepare its decoder (numba loads its kernels), so no read pays for it."""
    prepare = getattr(engine_class(engine), "warm_up", None)
    if prepare is not None:
        prepare()
