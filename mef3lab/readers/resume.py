"""Where the RED kernel stopped inside blocks: a later read goes on there, not from the start.

A read decodes a block only as far as its window needs. The next read of that channel
often starts where it stopped (the next page, or a server's fill after a cold read's
reply): kept here, the kernel's state lets it go on from there, and no sample is decoded
twice. A state is a block's identity (channel, segment, byte offset, CRC) and the kernel's
`blockformat.STATE_FIELDS` integers; one that travels between processes is checked again by
`kernels.Kernels.decode_blocks` before it is used.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np

from .blockformat import STATE_FIELDS

#: How many blocks' states a reader keeps (the newest): more than a page of the widest
#: recording has channels.
KEPT_STATES = 4096

#: (channel, segment, byte offset in the segment's .tdat, the block's CRC): one block of a
#: recording, as it is now.
BlockKey = tuple[str, int, int, int]
#: A block's key, then the kernel's state in it: what `ResumeStates.offer` takes and a
#: collector gets.
Stop = tuple


class ResumeStates:
    """The kernel's state in the blocks a reader's reads left partly decoded. Thread-safe."""

    def __init__(self, kept: int = KEPT_STATES) -> None:
        self._kept = kept
        self._states: OrderedDict[BlockKey, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._local = threading.local()

    def offer(self, stops: Sequence[Stop]) -> None:
        """Keep states another reader left (`collecting`); malformed ones are ignored."""
        for stop in stops:
            try:
                if len(stop) != 4 + STATE_FIELDS:
                    continue
                key = (str(stop[0]), int(stop[1]), int(stop[2]), int(stop[3]))
                state = np.array(stop[4:], np.int64)
            except (TypeError, ValueError, OverflowError):
                continue
            with self._lock:
                self._put(key, state)

    @contextmanager
    def collecting(self) -> Iterator[list[Stop]]:
        """The states reads on this thread leave at their windows' ends, while in the block."""
        got: list[Stop] = []
        self._local.sink = got
        try:
            yield got
        finally:
            self._local.sink = None

    def sink(self) -> list[Stop] | None:
        """The collector of this thread (`collecting`), for decoding threads; None: none."""
        return getattr(self._local, "sink", None)

    def __bool__(self) -> bool:
        """Whether any state is kept."""
        return bool(self._states)

    def states(self, keys: Sequence[BlockKey], firsts: np.ndarray) -> np.ndarray:
        """The states to go on from, ``(len(keys), STATE_FIELDS)``: zeros where none applies.

        A state applies to a block when every sample it decoded lands before the read's
        row (``firsts`` is where the block's first sample lands).
        """
        out = np.zeros((len(keys), STATE_FIELDS), np.int64)
        with self._lock:
            if not self._states:
                return out
            for i, key in enumerate(keys):
                state = self._states.get(key)
                if state is not None and state[0] <= -firsts[i]:
                    out[i] = state
        return out

    def update(
        self,
        keys: Sequence[BlockKey],
        left: np.ndarray,
        at_end: np.ndarray,
        sink: list[Stop] | None,
        resumed: Sequence[BlockKey] = (),
    ) -> None:
        """After a read: keep where it stopped in `keys` (`left`), forget the blocks resumed.

        The states of blocks it stopped in at its row's end (`at_end`) also go to `sink`
        (when given). A resumed block that was stopped in again is kept with its new state.
        """
        with self._lock:
            for key in resumed:
                self._states.pop(key, None)
            for key, state, end in zip(keys, left, at_end, strict=True):
                self._put(key, state.copy())
                if sink is not None and end:
                    sink.append((*key, *(int(v) for v in state)))

    def _put(self, key: BlockKey, state: np.ndarray) -> None:
        """Keep `state` as the newest (called under the lock)."""
        self._states[key] = state
        self._states.move_to_end(key)
        if len(self._states) > self._kept:
            self._states.popitem(last=False)
