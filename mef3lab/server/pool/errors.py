"""What a request fails with: a reader's exception crossing the pipe, or its worker's end.

The caller gets the reader's own error (same class and message): pickled when it can be,
otherwise rebuilt from its class name and message. Errors that are not mef3lab's own carry
the worker's traceback as a note, since the frames that raised them are in another process.
A request whose worker died, was killed (read timeout, abort) or was closed fails with
the error built here, which says which request and why.
"""

from __future__ import annotations

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

#: An exception in transit: (pickle or None, class name, message, traceback or None).
_ErrorPayload = tuple[bytes | None, str, str, str | None]


def error_payload(exc: BaseException) -> _ErrorPayload:
    """An exception as it crosses the pipe: pickled when possible, plus name/message to rebuild it."""
    try:
        blob: bytes | None = pickle.dumps(exc)
    except Exception:
        blob = None
    tb = None if isinstance(exc, Mef3LabError) else "".join(traceback.format_exception(exc))
    return blob, type(exc).__name__, str(exc), tb


def rebuild_error(payload: _ErrorPayload) -> BaseException:
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
    return ReaderCrashedError(
        f"the decoder crashed {job.describe()} (reader process {how_it_ended(exitcode)}); the recording may be damaged",
        exitcode,
    )


def stopped_error(why: str, job: Job, timeout_s: float) -> BaseException:
    """The error of a job whose worker was killed on purpose: `why` is "timeout" or "aborted"."""
    if why == "timeout":
        return ReadTimeoutError(
            f"the decoder did not finish {job.describe()} within the server's read timeout of {timeout_s:g} s; "
            "its reader process was killed and replaced (the recording may be damaged, or the server overloaded)"
        )
    return CancelledError(f"stopped {job.describe()}: nobody waits for it any more")


def closed_error() -> CancelledError:
    return CancelledError("the reader pool was closed before this request finished")


def succeed(fut: Future, result: Any) -> None:
    try:
        fut.set_result(result)
    except InvalidStateError:
        pass


def fail(fut: Future, exc: BaseException) -> None:
    try:
        fut.set_exception(exc)
    except InvalidStateError:
        pass


def how_it_ended(exitcode: int | None) -> str:
    if exitcode is None:
        return "vanished"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"was killed by {name}" + (
            ", e.g. out of memory" if -exitcode == signal.SIGKILL else ""
        )
    return f"exited with code {exitcode}"
