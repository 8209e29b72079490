"""Recordings as real acquisition systems write them, read by every engine (the quirks corpus).

Each session is written by mef_tools' MefWriter or by meflib through pymef
(`mef3lab.testing.quirks`); values are compared sample for sample with what was written.
"""

from __future__ import annotations

import numpy as np
import pytest
from _quirks import quirk_writer

from mef3lab.model import ORDER_ACQUISITION, ORDER_NATURAL
from mef3lab.protocol.wire import info_from_proto, info_to_proto
from mef3lab.readers import open_reader
from mef3lab.testing import quirks as q

ENGINES = ("numba", "mef3io", "pymef")


@pytest.fixture(scope="session")
def quirk(tmp_path_factory):
    """``quirk(name) -> Path`` of a quirk session."""
    return quirk_writer(tmp_path_factory)


def stored(values: np.ndarray) -> np.ndarray:
    """The float32 values MefWriter stores for `values` (its own conversion, factor 0.01)."""
    from mef_tools.io import convert_data_to_int32

    return (convert_data_to_int32(values, precision=2) * 0.01).astype(np.float32)


def written(name: str, fs: float = 256.0, seconds: float = 10.0) -> np.ndarray:
    """What MefWriter stored for channel `name` of a quirk session."""
    return stored(q.signal(name, fs, seconds))


@pytest.mark.parametrize("engine", ENGINES)
def test_distinct_acquisition_numbers_give_the_order(quirk, engine):
    with open_reader(quirk("acquisition_order"), engine=engine) as r:
        info = r.info
        assert info.names == ("Pz", "C4", "C3", "Fz")  # numbers 0, 2, 4, 5
        assert [c.acquisition_number for c in info.channels] == [0, 2, 4, 5]
        assert info.order == ORDER_ACQUISITION
        data = r.read()
    for row, name in zip(data, info.names, strict=True):
        np.testing.assert_array_equal(row, written(name))


@pytest.mark.parametrize("engine", ENGINES)
def test_equal_acquisition_numbers_give_natural_order(quirk, engine):
    with open_reader(quirk("scrambled_shafts"), engine=engine) as r:
        info = r.info
        assert info.order == ORDER_NATURAL
        assert info.names == (
            "ECG",
            *(f"LA{k}" for k in range(1, 13)),
            *(f"RB'{k}" for k in range(1, 13)),
        )
        data = r.read()
    for row, name in zip(data, info.names, strict=True):
        np.testing.assert_array_equal(row, written(name, seconds=4.0))


@pytest.mark.parametrize("engine", ENGINES)
def test_discontinuity_flags_that_lose_no_sample_are_not_gaps(quirk, engine):
    with open_reader(quirk("jitter_flags"), engine=engine) as r:
        info = r.info
        (group,) = info.rate_groups
        for name in info.names:
            (gap,) = info.gaps(name)  # 40 flagged blocks, one real gap of 100 samples
            assert (gap.end_uutc - gap.start_uutc) == pytest.approx(100 * 1e6 / 256, abs=2)
            assert len(info.spans[name]) == 2
        assert group.grid.n_samples == 40 * 256 + 100  # exactly the stored samples + the gap
        data = r.read()
    for row, name in zip(data, info.names, strict=True):
        missing = np.flatnonzero(np.isnan(row))
        np.testing.assert_array_equal(missing, np.arange(31 * 256, 31 * 256 + 100))
        stored = np.round(q.signal(name, 256.0, 40.0) * 100).astype(np.int32) * 0.01
        np.testing.assert_array_equal(row[~np.isnan(row)], stored.astype(np.float32))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("name", "fs", "seconds"),
    [("odd_rate", 255.9997, 60.0), ("lab_depth", q.LAB_FS, 6.0), ("gmt_offset", 256.0, 10.0)],
)
def test_the_time_axis_holds_exactly_the_samples_stored(quirk, engine, name, fs, seconds):
    with open_reader(quirk(name), engine=engine) as r:
        info = r.info
        (group,) = info.rate_groups
        assert group.fs == fs
        assert group.grid.n_samples == info.channels[0].n_samples == round(fs * seconds)
        assert not any(info.gaps(n) for n in info.names)
        data = r.read(info.names[:2])
    assert data.shape[1] == group.grid.n_samples and not np.isnan(data).any()
    for row, ch in zip(data, info.names[:2], strict=True):
        values = q.lab_signal(ch) if name == "lab_depth" else q.signal(ch, fs, seconds)
        np.testing.assert_array_equal(row, stored(values))


