"""Recordings with the quirks of real acquisition systems, written by real MEF writers.

One small session per quirk, each written by mef_tools' `MefWriter` (the lab's writer) or by
meflib through pymef, never by mef3lab's own synth: acquisition numbers out of name order,
sEEG shafts written in scrambled order, discontinuity flags that lose no sample, a rate that
is not the nominal one, a GMT offset (and one out of range), units as a bytes repr or as a
word, channel folders whose case differs from their files, a lab-style 8 kHz depth recording,
a 64-contact grid at 32 kHz, and a session whose times are de-identified. `write_quirk`
writes one; `QUIRKS` lists them.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: 2009-10-02 09:01:07 at +11:00, the first sample of every quirk session (µUTC).
START = 1_254_434_467_000_000
#: The passwords of the de-identified session.
PASSWORD1, PASSWORD2 = "quirk1", "quirk2"


@dataclass(frozen=True)
class Quirk:
    """One quirk session: what it holds, and the function that writes it to a path.

    Attributes
    ----------
    what : str
        The quirk, in words.
    write : callable
        ``write(path)`` writes the session folder (``.mefd``) at `path`.
    """

    what: str
    write: Callable[[Path], None]


def signal(name: str, fs: float, seconds: float) -> np.ndarray:
    """Samples (µV) that name their channel: noise seeded by the name, plus a sine of its own."""
    seed = int.from_bytes(name.encode(), "little") % (2**32)
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(fs * seconds))) / fs
    f0 = 3 + seed % 17
    return np.round(rng.normal(0, 20, t.size) + 50 * np.sin(2 * np.pi * f0 * t), 2)


def _mef_writer(path: Path, password1: str | None = None, password2: str | None = None):
    from mef_tools.io import MefWriter

    with contextlib.redirect_stdout(io.StringIO()):  # it prints what it infers
        return MefWriter(str(path), overwrite=False, password1=password1, password2=password2)


def _write(w, name: str, data: np.ndarray, fs: float, acquisition: int = 1, start: int = START):
    w.section2_ts_dict["acquisition_channel_number"] = acquisition
    with contextlib.redirect_stdout(io.StringIO()):
        w.write_data(data, name, start, fs, precision=2)


def _close(w) -> None:
    w.session.close()


def _channels(path: Path, names, fs=256.0, seconds=10.0, numbers=None, **writer) -> None:
    w = _mef_writer(path, **writer)
    for i, name in enumerate(names):
        _write(w, name, signal(name, fs, seconds), fs, 1 if numbers is None else numbers[i])
    _close(w)


def acquisition_order(path: Path) -> None:
    """Distinct acquisition numbers out of name order (the Mayo sample's 4, 2, 5, 0)."""
    _channels(path, ["C3", "C4", "Fz", "Pz"], numbers=[4, 2, 5, 0])


#: The contacts of `scrambled_shafts`, in the scrambled order they are written.
SCRAMBLED = [f"{s}{k}" for k in (10, 3, 12, 1, 7, 11, 2, 9, 5, 8, 4, 6) for s in ("LA", "RB'")]


def scrambled_shafts(path: Path) -> None:
    """Two 12-contact sEEG shafts written in scrambled order, every acquisition number 1."""
    _channels(path, [*SCRAMBLED, "ECG"], seconds=4.0)


def jitter_flags(path: Path, n_blocks: int = 40, block: int = 256, fs: float = 256.0) -> None:
    """Every block flagged discontinuous, each starting 1 µs after the previous one ends.

    Written with meflib through pymef (mef_tools cannot flag a block); one real gap of
    100 samples after block 30 shows that true gaps stay gaps.
    """
    from pymef.mef_session import MefSession

    s = MefSession(str(path), "", read_metadata=False, new_session=True)
    for name in ("a1", "a2"):
        data = np.round(signal(name, fs, n_blocks * block / fs) * 100).astype(np.int32)
        s2 = dict(
            channel_description=b"jitter",
            session_description=b"quirks",
            recording_duration=int(n_blocks * block / fs * 1e6),
            sampling_frequency=fs,
            units_conversion_factor=0.01,
            units_description=b"microvolts",
            start_sample=0,
            number_of_samples=0,
            number_of_blocks=0,
            acquisition_channel_number=1 + (name == "a2"),
        )
        t, period = float(START), 1e6 / fs
        for b in range(n_blocks):
            t0 = int(t)
            t1 = int(t0 + block * period)
            part = np.ascontiguousarray(data[b * block : (b + 1) * block])
            if b == 0:
                s.write_mef_ts_segment_metadata(
                    name, 0, "", "", t0, t1, s2, dict(recording_time_offset=0, GMT_offset=0)
                )
                s.write_mef_ts_segment_data(name, 0, "", "", block, part)
            else:
                s.append_mef_ts_segment_data(name, 0, "", "", t0, t1, block, part, True)
            t = t0 + block * period + 1 + (100 * period if b == 30 else 0)
    s.close()


def odd_rate(path: Path) -> None:
    """A sampling rate that is not the nominal one (255.9997 Hz), block times following it."""
    _channels(path, ["x1", "x2"], fs=255.9997, seconds=60.0)


def gmt_offset(path: Path, offset_s: int = 11 * 3600) -> None:
    """A session recorded at GMT+11 (the Mayo sample's offset)."""
    w = _mef_writer(path)
    w.section3_dict["GMT_offset"] = offset_s
    for i, name in enumerate(["Fp1", "Fp2"]):
        _write(w, name, signal(name, 256.0, 10.0), 256.0, i)
    _close(w)


def gmt_offset_out_of_range(path: Path) -> None:
    """A recorded GMT offset of +30 h, which no clock can apply."""
    gmt_offset(path, 30 * 3600)


def units_bytes_repr(path: Path) -> None:
    """Units stored as the Python bytes repr ``b'uV'`` (the units given as ``str(b"uV")``)."""
    w = _mef_writer(path)
    w.data_units = str(b"uV")
    for name in ("LA1", "LA2"):
        _write(w, name, signal(name, 256.0, 10.0), 256.0)
    _close(w)


def units_words(path: Path) -> None:
    """Units stored as a word (``microvolts``, as Mayo's tools write them)."""
    w = _mef_writer(path)
    w.data_units = "microvolts"
    for name in ("LA1", "LA2"):
        _write(w, name, signal(name, 256.0, 10.0), 256.0)
    _close(w)


def folder_case(path: Path) -> None:
    """Channel folders whose case differs from the files inside them (``la1.timd/LA1-…``)."""
    _channels(path, ["LA1", "LA2", "LB1"])
    for name in ("LA1", "LB1"):
        os.rename(path / f"{name}.timd", path / f"{name.lower()}.timd")


#: The contacts of `lab_depth`: 16 contacts on 5 shafts; LC2 was not recorded.
LAB_CONTACTS = [
    "LA1", "LA2", "LA3", "LA4",
    "LB1", "LB2", "LB3",
    "LC1", "LC3", "LC4",
    "RA1", "RA2", "RA3",
    "RB1", "RB2", "RB3",
]  # fmt: skip
#: The lab-style recording's rate (Hz), and where its ripple lies (s from the start).
LAB_FS, LAB_RIPPLE_S = 8000.0, 2.0


def lab_signal(name: str, seconds: float = 6.0) -> np.ndarray:
    """A depth contact's samples: `signal`, plus a 140 Hz ripple at 2 s on LA2 and LA3."""
    x = signal(name, LAB_FS, seconds)
    if name in ("LA2", "LA3"):
        t = np.arange(x.size) / LAB_FS - LAB_RIPPLE_S
        amp = 40.0 if name == "LA2" else -25.0
        x = np.round(x + amp * np.exp(-((t / 0.02) ** 2)) * np.sin(2 * np.pi * 140 * t), 2)
    return x


def lab_depth(path: Path) -> None:
    """The lab's kind of recording: 16 depth contacts on 5 shafts at 8 kHz, units ``b'uV'``.

    Written in name order with every acquisition number 1, as the lab's writer does.
    """
    w = _mef_writer(path)
    w.data_units = str(b"uV")
    for name in LAB_CONTACTS:
        _write(w, name, lab_signal(name), LAB_FS)
    _close(w)


#: The fast grid's rate (Hz), and where its one-sample spike lies on contact B4 (sample index).
GRID_FS, GRID_SPIKE = 32000.0, 22_400


def grid_signal(name: str) -> np.ndarray:
    """A contact of `grid_32khz`: `signal`, plus a one-sample 900 µV spike on B4."""
    x = signal(name, GRID_FS, 1.5)
    if name == "B4":
        x[GRID_SPIKE] += 900.0
    return x


def grid_32khz(path: Path) -> None:
    """64 contacts on 8 shafts (A1-H8) at 32 kHz for 1.5 s, a one-sample spike on B4."""
    w = _mef_writer(path)
    for name in (f"{s}{k}" for s in "ABCDEFGH" for k in range(1, 9)):
        _write(w, name, grid_signal(name), GRID_FS)
    _close(w)


def deidentified(path: Path) -> None:
    """An encrypted session with a recording time offset: level 1 reads relative times."""
    w = _mef_writer(path, PASSWORD1, PASSWORD2)
    w.record_offset = START - 32_467_000_000  # leaves 09:01:07 after the epoch
    for name in ("Cz", "Pz"):
        _write(w, name, signal(name, 256.0, 10.0), 256.0)
    _close(w)


#: Every quirk session, by name.
QUIRKS = {
    f.__name__: Quirk((f.__doc__ or "").split("\n")[0], f)
    for f in (
        acquisition_order,
        scrambled_shafts,
        jitter_flags,
        odd_rate,
        gmt_offset,
        gmt_offset_out_of_range,
        units_bytes_repr,
        units_words,
        folder_case,
        lab_depth,
        grid_32khz,
        deidentified,
    )
}


def write_quirk(folder: str | os.PathLike, name: str) -> Path:
    """Write quirk session `name` as ``<folder>/<name>.mefd`` (kept if it is already there).

    Parameters
    ----------
    folder : str or os.PathLike
        Where to write it.
    name : str
        A key of `QUIRKS`.

    Returns
    -------
    pathlib.Path
        The session folder.

    Raises
    ------
    KeyError
        If there is no such quirk.
    """
    quirk = QUIRKS[name]
    path = Path(folder).resolve() / f"{name}.mefd"  # meflib warns about relative paths
    if not path.exists():
        quirk.write(path)
    return path
