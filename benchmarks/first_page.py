"""Table M: a scroller's first page, and the page after a jump, in a real browser at 8 and 32 kHz.

What a reviewer waits for before seeing anything: a new scroller on a place nothing has read
yet (its canvas drawn, from running its cell and from the call that makes it: the kernel's
work, the widget's creation and the first reply) and a jump from it (a click in the overview
bar → the new page drawn), in JupyterLab with headless chromium (`browser.first_pages`). On
table J's recordings at 8 and 32 kHz (mef_tools' MefWriter), embedded and served (through
the kernel's own server, started by ``%load_ext mef3lab`` in the same cell that opens the
recording). The first scroller of a kernel also imports the widget: it is its own row.
Pages are table J's first page (1 s at 8 and 32 kHz); the baseline is a direct
``read_index`` of one page in the same run. Target (issue 22), on the first page from the
call and on the jump: p95 ≤ 150 ms. The floor of the first page from running its cell,
measured first in the same lab: a trivial widget's cell run to drawn.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from .browser import Lab, ensure_chromium, first_pages, trivial_widgets
from .common import Params
from .data import warm_page_cache
from .first_look import ensure_written
from .report import Table, Target, percentile
from .scroller import direct_pages

#: Where the last scroller of each notebook is photographed, after its jump.
SHOTS = Path(__file__).resolve().parents[1] / "tests" / "artifacts"
TARGET = Target("value", "<=", 150.0)
ROW_PX = 10
SETUPS = {
    "embedded": "import mef3lab\nrec = mef3lab.open_recording({path!r})",
    "served": "%load_ext mef3lab\nimport mef3lab\nrec = mef3lab.open_recording({path!r})",
}


def run(_path: Path, params: Params, log=print) -> Table:
    """Table M over the 8- and 32-kHz recordings of `params.first_look` (beside `_path`)."""
    n = max(3, min(params.flips // 5, 20))
    table = Table(
        "M",
        f"Scroller in the browser: first page of a new scroller and a jump, {n} each",
    )
    why = ensure_chromium(log)
    if why:
        table.notes.append(f"not measured: {why}")
        return table
    specs = [s for s in params.first_look if s.fs >= 8000]
    with tempfile.TemporaryDirectory(prefix="mef3lab-bench-lab-") as root, Lab(Path(root)) as lab:
        log("M a trivial widget ...")
        floor = trivial_widgets(lab, n + 1, "first-trivial.ipynb")[1:]  # the first imports
        lab.shutdown_kernels()
        for q in (50, 95):
            table.add(
                f"a trivial widget drawn p{q} (the notebook's floor)",
                percentile(floor, q),
                "ms",
                samples=floor if q == 50 else [],
            )
        for spec in specs:
            path = ensure_written(spec, Path(_path).parent, log)
            warm_page_cache(path)
            rng = np.random.default_rng(params.seed)
            starts = [float(s) for s in np.round(rng.uniform(0, spec.seconds - spec.page_s, n), 1)]
            base = direct_pages(path, [0.0, *starts], spec.page_s)
            table.add(
                f"{spec.label}, {spec.page_s:g}-s pages: direct read_index of a page p95 "
                "(baseline)",
                percentile(base, 95),
                "ms",
                1.0,
                samples=base,
            )
            for what, setup in SETUPS.items():
                log(f"M {spec.label}, {what} ...")
                first, called, jump = first_pages(
                    lab,
                    setup.format(path=str(path)),
                    starts,
                    spec.page_s,
                    ROW_PX,
                    f"first-{spec.name}-{len(table.rows)}.ipynb",
                    params.seed,
                    SHOTS / f"bench-first-page-{spec.name}-{what}.png",
                    warm=lambda path=path: warm_page_cache(path),
                )
                lab.shutdown_kernels()
                table.add(
                    f"  {what}: the kernel's first scroller (widget imported)",
                    first[0],
                    "ms",
                    first[0] / percentile(base, 50),
                )
                for label, ms, target in (
                    ("a new scroller's first page from running its cell", first[1:], None),
                    ("a new scroller's first page from scroll()", called[1:], TARGET),
                    ("jump", jump, TARGET),
                ):
                    p95 = percentile(ms, 95)
                    table.add(f"  {what}: {label} p50", percentile(ms, 50), "ms", samples=ms)
                    table.add(
                        f"  {what}: {label} p95", p95, "ms", p95 / percentile(base, 95), target
                    )
    table.notes.append(
        "first page: from running the cell that makes the scroller to its canvas drawn "
        "(performance.now() in the page), and from the call in it that makes the scroller "
        "(the kernel's clock; what the cell's request costs before it is not counted there, "
        "the widget's display after it is); jump: from the click in the overview bar (scrolled "
        "into view first, as a reviewer has it) to the page drawn; every scroller starts at a "
        "place nothing read before, and is closed before the next; the last page drawn is "
        "checked against a direct read. The floor: a widget that draws a canvas as it renders "
        "and reads nothing, from running its cell to drawn, in the same lab and the same way "
        "(what the cell's round trip through the kernel and a widget's creation cost here)."
    )
    return table
