"""Fixtures of the server tests beside the suite's own (tests/conftest.py)."""

from __future__ import annotations

import pytest

from mef3lab.testing.synth import synthesize


@pytest.fixture
def hung(tmp_path):
    """A small recording whose reads hang under the test engine (`_pool_engines`) until its
    ``hang-on-read`` marker is removed; the hung worker writes its pid into the marker."""
    path = synthesize(tmp_path / "hung.mefd", channels=2, fs=256.0, seconds=20.0, gaps=0, seed=5)
    (path / "hang-on-read").touch()
    return path
