"""The clinical stage of the scroller's data path: montage and display filters on a page.

A `Review` is hashable and travels inside the `View`, so cached and read-ahead pages are
those of the montage and filters on screen. `read_reviewed` reads the rows' inputs with
the filter's pad, computes the rows, filters them and cuts them back to the page.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..signal.filters import DisplayFilter
from ..sources import RecordingSource
from .montage import Derivation, apply
from .pages import Block, Page, View, read_page

__all__ = ["Review", "read_reviewed"]


@dataclass(frozen=True)
class Review:
    """A montage's derivations (every row it can show) and the display filter over them."""

    derivations: tuple[Derivation, ...]
    filter: DisplayFilter = DisplayFilter()

    def derivation(self, name: str) -> Derivation:
        """The derivation (row) called `name`; KeyError if there is none."""
        for d in self.derivations:
            if d.name == name:
                return d
        raise KeyError(name)


def read_reviewed(source: RecordingSource, view: View) -> Page:
    """The page of `view`: its montage's rows, filtered, in the view's row order.

    The rows are cut back to exactly the samples `read_page` gives for the view alone, on
    each rate group's grid.

    Parameters
    ----------
    source : RecordingSource
        The recording.
    view : View
        The window and rows; without a review, the channels as recorded.

    Returns
    -------
    Page
        One block per rate group; a row whose inputs could not be read carries their errors.
    """
    review: Review | None = view.review
    if review is None:
        return read_page(source, view)
    shown = [review.derivation(n) for n in view.channels]
    inputs = tuple(dict.fromkeys(c for d in shown for c in d.inputs))
    info = source.info
    fs_of = {c: g.fs for g in info.rate_groups for c in g.channels}
    pad = (
        max((review.filter.pad_s(fs_of[c]) for c in inputs), default=0.0)
        if review.filter.active
        else 0.0
    )
    raw = read_page(source, View(view.start_us, view.length_us, inputs), pad_s=pad)
    blocks = []
    for block in raw.blocks:
        rows = [d for d in shown if d.plus in block.names]
        data = review.filter.apply(apply(rows, block.names, block.data), block.fs)
        grid = next(
            g.grid for g in info.rate_groups if g.fs == block.fs and block.names[0] in g.channels
        )
        k0 = grid.index_at(info.start_uutc + view.start_us)
        k1 = grid.index_at(info.start_uutc + view.start_us + view.length_us)
        skip = k0 - grid.index_at(info.start_uutc + view.start_us - round(pad * 1e6))
        errors = {
            d.name: "; ".join(block.errors[c] for c in d.inputs if c in block.errors)
            for d in rows
            if any(c in block.errors for c in d.inputs)
        }
        blocks.append(
            Block(
                block.fs,
                tuple(d.name for d in rows),
                (float(grid.time_of(k0)) - info.start_uutc) / 1e6,
                data[:, skip : skip + (k1 - k0)],
                errors,
            )
        )
    return replace(raw, view=view, blocks=tuple(blocks))
