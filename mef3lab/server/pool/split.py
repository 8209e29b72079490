"""Split reads: one result, decoded by several workers at once, each writing its rows in place.

A read a user waits for should use every core. Its channels are divided among the workers,
and every part decodes straight into its own rows of ONE shared block the parent created
for the whole result: nothing is stacked afterwards (stacking 20-40 MB of parts in the
server process cost ~40 ms a segment under load, holding the GIL while data was streamed).
The parent owns the block as for any read: unlinked when the last part ends, however the
parts end; the memory lives as long as the result array.
"""

from __future__ import annotations

import threading
from concurrent.futures import CancelledError as FutureCancelled
from concurrent.futures import Future

from .requests import Job, ReadRequest
from .shm import create_block, shared_array, unlink_block


def split_rows(n_rows: int, ways: int) -> list[tuple[int, int]]:
    """`ways` contiguous row ranges covering ``[0, n_rows)`` (fewer when there are fewer rows)."""
    ways = max(1, min(ways, n_rows))
    edges = [round(i * n_rows / ways) for i in range(ways + 1)]
    return [(a, b) for a, b in zip(edges, edges[1:])]


def part_jobs(
    req: ReadRequest, key: tuple, foreground: bool, ways: int
) -> tuple[SplitRead, list[Job]]:
    """The group future and its part jobs (to be submitted) for `req` split `ways` ways."""
    block = create_block(req.nbytes)
    jobs = [
        Job(
            "read",
            ReadRequest(
                req.path, req.password, req.engine, req.channels[a:b], req.k0, req.k1, req.dtype
            ),
            key,
            foreground,
            target=(block.name, a * req.row_bytes),
        )
        for a, b in split_rows(len(req.channels), ways)
    ]
    return SplitRead(req, block, [j.future for j in jobs]), jobs


class SplitRead(Future):
    """The result of a split read: its SharedArray once every part is done, else the first
    failure. Cancelling it cancels the parts, and succeeds only while none has started.
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
        if any(p.running() or p.done() for p in self._parts) or not super().cancel():
            return False
        for p in self._parts:
            p.cancel()  # a part that started meanwhile finishes into a block nobody reads
        return True

    def _part_done(self, part: Future) -> None:
        if part.cancelled() or part.exception() is not None:
            # The first failure answers at once; parts still running finish into the block.
            if self._answer() and self.set_running_or_notify_cancel():
                self.set_exception(FutureCancelled() if part.cancelled() else part.exception())
        with self._count_lock:
            self._left -= 1
            if self._left:
                return
        block, self._block = self._block, None
        unlink_block(block)  # every part has ended: the name goes; the memory lives with the array
        if self._answer() and self.set_running_or_notify_cancel():  # every part succeeded
            self.set_result(shared_array(block, self._req))
        else:
            block.close()

    def _answer(self) -> bool:
        """True the first time only: who answers the caller (one failure, or the result)."""
        with self._count_lock:
            first, self._answered = not self._answered, True
            return first
