"""Readers: one interface (`Reader`) over the decoding engines, one module per engine.

Nothing outside this package imports pymef or mef3io; everything else asks `open_reader`.
Engines are imported when first used, so ``import mef3lab`` never loads a C decoder. The
data model (`SessionInfo` and the types it is made of) is re-exported from `mef3lab.model`
for users. How the engines differ, and how they treat passwords and damaged files:
``docs/readers.md``.
"""

from __future__ import annotations

import importlib
import os

from ..model import RAW_NAN, Annotation, ChannelInfo, Grid, RateGroup, RawSamples, SessionInfo, Span
from .base import Reader, ReaderMetadata

__all__ = [
    "ENGINES",
    "RAW_NAN",
    "Annotation",
    "ChannelInfo",
    "Grid",
    "RateGroup",
    "RawSamples",
    "Reader",
    "ReaderMetadata",
    "SessionInfo",
    "Span",
    "open_reader",
    "warm_up",
]

#: The decoding engines: name -> ``"module:class"`` of its `Reader`.
ENGINES = {
    "pymef": "mef3lab.readers.pymef:PymefReader",
    "mef3io": "mef3lab.readers.mef3io:Mef3ioReader",
    "numba": "mef3lab.readers.numba:NumbaReader",
}

#: The engine `open_reader` uses when none is named: mef3lab's own RED decoder.
DEFAULT_ENGINE = "numba"


def engine_class(engine: str) -> type[Reader]:
    """The `Reader` class of `engine` (a key of `ENGINES`), imported now.

    Raises
    ------
    ValueError
        If there is no such engine.
    """
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
    metadata: ReaderMetadata | None = None,
) -> Reader:
    """Open a MEF 3.0 recording for direct reads with one decoding engine.

    Parameters
    ----------
    path : str or os.PathLike
        The session folder (``.mefd``).
    password : str, optional
        The password of an encrypted session. Level 2 reads everything; level 1 reads the
        samples but not the annotations, and pymef cannot decode with it at all.
    engine : {"numba", "pymef", "mef3io"}, optional
        The decoder: "numba" (default) is mef3lab's own RED decoder over mef3io's metadata;
        "pymef" is meflib, what the lab's files are written with; "mef3io" a C++ decoder.
    threads : int
        How many threads one read may decode on (0: one per core).
    metadata : ReaderMetadata, optional
        Another reader's `Reader.metadata` of the same recording, engine and password:
        opened from it, without parsing the files again, when they are unchanged since.

    Returns
    -------
    Reader
        The open recording. Close it when done, or use it in a ``with`` block.

    Raises
    ------
    RecordingNotFoundError
        If `path` does not exist.
    NotAMefSessionError
        If `path` is not a MEF 3.0 session, or has no channel with samples.
    PasswordError
        If the password is missing or wrong (`Level1PasswordError`: pymef was given the
        level-1 password).
    CorruptDataError
        If every channel is damaged (damaged channels are otherwise left out and listed in
        ``reader.info.damaged``).
    ValueError
        If `engine` is unknown or `threads` negative.

    Examples
    --------
    >>> import mef3lab
    >>> with mef3lab.open_reader("demo.mefd") as r:  # doctest: +SKIP
    ...     t0 = r.info.start_uutc
    ...     data = r.read(["ch000", "ch001"], t0, t0 + 10_000_000)  # 10 s, (2, n_samples)
    """
    return engine_class(engine or DEFAULT_ENGINE)(path, password, threads, metadata)


def warm_up(engine: str = DEFAULT_ENGINE) -> None:
    """Import `engine` and prepare its decoder now, so that no read pays for it.

    The numba engine compiles its kernels, or loads them from numba's cache (once per
    process: a call while another thread loads them waits for it); the others only import.

    Parameters
    ----------
    engine : str
        A key of `ENGINES`.

    Raises
    ------
    ValueError
        If there is no such engine.
    """
    prepare = getattr(engine_class(engine), "warm_up", None)
    if prepare is not None:
        prepare()
