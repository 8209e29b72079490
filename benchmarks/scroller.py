"""Table F: the scroller, key press to new page, in the widget model and in a real browser.

A reviewer presses → and looks at the page before the next press (`PAUSE_S`; longer for
the wide 30-s pages of 256 channels, shorter for the 1-s pages of table J's fastest
recording), so read-ahead has the next page ready: that is the case the targets are set
for. Model rows time ``key message in`` → ``page reply sent`` (the binary buffers ready
for the comm), in this process and through a server. Browser rows run JupyterLab with
headless chromium and time, inside the page, the widget's keydown handler → the canvas
drawn with the new page (round trip through the kernel included). The baseline is a
direct ``open_reader(...).read_index`` of the same pages (the decode a flip would wait for
without read-ahead), measured in the same run.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

import mef3lab
from mef3lab.readers import open_reader
from mef3lab.widget import Scroller

from .browser import Lab, ensure_chromium, write_notebook
from .common import Params, check_same, server
from .data import ensure_recording, warm_page_cache
from .first_look import ensure_written
from .report import Stopwatch, Table, Target, percentile

PAGE_S = 10.0
WIDE_PAGE_S = 30.0
PAUSE_S = 0.25  # a look at each 10-s page
WIDE_PAUSE_S = 1.0  # at least this long a look at each 30-s page of 256 channels ...
WIDE_PAUSE_READS = (
    1.5  # ... and long enough for the read-ahead: this many direct reads of such a page (p95)
)
FAST_PAUSE_S = 0.3  # a quick look at each 1-s page of the fastest recording (an HFO review's pace)
FIRST_S = (
    600.0  # where paging starts (past the first server segment; a quarter in, in short recordings)
)


def run(path: Path, params: Params, log=print) -> Table:
    n_ch = params.recording.channels
    table = Table(
        "F",
        f"Scroller: key press → new page, {n_ch} ch × {PAGE_S:g} s pages at "
        f"{params.recording.fs:g} Hz, {params.flips} flips (read-ahead, {PAUSE_S:g} s between)",
    )
    first = min(FIRST_S, params.recording.seconds / 4)
    starts = [first + i * PAGE_S for i in range(params.flips + 1)]
    base = direct_pages(path, starts, PAGE_S)
    table.add(
        "direct read_index of one page p50 (baseline)",
        percentile(base, 50),
        "ms",
        1.0,
        samples=base,
    )
    table.add("direct read_index of one page p95", percentile(base, 95), "ms", 1.0)
    log("F model, in this process ...")
    _rows(
        table, "model, in this process", model_flips(path, None, starts, PAGE_S, PAUSE_S), base, 50
    )
    log("F model, via a server ...")
    with server(params) as srv:
        _rows(
            table,
            "model, via a server",
            model_flips(path, srv.address, starts, PAGE_S, PAUSE_S),
            base,
            50,
        )
    why = ensure_chromium(log)
    if why:
        table.notes.append(f"browser rows not measured: {why}")
        return table
    wide = ensure_recording(params.wide, path.parent, log=log)  # beside the main recording
    warm_page_cache(wide)
    fast_spec = max(params.first_look, key=lambda s: s.fs)  # table J's fastest recording
    fast = ensure_written(fast_spec, path.parent, log)
    first_fast = fast_spec.seconds / 4
    fast_starts = [first_fast + i * fast_spec.page_s for i in range(params.wide_flips + 1)]
    wide_starts = [WIDE_PAGE_S * (1 + i) for i in range(params.wide_flips + 1)]
    wide_base = direct_pages(wide, wide_starts, WIDE_PAGE_S)
    wide_pause = max(WIDE_PAUSE_S, WIDE_PAUSE_READS * percentile(wide_base, 95) / 1e3)
    with tempfile.TemporaryDirectory(prefix="mef3lab-bench-lab-") as root:
        log("F browser ...")
        with Lab(Path(root)) as lab:
            # each row's recording read again just before it: this machine gives cold pages
            # of the page cache back within a minute, and the lab took its time to start
            warm_page_cache(path)
            draws: list[float] = []
            ms = browser_flips(lab, path, starts, PAGE_S, PAUSE_S, row_px=10, draws=draws)
            _rows(table, "browser (JupyterLab, chromium), canvas redrawn", ms, base, 100)
            lab.shutdown_kernels()
            log(f"F browser, {params.wide.label} ...")
            warm_page_cache(wide)
            wide_draws: list[float] = []
            ms = browser_flips(
                lab, wide, wide_starts, WIDE_PAGE_S, wide_pause, row_px=3, draws=wide_draws
            )
            lab.shutdown_kernels()
            log(f"F browser, {fast_spec.label} ...")
            warm_page_cache(fast)
            fast_draws: list[float] = []
            fast_ms = browser_flips(
                lab, fast, fast_starts, fast_spec.page_s, FAST_PAUSE_S, row_px=10, draws=fast_draws
            )
    table.add(
        f"wide: direct read_index of a {WIDE_PAGE_S:g} s page, {params.wide.channels} ch at "
        f"{params.wide.fs:g} Hz, p95",
        percentile(wide_base, 95),
        "ms",
        1.0,
        samples=wide_base,
    )
    p95 = percentile(ms, 95)
    table.add(
        f"wide: browser, {params.wide_flips} flips ({wide_pause:.1f} s between), "
        "canvas redrawn p95",
        p95,
        "ms",
        p95 / percentile(wide_base, 95),
        Target("value", "<=", 250),
        samples=ms,
    )
    _rows(
        table,
        f"fast: browser, {fast_spec.label}, {fast_spec.page_s:g}-s pages, {params.wide_flips} "
        f"flips ({FAST_PAUSE_S:g} s between), canvas redrawn",
        fast_ms,
        direct_pages(fast, fast_starts, fast_spec.page_s),
        100,
    )
    table.notes.append(
        f"wide pages: {WIDE_PAUSE_READS:g} × the direct read's p95 between flips (at least "
        f"{WIDE_PAUSE_S:g} s), so read-ahead has finished: the prefetched case the target is for."
    )
    table.notes.append(
        "browser times run from the widget's keydown handler to the end of its canvas drawing "
        "(performance.now() in the page); ×direct = ÷ the same percentile of the direct reads. "
        f"Of which drawing the canvas, p50: {percentile(draws, 50):.0f} ms ({n_ch} ch), "
        f"{percentile(wide_draws, 50):.0f} ms (wide), {percentile(fast_draws, 50):.0f} ms (fast)."
    )
    return table


def _rows(table: Table, what: str, ms: list[float], base: list[float], target_ms: float) -> None:
    for q in (50, 95):
        v = percentile(ms, q)
        table.add(
            f"{what} p{q}",
            v,
            "ms",
            v / percentile(base, q),
            Target("value", "<=", target_ms) if q == 95 else None,
            samples=ms if q == 50 else [],
        )


def direct_pages(path: Path, starts: list[float], page_s: float) -> list[float]:
    """Milliseconds per page of all channels, read by a reader in this process (opened untimed)."""
    out = []
    with open_reader(path) as r:
        names = list(r.info.names)
        fs = r.info.rate_groups[0].fs
        r.read_index(names, 0, int(fs))  # numba's kernels loaded before timing
        for s in starts[1:]:
            k0 = int(round(s * fs))
            with Stopwatch() as sw:
                r.read_index(names, k0, k0 + int(round(page_s * fs)))
            out.append(sw.seconds * 1e3)
    return out


def model_flips(
    path: Path,
    address: str | None,
    starts: list[float],
    page_s: float,
    pause_s: float,
    options: dict | None = None,
) -> list[float]:
    """Milliseconds from a → key message to the reply sent, per flip.

    The last page is checked against a direct read when there are no `options` (montage and
    filter keywords of `Scroller`, whose pages tests/widget compares instead).
    """
    rec = mef3lab.open_recording(str(path), address=address)
    try:
        w = Scroller(
            rec,
            start=starts[0],
            page_seconds=page_s,
            rows=len(rec.mef3.info.names),
            **(options or {}),
        )
        sent = reply_times(w)
        w.wait()
        time.sleep(pause_s)
        out = []
        for _ in starts[1:]:
            t = time.perf_counter()
            w._handle_custom_msg({"type": "key", "key": "ArrowRight", "shift": False}, [])
            w.wait()
            out.append((sent[w.view_id] - t) * 1e3)
            time.sleep(pause_s)
        got = w.page_data()
        with open_reader(path) as r:
            if options:
                if (
                    list(got.channel.values) != w.channels[: w.rows]
                    or not np.isfinite(got.values).any()
                ):
                    raise AssertionError("scroller page_data: not the montage's rows on screen")
                w.close()
                return out
            fs = float(got.attrs["fs"])
            k0 = int(round(w.start * fs))
            check_same(
                "scroller page_data",
                got.values,
                r.read_index(list(got.channel.values), k0, k0 + got.sizes["time"]),
            )
        w.close()
    finally:
        rec.close()
    return out


def reply_times(w: Scroller) -> dict[int, float]:
    """When each later reply of `w` was handed to the comm (``perf_counter``), by request id."""
    times: dict[int, float] = {}
    w.observe(lambda change: times.__setitem__(change["new"]["id"], time.perf_counter()), "reply")
    return times


def browser_flips(
    lab: Lab,
    path: Path,
    starts: list[float],
    page_s: float,
    pause_s: float,
    row_px: int,
    draws: list[float],
    options: dict | None = None,
) -> list[float]:
    """Milliseconds from keydown to canvas drawn in the browser, per flip of a notebook's scroller.

    Appends to `draws` the part spent drawing, from the reply's arrival; `options`: more
    Scroller keywords.
    """
    name = f"bench-{path.stem}.ipynb"
    write_notebook(
        lab.root / name,
        [
            f"import mef3lab\nrec = mef3lab.open_recording({str(path)!r})\n"
            f"w = rec.mef3.scroll(start={starts[0]!r}, page_seconds={page_s!r}, "
            f"rows=len(rec.mef3.info.names), row_px={row_px}, **{options or {}!r})\nw"
        ],
    )
    page = lab.open(name)
    try:
        lab.run_all(page)
        widget = page.locator(".m3s").first
        handle = widget.element_handle()
        page.wait_for_function(
            f"el => Number(el.dataset.drawnStart) === {starts[0]!r}", arg=handle, timeout=120_000
        )
        widget.locator("canvas.m3s-canvas").click(position={"x": 300, "y": 20})
        page.wait_for_timeout(pause_s * 1000)
        out = []
        for s in starts[1:]:
            page.keyboard.press("ArrowRight")
            page.wait_for_function(
                f"el => Number(el.dataset.drawnStart) === {s!r}", arg=handle, timeout=60_000
            )
            total, drawing = widget.evaluate(
                "el => [Number(el.dataset.drawnAt) - Number(el.dataset.keyAt), "
                "Number(el.dataset.drawnAt) - Number(el.dataset.gotAt)]"
            )
            out.append(total)
            draws.append(drawing)
            page.wait_for_timeout(pause_s * 1000)
        return out
    finally:
        page.close()
