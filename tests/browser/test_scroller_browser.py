"""The scroller in a real JupyterLab and Notebook 7, in a real browser (Debian's chromium).

Playwright runs notebooks/04-scroller.ipynb, focuses the first scroller, presses → and
checks the page start shown as text advanced and the canvas changed; holding → lands on the
right page without drawing every page in between; keys pressed in the widget never reach the
notebook's shortcuts; channels chosen in the widget are the ones drawn; a click in the
overview bar moves the page there; a montage the recording cannot have is refused with a
message. Screenshots are kept in tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]
if (
    str(REPO) not in sys.path
):  # `benchmarks` is a folder of the repository, not an installed package
    sys.path.insert(0, str(REPO))

from benchmarks.browser import Lab, ensure_chromium  # noqa: E402

ARTIFACTS = REPO / "tests" / "artifacts"
NOTEBOOK = REPO / "notebooks" / "04-scroller.ipynb"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(params=["lab", "notebook"], ids=["jupyterlab", "notebook7"])
def lab(request, tmp_path_factory):
    why = ensure_chromium()
    if why:
        pytest.skip(f"no browser for the scroller test: {why}")
    root = tmp_path_factory.mktemp(request.param)
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    with Lab(root, app=request.param) as lab:
        yield lab
        running = lab.processes()
    assert running, "the lab's processes were not found"
    gone, alive = psutil.wait_procs(running, timeout=15)
    alive = [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"left running after the lab closed: {[p.cmdline()[:3] for p in alive]}"


def state(widget) -> dict:
    return widget.evaluate("""el => ({start: el.querySelector('.m3s-start').textContent,
        drawnStart: Number(el.dataset.drawnStart), pages: Number(el.dataset.pages || 0),
        pixels: el.querySelector('canvas').toDataURL(), focused: document.activeElement === el,
        cells: document.querySelectorAll('.jp-Notebook .jp-Cell').length})""")


def test_scroller_in_the_browser(lab):
    page = lab.open(NOTEBOOK.name)
    lab.run_all(page)
    widget = page.locator(".m3s").first
    widget.wait_for(timeout=60_000)
    page.wait_for_function(
        "el => Number(el.dataset.drawnStart) === 358", arg=widget.element_handle(), timeout=60_000
    )  # the notebook's last go_to(358) is on screen
    ARTIFACTS.mkdir(exist_ok=True)
    widget.scroll_into_view_if_needed()
    widget.screenshot(path=str(ARTIFACTS / f"scroller-{lab.module}-358s.png"))

    widget.locator("canvas.m3s-canvas").click(position={"x": 400, "y": 100})
    page.wait_for_function(
        "el => document.activeElement === el", arg=widget.element_handle(), timeout=5000
    )
    before = state(widget)
    assert "08:05:58.000 " in before["start"] and "(+358.000 s)" in before["start"]
    assert before["focused"]

    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "el => Number(el.dataset.drawnStart) === 368", arg=widget.element_handle(), timeout=20_000
    )
    after = state(widget)
    assert "08:06:08.000 " in after["start"] and "(+368.000 s)" in after["start"]
    assert after["pixels"] != before["pixels"] and after["focused"]
    widget.screenshot(path=str(ARTIFACTS / f"scroller-{lab.module}-368s.png"))

    page.keyboard.press(
        "a"
    )  # in a notebook's command mode, a new cell above: not from inside the widget
    page.keyboard.press("ArrowDown")
    assert state(widget)["cells"] == before["cells"]

    # a held → faster than pages can be read: 20 key repeats at once
    widget.evaluate("""el => { for (let i = 0; i < 20; i++)
        el.dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowRight', bubbles: true})); }""")
    page.wait_for_function(
        "el => Number(el.dataset.drawnStart) === 568", arg=widget.element_handle(), timeout=30_000
    )
    page.wait_for_timeout(1000)
    held = state(widget)
    assert (
        "(+568.000 s)" in held["start"] and held["drawnStart"] == 568
    )  # the right page, and it stays
    assert held["pages"] - after["pages"] < 20, "every page on the way was drawn"

    # choosing channels in the widget: the notebook showed every second one; drop the first
    assert widget.evaluate("el => el.dataset.drawnChannels").startswith("ch000,ch002,")
    assert "ch 1–12 of 12" in widget.locator(".m3s-rows").text_content()
    widget.locator(".m3s-chans summary").click()
    widget.locator(".m3s-chans input[value=ch000]").uncheck()
    page.wait_for_function(
        "el => el.dataset.drawnChannels.startsWith('ch002,ch004,')",
        arg=widget.element_handle(),
        timeout=20_000,
    )
    assert "ch 1–11 of 11" in widget.locator(".m3s-rows").text_content()
    widget.screenshot(path=str(ARTIFACTS / f"scroller-{lab.module}-channels.png"))

    # the overview bar (the whole 20 minutes, from the block index): a click three quarters along
    # centres the page on 900 s
    page.wait_for_function(
        "el => Number(el.dataset.overviewColumns) > 0", arg=widget.element_handle(), timeout=20_000
    )
    strip = widget.locator(".m3s-overview")
    box = strip.bounding_box()
    gutter = widget.evaluate("el => Number(el.dataset.gutter)")  # as wide as the labels need
    strip.click(position={"x": gutter + 0.75 * (box["width"] - gutter), "y": box["height"] / 2})
    page.wait_for_function(
        "el => Math.abs(Number(el.dataset.drawnStart) - 895) < 2",
        arg=widget.element_handle(),
        timeout=20_000,
    )

    # a montage this recording cannot have (no 10-20 names): the message, and the page stays
    # drawn and usable
    drawn = widget.evaluate("el => el.dataset.drawnId")
    widget.locator("select.m3s-montage").select_option(label="double banana")
    page.wait_for_function(
        "el => el.querySelector('.m3s-msg').textContent.includes('10-20 channel names')",
        arg=widget.element_handle(),
        timeout=20_000,
    )
    assert widget.evaluate("el => el.dataset.drawnId") == drawn
    widget.locator("select.m3s-highpass").select_option(
        label="HP 1"
    )  # a display filter: the page is drawn again
    page.wait_for_function(
        f"el => Number(el.dataset.drawnId) > {drawn}", arg=widget.element_handle(), timeout=20_000
    )
    widget.screenshot(path=str(ARTIFACTS / f"scroller-{lab.module}-overview-hp.png"))
    page.close()