@pytest.mark.parametrize("engine", ENGINES)
def test_local_time_from_the_recorded_gmt_offset(quirk, engine):
    with open_reader(quirk("gmt_offset"), engine=engine) as r:
        info = r.info
    assert info.gmt_offset_s == info.utc_offset_s == 11 * 3600
    assert info.clock(info.start_uutc) == "2009-10-02 09:01:07 +11:00"
    assert info.clock(info.start_uutc, utc=True) == "2009-10-01 22:01:07 +00:00"
    assert info.notes == ()


@pytest.mark.parametrize("engine", ENGINES)
def test_a_gmt_offset_beyond_24_hours_is_ignored_with_a_note(quirk, engine):
    with open_reader(quirk("gmt_offset_out_of_range"), engine=engine) as r:
        info = r.info
    assert info.gmt_offset_s == 30 * 3600 and info.utc_offset_s is None
    assert info.clock(info.start_uutc) == "2009-10-01 22:01:07 +00:00"
    (note,) = info.notes
    assert "+30 h" in note and "outside ±24 h" in note and "UTC" in note


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("name", "text"), [("units_bytes_repr", "b'uV'"), ("units_words", "microvolts")]
)
def test_units_are_canonical_and_the_files_text_is_kept(quirk, engine, name, text):
    with open_reader(quirk(name), engine=engine) as r:
        info = r.info
        data = r.read()
    assert {(c.units, c.units_text) for c in info.channels} == {("µV", text)}
    np.testing.assert_array_equal(data[0], written(info.names[0]))


@pytest.mark.parametrize("engine", ENGINES)
def test_channel_folders_whose_case_differs_from_their_files(quirk, engine):
    with open_reader(quirk("folder_case"), engine=engine) as r:
        info = r.info
        data = r.read()
    assert info.names == ("la1", "LA2", "lb1") and not info.damaged
    for row, name in zip(data, ("LA1", "LA2", "LB1"), strict=True):
        np.testing.assert_array_equal(row, written(name))


@pytest.mark.parametrize("engine", ["numba", "mef3io"])
def test_level1_times_are_deidentified_and_shown_relative(quirk, engine):
    path = quirk("deidentified")
    with open_reader(path, q.PASSWORD1, engine) as r:
        info = r.info
        relative = r.read()
    assert info.deidentified and info.gmt_offset_s is None
    assert info.start_uutc == 32_467_000_000
    assert info.clock(info.start_uutc) == "+09:01:07 (de-identified)"
    assert any("de-identified" in n for n in info.notes)
    with open_reader(path, q.PASSWORD2, engine) as r:
        full = r.info
        np.testing.assert_array_equal(r.read(), relative)  # the same samples
    assert not full.deidentified and full.start_uutc == q.START
    assert full.clock(full.start_uutc) == "2009-10-01 16:01:07 -06:00"  # MefWriter's -6 h


@pytest.mark.parametrize("name", sorted(q.QUIRKS))
def test_every_quirk_crosses_the_wire_unchanged(quirk, name):
    password = q.PASSWORD1 if name == "deidentified" else None
    with open_reader(quirk(name), password) as r:
        info = r.info
    back = info_from_proto(info_to_proto(info))
    assert back == info
    assert back.channels == info.channels  # acquisition numbers and units text included
    assert (back.gmt_offset_s, back.deidentified) == (info.gmt_offset_s, info.deidentified)
