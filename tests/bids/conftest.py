"""Fixtures of the MNE and BIDS tests: the generated iEEG-BIDS dataset, a server serving it.

The single-file recordings come from tests/conftest.py.
"""

from __future__ import annotations

import shutil

import pytest
from _dataset import write_dataset

from mef3lab import sources


@pytest.fixture(autouse=True)
def _fresh_sources():
    """Every test starts and ends without cached readers (and without a default server)."""
    sources.REGISTRY.close_all()
    sources.set_default_address(None)
    yield
    sources.REGISTRY.close_all()
    sources.set_default_address(None)


@pytest.fixture(scope="session")
def bids_root(tmp_path_factory):
    """The dataset of _dataset.py, written once per test session (never modified)."""
    return write_dataset(tmp_path_factory.mktemp("bids") / "ds-mef3lab")


@pytest.fixture
def bids_copy(bids_root, tmp_path):
    """A copy of the dataset this test may break."""
    return shutil.copytree(bids_root, tmp_path / "ds-copy")


@pytest.fixture(scope="session")
def bids_server(bids_root):
    """A real server whose only served root is the dataset (2 reader processes)."""
    from mef3lab.server.process import ServerProcess

    srv = ServerProcess(
        segment_seconds=10.0, n_process_workers=2, log_level="WARNING", root=(str(bids_root),)
    ).start()
    yield srv
    sources.REGISTRY.close_all()
    srv.stop()
