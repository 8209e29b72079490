"""The scroller: page through a recording in a notebook (`Scroller`, or ``rec.mef3.scroll()``).

Modules: `scroller` (the anywidget model: state and requests), `pages` (reading a view),
`display` (per-pixel min/max into binary buffers), `readahead` (the next page, prefetch
hints), `loader` (the newest request only), `clock` (times as people read them), and
``scroller.js`` / ``scroller.css`` (the canvas front end).
"""

from .scroller import Scroller

__all__ = ["Scroller"]
