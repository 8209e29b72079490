"""Split reads: one result, decoded by several workers at once, each writing its rows in place.

A read a user waits for should use every core. Its channels are divided among the workers,
and every part decodes straight into its own rows of one shared block the parent created
for the whole result, so nothing is stacked afterwards (docs/server.md, "Split reads").
"""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import CancelledError as FutureCancelled
from concurrent.futures import Future
from dataclasses import replace

from .requests import Job, ReadRequest
from .shm import create_block, shared_array, unlink_block


def split_rows(n_rows: int, ways: int) -> list[tuple[int, int]]:
    """`ways` contiguous row ranges covering ``[0, n_rows)``.

    Parameters
    ----------
    n_rows : int
        How many rows.
    ways : int
        Into how many ranges (fewer when there are fewer rows; at least one).

    Returns
    -------
    list of (int, int)
        ``(a, b)`` ranges, in order, of near-equal lengths.
    """
    ways = max(1, min(ways, n_rows))
    edges = [round(i * n_rows / ways) for i in range(ways + 1)]
    return list(itertools.pairwise(edges))


def part_jobs(
    req: ReadRequest, key: tuple, foreground: bool, ways: int
) -> tuple[SplitRead, list[Job]]:
    """The group future of a split read and its part jobs (to be submitted).

    Parameters
    ----------
    req : ReadRequest
        The whole read.
    key : tuple
        The reader it needs (`reader_key`).
    foreground : bool
        False for a prefetch.
    ways : int
        Into how many parts (see `split_rows`).

    Returns
    -------
    tuple of (SplitRead, list of Job)
    """
    block = create_block(req.nbytes)
    jobs = [
        Job(
            "read",
            replace(req, channels=req.channels[a:b]),
            key,
            foreground,
            target=(block.name, a * req.row_bytes),
        )
        for a, b in split_rows(len(req.channels), ways)
    ]
    return SplitRead(req, block, [j.future for j in jobs]), jobs


class SplitRead(Future):
    """The result of a split read: its SharedArray once every part is done, else the first failure.

    Cancelling it cancels the parts, and succeeds only while none has started. The block
    is unlinked when the last part ends, however the parts end.

    Parameters
    ----------
    req : ReadRequest
        The whole read.
    block : SharedMemory
        The result's block, which the parts write into.
    parts : list of concurrent.futures.Future
        The parts' futures.
    """

    def __init__(self, req: ReadRequest, block, parts: list[Future]) -> None:
        super().__init__()
        self._req, self._block, self._parts = req, block, parts
        self._left = len(parts)
        self._answered = False
        self._count_lock = threading.Lock()
        for f in parts:
            f.add_done_callback(self._part_done)

    @property
    def parts(self) -> tuple[Future, ...]:
        """The parts' futures (what `ReaderPool.abort` stops)."""
        return tuple(self._parts)

    def cancel(self) -> bool:
        """Cancel the read and its parts, if no part has started; True when it never runs."""
        if any(p.running() or p.done() for p in self._parts) or not super().cancel():
            return False
        for p in self._parts:
            p.cancel()  # a part that started meanwhile finishes into a block nobody reads
        return True

    def _part_done(self, part: Future) -> None:
        # The first failure answers at once; parts still running finish into the block.
        if (
            (part.cancelled() or part.exception() is not None)
            and self._answer()
            and self.set_running_or_notify_cancel()
        ):
            self.set_exception(FutureCancelled() if part.cancelled() else part.exception())
        with self._count_lock:
            self._left -= 1
            if self._left:
                return
        block, self._block = self._block, None
        unlink_block(block)  # every part has ended: the name goes; the memory lives with the array
        if self._answer() and self.set_running_or_notify_cancel():  # every part succeeded
            result = shared_array(block, self._req)
            result.stops = tuple(s for p in self._parts for s in (p.result() or ()))
            self.set_result(result)
        else:
            block.close()

    def _answer(self) -> bool:
        """True the first time only: who answers the caller (one failure, or the result)."""
        with self._count_lock:
            first, self._answered = not self._answered, True
            return first
