"""The scroller's data path, first stage: a page of a view read at full resolution.

A `View` is what the screen is asked to show, and the key of cached pages; `read_page`
gives its `Page`, one `Block` per rate group on its own grid, NaN in gaps. Stages that
transform samples (review.py) take a Page and give a Page before `display.encode`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import Mef3LabError
from ..model import RateGroup, SessionInfo
from ..sources import RecordingSource

__all__ = ["Block", "Page", "View", "read_page"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class View:
    """A window ``[start, start + length)`` in µs from the recording start, of `channels`.

    `channels` are in screen order. `review` (a `review.Review`: montage and display
    filters) is part of the key, so a page cached or read ahead under other settings is
    never shown; None shows the channels as recorded.
    """

    start_us: int
    length_us: int
    channels: tuple[str, ...]
    review: Any = None

    @property
    def start_s(self) -> float:
        """The start in seconds from the recording start."""
        return self.start_us / 1e6

    @property
    def length_s(self) -> float:
        """The length in seconds."""
        return self.length_us / 1e6

    def shifted(self, pages: float) -> View:
        """The same view `pages` page lengths later (earlier when negative)."""
        return replace(self, start_us=self.start_us + round(pages * self.length_us))


@dataclass
class Block:
    """Samples of one rate group's channels over a view: row i is channel ``names[i]``.

    `first_s` is the time of column 0 in seconds from the recording start (a grid sample);
    `data` is (len(names), n) float32, NaN in gaps, outside the channel and where reading
    failed; `errors` says, per channel that is empty, why.
    """

    fs: float
    names: tuple[str, ...]
    first_s: float
    data: np.ndarray
    errors: dict[str, str] = field(default_factory=dict)


@dataclass
class Page:
    """A view's samples, one block per rate group (fastest first)."""

    view: View
    blocks: tuple[Block, ...]

    @property
    def nbytes(self) -> int:
        """Bytes of the samples (what a page costs in a cache)."""
        return sum(b.data.nbytes for b in self.blocks)

    @property
    def errors(self) -> dict[str, str]:
        """Why each channel that could not be read is empty, by channel."""
        return {name: msg for b in self.blocks for name, msg in b.errors.items()}


def read_page(source: RecordingSource, view: View, pad_s: float = 0.0) -> Page:
    """The samples of `view`, every rate group on its own grid (nothing is resampled).

    A rate group whose read fails (a damaged file) is read again channel by channel, so
    only the damaged channels come back empty, each with the error that explains why.

    Parameters
    ----------
    source : RecordingSource
        The recording.
    view : View
        The window and channels (its `review` is not applied here).
    pad_s : float, default 0.0
        Seconds read beyond the window on each side (for filters that need them).

    Returns
    -------
    Page
        One block per rate group of the view's channels, in the recording's group order.
    """
    info = source.info
    t0 = info.start_uutc + view.start_us - round(pad_s * 1e6)
    t1 = info.start_uutc + view.start_us + view.length_us + round(pad_s * 1e6)
    blocks = []
    for group in info.rate_groups:
        names = tuple(n for n in view.channels if n in group.channels)
        if names:
            blocks.append(_read_block(source, info, group, names, t0, t1))
    return Page(view, tuple(blocks))


def _read_block(
    source: RecordingSource,
    info: SessionInfo,
    group: RateGroup,
    names: tuple[str, ...],
    t0: int,
    t1: int,
) -> Block:
    grid = group.grid
    k0, k1 = grid.index_at(t0), grid.index_at(t1)
    first_s = (float(grid.time_of(k0)) - info.start_uutc) / 1e6
    data = np.full((len(names), max(0, k1 - k0)), np.nan, np.float32)
    a, b = max(k0, 0), min(k1, grid.n_samples)  # the part inside the grid; the rest stays NaN
    errors: dict[str, str] = {}
    if b > a:
        try:
            data[:, a - k0 : b - k0] = source.read_index(names, a, b)
        except Mef3LabError as e:
            log.warning(
                "reading %d channels at %g Hz failed (%s); reading them one by one",
                len(names),
                group.fs,
                e,
            )
            for row, name in enumerate(names):
                try:
                    data[row, a - k0 : b - k0] = source.read_index([name], a, b)[0]
                except Mef3LabError as e1:
                    errors[name] = f"{type(e1).__name__}: {e1}"
    return Block(group.fs, names, first_s, data, errors)
