"""The scroller: page through a recording in a notebook (`Scroller`, or ``rec.mef3.scroll()``).

Modules: `scroller` (the anywidget model: state and requests; ``scroller.js`` and
``scroller.css`` are its front end), `clinical` (montage, filter checks and events it owns),
`pages` (reading a view), `review` (montage and display filters between read and display),
`display` (per-column min/max into binary buffers), `zoom` (zoomed-out pages from cached
envelopes), `overview` (the whole-recording bar), `readahead` (the next page, prefetch
hints), `loader` (the newest request only), `montage`, `events` and `clock`. The display
filters and the decimation are `mef3lab.signal`'s. docs/scroller.md tells how they fit.
"""

from .scroller import Scroller

__all__ = ["Scroller"]
