"""A call's cancellation, as the reads it makes see it: the client's deadline or cancel stops them.

gRPC tells a servicer that its call ended (the client cancelled, its deadline passed, or
the connection went) only through `context.add_callback`; a handler blocked waiting for
a decode would otherwise wait on, and the decode would keep a reader process busy for
nobody. `call_scope` ties a `CallCancel` to the RPC being handled (both APIs enter it in
`service.handle_errors`); the segment store waits with `current()` and, when it fires,
stops the loads nobody else waits for (`SegmentStore.get`).
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator
from concurrent.futures import Future

import grpc

from ...errors import CancelledError


class CallCancel:
    """Set once, when the call it belongs to ends; whoever waits for a future can be woken by it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._set = False
        self._wakers: list[threading.Event] = []

    def set(self) -> None:
        with self._lock:
            self._set, wakers = True, list(self._wakers)
        for w in wakers:
            w.set()

    @property
    def is_set(self) -> bool:
        return self._set

    def wait_for(self, future: Future) -> None:
        """Return when `future` is done; raise `CancelledError` if the call ends first."""
        woken = threading.Event()
        future.add_done_callback(lambda _: woken.set())
        with self._lock:
            self._wakers.append(woken)
            if self._set:
                woken.set()
        try:
            woken.wait()
        finally:
            with self._lock:
                self._wakers.remove(woken)
        if not future.done():
            raise CancelledError(
                "the call was cancelled, or its deadline passed, before its data were read"
            )


_CURRENT: contextvars.ContextVar[CallCancel | None] = contextvars.ContextVar(
    "mef3lab_call_cancel", default=None
)


def current() -> CallCancel | None:
    """The cancellation of the RPC this thread is handling (None outside one: nothing stops the wait)."""
    return _CURRENT.get()


@contextlib.contextmanager
def call_scope(context: grpc.ServicerContext) -> Iterator[CallCancel]:
    """Within this block, `current()` fires when the RPC of `context` ends."""
    cancel = CallCancel()
    if not context.add_callback(cancel.set):  # the call has already ended
        cancel.set()
    token = _CURRENT.set(cancel)
    try:
        yield cancel
    finally:
        try:
            _CURRENT.reset(token)
        except (
            ValueError
        ):  # a stream closed from another context (garbage collected): nothing to undo there
            pass
