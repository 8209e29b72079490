"""Every notebook in notebooks/ as a user runs it: JupyterLab, a real browser, Run All, a reload.

One JupyterLab for all of them. Each notebook: Run All, wait until the kernel is idle, then
no error output, no "failed" in any output, no "model not found" in the browser console, a
screenshot of every scroller (tests/artifacts/nb-*.png); then the page is reloaded (the
kernel lives on; the notebook saved first, as autosave does): every scroller must draw its
page within a second of being rendered, and no output may say "model not found" (what the
saved output of a widget closed by the notebook shows). Last, its kernel is shut down: every
process under it (the server its ``%load_ext`` started, that server's readers) must go too.

Then a scripted review on a MefWriter recording with DC offsets and a settling transient:
average, double banana (refused), as recorded, a page on, go to, an overview click and
``m``; at every step the labels and the page time drawn, the toolbar and the model's state
(asked from the kernel itself) agree, a second view of the widget draws the same page, and the
marked event has the drawn page's time.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import nbformat
import psutil
import pytest

from mef3lab.testing.demo import DEMO_DATA_ENV, demo_recording

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `benchmarks` is a folder of the repository, not a package
    sys.path.insert(0, str(REPO))

from _processes import still_alive  # noqa: E402

from benchmarks.browser import Lab, ensure_chromium  # noqa: E402

ARTIFACTS = REPO / "tests" / "artifacts"
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
WRITER = REPO / "tests" / "widget" / "_writer_recording.py"
TABLE: list[tuple[str, int, int, float]] = []

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

#: Every output of the open notebook's code cells, as nbformat JSON.
OUTPUTS = """() => {
    const cells = window.jupyterapp.shell.currentWidget.content.model.cells, out = [];
    for (let i = 0; i < cells.length; i++) {
        const c = cells.get(i).toJSON();
        if (c.cell_type === "code") out.push({index: i, outputs: c.outputs || []});
    }
    return out;
}"""
IDLE = """() => {
    const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
    return k && k.status === "idle";
}"""
#: How many pixels of a scroller's trace canvas are not white.
INKED = """el => {
    const c = el.querySelector("canvas.m3s-canvas");
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] < 200 || d[i + 1] < 200 || d[i + 2] < 200) n++;
    return n;
}"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    why = ensure_chromium()
    if why:
        pytest.skip(f"no browser for the notebook test: {why}")
    root = tmp_path_factory.mktemp("lab")
    for nb in NOTEBOOKS:
        shutil.copy(nb, root / nb.name)
    demo = tmp_path_factory.mktemp("demo-data")
    demo_recording(demo)
    patch = pytest.MonkeyPatch()
    patch.setenv(DEMO_DATA_ENV, str(demo))
    patch.delenv("MEF3LAB_SERVER", raising=False)
    try:
        with Lab(root) as lab:
            yield lab
    finally:
        patch.undo()
        if TABLE:
            ARTIFACTS.mkdir(exist_ok=True)
            lines = ["| notebook | cells | errors | seconds |", "|---|---|---|---|"]
            lines += [f"| {n} | {c} | {e} | {s:.0f} |" for n, c, e, s in TABLE]
            (ARTIFACTS / "notebooks-browser.md").write_text("\n".join(lines) + "\n")
            print("\n".join(lines))


def _widget_cells(outputs: list[dict]) -> list[int]:
    return [
        c["index"]
        for c in outputs
        for o in c["outputs"]
        if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]


