"""What to decode next, and forgetting what is no longer wanted.

Two small pieces, each easy to reason about on its own (in the spirit of fsspec's
named readahead caches):

- `PrefetchPolicy`: a pure policy. After segment N, the next `depth` segments in the
  direction the reader is moving (backwards when it moves backwards).
- `PrefetchTracker`: per reading stream (client, recording, channels, grid), the last
  position and the prefetches still queued for it; a jump cancels those no longer
  in the plan, so a user who leaps ahead does not wait behind stale work.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Protocol


class Cancellable(Protocol):
    def cancel(self) -> bool: ...


@dataclass(frozen=True)
class PrefetchPolicy:
    """Sequential readahead in the direction of travel."""

    depth: int

    def plan(self, previous: int | None, current: int, n_segments: int) -> list[int]:
        """Segments to prefetch after reading `current`, nearest first, inside ``[0, n_segments)``."""
        step = -1 if previous is not None and current < previous else 1
        out = []
        for i in range(1, self.depth + 1):
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
    """Remembers, per stream, where it was and which prefetches are outstanding."""

    def __init__(self, policy: PrefetchPolicy) -> None:
        self.policy = policy
        self._streams: dict[Hashable, _Stream] = {}
        self._lock = threading.Lock()

    def advance(self, stream: Hashable, current: int, n_segments: int) -> list[int]:
        """Record a read of `current`; cancel outstanding prefetches outside the new plan; return the plan."""
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
        with self._lock:
            self._streams.setdefault(stream, _Stream()).queued[index] = handle

    def active(self, within_s: float = 300.0) -> int:
        """How many streams advanced in the last `within_s` seconds (readers moving now)."""
        now = time.monotonic()
        with self._lock:
            return sum(now - s.last_seen <= within_s for s in self._streams.values())

    def forget(self, predicate) -> None:
        """Cancel and drop the streams whose key matches (a client closed the recording)."""
        with self._lock:
            keys = [k for k in self._streams if predicate(k)]
            gone = [self._streams.pop(k) for k in keys]
        for s in gone:
            for f in s.queued.values():
                f.cancel()
