"""Fixtures of the reader pool tests: pools of real workers, and a recording to misbehave."""

from __future__ import annotations

from pathlib import Path

import pytest

from mef3lab.server.pool import ReaderPool
from mef3lab.testing.synth import synthesize

try:
    from .. import _pool_engines as misbehaving
    from .._pool_helpers import shm_blocks
except ImportError:
    import _pool_engines as misbehaving
    from _pool_helpers import shm_blocks


@pytest.fixture(scope="module")
def pool():
    with ReaderPool(2) as p:
        yield p
    assert not shm_blocks()


@pytest.fixture
def small(tmp_path) -> Path:
    """A small recording of its own (tests put marker files in it): 3 ch, 256 Hz, 60 s."""
    return synthesize(
        tmp_path / "small.mefd", channels=3, fs=256.0, seconds=60.0, gaps=[(20.0, 1.0)], seed=3
    )


@pytest.fixture
def engine_pool():
    """Two workers that also know the misbehaving test engine."""
    with ReaderPool(2, engines=misbehaving.SPEC) as p:
        yield p
    assert not shm_blocks()
