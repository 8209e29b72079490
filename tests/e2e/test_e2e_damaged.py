"""Every damage case through a real server: the session opens, its info names the damaged channel.

The info says why, the other channels equal the intact copy, the damaged one fails with
DATA_LOSS, and the server keeps serving another client reading an intact recording all along.
"""

from __future__ import annotations

import numpy as np
import pytest

from mef3lab.errors import CorruptDataError
from mef3lab.testing.damage import CASES, damaged_copy
from mef3lab.testing.synth import synthesize

from .conftest import assert_same

VICTIM = "ch002"
HARMLESS = {"tmet-blocks-absurd", "tidx-block-bytes-absurd"}  # fields the numba engine never reads


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    base = tmp_path_factory.mktemp("damaged")
    intact = synthesize(
        base / "intact.mefd", channels=4, fs=256.0, seconds=60.0, gaps=[(30.0, 1.0)], seed=5
    )
    return intact, {c.name: damaged_copy(intact, base / f"{c.name}.mefd", c, VICTIM) for c in CASES}


def test_every_damaged_session_serves_its_undamaged_channels(
    module_launch, connect, sessions, recording, reference
):
    srv = module_launch(n_process_workers=2, n_prefetch=0)
    intact, damaged = sessions
    bystander = connect(srv, "bystander")
    bystander.open_file(str(recording))
    expected_bystander = reference(recording).read_index(["ch004"], 0, 4096)
    c = connect(srv, "archivist")
    ref = reference(intact)
    outcome = {}
    for name, path in damaged.items():
        info = c.open_file(str(path))
        for ch in ("ch000", "ch001", "ch003"):
            assert_same(c.read_index(str(path), 0, 15360, [ch]), ref.read_index([ch], 0, 15360))
        if name in HARMLESS:
            assert_same(
                c.read_index(str(path), 0, 15360, [VICTIM]), ref.read_index([VICTIM], 0, 15360)
            )
            outcome[name] = "reads as intact"
        else:
            with pytest.raises(CorruptDataError, match=VICTIM):
                c.read_index(str(path), 0, 15360, [VICTIM])
            outcome[name] = "left out at open" if VICTIM in info.damaged else "fails when read"
            if VICTIM in info.damaged:
                assert VICTIM not in info.names and info.damaged[VICTIM]
        c.close_file(str(path))
        assert_same(bystander.read_index(str(recording), 0, 4096, ["ch004"]), expected_bystander)
    stats = c.stats()
    assert stats["workers"] == 2 and stats["open_recordings"] == 1  # only the bystander's
    assert sum(v == "left out at open" for v in outcome.values()) >= 20, outcome
    np.testing.assert_equal(len(outcome), len(CASES))
