"""What a request fails with: a reader's exception crossing the pipe, or its worker's end.

The caller gets the reader's own error (same class and message): pickled when it can be,
otherwise rebuilt from its class name and message; errors that are not mef3lab's own carry
the worker's traceback as a note. A request whose worker died, was stopped or was closed
fails with an error built here that says which request and why.
"""

from __future__ import annotations

import contextlib
import pickle
import signal
import traceback
from concurrent.futures import Future, InvalidStateError
from typing import Any

from ...errors import (
    ERROR_CLASSES,
    CancelledError,
    Mef3LabError,
    ReaderCrashedError,
    ReadTimeoutError,
    rebuild,
)
from .requests import Job

#: Signals a decoder dies of when a file defeats it; any other signal came from outside
#: (an operator's kill, the out-of-memory killer) and says nothing about the recording.
FAULTS = frozenset({signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGABRT})

#: An exception in transit: (pickle or None, class name, message, traceback or None).
_ErrorPayload = tuple[bytes | None, str, str, str | None]


def error_payload(exc: BaseException) -> _ErrorPayload:
    """An exception as it crosses the pipe: pickled when possible, and what rebuilds it.

    Parameters
    ----------
    exc : BaseException
        What the reader raised.

    Returns
    -------
    tuple
        (pickle or None, class name, message, traceback or None: mef3lab's own errors
        carry none).
    """
    try:
        blob: bytes | None = pickle.dumps(exc)
    except Exception:
        blob = None
    tb = None if isinstance(exc, Mef3LabError) else "".join(traceback.format_exception(exc))
    return blob, type(exc).__name__, str(exc), tb


def rebuild_error(payload: _ErrorPayload) -> BaseException:
    """The exception an `error_payload` describes, raised again in the parent.

    Unpickled when possible, else rebuilt from its class name (a mef3lab error) or a
    `RuntimeError` naming it; a traceback from the worker is added as a note.
    """
    blob, name, message, tb = payload
    exc: BaseException | None = None
    if blob is not None:
        try:
            exc = pickle.loads(blob)
        except Exception:
            exc = None
    if exc is None:
        exc = (
            rebuild(name, message) if name in ERROR_CLASSES else RuntimeError(f"{name}: {message}")
        )
    if tb:
        exc.add_note("raised in the reader process:\n" + tb.rstrip())
    return exc


def crash_error(job: Job, exitcode: int | None) -> ReaderCrashedError:
    """The error of a job whose worker died (`exitcode` as `multiprocessing` reports it).

    A fault signal (`FAULTS`) or an unexplained end blames the recording; a signal sent
    from outside (SIGKILL of the out-of-memory killer, an operator's SIGTERM) does not.
    """
    if exitcode is not None and exitcode < 0 and -exitcode not in FAULTS:
        return ReaderCrashedError(
            f"a reader process was killed (signal {-exitcode}: {signal_name(-exitcode)}) while "
            f"{job.describe()}: killed from outside the decoder, e.g. by an operator or the "
            "out-of-memory killer, not by the recording; reading it again may succeed",
            exitcode,
        )
    return ReaderCrashedError(
        f"the decoder crashed {job.describe()} (reader process {how_it_ended(exitcode)}); "
        "the recording may be damaged",
        exitcode,
    )


def stopped_error(why: str, job: Job, timeout_s: float) -> BaseException:
    """The error of a job whose worker was killed on purpose: `why` is "timeout" or "aborted"."""
    if why == "timeout":
        return ReadTimeoutError(
            f"the decoder did not finish {job.describe()} within the server's read timeout of "
            f"{timeout_s:g} s; its reader process was killed and replaced (the recording may be "
            "damaged, or the server overloaded)"
        )
    return CancelledError(f"stopped {job.describe()}: nobody waits for it any more")


def closed_error() -> CancelledError:
    """The error of a request the pool's closing ended."""
    return CancelledError("the reader pool was closed before this request finished")


def succeed(fut: Future, result: Any) -> None:
    """Set `fut`'s result, unless it is done already (cancelled, or failed first)."""
    with contextlib.suppress(InvalidStateError):
        fut.set_result(result)


def fail(fut: Future, exc: BaseException) -> None:
    """Fail `fut` with `exc`, unless it is done already."""
    with contextlib.suppress(InvalidStateError):
        fut.set_exception(exc)


def signal_name(signum: int) -> str:
    """A signal's name ("SIGKILL"), or "signal N" for one Python does not know."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def how_it_ended(exitcode: int | None) -> str:
    """How a worker ended, in words ("was killed by SIGSEGV", "exited with code 3")."""
    if exitcode is None:
        return "vanished"
    if exitcode < 0:
        return f"was killed by {signal_name(-exitcode)}" + (
            ", e.g. out of memory" if -exitcode == signal.SIGKILL else ""
        )
    return f"exited with code {exitcode}"
