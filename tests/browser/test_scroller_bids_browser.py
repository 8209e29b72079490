"""A BIDS run in the scroller in a real JupyterLab and browser: the run of the generated dataset
(tests/bids) opens with its bad channel greyed and listed, its events drawn, the shaft-bipolar
montage separated by its electrode groups and the notch at its 50 Hz power line. The
screenshot is kept in tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bids._dataset import write_dataset
from tests.browser._lab import lab_on

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture
def lab(tmp_path):
    root = write_dataset(tmp_path / "ds-mef3lab")
    cells = [
        f"import mef3lab\nds = mef3lab.open_bids({str(root)!r})\n"
        "rec = ds.open(subject='01', session='01', task='rest', run=1)",
        "w = mef3lab.Scroller(rec, montage='shaft bipolar', start=25, rows=6, gain=300)\nw",
    ]
    with lab_on(tmp_path, "bids.ipynb", cells, viewport=(1400, 700)) as lab:
        yield lab


def test_a_bids_run_opens_in_its_state(lab):
    page = lab.open("bids.ipynb")
    lab.run_all(page)
    widget = page.locator(".m3s").first
    widget.wait_for(timeout=60_000)
    page.wait_for_function(
        "el => el.dataset.drawnMontage === 'shaft bipolar'",
        arg=widget.element_handle(),
        timeout=60_000,
    )
    assert widget.evaluate("el => el.dataset.drawnChannels").split(",") == [
        "LA1-LA2",
        "LA2-LA3",
        "RH1-RH2",
    ]
    assert "bad: RH2" in widget.locator(".m3s-note").text_content()
    assert widget.locator("select.m3s-notch option:checked").text_content() == "notch 50"
    ARTIFACTS.mkdir(exist_ok=True)
    widget.scroll_into_view_if_needed()
    widget.screenshot(path=str(ARTIFACTS / "scroller-bids-run.png"))
