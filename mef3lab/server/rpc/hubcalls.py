"""Questions to the JupyterHub, asked so that a flood of tokens or a hung hub stalls nobody.

`HubCalls` keeps the hub's answers itself (valid tokens for a while, refused ones for a
shorter while, at most a fixed number), asks about at most a few tokens at once, and waits
for an answer only so long; a cached token is answered without touching the hub or its
client's single worker thread. A token in use is asked about again in the background in
the last part of its answer's time, so its user never waits for the hub again; no answer is
used longer than it is valid.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Generic, TypeVar

from ...errors import ServerUnavailableError

T = TypeVar("T")

log = logging.getLogger(__name__)

#: Seconds a refused token stays refused without asking again.
REFUSED_S = 10.0
#: Answers kept at most (the oldest go first).
MAX_ANSWERS = 10_000
#: The last part of a valid answer's time in which a use of it asks again, in the background.
RENEW_PART = 0.25


class HubCalls(Generic[T]):
    """Cached, bounded calls of ``ask(token)``.

    Parameters
    ----------
    ask : callable
        ``ask(token)``: the answer for a token (None: refused); it may raise, and then
        nothing is cached.
    valid_s : float
        Seconds an answer other than None is reused.
    timeout_s : float, default 5.0
        Seconds a caller waits for a place and for the answer; then `ServerUnavailableError`.
    max_calls : int, default 8
        Questions under way at once (a question that timed out keeps its place until it ends).
    """

    def __init__(
        self,
        ask: Callable[[str], T | None],
        valid_s: float,
        timeout_s: float = 5.0,
        max_calls: int = 8,
    ) -> None:
        self.ask, self.valid_s, self.timeout_s = ask, valid_s, timeout_s
        self._answers: OrderedDict[str, tuple[float, T | None]] = OrderedDict()
        self._renewing: set[str] = set()
        self._lock = threading.Lock()
        self._places = threading.BoundedSemaphore(max_calls)

    def known(self, token: str) -> tuple[bool, T | None]:
        """(True, the cached answer) for a token asked about lately, else (False, None).

        A valid answer in the last `RENEW_PART` of its time is renewed in the background (if
        a place to ask is free at once); meanwhile, and if renewing fails, it is used as long
        as it is valid, never longer.
        """
        key, now = _key(token), time.monotonic()
        with self._lock:
            cached = self._answers.get(key)
            renew = (
                cached is not None
                and cached[1] is not None
                and 0 < cached[0] - now < RENEW_PART * self.valid_s
                and key not in self._renewing
            )
            if renew:
                self._renewing.add(key)
        if renew:
            self._renew(token, key)
        if cached is not None and cached[0] > now:
            return True, cached[1]
        return False, None

    def __call__(self, token: str) -> T | None:
        """The answer for `token`, cached or asked.

        Raises
        ------
        mef3lab.errors.ServerUnavailableError
            No answer within `timeout_s` (too many questions under way, or the hub hangs);
            or what `ask` raised.
        """
        key = _key(token)
        hit, answer = self.known(token)
        if hit:
            return answer
        if not self._places.acquire(timeout=self.timeout_s):
            raise ServerUnavailableError(
                f"too many tokens are waiting for JupyterHub to check them (for more than "
                f"{self.timeout_s:g} s); try again in a moment"
            )
        question = self._question(token)
        try:
            answer = question.result(timeout=self.timeout_s)
        except FutureTimeout:
            raise no_answer(self.timeout_s) from None
        self._keep(key, answer)
        return answer

    def _keep(self, key: str, answer: T | None) -> None:
        lasts = self.valid_s if answer is not None else REFUSED_S
        with self._lock:
            self._answers[key] = (time.monotonic() + lasts, answer)
            self._answers.move_to_end(key)
            while len(self._answers) > MAX_ANSWERS:
                self._answers.popitem(last=False)

    def _renew(self, token: str, key: str) -> None:
        """Ask about `token` again in the background, when a place is free at once."""
        if not self._places.acquire(blocking=False):
            with self._lock:
                self._renewing.discard(key)  # a later use tries again
            return

        def done(question: Future) -> None:
            error = question.exception()
            if error is None:
                self._keep(key, question.result())
            else:  # the answer held stays valid until its time is up, no longer
                log.debug("could not renew a token's answer: %s", error)
            with self._lock:
                self._renewing.discard(key)

        try:
            question = self._question(token)
        except RuntimeError as exc:  # no thread to ask on: the answer held serves meanwhile
            log.debug("could not renew a token's answer: %s", exc)
            with self._lock:
                self._renewing.discard(key)
            return
        question.add_done_callback(done)

    def _question(self, token: str) -> Future:
        """`ask` on a daemon thread of its own; its place is given back when it ends.

        A daemon thread, so that a hung question never keeps the server from exiting.
        """
        question: Future = Future()

        def run() -> None:
            try:
                question.set_result(self.ask(token))
            except BaseException as exc:  # handed to the caller
                question.set_exception(exc)
            finally:
                self._places.release()

        try:
            threading.Thread(target=run, name="mef3lab-hub", daemon=True).start()
        except BaseException:
            self._places.release()
            raise
        return question


def no_answer(timeout_s: float) -> ServerUnavailableError:
    """The error for a hub that did not answer within `timeout_s` seconds."""
    return ServerUnavailableError(
        f"JupyterHub did not answer within {timeout_s:g} s; try again when it is up"
    )


def _key(token: str) -> str:
    """What a token is kept under: its hash, so that the cache holds no token."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()
