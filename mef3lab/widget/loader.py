"""One background thread that serves only the newest request.

A held arrow key asks for thirty pages a second; the reviewer wants the one they stop
on. Requests carry increasing ids; while one is being served, newer ones replace each
other in a single slot, so at most one in-between page is ever read. The caller's
`serve(id, request)` checks the id again before sending (`is_current`), so a reply
overtaken while it was being prepared is dropped too. Submitting never blocks.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["LatestLoader"]

log = logging.getLogger(__name__)


class LatestLoader:
    """Runs `serve(id, request)` on a daemon thread for the newest submitted request only."""

    def __init__(self, serve: Callable[[int, Any], None], name: str = "mef3lab-scroller") -> None:
        self._serve = serve
        self._cond = threading.Condition()
        self._pending: tuple[int, Any] | None = None
        self._latest = 0
        self._done = 0  # id of the last request served (or dropped)
        self.skipped = 0  # requests replaced by a newer one before they were started
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, request: Any) -> int:
        """Queue `request`, replacing any not yet started; its id."""
        with self._cond:
            self._latest += 1
            if self._pending is not None:
                self.skipped += 1
            self._pending = (self._latest, request)
            self._cond.notify_all()
            return self._latest

    def is_current(self, id: int) -> bool:
        """Whether `id` is still the newest request (a reply for an older one is stale)."""
        return id == self._latest

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the newest request so far has been served; False on timeout."""
        with self._cond:
            target = self._latest
            return self._cond.wait_for(lambda: self._done >= target or self._closed, timeout)

    def close(self) -> None:
        """Stop the thread after the request under way; later submits are never served."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._closed)
                if self._closed:
                    return
                id, request = self._pending
                self._pending = None
            try:
                self._serve(id, request)
            except Exception:  # the thread must outlive one failed request
                log.exception("serving scroller request %d failed", id)
            with self._cond:
                self._done = max(self._done, id)
                self._cond.notify_all()
