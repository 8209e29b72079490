"""How a reader's exception crosses the pipe from a worker and is raised again in the parent.

The caller gets the reader's own error (same class and message): pickled when it can be,
otherwise rebuilt from its class name and message. Errors that are not mef3lab's own carry
the worker's traceback as a note, since the frames that raised them are in another process.
"""

from __future__ import annotations

import pickle
import traceback

from ...errors import ERROR_CLASSES, Mef3LabError, rebuild

#: An exception in transit: (pickle or None, class name, message, traceback or None).
_ErrorPayload = tuple[bytes | None, str, str, str | None]


def _error_payload(exc: BaseException) -> _ErrorPayload:
    """An exception as it crosses the pipe: pickled when possible, plus name/message to rebuild it."""
    try:
        blob: bytes | None = pickle.dumps(exc)
    except Exception:
        blob = None
    tb = None if isinstance(exc, Mef3LabError) else "".join(traceback.format_exception(exc))
    return blob, type(exc).__name__, str(exc), tb


def _rebuild_error(payload: _ErrorPayload) -> BaseException:
    blob, name, message, tb = payload
    exc: BaseException | None = None
    if blob is not None:
        try:
            exc = pickle.loads(blob)
        except Exception:
            exc = None
    if exc is None:
        exc = rebuild(name, message) if name in ERROR_CLASSES else RuntimeError(f"{name}: {message}")
    if tb:
        exc.add_note("raised in the reader process:\n" + tb.rstrip())
    return exc
