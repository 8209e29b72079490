"""``.mef3``: gap and annotation tables that follow the selection they are asked on."""

from __future__ import annotations

import numpy as np
import pytest

import mef3lab
from mef3lab.readers import open_reader
from mef3lab.xr.accessor import ANNOTATION_COLUMNS, GAP_COLUMNS


def test_gap_table_matches_the_recording(recording, recording_plan):
    ds = mef3lab.open_recording(recording)
    info = open_reader(recording).info
    gaps = ds.mef3.gaps
    assert list(gaps.columns) == GAP_COLUMNS
    assert len(gaps) == 8 * len(recording_plan.gaps_uutc)
    t0 = info.start_uutc
    for name, rows in gaps.groupby("channel", sort=False):
        expected = info.gaps(name)
        assert list(zip(rows.start_uutc, rows.end_uutc, strict=True)) == [
            (g.start_uutc, g.end_uutc) for g in expected
        ]
        np.testing.assert_allclose(rows.start_s, (rows.start_uutc - t0) / 1e6)
        np.testing.assert_allclose(rows.duration_s, rows.end_s - rows.start_s)
        # the gaps written, to the sample (the index rounds a gap out to whole samples)
        written = zip(rows.start_uutc, rows.end_uutc, strict=True)
        for (g0, g1), (a, b) in zip(recording_plan.gaps_uutc, written, strict=False):
            assert abs(a - g0) <= 1e6 / 256 and abs(b - g1) <= 1e6 / 256
    assert (
        gaps.start_uutc.dtype == np.int64 and gaps.duration_s.min() < 0.1
    )  # the 5-sample gap is there


def test_gap_table_follows_the_selection(recording, recording_plan):
    ds = mef3lab.open_recording(recording)
    t0 = recording_plan.start_uutc
    (g0, g1) = recording_plan.gaps_uutc[1]  # 150 s .. 153 s
    sub = ds.signal.sel(channel=["ch001", "ch006"], time=slice(140, 160))
    gaps = sub.mef3.gaps
    assert list(gaps.channel) == ["ch001", "ch006"]
    assert (abs(gaps.start_s - (g0 - t0) / 1e6) < 0.01).all()
    assert ds.signal.sel(time=slice(100, 140)).mef3.gaps.empty
    one = ds.signal.sel(channel="ch003").mef3.gaps
    assert set(one.channel) == {"ch003"} and len(one) == len(recording_plan.gaps_uutc)
    # a reduction over time keeps the channels, and asks about the whole recording
    assert len(ds.signal.isel(time=slice(0, 10)).mean("time", keep_attrs=True).mef3.gaps) == 8 * 4


def test_annotation_table(recording, recording_plan):
    ds = mef3lab.open_recording(recording)
    ann = ds.mef3.annotations
    assert list(ann.columns) == ANNOTATION_COLUMNS
    expected = sorted(recording_plan.annotations, key=lambda a: a["time"])
    assert list(ann.time_uutc) == [a["time"] for a in expected]
    assert list(ann.type) == [a["type"] for a in expected]
    assert list(ann.text) == [a["text"] for a in expected]
    assert [c if isinstance(c, str) else None for c in ann.channel] == [
        a.get("channel") for a in expected
    ]
    np.testing.assert_allclose(ann.time_s, (ann.time_uutc - ds.attrs["start_uutc"]) / 1e6)
    eyes = ann[ann.type == "EDFA"].iloc[0]
    assert eyes.duration_s == 2.5 and np.isnan(ann[ann.type == "Note"].duration_s).all()


def test_annotation_table_follows_the_selection(recording):
    ds = mef3lab.open_recording(recording)
    # "eyes closed" at 180 s lasting 2.5 s; "electrode check ch000" at 270 s on ch000 only
    assert list(ds.signal.sel(time=slice(181, 190)).mef3.annotations.text) == ["eyes closed"]
    assert ds.signal.sel(time=slice(183, 190)).mef3.annotations.empty
    assert list(ds.signal.sel(channel="ch000", time=slice(260, 280)).mef3.annotations.text) == [
        "electrode check ch000"
    ]
    assert ds.signal.sel(channel="ch004", time=slice(260, 280)).mef3.annotations.empty


def test_mixed_rates_and_groups(mixed_rate_recording):
    ds = mef3lab.open_recording(mixed_rate_recording)
    info = open_reader(mixed_rate_recording).info
    gaps = ds.mef3.gaps
    assert set(gaps.channel) == set(info.names)
    for fs, da in ds.mef3.groups.items():
        assert set(da.mef3.gaps.channel) == {n for n in info.names if info.channel(n).fs == fs}


def test_encrypted_recording_uses_the_password_it_was_opened_with(encrypted_recording, passwords):
    ds = mef3lab.open_recording(encrypted_recording, password=passwords.level2)
    assert len(ds.signal.mef3.gaps) == 3 and ds.mef3.info.encrypted


def test_lost_attrs_give_a_clear_error(recording):
    ds = mef3lab.open_recording(recording)
    with pytest.raises(ValueError, match="mef3_"):
        _ = ds.signal.drop_attrs().mef3.gaps


def test_to_uutc(recording):
    ds = mef3lab.open_recording(recording)
    assert ds.mef3.to_uutc(1.5) == ds.attrs["start_uutc"] + 1_500_000
