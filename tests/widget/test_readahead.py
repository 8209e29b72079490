"""The page cache's read-ahead: held until the page before it is drawn, replaced by a newer
one before it starts, taken over by a reader who cannot wait, dropped on close; each page is
read once."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from mef3lab.widget.pages import Block, Page, View
from mef3lab.widget.readahead import PageCache

LONG_S = 30.0  # a hold no test waits out


def view(start_s: float) -> View:
    return View(round(start_s * 1e6), 1_000_000, ("a",))


class Source:
    """Pages whose one sample is their start; which views were read, and on which thread."""

    def __init__(self) -> None:
        self.reads: list[tuple[float, str]] = []
        self.read = threading.Event()
        self.gate = threading.Event()
        self.gate.set()

    def load(self, v: View) -> Page:
        self.gate.wait(LONG_S)
        self.reads.append((v.start_s, threading.current_thread().name))
        self.read.set()
        return Page(v, (Block(1.0, ("a",), v.start_s, np.full((1, 1), v.start_s, np.float32)),))

    @property
    def starts(self) -> list[float]:
        return [s for s, _ in self.reads]


@pytest.fixture
def src():
    return Source()


@pytest.fixture
def cache(src):
    cache = PageCache(src.load)
    yield cache
    src.gate.set()
    cache.close()


def test_a_held_read_ahead_waits_for_its_release(src, cache):
    cache.prefetch(view(1), hold_s=LONG_S)
    time.sleep(0.2)
    assert src.starts == []
    cache.release()
    assert src.read.wait(10)
    assert cache.get(view(1)).blocks[0].data[0, 0] == 1.0
    assert src.reads == [(1.0, "mef3lab-readahead")]  # read once, in the background


def test_a_held_read_ahead_starts_when_its_hold_is_over(src, cache):
    cache.prefetch(view(1), hold_s=0.05)
    assert src.read.wait(10)
    assert src.starts == [1.0]


def test_a_newer_read_ahead_replaces_one_not_started(src, cache):
    cache.prefetch(view(1), hold_s=LONG_S)
    cache.prefetch(view(2))
    assert src.read.wait(10)
    time.sleep(0.2)
    assert src.starts == [2.0]  # the first was never read ...
    assert cache.get(view(1)).blocks[0].data[0, 0] == 1.0  # ... until asked for
    assert src.starts == [2.0, 1.0]


def test_a_page_asked_for_while_its_read_ahead_is_held_is_read_at_once_by_the_caller(src, cache):
    cache.prefetch(view(1), hold_s=LONG_S)
    t0 = time.monotonic()
    page = cache.get(view(1))
    assert time.monotonic() - t0 < 10.0 and page.blocks[0].data[0, 0] == 1.0
    assert src.reads == [(1.0, threading.current_thread().name)]
    cache.release()  # nothing is held any more: nothing is read again
    time.sleep(0.2)
    assert cache.get(view(1)) is page and src.starts == [1.0]


def test_a_page_being_read_ahead_is_waited_for_not_read_twice(src, cache):
    src.gate.clear()
    got: list[Page] = []
    cache.prefetch(view(1))
    time.sleep(0.1)  # the read-ahead has started and waits at the gate
    reader = threading.Thread(target=lambda: got.append(cache.get(view(1))))
    reader.start()
    time.sleep(0.1)
    assert got == []
    src.gate.set()
    reader.join(10)
    assert got[0].blocks[0].data[0, 0] == 1.0
    assert src.reads == [(1.0, "mef3lab-readahead")]


def test_close_drops_a_held_read_ahead_without_reading_it(src, cache):
    before = set(threading.enumerate())
    cache.prefetch(view(1), hold_s=LONG_S)
    t0 = time.monotonic()
    cache.close()
    assert time.monotonic() - t0 < 10.0
    cache.prefetch(view(2))  # closed: only advice, not taken
    time.sleep(0.2)
    assert src.starts == []
    assert [t for t in threading.enumerate() if t not in before] == []  # its thread is gone


def test_a_failed_read_ahead_is_not_cached_and_its_error_goes_to_who_waits():
    calls = []

    def load(v: View) -> Page:
        calls.append(v.start_s)
        if len(calls) == 1:
            time.sleep(0.2)
            raise OSError("damaged block")
        return Page(v, ())

    cache = PageCache(load)
    try:
        cache.prefetch(view(1))
        time.sleep(0.05)  # under way
        with pytest.raises(OSError, match="damaged block"):
            cache.get(view(1))
        assert cache.get(view(1)).blocks == () and calls == [1.0, 1.0]  # read again
    finally:
        cache.close()


def test_a_read_ahead_the_interpreter_cannot_start_a_thread_for_is_dropped(src, monkeypatch):
    """At exit no thread can start: reading ahead is only advice, the page is read when asked."""

    def refuse(self):
        raise RuntimeError("can't create new thread at interpreter shutdown")

    cache = PageCache(src.load)
    monkeypatch.setattr(threading.Thread, "start", refuse)
    cache.prefetch(view(1))
    monkeypatch.undo()
    try:
        assert src.starts == []
        assert cache.get(view(1)).blocks[0].data[0, 0] == 1.0
        assert src.reads == [(1.0, threading.current_thread().name)]
    finally:
        cache.close()
