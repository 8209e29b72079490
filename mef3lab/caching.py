"""A thread-safe LRU mapping bounded in bytes rather than in entries (`ByteLRU`).

The server's segment store and the widget's page and zoom caches use it. Bytes, because what
they cache differs wildly in size (2 channels or 256, 1 s or 10 min), and memory is what runs
out. Callers put only successful results here (never errors); a value larger than the whole
budget is served but not kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass
class CacheStats:
    """A snapshot of a `ByteLRU`'s size and counters (`ByteLRU.stats`)."""

    bytes: int = 0
    budget_bytes: int = 0
    entries: int = 0
    hits: int = 0
    misses: int = 0
    evictions: int = 0


class ByteLRU(Generic[K, V]):
    """An LRU mapping whose total ``size_of(value)`` never exceeds `budget_bytes`.

    Parameters
    ----------
    budget_bytes : int
        The most bytes the values may take together.
    size_of : callable
        ``size_of(value)``: the bytes one value takes.
    on_evict : callable, optional
        ``on_evict(key, value)``, run (outside the lock) for every value that leaves the cache,
        so owners of shared memory can release it.

    Raises
    ------
    ValueError
        If `budget_bytes` is negative.

    Examples
    --------
    >>> cache = ByteLRU(budget_bytes=10, size_of=len)
    >>> cache.put("a", b"123456")
    True
    >>> cache.put("b", b"12345")  # evicts "a" to fit
    True
    >>> cache.get("a") is None, cache.get("b")
    (True, b'12345')
    """

    def __init__(
        self,
        budget_bytes: int,
        size_of: Callable[[V], int],
        on_evict: Callable[[K, V], None] | None = None,
    ) -> None:
        if budget_bytes < 0:
            raise ValueError("cache budget must be >= 0 bytes")
        self._budget = budget_bytes
        self._size_of = size_of
        self._on_evict = on_evict
        self._data: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._stats = CacheStats(budget_bytes=budget_bytes)

    def get(self, key: K) -> V | None:
        """The value (now most recently used), or None; counts a hit or a miss."""
        with self._lock:
            item = self._data.get(key)
            if item is None:
                self._stats.misses += 1
                return None
            self._data.move_to_end(key)
            self._stats.hits += 1
            return item[0]

    def peek(self, key: K) -> V | None:
        """The value without touching recency or statistics (for prefetch decisions)."""
        with self._lock:
            item = self._data.get(key)
            return None if item is None else item[0]

    def __contains__(self, key: K) -> bool:
        with self._lock:
            return key in self._data

    def put(self, key: K, value: V) -> bool:
        """Insert (or refresh) `value`, evicting the least recently used entries to fit.

        Parameters
        ----------
        key : hashable
            The key.
        value : object
            The value; ``size_of(value)`` bytes.

        Returns
        -------
        bool
            True if it was stored; False if it is larger than the whole budget (not kept).
        """
        size = self._size_of(value)
        evicted: list[tuple[K, V]] = []
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
                if old[0] is not value:
                    evicted.append((key, old[0]))
            stored = size <= self._budget
            if stored:
                while self._data and self._bytes + size > self._budget:
                    k, (v, s) = self._data.popitem(last=False)
                    self._bytes -= s
                    self._stats.evictions += 1
                    evicted.append((k, v))
                self._data[key] = (value, size)
                self._bytes += size
        self._evicted(evicted)
        return stored

    def resize(self, budget_bytes: int) -> None:
        """Change the budget; shrinking evicts least recently used entries at once."""
        evicted: list[tuple[K, V]] = []
        with self._lock:
            self._budget = self._stats.budget_bytes = budget_bytes
            while self._data and self._bytes > self._budget:
                k, (v, s) = self._data.popitem(last=False)
                self._bytes -= s
                self._stats.evictions += 1
                evicted.append((k, v))
        self._evicted(evicted)

    def drop(self, predicate: Callable[[K], bool]) -> int:
        """Remove every entry whose key matches (e.g. all segments of a closed recording).

        Parameters
        ----------
        predicate : callable
            ``predicate(key)``: True for the keys to remove.

        Returns
        -------
        int
            How many entries were removed.
        """
        with self._lock:
            keys = [k for k in self._data if predicate(k)]
            evicted = [(k, self._data.pop(k)[0]) for k in keys]
            self._bytes = sum(s for _, s in self._data.values())
        self._evicted(evicted)
        return len(evicted)

    def clear(self) -> None:
        """Remove every entry."""
        self.drop(lambda _k: True)

    def stats(self) -> CacheStats:
        """Current size and counters, as a copy."""
        with self._lock:
            s = self._stats
            return CacheStats(
                self._bytes, self._budget, len(self._data), s.hits, s.misses, s.evictions
            )

    def _evicted(self, items: list[tuple[K, V]]) -> None:
        if self._on_evict is not None:
            for k, v in items:
                self._on_evict(k, v)
