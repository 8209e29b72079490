"""Table H: clinical review in the scroller on a 24-hour, 64-channel recording.

Opening the recording; the overview bar from the MEF block index (no samples decoded) from
the widget's creation to its bar sent; filtered + bipolar page flips (64 pairs, high-pass
0.5 Hz, low-pass 70 Hz, notch 50/100 Hz) in the model and in a real browser; a zoomed-out
1-hour page. Baselines, measured in the same run: `open_reader` of the recording, reading
every channel's block index directly, and a direct read of the same 10-s pages.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import traitlets as t

import mef3lab
from mef3lab.readers import open_reader
from mef3lab.widget import Scroller

from .browser import Lab, ensure_chromium
from .common import Params
from .data import ensure_recording, warm_page_cache
from .report import Stopwatch, Table, Target, percentile
from .scroller import PAGE_S, PAUSE_S, browser_flips, direct_pages, model_flips, reply_times

OPENS = 5
HOUR_PAGES = 3  # 1-hour flips timed (fewer in a recording shorter than 4 hours)


def run(path: Path, params: Params, log=print) -> Table:
    spec = params.day
    day = ensure_recording(spec, path.parent, log=log)
    warm_page_cache(day)
    table = Table("H", f"Clinical review: {spec.label}")
    with open_reader(day) as r:
        names = list(r.info.names)
    options = {
        "montage": [f"{a}-{b}" for a, b in zip(names, names[1:] + names[:1], strict=True)],
        "highpass": 0.5,
        "lowpass": 70.0,
        "notch": 50.0,
    }

    base_open = [_ms(lambda: open_reader(day).close()) for _ in range(OPENS)]
    opens = [_ms(lambda: mef3lab.open_recording(str(day)).close()) for _ in range(OPENS)]
    table.add("open_reader (baseline) p50", percentile(base_open, 50), "ms", 1.0, samples=base_open)
    v = percentile(opens, 50)
    table.add(
        "open_recording p50",
        v,
        "ms",
        v / percentile(base_open, 50),
        Target("value", "<=", 1000),
        samples=opens,
    )

    with open_reader(day) as r:
        index = [_ms(lambda: [r.block_envelope(n) for n in names]) for _ in range(3)]
    table.add(
        "block index of every channel, read directly (baseline) p50",
        percentile(index, 50),
        "ms",
        1.0,
        samples=index,
    )
    bars = [_overview_ms(day) for _ in range(3)]
    v = percentile(bars, 50)
    table.add(
        "widget created → overview bar sent (first page read too) p50",
        v,
        "ms",
        v / percentile(index, 50),
        Target("value", "<=", 300),
        samples=bars,
    )

    first = spec.seconds / 4
    starts = [first + i * PAGE_S for i in range(params.flips + 1)]
    base = direct_pages(day, starts, PAGE_S)
    table.add(
        "direct read_index of one 10-s page p95 (baseline)",
        percentile(base, 95),
        "ms",
        1.0,
        samples=base,
    )
    log("H model, filtered + bipolar ...")
    ms = model_flips(day, None, starts, PAGE_S, PAUSE_S, options)
    v = percentile(ms, 95)
    table.add(
        "model, filtered + bipolar flip p95",
        v,
        "ms",
        v / percentile(base, 95),
        Target("value", "<=", 50),
        samples=ms,
    )

    log("H model, 1-hour pages ...")
    hour_base = direct_pages(day, [0.0, 3600.0], 3600.0)
    table.add(
        "direct read_index of a 1-hour page (baseline)", hour_base[0], "ms", 1.0, samples=hour_base
    )
    hours = [i * 3600.0 for i in range(min(HOUR_PAGES, int(spec.seconds // 3600) - 1) + 1)]
    cold, warm = hour_flips(day, hours)
    for what, ms, target in (
        ("first visit (envelopes read ahead)", cold, None),
        ("warm (envelopes cached)", warm, Target("value", "<=", 300)),
    ):
        v = percentile(ms, 95)
        table.add(f"model, 1-hour page, {what}, p95", v, "ms", v / hour_base[0], target, samples=ms)
    table.notes.append(
        "1-hour pages (≥ 256 samples per column) are drawn from per-segment min/max envelopes, "
        f"cached; {len(hours) - 1} flips forward 1 s apart, then the same pages again (warm)"
    )

    why = ensure_chromium(log)
    if why:
        table.notes.append(f"browser row not measured: {why}")
        return table
    with tempfile.TemporaryDirectory(prefix="mef3lab-bench-lab-") as root, Lab(Path(root)) as lab:
        log("H browser, filtered + bipolar ...")
        ms = browser_flips(lab, day, starts, PAGE_S, PAUSE_S, row_px=10, draws=[], options=options)
    v = percentile(ms, 95)
    table.add(
        "browser (JupyterLab, chromium), filtered + bipolar flip p95",
        v,
        "ms",
        v / percentile(base, 95),
        Target("value", "<=", 100),
        samples=ms,
    )
    table.notes.append(
        "flips: the filtered pages read their filter's pad (here 10.8 s each side) as well; "
        "×direct = ÷ the direct read of the bare 10-s page"
    )
    return table


def hour_flips(path: Path, starts: list[float]) -> tuple[list[float], list[float]]:
    """Milliseconds from a page request to its reply sent.

    1-hour pages forward, then the same pages again.
    """
    rec = mef3lab.open_recording(str(path))
    try:
        w = Scroller(rec, start=starts[0], page_seconds=3600.0, rows=len(rec.mef3.info.names))
        sent = reply_times(w)
        w.wait(120)
        passes = []
        for _ in range(2):
            out = []
            for s in starts[1:]:
                time.sleep(1.0)
                t = time.perf_counter()
                w.go_to(s)
                w.wait(120)
                out.append((sent[w.view_id] - t) * 1e3)
            passes.append(out)
            w.go_to(starts[0])
            w.wait(120)
        w.close()
    finally:
        rec.close()
    return passes[0], passes[1]


def _ms(action) -> float:
    with Stopwatch() as sw:
        action()
    return sw.seconds * 1e3


class _BarTimed(Scroller):
    """A scroller that notes when its overview bar was handed to the comm (`bar_at`)."""

    bar_at: float | None = None

    @t.observe("overview_bar")
    def _note_bar(self, change: dict) -> None:
        if self.bar_at is None:
            self.bar_at = time.perf_counter()


def _overview_ms(path: Path) -> float:
    """Milliseconds from `Scroller(rec)` to its overview bar handed to the comm."""
    rec = mef3lab.open_recording(str(path))
    try:
        t0 = time.perf_counter()
        w = _BarTimed(rec)
        w.wait()  # the page, and the bar asked with it
        w.close()
    finally:
        rec.close()
    if w.bar_at is None:
        raise AssertionError("the scroller sent no overview bar")
    return (w.bar_at - t0) * 1e3
