"""Reading ahead while a reviewer looks at a page, so the next flip never waits for decoding.

`PageCache` holds pages by `View` and reads each at most once; `Readahead` decides, after
each page shown, which pages come next in the direction of travel, hints them to the source
and reads the next one into the cache in the background.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from ..caching import ByteLRU
from ..sources import RecordingSource
from .pages import Page, View

__all__ = ["PageCache", "Readahead"]

log = logging.getLogger(__name__)


class PageCache:
    """Pages by view, loaded once by `load`, kept within `budget_bytes`.

    The least recently used pages go first. A page the read-ahead is still reading is
    waited for, not read a second time.

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
        self._loading: dict[View, Future] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="mef3lab-readahead")

    def get(self, view: View) -> Page:
        """The page of `view`: cached, or the read-ahead's result once it is done, or read now."""
        with self._lock:
            page = self._pages.get(view)
            pending = self._loading.get(view) if page is None else None
        if page is not None:
            return page
        if pending is not None:
            return pending.result()
        page = self._load(view)
        self._pages.put(view, page)
        return page

    def prefetch(self, view: View) -> None:
        """Read `view` into the cache on the background thread, unless it is there or under way."""
        with self._lock:
            if view in self._pages or view in self._loading:
                return
            future: Future = Future()
            self._loading[view] = future
        try:
            self._pool.submit(self._fill, view, future)
        except RuntimeError:  # closed, or the interpreter is exiting: reading ahead is only advice
            with self._lock:
                self._loading.pop(view, None)
            future.cancel()

    def _fill(self, view: View, future: Future) -> None:
        try:
            page = self._load(view)
        except BaseException as e:  # handed to whoever waits; a read-ahead alone is only advice
            future.set_exception(e)
            log.debug("read-ahead of %s failed", view, exc_info=True)
        else:
            self._pages.put(view, page)
            future.set_result(page)
        finally:
            with self._lock:
                self._loading.pop(view, None)

    def close(self) -> None:
        """Stop the read-ahead thread (after the read under way) and free the pages."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._pages.clear()


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

    def shown(self, view: View, prefetch: bool = True) -> None:
        """`view` is on screen: hint the next pages and, with `prefetch`, read the next one.

        Returns at once; the read happens on the cache's background thread.
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
            self.cache.prefetch(following[0])

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
