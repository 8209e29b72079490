"""Reading ahead while a reviewer looks at a page, so the next flip never waits for decoding.

`PageCache` holds pages by `View` and reads each at most once; `Readahead` decides, after
each page shown, which pages come next in the direction of travel, hints them to the source
and has the next one read into the cache in the background (held, where a front end draws
the page, until it has been drawn).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

from ..caching import ByteLRU
from ..sources import RecordingSource
from .pages import Page, View

__all__ = ["PageCache", "Readahead"]

log = logging.getLogger(__name__)


class PageCache:
    """Pages by view, loaded once by `load`, kept within `budget_bytes`.

    The least recently used pages go first. One page at a time is read ahead, on a
    background thread. A read-ahead may be held: it waits for `release` (the page before it
    is on screen) or for its time to run out, so it does not take the cores from what is
    drawing that page. A newer read-ahead replaces one that has not started; a page asked
    for while its read-ahead is held is read at once by the caller, and one asked for while
    it is being read is waited for, not read a second time.

    Parameters
    ----------
    load : callable
        Reads the page of a `View`.
    budget_bytes : int, default 256 MiB
        The most the pages' samples may take.
    """

    def __init__(self, load: Callable[[View], Page], budget_bytes: int = 256 * 2**20) -> None:
        self._load = load
        self._pages: ByteLRU[View, Page] = ByteLRU(budget_bytes, lambda p: p.nbytes)
        self._loading: dict[View, Future] = {}  # read ahead: held or being read
        self._held: tuple[View, Future, float] | None = None  # not started; due (monotonic)
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    def get(self, view: View) -> Page:
        """The page of `view`: cached, or the read-ahead's result once it is done, or read now."""
        with self._cond:
            page = self._pages.get(view)
            pending = self._loading.get(view) if page is None else None
            mine = pending is not None and self._held is not None and self._held[0] == view
            if mine:
                self._held = None  # not started: read here, at once
        if page is not None:
            return page
        if mine:
            return self._fill(view, pending)
        if pending is not None:
            return pending.result()
        page = self._load(view)
        self._pages.put(view, page)
        return page

    def prefetch(self, view: View, hold_s: float = 0.0) -> None:
        """Read `view` into the cache in the background, unless it is there or under way.

        Parameters
        ----------
        view : View
            The page to read.
        hold_s : float, default 0.0
            Seconds the read waits for `release` at most before it starts anyway.
        """
        with self._cond:
            if self._closed or view in self._pages or view in self._loading:
                return
            self._drop_held()
            future: Future = Future()
            self._loading[view] = future
            self._held = (view, future, time.monotonic() + hold_s)
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="mef3lab-readahead", daemon=True)
                try:
                    thread.start()
                except RuntimeError:  # the interpreter is exiting: reading ahead is only advice
                    self._drop_held()
                    return
                self._thread = thread
            self._cond.notify_all()

    def release(self) -> None:
        """Start the held read-ahead now (the page it follows has been drawn)."""
        with self._cond:
            if self._held is not None:
                view, future, _ = self._held
                self._held = (view, future, 0.0)
                self._cond.notify_all()

    def close(self) -> None:
        """Drop the held read-ahead, stop the thread (after the read under way), free the pages."""
        with self._cond:
            self._closed = True
            self._drop_held()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self._pages.clear()

    def _drop_held(self) -> None:
        """Under the lock: forget the read-ahead that has not started (nobody waits for it)."""
        if self._held is not None:
            view, future, _ = self._held
            self._held = None
            self._loading.pop(view, None)
            future.cancel()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed:
                    if self._held is None:
                        self._cond.wait()
                        continue
                    left = self._held[2] - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                if self._closed:
                    return
                view, future, _ = self._held
                self._held = None
            try:
                self._fill(view, future)
            except BaseException:  # handed to whoever waits; a read-ahead alone is only advice
                log.debug("read-ahead of %s failed", view, exc_info=True)

    def _fill(self, view: View, future: Future) -> Page:
        """Read `view` for `future` (it is in `_loading` until done); its page."""
        try:
            page = self._load(view)
        except BaseException as e:
            future.set_exception(e)
            raise
        else:
            self._pages.put(view, page)
            future.set_result(page)
            return page
        finally:
            with self._cond:
                self._loading.pop(view, None)


class Readahead:
    """What to read next after each shown page, in the direction of travel.

    The direction is forward unless the last move was backward. The source is told about
    the next ``depth + 1`` pages (`RecordingSource.hint`: a server decodes their segments in
    the background) and the next page is read into the cache.

    Parameters
    ----------
    source : RecordingSource
        The recording.
    cache : PageCache
        Where the next page is read into.
    duration_us : int
        The recording's length in µs; no page beyond it is read.
    depth : int, default 2
        Pages hinted beyond the next one.
    """

    def __init__(
        self, source: RecordingSource, cache: PageCache, duration_us: int, depth: int = 2
    ) -> None:
        self.source, self.cache, self.duration_us, self.depth = source, cache, duration_us, depth
        self.direction = 1
        self._last: View | None = None

    def shown(self, view: View, prefetch: bool = True, hold_s: float = 0.0) -> None:
        """`view` is on screen: hint the next pages and, with `prefetch`, read the next one.

        Returns at once; the read happens on the cache's background thread.

        Parameters
        ----------
        view : View
            The page sent to the screen.
        prefetch : bool, default True
            Whether to read the next page (else only hint).
        hold_s : float, default 0.0
            Seconds the read waits for `PageCache.release` at most (`PageCache.prefetch`).
        """
        last, self._last = self._last, view
        if (
            last is not None
            and last.channels == view.channels
            and last.length_us == view.length_us
            and view.start_us != last.start_us
        ):
            self.direction = 1 if view.start_us > last.start_us else -1
        following = [view.shifted(self.direction * i) for i in range(1, self.depth + 2)]
        following = [v for v in following if self._inside(v)]
        if not following:
            return
        # the hint first: the read of the next page then finds its segment under way on a server
        self._hint(
            min(v.start_us for v in following),
            max(v.start_us for v in following) + view.length_us,
            view.channels,
        )
        if prefetch:
            self.cache.prefetch(following[0], hold_s)

    def _inside(self, view: View) -> bool:
        return view.start_us + view.length_us > 0 and view.start_us < self.duration_us

    def _hint(self, a_us: int, b_us: int, channels: tuple[str, ...]) -> None:
        info = self.source.info
        for group in info.rate_groups:
            names = [n for n in channels if n in group.channels]
            if not names:
                continue
            k0, k1 = group.grid.indices(info.start_uutc + a_us, info.start_uutc + b_us)
            k0, k1 = max(k0, 0), min(k1, group.grid.n_samples)
            if k1 > k0:
                try:
                    self.source.hint(names, k0, k1)
                except Exception:  # a hint is only advice
                    log.debug("hint failed", exc_info=True)
