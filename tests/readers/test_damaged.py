"""Every case of `mef3lab.testing.damage` on one channel: the session opens, the damaged channel
fails with a clear CorruptDataError (or, where the damage is in a field no decoder uses, reads
exactly as intact: never different data), and every other channel equals a direct read of the intact
copy.
"""

from __future__ import annotations

import numpy as np
import pytest

from mef3lab.cli import describe
from mef3lab.errors import CorruptDataError
from mef3lab.readers import open_reader
from mef3lab.testing.damage import CASES, damaged_copy
from mef3lab.testing.synth import synthesize

VICTIM = "ch001"
#: Damage to fields the decoders never read: the channel reads exactly as intact.
HARMLESS = {
    "numba": {"tmet-blocks-absurd", "tidx-block-bytes-absurd"},
    "mef3io": {"tmet-blocks-absurd"},
    "pymef": {"tmet-blocks-absurd"},
}


@pytest.fixture(scope="module")
def intact(tmp_path_factory):
    """4 channels x 256 Hz x 60 s with a gap, and every channel as mef3io reads it (the
    reference).
    """
    path = synthesize(
        tmp_path_factory.mktemp("intact") / "intact.mefd",
        channels=4,
        fs=256.0,
        seconds=60.0,
        gaps=[(20.0, 0.5)],
        seed=3,
    )
    import mef3io

    with mef3io.Reader(str(path), "") as r:
        reference = {
            n: np.atleast_2d(r.read([n], r.info(n)["start_time"], r.info(n)["end_time"] + 1))
            for n in r.channels
        }
    return path, reference


def test_at_least_25_distinct_cases():
    assert len(CASES) >= 25 and len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize(
    "engine", ["numba", "mef3io", "pymef"]
)  # pymef: it would crash on 4 of them unguarded
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_damaged_channel_costs_only_itself(intact, tmp_path, case, engine):
    path, reference = intact
    damaged = damaged_copy(path, tmp_path / "damaged.mefd", case, VICTIM)
    with open_reader(damaged, None, engine) as r:
        for name in reference:
            if name == VICTIM:
                continue
            assert name in r.info.names, f"{name} lost to {case.name}: {r.info.damaged}"
            np.testing.assert_array_equal(r.read([name]), reference[name].astype(np.float32))
        if case.name in HARMLESS[engine]:
            np.testing.assert_array_equal(r.read([VICTIM]), reference[VICTIM].astype(np.float32))
            return
        with pytest.raises(CorruptDataError) as err:
            r.read([VICTIM])
        assert str(damaged) in str(err.value) and "mef3lab-salvage" not in str(err.value)
        if VICTIM in r.info.damaged:
            assert VICTIM not in r.info.names
            assert any(line.startswith(f"damaged      {VICTIM}: ") for line in describe(r))


def test_no_salvage_folder_outlives_its_reader(intact, tmp_path):
    import glob
    import tempfile

    before = set(glob.glob(f"{tempfile.gettempdir()}/mef3lab-salvage-*"))
    damaged = damaged_copy(intact[0], tmp_path / "d.mefd", "tmet-truncated-half", VICTIM)
    with open_reader(damaged) as r:
        assert VICTIM in r.info.damaged
    assert set(glob.glob(f"{tempfile.gettempdir()}/mef3lab-salvage-*")) == before


def test_a_wrong_session_password_is_still_a_password_error(tmp_path, encrypted_recording):
    from mef3lab.errors import PasswordError

    with pytest.raises(PasswordError):
        open_reader(encrypted_recording, "not-the-password")
