"""What a read returns: samples on a rate group's grid, converted as the reply is sent.

A read's samples are a `convert.Window` over cached counts; the services stream it as
byte pieces (own API) or column blocks (the legacy API), each converted when it is sent,
and only a caller that wants the whole array at once (a decimated display read) makes it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ...model import RateGroup
from .convert import Window, array_blocks, array_pieces


@dataclass(frozen=True)
class Samples:
    """A block of samples on a rate group's grid, rows in the caller's channel order.

    Parameters
    ----------
    source : Window or numpy.ndarray
        A read's `Window` over cached counts, converted to `dtype` as the reply is sent
        (`pieces`, `blocks`); computed values (an envelope) are an array already.
    channels : tuple of str
        The rows' channels.
    group : RateGroup
        The rate group whose grid the columns are on.
    start_index : int
        The grid index of the first column.
    dtype : str
        "float32", "float64" (values in channel units) or "int32" (stored counts).
    factors : numpy.ndarray or None
        Each row's conversion factor, for int32 counts.
    deferred_prefetch : callable or None
        The background loads this read asks for, when the caller starts them
        (`start_prefetch`).
    """

    source: Window | np.ndarray
    channels: tuple[str, ...]
    group: RateGroup
    start_index: int
    dtype: str = "float32"
    factors: np.ndarray | None = None
    deferred_prefetch: Callable[[], None] | None = field(default=None, compare=False, repr=False)

    @cached_property
    def data(self) -> np.ndarray:
        """All of it as one array of `dtype` (a window is converted when first asked)."""
        return self.source.array(self.dtype) if isinstance(self.source, Window) else self.source

    @property
    def shape(self) -> tuple[int, ...]:
        """(channels, samples), or (2, channels, bins) for an envelope."""
        return self.source.shape

    def pieces(self, max_bytes: int) -> Iterator[bytes]:
        """The bytes of `data` in C order, in consecutive pieces of at most `max_bytes`."""
        if isinstance(self.source, Window):
            return self.source.pieces(self.dtype, max_bytes)
        return array_pieces(self.source, max_bytes)

    def blocks(self, max_bytes: int) -> Iterator[tuple[int, int, np.ndarray]]:
        """Column blocks ``(a, b, values)`` of at most `max_bytes` (see `Window.blocks`)."""
        if isinstance(self.source, Window):
            return self.source.blocks(self.dtype, max_bytes)
        return array_blocks(self.source, max_bytes)

    def start_prefetch(self) -> None:
        """Start the deferred background loads, if any (once the reply is on its way)."""
        if self.deferred_prefetch is not None:
            self.deferred_prefetch()

    @property
    def first_sample_uutc(self) -> int:
        """The time of the first column (µUTC)."""
        return self.group.grid.uutc_of(self.start_index)

    @property
    def end_uutc(self) -> int:
        """Time just past the last sample."""
        return self.group.grid.uutc_of(self.start_index + self.shape[-1])
