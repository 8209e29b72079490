"""The prefetch policy (the next segments in the direction of travel), and the tracker that
cancels stale prefetches.
"""

from __future__ import annotations

from mef3lab.server.core.prefetch import PrefetchPolicy, PrefetchTracker


class Handle:
    def __init__(self):
        self.cancelled = False

    def cancel(self):
        self.cancelled = True
        return True


def test_forward_plan_stays_inside_the_recording():
    p = PrefetchPolicy(3)
    assert p.plan(None, 0, 10) == [1, 2, 3]
    assert p.plan(4, 5, 10) == [6, 7, 8]
    assert p.plan(7, 8, 10) == [9]


def test_backward_travel_prefetches_backwards():
    assert PrefetchPolicy(3).plan(6, 5, 10) == [4, 3, 2]
    assert PrefetchPolicy(3).plan(2, 1, 10) == [0]


def test_after_a_jump_only_the_next_segment_until_the_reader_reads_on():
    p = PrefetchPolicy(3)
    assert p.plan(0, 50, 100) == [51]  # a leap ahead
    assert p.plan(50, 51, 100) == [52, 53, 54]  # reading on from there
    assert p.plan(51, 51, 100) == [52, 53, 54]  # within one segment
    assert p.plan(60, 20, 100) == [19]  # a leap back: the one before it
    assert p.plan(20, 19, 100) == [18, 17, 16]
    assert PrefetchPolicy(0).plan(0, 50, 100) == []


def test_zero_depth_plans_nothing():
    assert PrefetchPolicy(0).plan(None, 3, 10) == []


def test_jump_cancels_prefetches_no_longer_planned():
    t = PrefetchTracker(PrefetchPolicy(2))
    plan = t.advance("s", 0, 100)
    handles = {i: Handle() for i in plan}
    for i, h in handles.items():
        t.queued("s", i, h)
    t.advance("s", 50, 100)  # the user leapt ahead
    assert all(h.cancelled for h in handles.values())


def test_sequential_reading_keeps_the_still_planned_prefetches():
    t = PrefetchTracker(PrefetchPolicy(3))
    for i in t.advance("s", 0, 100):
        t.queued("s", i, Handle())
    kept = t._streams["s"].queued[2]
    t.advance("s", 1, 100)
    assert not kept.cancelled


def test_streams_are_independent_and_forget_cancels():
    t = PrefetchTracker(PrefetchPolicy(1))
    a, b = Handle(), Handle()
    t.advance(("c1", "f"), 0, 10)
    t.queued(("c1", "f"), 1, a)
    t.advance(("c2", "f"), 5, 10)
    t.queued(("c2", "f"), 6, b)
    t.advance(("c2", "f"), 9, 10)
    assert b.cancelled and not a.cancelled
    t.forget(lambda s: s[0] == "c1")
    assert a.cancelled


def test_active_counts_recently_moving_streams():
    t = PrefetchTracker(PrefetchPolicy(1))
    t.advance("a", 0, 10)
    t.advance("b", 0, 10)
    assert t.active() == 2
    t._streams["a"].last_seen -= 1000
    assert t.active(within_s=300) == 1
