"""The documentation site builds without a warning, and its pages say what they should.

The site is what ``make docs`` builds (Sphinx, MyST, numpydoc, autodoc over the installed
package): built here into a temporary folder with warnings as errors, so a docstring that
numpydoc cannot read, a broken cross-reference or a page missing from the toctree fails.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("docs") / "html"
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", DOCS, out],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, f"sphinx failed:\n{done.stderr}{done.stdout}"
    return out


def _entry(page: str, target: str) -> str:
    """The HTML of one documented object: from its signature to the next object's."""
    start = page.index(f'id="{target}"')
    following = re.compile(r'<dl class="py ').search(page, start)
    return page[start : following.start() if following else len(page)]


def test_every_page_is_built(site):
    pages = sorted(p.stem for p in DOCS.glob("*.md"))
    assert "architecture" in pages
    for name in pages:
        assert (site / f"{name}.html").is_file(), f"docs/{name}.md is not in the site"
    for name in ["index", "mef3lab", "errors", "readers", "client", "sources", "xr", "widget"]:
        assert (site / "api" / f"{name}.html").is_file()


def test_the_front_page_is_the_readme_with_working_links(site):
    index = (site / "index.html").read_text()
    for heading in ["Quick start", "In a notebook", "Reading a recording", "The server"]:
        assert heading in index
    assert 'href="scaling.html"' in index  # docs/scaling.md, relative to docs/
    assert 'href="api/index.html"' in index


def test_the_public_api_lists_parameters(site):
    page = (site / "api" / "mef3lab.html").read_text()
    for name in ["open_recording", "open_reader", "synthesize", "set_default_address"]:
        assert f'id="mef3lab.{name}"' in page
    for name in ["Mef3Client", "Server", "ServerConfig", "ServerProcess", "Scroller"]:
        assert f'id="mef3lab.{name}"' in page
    entry = _entry(page, "mef3lab.open_recording")
    assert "Parameters" in entry and "Returns" in entry
    for parameter in ["path", "password", "engine", "address", "chunks", "channels", "dtype"]:
        assert f"<strong>{parameter}</strong>" in entry


def test_the_errors_page_lists_the_exceptions(site):
    page = (site / "api" / "errors.html").read_text()
    for name in ["Mef3LabError", "RecordingNotFoundError", "ServerUnavailableError"]:
        assert f'id="mef3lab.errors.{name}"' in page


def test_the_architecture_page_has_the_layers(site):
    page = (site / "architecture.html").read_text()
    for words in ["Layers", "How data flows", "Packages", "tests/test_layers.py"]:
        assert words in page
