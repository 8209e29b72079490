"""Readers: one interface (`base.Reader`), one module per decoding engine.

Nothing outside this package imports pymef or mef3io; everything else asks `open_reader`.
Engines are imported lazily, so `import mef3lab` never loads a C decoder.
"""

from __future__ import annotations

import importlib
import logging
import os

from ..errors import Level1PasswordError
from .base import RAW_NAN, Annotation, ChannelInfo, Grid, RateGroup, RawSamples, Reader, SessionInfo, Span

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
]

log = logging.getLogger(__name__)

#: engine name -> "module:class"
ENGINES = {
    "pymef": "mef3lab.readers.pymef:PymefReader",
    "mef3io": "mef3lab.readers.mef3io:Mef3ioReader",
}

DEFAULT_ENGINE = "pymef"


def engine_class(engine: str) -> type[Reader]:
    try:
        module, cls = ENGINES[engine].split(":")
    except KeyError:
        raise ValueError(f"unknown engine {engine!r}; choose one of {sorted(ENGINES)}") from None
    return getattr(importlib.import_module(module), cls)


def open_reader(path: str | os.PathLike, password: str | None = None, engine: str | None = None) -> Reader:
    """Open a recording with `engine` (default: pymef, what the lab's files are written with).

    With the default engine, a session opened with its level-1 password is handed to
    mef3io, since pymef returns no samples for it; naming an engine explicitly never
    switches engines behind the caller's back.
    """
    if engine is not None:
        return engine_class(engine)(path, password)
    try:
        return engine_class(DEFAULT_ENGINE)(path, password)
    except Level1PasswordError:
        log.info("%s: level-1 password; reading with mef3io (pymef cannot decode with it)", path)
        return engine_class("mef3io")(path, password)
