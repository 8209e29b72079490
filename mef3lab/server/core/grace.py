"""`Grace`: calls what it is handed a fixed time later, in order, on a thread of its own.

The segment store starts a cold read's fill this way: a reader that jumps on at once (a
script, a reviewer clicking through events) calls the fill off before it began, instead
of waiting for the part of it a reader process is busy with.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Grace:
    """Calls each callable `delay_s` after it was handed over (`call_later`), in that order.

    One delay for all, so the order they come in is the order they are due in: a queue and
    one thread, started at the first call. Errors are logged, never raised.

    Parameters
    ----------
    delay_s : float
        How long after being handed over a callable is called.
    name : str
        The thread's name.
    """

    def __init__(self, delay_s: float, name: str) -> None:
        self.delay_s = delay_s
        self.name = name
        self._due: queue.SimpleQueue[tuple[float, Callable[[], None]] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    def call_later(self, fn: Callable[[], None]) -> None:
        """Call `fn()` `delay_s` from now (never, once closed)."""
        with self._lock:
            if self._closed:
                return
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            self._due.put((time.monotonic() + self.delay_s, fn))

    def close(self) -> None:
        """Call nothing more, and let the thread end. Idempotent."""
        with self._lock:
            self._closed = True
            self._due.put(None)

    def _run(self) -> None:
        while (item := self._due.get()) is not None:
            due, fn = item
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if self._closed:
                return
            try:
                fn()
            except Exception:  # noqa: BLE001 - one failed call must not stop the others
                log.exception("a call %s s after a read failed", self.delay_s)
