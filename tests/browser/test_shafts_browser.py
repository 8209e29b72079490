"""A lab-style depth recording in a real JupyterLab and browser: the shaft-bipolar montage of
an 8 kHz recording (16 contacts on 5 shafts, written by MefWriter) with the ripple view on a
0.5-s page, the recording's local time on the axis and UTC one click away. The screenshot is
kept in tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser._lab import lab_on

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

CELLS = [
    "import mef3lab\nfrom mef3lab.testing.quirks import write_quirk\n"
    "path = write_quirk('.', 'lab_depth')",
    "rec = mef3lab.open_recording(path)\n"
    "w = mef3lab.Scroller(rec, montage='shaft bipolar', band='ripple', page_seconds=0.5,\n"
    "                     start=1.75, rows=11, gain=20)\nw",
]


@pytest.fixture
def lab(tmp_path):
    with lab_on(tmp_path, "shafts.ipynb", CELLS, viewport=(1400, 900)) as lab:
        yield lab


def test_shaft_bipolar_ripple_page_at_8_khz(lab):
    page = lab.open("shafts.ipynb")
    lab.run_all(page)
    widget = page.locator(".m3s").first
    widget.wait_for(timeout=60_000)
    page.wait_for_function(
        "el => el.dataset.drawnMontage === 'shaft bipolar'",
        arg=widget.element_handle(),
        timeout=60_000,
    )
    drawn = widget.evaluate("el => el.dataset.drawnChannels").split(",")
    assert drawn[:3] == ["LA1-LA2", "LA2-LA3", "LA3-LA4"] and "LC1-LC3" in drawn
    assert widget.evaluate("el => Number(el.dataset.drawnSeconds)") == 0.5
    assert "ripple 80-250 Hz" in widget.locator("select.m3s-band option:checked").text_content()
    assert widget.locator("select.m3s-highpass option:checked").text_content() == "HP 80"
    assert widget.locator("select.m3s-lowpass option:checked").text_content() == "LP 250"
    assert "LC1-LC3 skips LC2" in widget.locator(".m3s-note").text_content()
    start = widget.locator(".m3s-start").text_content()
    assert "2009-10-01 16:01:08.750 -06:00 (+1.750 s)" in start  # MefWriter's GMT offset
    ARTIFACTS.mkdir(exist_ok=True)
    widget.scroll_into_view_if_needed()
    widget.screenshot(path=str(ARTIFACTS / "scroller-shaft-bipolar-ripple-8khz.png"))

    before = widget.evaluate("el => el.querySelector('canvas').toDataURL()")
    widget.locator(".m3s-utc input").check()
    page.wait_for_function(
        "el => el.querySelector('.m3s-start').textContent.includes('22:01:08.750 +00:00')",
        arg=widget.element_handle(),
        timeout=20_000,
    )
    page.wait_for_timeout(300)
    assert widget.evaluate("el => el.querySelector('canvas').toDataURL()") != before  # the axis
