"""Progress bars for dask computes: shown for a compute longer than the delay, not for a short one,
and off.
"""

from __future__ import annotations

import re
import time

import dask
import dask.array as da
import pytest

from mef3lab.jupyter import progress


def _slow(block):
    time.sleep(0.05)
    return block


@pytest.fixture(autouse=True)
def _off_after():
    yield
    progress.disable()


def test_a_long_compute_shows_a_bar_that_counts_its_tasks(capsys):
    progress.enable(delay=0.2)
    with dask.config.set(scheduler="threads"):
        total = da.ones(40, chunks=1).map_blocks(_slow).sum().compute()
    assert total == 40
    err = capsys.readouterr().err  # tqdm.auto outside a notebook: a text bar on stderr
    assert "mef3lab" in err and re.search(r"(\d+)/\1", err), err


def test_a_short_compute_shows_nothing_and_off_is_off(capsys):
    progress.enable(delay=5.0)
    da.ones(10, chunks=5).sum().compute()
    assert capsys.readouterr().err == ""
    progress.disable()
    assert not progress.enabled()
    da.ones(40, chunks=1).map_blocks(_slow).sum().compute()
    assert capsys.readouterr().err == ""


def test_bars_turned_on_while_another_thread_computes_can_be_turned_off():
    # dask swaps its set of callbacks during a compute; one registered meanwhile is lost with
    # the swapped set, and turning bars off afterwards must not fail (it raised KeyError).
    from dask.callbacks import local_callbacks

    with local_callbacks():  # what a compute running elsewhere does
        progress.enable()
    progress.disable()
    assert not progress.enabled()
