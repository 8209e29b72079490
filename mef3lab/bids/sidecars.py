"""A BIDS run's sidecar files read with pandas and json, every fault named by file and line.

TSVs are checked row by row against their header before pandas reads them, so a row with
a field too many or too few is reported at its line; JSON errors carry the parser's line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["SidecarError", "read_json", "read_tsv", "read_events", "read_channels"]


class SidecarError(ValueError):
    """A sidecar file that cannot be read as BIDS writes it (the message names file and line)."""


def read_tsv(path: str | Path, required: tuple[str, ...] = ()) -> pd.DataFrame:
    """A BIDS TSV as a DataFrame: tab-separated, a header line, ``n/a`` missing.

    Parameters
    ----------
    path : str or Path
        The file.
    required : tuple of str
        Columns it must have.

    Returns
    -------
    pandas.DataFrame
        Its rows, every column as text or numbers as pandas reads them.

    Raises
    ------
    SidecarError
        When it is empty, a row has more or fewer fields than the header, or a required
        column is missing (the message names the file and line).
    """
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or not lines[0].strip():
        raise SidecarError(f"{path}: line 1: no header (the file is empty)")
    header = lines[0].split("\t")
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.count("\t") + 1
        if fields != len(header):
            raise SidecarError(
                f"{path}: line {n}: {fields} tab-separated fields, the header has {len(header)}"
            )
    missing = [c for c in required if c not in header]
    if missing:
        raise SidecarError(f"{path}: line 1: no column {', '.join(missing)} in the header")
    return pd.read_csv(
        path, sep="\t", dtype=str, na_values=["n/a"], keep_default_na=False, skip_blank_lines=True
    )


def read_json(path: str | Path) -> dict[str, Any]:
    """A JSON sidecar as a dict.

    Raises
    ------
    SidecarError
        When it is not valid JSON (the message names the file, line and column), or not
        an object.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise SidecarError(f"{path}: line {e.lineno}, column {e.colno}: {e.msg}") from None
    if not isinstance(data, dict):
        raise SidecarError(f"{path}: line 1: a sidecar is a JSON object, not {type(data).__name__}")
    return data


def read_events(path: str | Path) -> pd.DataFrame:
    """An ``events.tsv``, with ``onset`` and ``duration`` as numbers.

    Raises
    ------
    SidecarError
        As `read_tsv`, and when an onset or duration is neither a number nor ``n/a``.
    """
    df = read_tsv(path, ("onset", "duration"))
    for column in ("onset", "duration"):
        numbers = pd.to_numeric(df[column], errors="coerce")
        bad = numbers.isna() & df[column].notna()
        if bad.any():
            row = int(bad.to_numpy().nonzero()[0][0])
            raise SidecarError(
                f"{path}: line {row + 2}: {column} {df[column].iloc[row]!r} is not a number"
            )
        df[column] = numbers
    return df


def read_channels(path: str | Path) -> pd.DataFrame:
    """A ``channels.tsv`` (``name``, ``type``, ``units`` and, when present, ``status``).

    Raises
    ------
    SidecarError
        As `read_tsv`, and when a channel is named twice or a status is neither ``good``
        nor ``bad``.
    """
    df = read_tsv(path, ("name", "type", "units"))
    twice = df["name"].duplicated()
    if twice.any():
        row = int(twice.to_numpy().nonzero()[0][0])
        raise SidecarError(f"{path}: line {row + 2}: channel {df['name'].iloc[row]!r} again")
    if "status" in df:
        odd = df["status"].notna() & ~df["status"].isin(["good", "bad"])
        if odd.any():
            row = int(odd.to_numpy().nonzero()[0][0])
            raise SidecarError(
                f"{path}: line {row + 2}: status {df['status'].iloc[row]!r} is neither "
                "'good' nor 'bad'"
            )
    return df