def _cell(page, index: int):
    """Cell `index`, scrolled into view (JupyterLab renders only the cells near the view)."""
    page.evaluate(
        "i => window.jupyterapp.shell.currentWidget.content.scrollToItem(i, 'start')", index
    )
    return page.locator(f'.jp-Notebook .jp-Cell[data-windowed-list-index="{index}"]')


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_notebook_in_jupyterlab_then_a_reload(lab, notebook):
    console: list[str] = []
    started = time.monotonic()
    page = lab.open(notebook.name)
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console.append(str(e)))
    lab.run_all(page, timeout_s=400)
    page.wait_for_function(IDLE, timeout=400_000)
    seconds = time.monotonic() - started
    outputs = page.evaluate(OUTPUTS)
    errors = [o for c in outputs for o in c["outputs"] if o["output_type"] == "error"]
    failed = [
        json.dumps(o)[:300]
        for c in outputs
        for o in c["outputs"]
        if "failed" in json.dumps(o.get("text", "")) + json.dumps(o.get("data", {}))
    ]
    TABLE.append((notebook.stem, len(outputs), len(errors), seconds))
    assert not errors, [e["ename"] + ": " + e["evalue"] for e in errors]
    assert not failed, failed
    nb = nbformat.read(notebook, as_version=4)
    ARTIFACTS.mkdir(exist_ok=True)
    scrollers = []  # the cells whose widgets include scrollers
    for index in _widget_cells(outputs):
        cell = _cell(page, index)
        if ".mef3.scroll(" in nb.cells[index].source:
            cell.locator(".m3s").first.wait_for(timeout=60_000)
        for k, widget in enumerate(cell.locator(".m3s").all()):
            page.wait_for_function(
                "el => Number(el.dataset.drawnId) > 0", arg=widget.element_handle(), timeout=60_000
            )
            widget.scroll_into_view_if_needed()
            widget.screenshot(path=str(ARTIFACTS / f"nb-{notebook.stem}-cell{index}-{k}.png"))
            scrollers.append(index)

    # saved, as JupyterLab's autosave does, then reloaded: the kernel and its widgets live on
    page.evaluate("window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty")
    page.reload()
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    page.wait_for_function(IDLE, timeout=90_000)
    for index in scrollers:
        cell = _cell(page, index)
        widget = cell.locator(".m3s").first
        widget.wait_for(timeout=30_000)
        page.wait_for_function(
            "el => Number(el.dataset.drawnId) > 0", arg=widget.element_handle(), timeout=30_000
        )
        took = widget.evaluate("el => Number(el.dataset.drawnAt) - Number(el.dataset.renderedAt)")
        assert took < 1000, f"cell {index}: the page was drawn {took:.0f} ms after the render"
        assert widget.evaluate(INKED) > 1000, f"cell {index}: an empty canvas after the reload"
        widget.screenshot(path=str(ARTIFACTS / f"nb-{notebook.stem}-cell{index}-reloaded.png"))
    assert not [m for m in console if "model not found" in m], console
    shown = page.evaluate(
        "() => [...document.querySelectorAll('.jp-OutputArea-output')].map(e => e.textContent)"
    )  # a closed widget's saved output would read "Error displaying widget: model not found"
    assert not [t for t in shown if "model not found" in t]
    page.close()
    kernels = _kernel_trees(lab)
    assert kernels, "no kernel ran the notebook"
    lab.shutdown_kernels()
    left = still_alive(kernels)
    assert not left, f"outlived the kernel: {[' '.join(p.cmdline()) for p in left]}"


def _kernel_trees(lab) -> list[psutil.Process]:
    """The lab's kernels and every process under them."""
    out = []
    for p in lab.processes():
        try:
            if any("ipykernel" in part for part in p.cmdline()):
                out += [p, *p.children(recursive=True)]
        except psutil.Error:
            continue  # gone meanwhile
    return out


# -- a scripted review on a real writer's recording ----------------------------------------

SETUP = """\
import mef3lab

rec = mef3lab.open_recording("review-ieeg.mefd")
s = rec.mef3.scroll(rows=10)
s"""
STATE = """\
import json
print(json.dumps({"channels": s.channels[s.first_row : s.first_row + s.rows], "start": s.start,
    "montage": s.montage_label, "label": s.page_label, "message": s.message,
    "events": s.events.onset.tolist(), "gain": s.gain, "view_id": s.view_id}))"""


def _kernel_state(lab) -> dict:
    """The scroller's state, asked from the notebook's kernel by a second client."""
    from jupyter_client import BlockingKernelClient

    files = sorted((lab.root / ".jupyter-runtime").glob("kernel-*.json"))
    client = BlockingKernelClient(connection_file=str(files[-1]))
    client.load_connection_file()
    client.start_channels()
    try:
        got: list[str] = []
        client.execute_interactive(
            STATE, timeout=30, output_hook=lambda m: got.append(m["content"].get("text", ""))
        )
        return json.loads("".join(got))
    finally:
        client.stop_channels()


