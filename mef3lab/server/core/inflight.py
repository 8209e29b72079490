"""Reply bytes in flight per identity: the samples a user's calls in progress hold at once.

A call that reads is charged its reply's size before any work starts, and the charge is
given back when the call ends (its stream sent or abandoned). One identity asking many
huge reads at once is refused the excess (RESOURCE_EXHAUSTED) while another's reads go
on. The gRPC side opens a `CallBytes` per call and makes it current (`attach`); the
engine charges it (`charge_reply`), so that a read made outside a call costs nothing here.
"""

from __future__ import annotations

import threading
from collections import Counter
from contextvars import ContextVar

from ...errors import ReadTooLargeError

_current: ContextVar[CallBytes | None] = ContextVar("mef3lab_call_bytes", default=None)


class BytesInFlight:
    """How many reply bytes each identity's calls hold, against one limit per identity.

    Thread-safe.

    Parameters
    ----------
    limit : int
        Bytes one identity's calls may hold at once (0: no limit). A single read is never
        refused for it when the identity holds nothing else: its size is the read limit's
        to judge.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._held: Counter[str] = Counter()
        self._lock = threading.Lock()

    def call(self, identity: str) -> CallBytes:
        """A new call of `identity`, holding nothing yet."""
        return CallBytes(self, identity)

    def held(self, identity: str) -> int:
        """The bytes `identity`'s calls hold now."""
        with self._lock:
            return self._held[identity]

    def _take(self, identity: str, nbytes: int) -> None:
        with self._lock:
            held = self._held[identity]
            if self.limit and held and held + nbytes > self.limit:
                raise ReadTooLargeError(
                    f"your reads in progress on this server hold {held / 2**20:.1f} MiB; one more "
                    f"of {nbytes / 2**20:.1f} MiB would pass its limit of "
                    f"{self.limit / 2**20:g} MiB per user: wait for them (read streams as they "
                    "arrive) or read in smaller windows"
                )
            self._held[identity] = held + nbytes

    def _give(self, identity: str, nbytes: int) -> None:
        with self._lock:
            self._held[identity] -= nbytes
            if self._held[identity] <= 0:
                del self._held[identity]


class CallBytes:
    """What one call holds; `release` gives it all back (the call ended).

    Parameters
    ----------
    budget : BytesInFlight
        The server's ledger.
    identity : str
        Whom the call counts against.
    """

    def __init__(self, budget: BytesInFlight, identity: str) -> None:
        self._budget, self.identity = budget, identity
        self.nbytes = 0
        self._lock = threading.Lock()

    def charge(self, nbytes: int) -> None:
        """Hold `nbytes` more until the call ends.

        Raises
        ------
        mef3lab.errors.ReadTooLargeError
            When the identity's calls would hold more than the limit (nothing is held then).
        """
        with self._lock:
            self._budget._take(self.identity, nbytes)
            self.nbytes += nbytes

    def release(self) -> None:
        """Give back everything this call holds. Idempotent."""
        with self._lock:
            nbytes, self.nbytes = self.nbytes, 0
        if nbytes:
            self._budget._give(self.identity, nbytes)


def attach(call: CallBytes) -> None:
    """Make `call` the one `charge_reply` charges in the current context.

    Run it inside the context the call's handlers run in: ``ctx.run(attach, call)``.
    """
    _current.set(call)


def charge_reply(nbytes: int) -> None:
    """Charge the current call (`attach`) a reply of `nbytes`; nothing outside a call.

    Raises
    ------
    mef3lab.errors.ReadTooLargeError
        As `CallBytes.charge`.
    """
    call = _current.get()
    if call is not None:
        call.charge(nbytes)


__all__ = ["BytesInFlight", "CallBytes", "attach", "charge_reply"]
