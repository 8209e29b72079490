"""Every notebook in notebooks/ runs top to bottom in a real kernel (nbclient), on the demo
recording.

The notebooks load the extension, so each kernel starts (and must stop) its own server: the
test also checks that no mef3lab process outlives the kernels.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from mef3lab.testing.demo import DEMO_DATA_ENV, demo_recording

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo-data")
    demo_recording(folder)  # once for every notebook (a few seconds)
    return folder


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_notebook_runs(notebook, demo_data, tmp_path, monkeypatch, process_tag):
    nb = nbformat.read(notebook, as_version=4)
    assert any(c.cell_type == "code" and c.source.strip() for c in nb.cells), (
        f"{notebook.name} has no code"
    )
    monkeypatch.setenv(DEMO_DATA_ENV, str(demo_data))
    monkeypatch.setenv(
        "JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime")
    )  # no user server of this machine
    monkeypatch.delenv("MEF3LAB_SERVER", raising=False)
    client = NotebookClient(
        nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError with the cell and its traceback
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.output_type == "error"
    ]
    assert not errors
    assert process_tag.leftovers(within=15) == [], "a notebook's kernel or server outlived it"
