"""The scroller's data path, last stage: a page as the screen can show it, in binary buffers.

A canvas of W pixel columns cannot show more than W distinct x positions. A trace with
more samples than columns is sent as each column's minimum and maximum (so no spike is
lost and a gap stays a gap: a column without data is NaN); one with fewer is sent as
its raw samples. Everything travels as one float32 buffer, never as JSON lists; the
JSON part says where each trace's numbers are and how they map onto time.
"""

from __future__ import annotations

import numpy as np

from ..signal.decimate import envelope
from .pages import Page

__all__ = ["encode"]


def encode(page: Page, columns: int) -> tuple[list[dict], bytes]:
    """Per-trace descriptions (in the view's channel order) and the float32 buffer they index.

    A description: ``name``, ``fs``, ``kind`` ("raw": ``n`` samples, sample j at
    ``t0 + j * dt`` seconds from the page start; "minmax": ``n`` columns, ``n`` minima
    then ``n`` maxima, column c spanning ``[t0 + c * dt, t0 + (c + 1) * dt)``),
    ``offset`` (first float of the trace in the buffer) and ``error`` (None, or why
    the trace is empty).
    """
    columns = max(1, int(columns))
    start = page.view.start_s
    parts: list[np.ndarray] = []
    traces: dict[str, dict] = {}
    offset = 0
    for block in page.blocks:
        n = block.data.shape[1]
        t0 = block.first_s - start
        if n > columns:
            lo, hi = envelope(block.data, columns)
            values = np.concatenate([lo, hi], axis=1)  # row i: its minima, then its maxima
            kind, count, dt = "minmax", columns, n / block.fs / columns
        else:
            values, kind, count, dt = block.data, "raw", n, 1.0 / block.fs
        for row, name in enumerate(block.names):
            traces[name] = {
                "name": name,
                "fs": block.fs,
                "kind": kind,
                "n": count,
                "t0": t0,
                "dt": dt,
                "offset": offset + row * values.shape[1],
                "error": block.errors.get(name),
            }
        parts.append(np.ascontiguousarray(values, np.float32).reshape(-1))
        offset += values.size
    buffer = np.concatenate(parts).tobytes() if parts else b""
    return [traces[name] for name in page.view.channels], buffer