def _agree(page, widget, lab) -> dict:
    """The drawn page, the toolbar and the kernel's state agree, once the newest reply is drawn.

    The second view of the same widget draws the same page.
    """
    deadline = time.monotonic() + 20
    while True:
        state = _kernel_state(lab)
        drawn_id = widget.evaluate("el => Number(el.dataset.drawnId)")
        if drawn_id == state["view_id"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert drawn_id == state["view_id"], "the newest page was never drawn"
    drawn = widget.evaluate(
        """el => ({channels: el.dataset.drawnChannels.split(","), montage: el.dataset.drawnMontage,
        toolbar: el.querySelector(".m3s-start").textContent,
        menu: el.querySelector("select.m3s-montage").selectedOptions[0].textContent})"""
    )
    assert drawn["channels"] == state["channels"], (drawn, state)
    assert drawn["montage"] == drawn["menu"] == state["montage"], (drawn, state)
    assert drawn["toolbar"] == state["label"], (drawn, state)
    page.wait_for_function(  # several views stay in step (a resize may have asked again)
        """id => { const ids = [...document.querySelectorAll('.m3s')]
            .map(el => +el.dataset.drawnId);
        return ids.every(i => i === ids[0] && i >= id); }""",
        arg=state["view_id"],
        timeout=10_000,
    )
    return state


def test_a_scripted_review_on_a_writer_recording(lab):
    sys.path.insert(0, str(WRITER.parent))
    try:
        from _writer_recording import write
    finally:
        sys.path.remove(str(WRITER.parent))
    write(lab.root / "review-ieeg.mefd")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(SETUP), nbformat.v4.new_code_cell("s  # a second view")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(nb, lab.root / "review.ipynb")
    page = lab.open("review.ipynb")
    lab.run_all(page)
    widget = page.locator(".m3s").first
    widget.wait_for(timeout=60_000)
    page.locator(".m3s").nth(1).wait_for(timeout=60_000)
    page.wait_for_function(
        "el => Number(el.dataset.drawnId) > 0", arg=widget.element_handle(), timeout=60_000
    )
    first = _agree(page, widget, lab)
    assert 50 <= first["gain"] <= 200, first  # the rhythm's scale: neither transient nor offset
    widget.screenshot(path=str(ARTIFACTS / "review-0-as-recorded.png"))
    montage = widget.locator("select.m3s-montage")

    montage.select_option(label="average")
    page.wait_for_function(
        "el => el.dataset.drawnMontage === 'average'", arg=widget.element_handle(), timeout=20_000
    )
    assert _agree(page, widget, lab)["channels"][0] == "LB1-avg"

    montage.select_option(label="double banana")  # no 10-20 names: refused, the page stays
    page.wait_for_function(
        "el => el.querySelector('.m3s-msg').textContent.includes('10-20 channel names')",
        arg=widget.element_handle(),
        timeout=20_000,
    )
    state = _agree(page, widget, lab)
    assert state["montage"] == "average" and "10-20" in state["message"]
    assert state["channels"][0] == "LB1-avg"  # the average page stays (_agree: and is drawn)
    widget.screenshot(path=str(ARTIFACTS / "review-1-double-banana-refused.png"))

    montage.select_option(label="as recorded")
    page.wait_for_function(
        "el => el.dataset.drawnMontage === 'as recorded'",
        arg=widget.element_handle(),
        timeout=20_000,
    )
    assert _agree(page, widget, lab)["channels"] == first["channels"]

    widget.evaluate("el => el.focus()")
    page.keyboard.press("ArrowRight")
    assert _agree(page, widget, lab)["start"] == 10.0

    jump = widget.locator("input.m3s-goto")
    jump.fill("61.5")
    jump.press("Enter")
    page.wait_for_function(
        "el => Number(el.dataset.drawnStart) === 61.5", arg=widget.element_handle(), timeout=20_000
    )
    assert _agree(page, widget, lab)["start"] == 61.5

    strip = widget.locator(".m3s-overview")
    box = strip.bounding_box()
    gutter = widget.evaluate("el => Number(el.dataset.gutter)")
    strip.click(position={"x": gutter + 0.75 * (box["width"] - gutter), "y": box["height"] / 2})
    page.wait_for_function(
        "el => Math.abs(Number(el.dataset.drawnStart) - 85) < 1",
        arg=widget.element_handle(),
        timeout=20_000,
    )
    state = _agree(page, widget, lab)

    widget.evaluate("el => el.focus()")
    page.keyboard.press("m")
    page.wait_for_function(
        "el => el.querySelectorAll('.m3s-msg').length", arg=widget.element_handle()
    )
    deadline = time.monotonic() + 20
    while not (events := _kernel_state(lab)["events"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    drawn_start = float(widget.evaluate("el => el.dataset.drawnStart"))
    # an event's onset is kept to the microsecond (MEF's and BIDS' resolution); a click on the
    # bar may start the page between two
    assert events == [round(drawn_start, 6)] == [round(state["start"], 6)]
    # the long label is whole on the canvas, its full name the tooltip
    row = first["channels"].index("Left-Right_Central")
    room = widget.evaluate(
        """el => { const ctx = document.createElement("canvas").getContext("2d");
        ctx.font = "12px sans-serif";
        return Number(el.dataset.gutter) - 8 - ctx.measureText("Left-Right_Central").width; }"""
    )
    assert room >= 0, f"the label needs {-room:.0f} px more"
    canvas = widget.locator("canvas.m3s-canvas")
    canvas.hover(position={"x": gutter / 2, "y": 18 + (row + 0.5) * 26})
    assert canvas.get_attribute("title") == "Left-Right_Central"
    widget.screenshot(path=str(ARTIFACTS / "review-2-marked.png"))
    page.close()
    lab.shutdown_kernels()
