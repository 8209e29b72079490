"""ByteLRU: the byte budget is a hard bound, recency decides eviction, errors never enter."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from mef3lab.caching import ByteLRU


def lru(budget, evicted=None):
    return ByteLRU(
        budget,
        lambda a: a.nbytes,
        (lambda k, v: evicted.append(k)) if evicted is not None else None,
    )


def test_stays_under_budget_and_evicts_least_recently_used():
    evicted = []
    c = lru(300, evicted)
    for k in "abc":
        c.put(k, np.zeros(100, np.uint8))
    assert c.get("a") is not None  # a is now most recent
    c.put("d", np.zeros(100, np.uint8))
    assert evicted == ["b"]
    assert "b" not in c and "a" in c and "d" in c
    assert c.stats().bytes == 300


def test_value_larger_than_budget_is_not_kept():
    c = lru(100)
    assert c.put("big", np.zeros(101, np.uint8)) is False
    assert "big" not in c and c.stats().bytes == 0


def test_hits_misses_and_peek_does_not_count():
    c = lru(1000)
    c.put("a", np.zeros(10, np.uint8))
    c.get("a"), c.get("zz"), c.peek("a")
    s = c.stats()
    assert (s.hits, s.misses, s.entries) == (1, 1, 1)


def test_drop_by_predicate_releases_entries():
    evicted = []
    c = lru(1000, evicted)
    c.put(("x", 1), np.zeros(10, np.uint8))
    c.put(("y", 1), np.zeros(10, np.uint8))
    assert c.drop(lambda k: k[0] == "x") == 1
    assert evicted == [("x", 1)] and c.stats().bytes == 10


def test_resize_shrinks_at_once():
    c = lru(1000)
    for i in range(10):
        c.put(i, np.zeros(100, np.uint8))
    c.resize(250)
    assert c.stats().bytes <= 250 and 9 in c and 0 not in c


def test_replacing_a_key_keeps_accounting_exact():
    c = lru(1000)
    c.put("a", np.zeros(100, np.uint8))
    c.put("a", np.zeros(300, np.uint8))
    assert c.stats().bytes == 300 and c.stats().entries == 1


def test_concurrent_puts_never_exceed_budget():
    c = lru(5000)
    peak = []

    def work(t):
        for i in range(300):
            c.put((t, i), np.zeros(97 + t, np.uint8))
            peak.append(c.stats().bytes)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert max(peak) <= 5000
    assert c.stats().bytes == sum(v.nbytes for v in (c.peek(k) for k in list(c._data)))


def test_negative_budget_is_refused():
    with pytest.raises(ValueError):
        lru(-1)
