"""Events a reviewer marks, kept as a DataFrame and saved as a BIDS-style ``events.tsv``.

Columns as BIDS names them: ``onset`` and ``duration`` in seconds from the recording
start, ``trial_type`` the text. The file never goes into the MEF session: a review must not
change the recording it reviews.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pandas as pd

__all__ = ["COLUMNS", "empty", "events_path", "load", "save", "with_event"]

COLUMNS = ("onset", "duration", "trial_type")


def empty() -> pd.DataFrame:
    """No events, with the columns and dtypes of `COLUMNS`."""
    return pd.DataFrame(
        {
            "onset": pd.Series(dtype="float64"),
            "duration": pd.Series(dtype="float64"),
            "trial_type": pd.Series(dtype="object"),
        }
    )


def with_event(
    events: pd.DataFrame, onset: float, duration: float, text: str, recording_s: float
) -> pd.DataFrame:
    """`events` plus one event, sorted by onset; ValueError if it lies outside the recording."""
    _check_times([onset], [duration], recording_s, "the event")
    row = pd.DataFrame(
        {"onset": [float(onset)], "duration": [float(duration)], "trial_type": [str(text)]}
    )
    out = pd.concat([events, row], ignore_index=True) if len(events) else row
    return out.sort_values("onset", kind="stable").reset_index(drop=True)


def events_path(recording_path: str) -> Path:
    """Where the events of the recording at `recording_path` go by default.

    Beside it, named as BIDS names it: ``sub-01_ieeg.mefd`` gives ``sub-01_events.tsv``;
    other names get ``_events.tsv`` appended.
    """
    p = Path(recording_path)
    stem = p.name[: -len(".mefd")] if p.name.endswith(".mefd") else p.name
    for suffix in ("_ieeg", "_eeg"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return p.with_name(f"{stem}_events.tsv")


def save(events: pd.DataFrame, path: str | Path) -> Path:
    """Write `events` as tab-separated onset, duration, trial_type; ValueError for a MEF session.

    Missing values (and an empty trial_type) are written "n/a", as BIDS writes them. An
    events.tsv already at `path` keeps every row and column it has: the events it lacks
    (by onset, duration and trial_type) are added, in onset order; a file that cannot be
    read is left as it is (ValueError).
    """
    path = Path(path)
    if path.suffix.lower() == ".mefd" or path.is_dir():
        raise ValueError(
            f"events go to a .tsv file, not into {str(path)!r} (a MEF session is never written to)"
        )
    table = events.loc[:, list(COLUMNS)].copy()
    table["trial_type"] = table["trial_type"].replace("", None)
    if path.is_file():
        table = _merged(_read_as_written(path), table)
    table.to_csv(
        path, sep="\t", index=False, na_rep="n/a", float_format="%.6f", lineterminator="\n"
    )
    return path


def _read_as_written(path: Path) -> pd.DataFrame:
    """An events.tsv's rows and columns as text, exactly as written; ValueError if unreadable."""
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise ValueError(f"{str(path)!r} is there but cannot be read, so it is kept: {e}") from e
    if not {"onset", "duration"} <= set(table.columns):
        raise ValueError(
            f"{str(path)!r} is there but is no events.tsv (no onset and duration columns), "
            "so it is kept"
        )
    return table


def _merged(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """`old` (text, as written) with the rows of `new` it lacks, sorted by onset (stable)."""

    def keys(onset, duration, text) -> list[tuple]:
        number = pd.to_numeric(pd.Series(list(onset)), errors="coerce").round(6)
        length = pd.to_numeric(pd.Series(list(duration)), errors="coerce").fillna(0.0).round(6)
        label = ["" if pd.isna(x) or x == "n/a" else str(x) for x in text]
        return list(zip(number, length, label, strict=True))

    have = set(keys(old["onset"], old["duration"], old.get("trial_type", [""] * len(old))))
    fresh = new[[k not in have for k in keys(new.onset, new.duration, new.trial_type)]]
    added = pd.DataFrame(
        {
            "onset": [f"{x:.6f}" for x in fresh.onset],
            "duration": [f"{x:.6f}" for x in fresh.duration],
            "trial_type": list(fresh.trial_type),
        }
    )
    out = pd.concat([old, added], ignore_index=True) if len(added) else old
    order = pd.to_numeric(out["onset"], errors="coerce").argsort(kind="stable")
    return out.iloc[order].reset_index(drop=True).replace("", None)


def load(path: str | Path, recording_s: float, outside: str = "raise") -> pd.DataFrame:
    """Read an events.tsv; ValueError naming what is wrong.

    Missing columns, values that are not numbers, and times outside the recording are wrong;
    with ``outside="skip"``, events outside the recording are left out with a warning
    instead (the file keeps them).
    """
    path = Path(path)
    try:
        table = pd.read_csv(
            path, sep="\t", na_values=["n/a"], keep_default_na=False, dtype={"trial_type": str}
        )
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise ValueError(f"cannot read events from {str(path)!r}: {e}") from e
    missing = [c for c in ("onset", "duration") if c not in table.columns]
    if missing:
        raise ValueError(
            f"{str(path)!r} lacks the column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"(an events.tsv needs onset and duration, in seconds; trial_type is the text)"
        )
    try:
        onset = pd.to_numeric(table["onset"]).astype("float64")
        duration = pd.to_numeric(table["duration"]).astype("float64").fillna(0.0)
    except ValueError as e:
        raise ValueError(
            f"{str(path)!r}: onset and duration must be numbers of seconds ({e})"
        ) from e
    if outside == "skip":
        inside = (onset >= 0) & (onset + duration <= recording_s + 1e-6)
        if not inside.all():
            warnings.warn(
                f"{str(path)!r}: {int((~inside).sum())} event(s) outside the recording (0 to "
                f"{recording_s:g} s) are not shown; the file keeps them",
                stacklevel=3,
            )
        table, onset, duration = table[inside], onset[inside], duration[inside]
    _check_times(onset.tolist(), duration.tolist(), recording_s, f"{str(path)!r}: an event")
    text = table["trial_type"].fillna("").astype(str) if "trial_type" in table.columns else ""
    out = pd.DataFrame({"onset": onset, "duration": duration, "trial_type": text})
    return out.sort_values("onset", kind="stable").reset_index(drop=True)


def _check_times(
    onsets: list[float], durations: list[float], recording_s: float, what: str
) -> None:
    for onset, duration in zip(onsets, durations, strict=True):
        if not (math.isfinite(onset) and math.isfinite(duration) and duration >= 0):
            raise ValueError(
                f"{what} at onset {onset!r} with duration {duration!r} is not a time "
                f"(onset and a non-negative duration in seconds)"
            )
        if onset < 0 or onset + duration > recording_s + 1e-6:
            raise ValueError(
                f"{what} at {onset:g} s (lasting {duration:g} s) lies outside the recording "
                f"(0 to {recording_s:g} s)"
            )
