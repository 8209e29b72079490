"""The quirks corpus through `open_recording` (embedded and on a real server): channel order,
units, local time and gaps as the Dataset, its attrs and the notebook summary show them.
"""

from __future__ import annotations

import numpy as np
import pytest
from _quirks import quirk_writer

import mef3lab
from mef3lab.readers import open_reader
from mef3lab.server.process import ServerProcess


@pytest.fixture(scope="module")
def quirk(tmp_path_factory):
    """``quirk(name) -> Path`` of a quirk session."""
    return quirk_writer(tmp_path_factory)


@pytest.fixture(scope="module")
def server():
    with ServerProcess(n_process_workers=1, log_level="WARNING") as srv:
        yield srv


@pytest.fixture(params=["embedded", "server"])
def open_quirk(request, quirk, server):
    """``open_quirk(name) -> Dataset``, embedded or through the server; closed after the test."""
    opened = []

    def open_(name):
        address = server.address if request.param == "server" else None
        rec = mef3lab.open_recording(quirk(name), address=address)
        opened.append(rec)
        return rec

    yield open_
    for rec in opened:
        rec.close()


def test_channel_dim_in_acquisition_then_natural_order(open_quirk):
    assert list(open_quirk("acquisition_order").channel.values) == ["Pz", "C4", "C3", "Fz"]
    names = list(open_quirk("scrambled_shafts").channel.values)
    assert names[:4] == ["ECG", "LA1", "LA2", "LA3"] and names[12:14] == ["LA12", "RB'1"]
    html = open_quirk("scrambled_shafts").mef3._repr_html_()
    assert "by name, contacts by number" in html


def test_units_canonical_with_the_files_text(open_quirk, quirk):
    rec = open_quirk("units_bytes_repr")
    assert rec.signal.attrs["units"] == "µV" and list(rec.units.values) == ["µV", "µV"]
    assert list(rec.units_text.values) == ["b'uV'", "b'uV'"]
    assert "µV (stored as b&#x27;uV&#x27;)" in rec.mef3._repr_html_()
    with open_reader(quirk("units_bytes_repr")) as r:
        np.testing.assert_array_equal(rec.signal.values, r.read())  # values never change


def test_local_time_in_attrs_and_summary(open_quirk):
    rec = open_quirk("gmt_offset")
    assert rec.attrs["utc_offset_s"] == 39600
    assert rec.attrs["start_clock"] == "2009-10-02 09:01:07 +11:00"
    assert np.datetime64(rec.attrs["start_time"]) == np.datetime64("2009-10-01T22:01:07")
    assert "2009-10-02 09:01:07 +11:00" in rec.mef3._repr_html_()
    bad = open_quirk("gmt_offset_out_of_range")
    assert bad.attrs["utc_offset_s"] == 0 and "outside ±24 h" in bad.attrs["time_notes"]
    assert "outside ±24 h" in bad.mef3._repr_html_()


def test_only_missing_samples_are_gaps(open_quirk, quirk):
    rec = open_quirk("jitter_flags")
    gaps = rec.mef3.gaps
    assert len(gaps) == 2 and set(gaps.channel) == {"a1", "a2"}  # the real one, per channel
    assert "1 per channel, 0.391 s missing" in rec.mef3._repr_html_()
    assert rec.sizes["time"] == 40 * 256 + 100
    with open_reader(quirk("jitter_flags"), engine="mef3io") as r:
        np.testing.assert_array_equal(rec.signal.values, r.read())
