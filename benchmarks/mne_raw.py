"""Table I: MNE-Python on a recording, ``rec.mef3.to_mne()`` against ``mne.io.read_raw_mef``.

The whole first hour of every channel (``get_data``), and 200 random 2-s epochs
(``mne.Epochs(..., preload=True)``), each from opening the recording on: MNE's own MEF
reader (pymef) is the baseline; mef3lab's Raw reads in this process and through a fresh
server (nothing cached, prefetch on). The three are measured in turn in each repeat, so
load from other work falls on all of them alike. Samples are checked against MNE's before
the first gap (after it MNE's reader has them early: it drops the gaps).
"""

from __future__ import annotations

import time
from pathlib import Path

import mne
import numpy as np

import mef3lab

from .common import Params, server
from .report import Table, Target, best

HOUR_S = 3600.0
N_EPOCHS = 200
EPOCH_S = 2.0


def run(path: Path, params: Params, log=print) -> Table:
    table = Table(
        "I", f"MNE Raw of a recording ({params.recording.channels} channels), vs read_raw_mef"
    )
    fs = params.recording.fs
    n = int(min(HOUR_S, params.recording.seconds) * fs)
    rng = np.random.default_rng(params.seed)
    starts = np.sort(rng.integers(0, n - int(EPOCH_S * fs), N_EPOCHS))
    times: dict[str, list[float]] = {}
    clean = _first_gap(path, n)
    for i in range(params.repeat):
        log(f"I hour and epochs, repeat {i + 1}/{params.repeat} ...")
        want, want_epochs = _measure("mne", times, lambda: _mne(path), n, starts)
        got, got_epochs = _measure("embedded", times, lambda: _ours(path, False), n, starts)
        _check("embedded", got, want, got_epochs, want_epochs, starts, clean)
        del got, got_epochs
        with server(params) as srv:
            got, got_epochs = _measure(
                "server", times, lambda srv=srv: _ours(path, srv.address), n, starts
            )
        _check("server", got, want, got_epochs, want_epochs, starts, clean)
        del got, got_epochs, want, want_epochs
    hour = f"{n / fs / 60:g} min"
    for what, label in [("hour", f"get_data() of {hour}"), ("epochs", f"{N_EPOCHS} 2-s epochs")]:
        base = best(times[f"mne {what}"])
        table.add(
            f"{label}: mne.io.read_raw_mef (baseline)",
            base,
            "s",
            1.0,
            samples=times[f"mne {what}"],
        )
        for where, text in [("embedded", "in this process"), ("server", "through a server")]:
            t = best(times[f"{where} {what}"])
            table.add(
                f"{label}: rec.mef3.to_mne(), {text}",
                t,
                "s",
                t / base,
                Target("ratio", "<=", 0.5),
                samples=times[f"{where} {what}"],
            )
    table.notes.append(
        f"from opening on; best of {params.repeat}; ×direct = ÷ read_raw_mef's time in the same "
        f"run; samples checked equal to read_raw_mef's over the first {clean / fs:.0f} s "
        "(its first gap)."
    )
    return table


def _mne(path: Path) -> mne.io.BaseRaw:
    return mne.io.read_raw_mef(path, verbose="error")


def _ours(path: Path, address) -> mne.io.BaseRaw:
    return mef3lab.open_recording(path, address=address).mef3.to_mne(verbose="error")


def _measure(name, times, open_raw, n, starts):
    """The hour's data and the epochs' data of a fresh Raw each, timed into `times`."""
    t = time.perf_counter()
    data = open_raw().get_data(stop=n)
    times.setdefault(f"{name} hour", []).append(time.perf_counter() - t)
    t = time.perf_counter()
    raw = open_raw()
    events = np.column_stack([starts, np.zeros_like(starts), np.ones_like(starts)])
    epochs = mne.Epochs(
        raw,
        events,
        tmin=0.0,
        tmax=EPOCH_S - 1 / raw.info["sfreq"],
        baseline=None,
        reject_by_annotation=False,
        preload=True,
        verbose="error",
    ).get_data()
    times.setdefault(f"{name} epochs", []).append(time.perf_counter() - t)
    mef3lab.sources.REGISTRY.close_all()
    return data, epochs


def _first_gap(path: Path, n: int) -> int:
    """Samples before the recording's first gap (at most `n`)."""
    rec = mef3lab.open_recording(path, address=False)
    gaps = rec.mef3.gaps
    fs = float(rec.signal.attrs["fs"])
    rec.close()
    return min(n, int(gaps["start_s"].min() * fs)) if len(gaps) else n


def _check(what, got, want, got_epochs, want_epochs, starts, clean) -> None:
    # (read_raw_mef has fewer samples than a recording with gaps spans)
    if got.shape[0] != want.shape[0] or not np.allclose(got[:, :clean], want[:, :clean], 1e-9, 0):
        raise AssertionError(f"{what}: to_mne's samples differ from read_raw_mef's")
    inside = starts + got_epochs.shape[-1] <= clean
    if not np.allclose(got_epochs[inside], want_epochs[inside], 1e-9, 0):
        raise AssertionError(f"{what}: to_mne's epochs differ from read_raw_mef's")
