"""A JupyterLab in a real browser on a notebook written for one test (skipped without chromium)."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `benchmarks` is a folder of the repository
    sys.path.insert(0, str(REPO))

from benchmarks.browser import Lab, ensure_chromium  # noqa: E402


@contextmanager
def lab_on(
    folder: Path, name: str, cells: Sequence[str], viewport: tuple[int, int]
) -> Iterator[Lab]:
    """A Lab serving `folder`, where notebook `name` holds `cells` (code cells, Python 3)."""
    why = ensure_chromium()
    if why:
        pytest.skip(f"no browser for the scroller test: {why}")
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(c) for c in cells],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    )
    nbformat.write(nb, folder / name)
    with Lab(folder, viewport=viewport) as lab:
        yield lab
