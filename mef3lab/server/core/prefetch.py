"""What to decode next, and forgetting what is no longer wanted.

`PrefetchPolicy` says which segments follow a read (the next few in the direction the
reader moves); `PrefetchTracker` remembers, per reading stream, where it was and what is
still queued for it, and cancels what a jump made stale (docs/server.md, "Prefetch").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Protocol


class Cancellable(Protocol):
    """A queued piece of work that may still be called off."""

    def cancel(self) -> bool:
        """Call the work off if it has not started; True when it will never run."""


@dataclass(frozen=True)
class PrefetchPolicy:
    """The next `depth` segments after a read, in the direction the reader moves; one after a jump.

    A read that lands more than a segment away from the stream's previous one is a jump: only
    the segment after it is queued, so that a reader jumping from place to place does not
    queue segments of prefetch beside its next jump's own decode. Reading on from there
    brings the plan back to `depth`.

    Parameters
    ----------
    depth : int
        How many segments to prefetch after each read (0: none).
    """

    depth: int

    def plan(self, previous: int | None, current: int, n_segments: int) -> list[int]:
        """The segments to prefetch after reading `current`, nearest first.

        Parameters
        ----------
        previous : int or None
            The segment this stream read before (None: its first read); a read before it
            means the reader moves backwards.
        current : int
            The segment just read.
        n_segments : int
            How many segments there are: the plan stays inside ``[0, n_segments)``.

        Returns
        -------
        list of int
            Up to `depth` segment indices (one after a jump).
        """
        step = -1 if previous is not None and current < previous else 1
        jumped = previous is not None and abs(current - previous) > 1
        depth = min(self.depth, 1) if jumped else self.depth
        out = []
        for i in range(1, depth + 1):
            j = current + step * i
            if 0 <= j < n_segments:
                out.append(j)
        return out


@dataclass
class _Stream:
    previous: int | None = None
    queued: dict[int, Cancellable] = field(default_factory=dict)
    last_seen: float = field(default_factory=time.monotonic)


class PrefetchTracker:
    """Remembers, per reading stream, where it was and which prefetches are outstanding.

    A stream is any hashable key (the engine uses client, recording, rate, channels and
    segment length). Thread-safe.

    Parameters
    ----------
    policy : PrefetchPolicy
        What to prefetch after each read.
    """

    def __init__(self, policy: PrefetchPolicy) -> None:
        self.policy = policy
        self._streams: dict[Hashable, _Stream] = {}
        self._lock = threading.Lock()

    def advance(self, stream: Hashable, current: int, n_segments: int) -> list[int]:
        """Record a read of `current` and cancel the stream's prefetches outside the new plan.

        Parameters
        ----------
        stream : Hashable
            The reading stream.
        current : int
            The segment just read.
        n_segments : int
            How many segments the stream's grid has.

        Returns
        -------
        list of int
            The plan: the segments to prefetch now (see `PrefetchPolicy.plan`).
        """
        with self._lock:
            s = self._streams.setdefault(stream, _Stream())
            plan = self.policy.plan(s.previous, current, n_segments)
            s.previous, s.last_seen = current, time.monotonic()
            stale = [f for i, f in s.queued.items() if i not in plan]
            s.queued = {i: f for i, f in s.queued.items() if i in plan}
        for f in stale:
            f.cancel()  # only succeeds for work not yet started; started work still fills the cache
        return plan

    def queued(self, stream: Hashable, index: int, handle: Cancellable) -> None:
        """Remember that segment `index` of `stream` is being prefetched (`handle` cancels it)."""
        with self._lock:
            self._streams.setdefault(stream, _Stream()).queued[index] = handle

    def active(self, within_s: float = 300.0) -> int:
        """How many streams advanced in the last `within_s` seconds (readers moving now)."""
        now = time.monotonic()
        with self._lock:
            return sum(now - s.last_seen <= within_s for s in self._streams.values())

    def forget(self, predicate: Callable[[Hashable], bool]) -> None:
        """Cancel and drop the streams whose key matches (a client closed the recording)."""
        with self._lock:
            keys = [k for k in self._streams if predicate(k)]
            gone = [self._streams.pop(k) for k in keys]
        for s in gone:
            for f in s.queued.values():
                f.cancel()
