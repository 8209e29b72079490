"""A call's cancellation as the reads it makes see it: a client's deadline or cancel stops them.

`call_scope` ties a `CallCancel` to the RPC being handled; the segment store waits with
`current()` and, when the call ends, stops the loads nobody else waits for. Why this is
needed, and what it stops, is in docs/server.md ("Cancellation").
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
    """Set once, when the call it belongs to ends; whoever waits for a future is woken by it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._set = False
        self._wakers: list[threading.Event] = []

    def set(self) -> None:
        """Mark the call ended and wake every `wait_for` under way."""
        with self._lock:
            self._set, wakers = True, list(self._wakers)
        for w in wakers:
            w.set()

    @property
    def is_set(self) -> bool:
        """Whether the call has ended."""
        return self._set

    def wait_for(self, future: Future) -> None:
        """Wait until `future` is done, or the call ends.

        Parameters
        ----------
        future : concurrent.futures.Future
            What the caller waits for (its result is not taken here).

        Raises
        ------
        mef3lab.errors.CancelledError
            When the call ends (cancelled, or past its deadline) before `future` is done.
        """
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
    """The cancellation of the RPC this thread is handling.

    Returns
    -------
    CallCancel or None
        None outside an RPC (`call_scope`): then nothing stops a wait.
    """
    return _CURRENT.get()


@contextlib.contextmanager
def call_scope(context: grpc.ServicerContext) -> Iterator[CallCancel]:
    """Within this block, `current()` is set when the RPC of `context` ends.

    Parameters
    ----------
    context : grpc.ServicerContext
        The RPC being handled; a call that has already ended is set at once.

    Yields
    ------
    CallCancel
        The call's cancellation (also what `current()` returns inside the block).
    """
    cancel = CallCancel()
    if not context.add_callback(cancel.set):  # the call has already ended
        cancel.set()
    token = _CURRENT.set(cancel)
    try:
        yield cancel
    finally:
        # A stream closed from another context (garbage collected): nothing to undo there.
        with contextlib.suppress(ValueError):
            _CURRENT.reset(token)
