"""`mef3lab synth` / `mef3lab info` as a user runs them, and the synthetic signal itself."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from mef3lab.readers import open_reader
from mef3lab.testing.synth import plan, synthesize


def mef3lab(*args, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "mef3lab", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_synth_then_info(tmp_path):
    out = tmp_path / "cli.mefd"
    made = mef3lab(
        "synth",
        out,
        "--channels",
        3,
        "--fs",
        256,
        "--seconds",
        30,
        "--precision",
        2,
        "--gaps",
        2,
        "--seed",
        4,
    )
    assert made.returncode == 0, made.stderr
    spec = plan(channels=3, seconds=30, gaps=2, seed=4)
    stored = sum(int((~np.isnan(spec.signal(i))).sum()) for i in range(3))
    assert (
        "3 channels" in made.stdout and f"{stored:,} samples written" in made.stdout
    )  # gaps are not samples
    info = mef3lab("info", out)
    assert info.returncode == 0, info.stderr
    text = info.stdout
    for expected in [
        "read with numba; not encrypted",
        "start        2024-01-15 08:00:00.000 +00:00",
        "order        by name, contacts by number",
        "duration     30.000 s (0:00:30)",
        "channels     3: ch000, ch001, ch002",
        "256 Hz: 3 channels",
        "gaps         2 (the same in every channel)",
        "annotations  4",
        "EDFA (2.5 s)  eyes closed",
        "Note [ch000]  electrode check ch000",
    ]:
        assert expected in text, f"{expected!r} missing from:\n{text}"
    assert any(g1 - g0 < 1_000_000 for g0, g1 in spec.gaps_uutc)  # one gap shorter than a second
    assert "(read with mef3io" in mef3lab("info", out, "--engine", "mef3io").stdout


def test_info_on_mixed_rates_and_encrypted(tmp_path):
    out = tmp_path / "enc.mefd"
    made = mef3lab(
        "synth",
        out,
        "--channels",
        4,
        "--seconds",
        20,
        "--mixed-rates",
        "--stagger",
        1,
        "--password1",
        "one",
        "--password2",
        "two",
    )
    assert made.returncode == 0, made.stderr
    full = mef3lab("info", out, "--password", "two").stdout
    assert "1024 Hz: 2 channels" in full and "256 Hz: 2 channels" in full and "; encrypted" in full
    assert "gaps         differ between channels" in full  # staggered channels
    level1 = mef3lab("info", out, "--password", "one").stdout
    assert "read with numba" in level1 and "annotations  unavailable" in level1


@pytest.mark.parametrize(
    "args, status, words",
    [
        (("info", "/nonexistent/x.mefd"), 1, "no such file"),
        (("info", "{tmp}"), 1, "not a MEF 3.0 session"),
        (("info", "{enc}"), 1, "encrypted"),
        (("info", "{enc}", "--password", "bad"), 1, "password does not open"),
        (("synth", "{tmp}/x.txt", "--seconds", 1), 2, "ending in .mefd"),
        (("frobnicate",), 2, "invalid choice"),
    ],
)
def test_errors_are_one_line_without_traceback(tmp_path, encrypted_recording, args, status, words):
    args = [
        a.format(tmp=tmp_path, enc=encrypted_recording) if isinstance(a, str) else a for a in args
    ]
    res = mef3lab(*args)
    assert res.returncode == status
    assert words in res.stderr and "Traceback" not in res.stderr
    if status == 1:
        assert res.stderr.count("\n") == 1 and res.stderr.startswith("mef3lab info: ")


def test_synth_refuses_to_overwrite(tmp_path):
    out = synthesize(tmp_path / "a.mefd", channels=1, seconds=2, gaps=0)
    with pytest.raises(FileExistsError):
        synthesize(out, channels=1, seconds=2)
    assert synthesize(out, channels=1, seconds=2, overwrite=True) == out


def test_signal_is_seeded_rounded_and_eeg_like():
    a, b, c = (plan(channels=2, seconds=60, seed=s) for s in (1, 1, 2))
    np.testing.assert_array_equal(a.signal(1), b.signal(1))
    assert not np.array_equal(a.signal(1), c.signal(1), equal_nan=True)
    assert not np.array_equal(a.signal(0), a.signal(1), equal_nan=True)
    x = plan(channels=1, seconds=120, gaps=0, precision=1).signal(0)
    np.testing.assert_array_equal(x, np.rint(x * 10) * 0.1)
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(x.size, 1 / 256)
    alpha = spectrum[(f > 9.5) & (f < 10.5)].mean()
    assert alpha > 20 * spectrum[(f > 12) & (f < 20)].mean()  # a 10 Hz rhythm stands out
    assert (
        spectrum[(f > 1) & (f < 3)].mean() > 5 * spectrum[(f > 40) & (f < 60)].mean()
    )  # 1/f background
    assert 30 < np.abs(x).max() < 120


def test_explicit_gaps_and_annotations():
    p = plan(
        channels=1,
        fs=100.0,
        seconds=10,
        gaps=[(2.0, 0.05), (5.0, 1.0)],
        annotations=[{"time": 1, "type": "Note", "text": "x"}],
    )
    x = p.signal(0)
    np.testing.assert_array_equal(np.flatnonzero(np.isnan(x)), np.r_[200:205, 500:600])
    assert p.annotations == ({"time": 1, "type": "Note", "text": "x"},)
    with pytest.raises(ValueError, match="overlap"):
        plan(channels=1, seconds=10, gaps=[(2.0, 2.0), (3.0, 1.0)])
    with pytest.raises(ValueError, match="inside the recording"):
        plan(channels=1, seconds=10, gaps=[(9.5, 1.0)])


def test_info_names_channels_the_numba_engine_hands_to_mef3io(rate_change_recording, recording):
    from mef3lab.cli import describe

    with open_reader(rate_change_recording, engine="numba") as r:
        assert "decoded by   mef3io: 1 channel (changes; see the INFO log for why)" in describe(r)
    with open_reader(recording, engine="numba") as r:
        assert not [line for line in describe(r) if line.startswith("decoded by")]
