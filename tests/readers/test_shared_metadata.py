"""A reader opened from another reader's metadata reads what a reader that parsed the files reads.

Sample for sample on recordings of three writers (mef3io's, meflib's, mef_tools' MefWriter), with
every engine; damaged channels stay damaged with the same errors; metadata is never used across
passwords, engines, or files changed since it was parsed.
"""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest

from mef3lab.readers import open_reader
from mef3lab.testing.damage import damaged_copy
from mef3lab.testing.synth import synthesize

ENGINES = ("numba", "mef3io", "pymef")


@pytest.fixture(scope="module")
def mefwriter_recording(tmp_path_factory):
    """3 channels x 30 s at 1 kHz written by mef_tools' MefWriter, the third from 10 s on."""
    from mef_tools import MefWriter

    path = tmp_path_factory.mktemp("mefwriter") / "written.mefd"
    writer = MefWriter(str(path), overwrite=True)
    rng = np.random.default_rng(11)
    start = 1_705_305_600_000_000
    for c in range(3):
        late = 10 if c == 2 else 0
        data = np.cumsum(rng.normal(0.0, 3.0, (30 - late) * 1000))
        writer.write_data(data, f"e{c}", start + late * 1_000_000, 1000.0, precision=2)
    del writer
    return path


@pytest.fixture(scope="module")
def intact(tmp_path_factory):
    """4 channels x 256 Hz x 60 s with a gap, to damage."""
    return synthesize(
        tmp_path_factory.mktemp("intact") / "intact.mefd",
        channels=4,
        fs=256.0,
        seconds=60.0,
        gaps=[(20.0, 0.5)],
        seed=3,
    )


def _lent(reader):
    """The reader's metadata as another process receives it (pickled across a pipe)."""
    return pickle.loads(pickle.dumps(reader.metadata(), pickle.HIGHEST_PROTOCOL))


def _same_reads(a, b) -> None:
    """Every rate group of a and b, whole and past both ends, counts and float64 values."""
    assert a.info == b.info
    for group in b.info.rate_groups:
        names, n = group.channels, group.grid.n_samples
        np.testing.assert_array_equal(
            a.read_raw(names, -7, n + 7).counts, b.read_raw(names, -7, n + 7).counts
        )
        np.testing.assert_array_equal(
            a.read_index(names, 0, n, "float64"), b.read_index(names, 0, n, "float64")
        )
        np.testing.assert_array_equal(a.block_bounds(names, 0, n), b.block_bounds(names, 0, n))
        for name in names:
            env_a, env_b = a.block_envelope(name), b.block_envelope(name)
            assert env_a.keys() == env_b.keys()
            for k in env_b:
                np.testing.assert_array_equal(env_a[k], env_b[k])


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("written", ["recording", "pymef_recording", "mefwriter_recording"])
def test_a_reader_from_metadata_reads_what_a_parsing_reader_reads(request, written, engine):
    path = request.getfixturevalue(written)
    with open_reader(path, engine=engine, threads=1) as first:
        lent = _lent(first)
    with (
        open_reader(path, engine=engine, threads=1, metadata=lent) as adopted,
        open_reader(path, engine=engine, threads=1) as parsed,
    ):
        assert adopted.adopted and not parsed.adopted
        _same_reads(adopted, parsed)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", ["tmet-truncated-half", "tidx-bitflip", "tdat-truncated-half"])
def test_a_damaged_channel_stays_damaged_with_the_same_error(intact, tmp_path, case, engine):
    damaged = damaged_copy(intact, tmp_path / "damaged.mefd", case, "ch001")
    with open_reader(damaged, engine=engine) as first:
        lent = _lent(first)
    with (
        open_reader(damaged, engine=engine, metadata=lent) as adopted,
        open_reader(damaged, engine=engine) as parsed,
    ):
        assert adopted.adopted
        assert adopted.info.damaged == parsed.info.damaged
        healthy = [n for n in parsed.info.names if n != "ch001"]
        np.testing.assert_array_equal(adopted.read(healthy), parsed.read(healthy))
        errors = []
        for r in (adopted, parsed):
            try:
                errors.append(("read", r.read(["ch001"]).tobytes()))
            except Exception as exc:  # noqa: BLE001 - the error itself is compared
                errors.append((type(exc).__name__, str(exc)))
        assert errors[0] == errors[1]
        assert "mef3lab-salvage" not in errors[0][1]


def test_metadata_is_never_lent_across_passwords(encrypted_recording, passwords):
    with (
        open_reader(encrypted_recording, passwords.level1, engine="mef3io") as level1,
        open_reader(encrypted_recording, passwords.level2, engine="mef3io") as level2,
    ):
        assert level1.info != level2.info  # level 1 sees neither annotations nor the clock
        for password, lent, own in (
            (passwords.level1, _lent(level2), level1),
            (passwords.level2, _lent(level1), level2),
        ):
            with open_reader(encrypted_recording, password, engine="mef3io", metadata=lent) as r:
                assert not r.adopted
                assert r.info == own.info


def test_metadata_is_never_lent_across_engines(recording):
    with open_reader(recording, engine="mef3io") as first:
        lent = _lent(first)
    with open_reader(recording, engine="numba", metadata=lent) as r:
        assert not r.adopted


def test_metadata_of_a_recording_written_again_since_is_not_used(tmp_path):
    path = synthesize(tmp_path / "again.mefd", channels=2, fs=256.0, seconds=20.0, seed=1)
    with open_reader(path) as first:
        lent, before = _lent(first), first.read()
    shutil.rmtree(path)
    synthesize(path, channels=2, fs=256.0, seconds=30.0, seed=2)
    with open_reader(path, metadata=lent) as r, open_reader(path) as parsed:
        assert not r.adopted
        c = r.info.channels[0]
        assert r.info == parsed.info and c.end_uutc - c.start_uutc == 30_000_000
        np.testing.assert_array_equal(r.read(), parsed.read())
        assert r.read().shape != before.shape
