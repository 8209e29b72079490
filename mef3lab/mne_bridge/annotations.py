"""What a recording and a run say about time, as `mne.Annotations`, and events back from them.

MEF records become ``"<type>: <text>"`` (as `mne.io.read_raw_mef` names them), gaps
``BAD_ACQ_SKIP`` with their exact onset and duration, a run's events their ``trial_type``.
Events (``onset``, ``duration``, ``trial_type`` in seconds from the recording start, the
columns the scroller and BIDS ``events.tsv`` use) convert to annotations and back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence

import mne
import numpy as np
import pandas as pd

from ..model import Grid, SessionInfo

__all__ = [
    "GAP",
    "annotations_to_events",
    "events_to_annotations",
    "gap_annotations",
    "record_annotations",
]

#: MNE's description of samples that were never acquired.
GAP = "BAD_ACQ_SKIP"

EVENT_COLUMNS = ("onset", "duration", "trial_type")


def meas_date(uutc: int) -> dt.datetime:
    """µUTC as the timezone-aware UTC datetime MNE's ``meas_date`` is."""
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=int(uutc))


def record_annotations(info: SessionInfo, names: Collection[str], grid: Grid) -> mne.Annotations:
    """The MEF records of the session and of channels `names`, timed from `grid`'s sample 0.

    Parameters
    ----------
    info : SessionInfo
        The recording.
    names : collection of str
        The channels whose channel-level records are kept.
    grid : Grid
        The rate group's grid: onsets count from its first sample.

    Returns
    -------
    mne.Annotations
        ``"<type>: <text>"`` (the type alone when the text is empty), channel-level records
        with their channel in ``ch_names``.
    """
    kept = [a for a in info.annotations if a.channel is None or a.channel in names]
    return mne.Annotations(
        onset=[(a.time_uutc - grid.start_uutc) / 1e6 for a in kept],
        duration=[max(a.duration_us or 0, 0) / 1e6 for a in kept],
        description=[f"{a.type}: {a.text}" if a.text else (a.type or "MEF") for a in kept],
        ch_names=[[a.channel] if a.channel else [] for a in kept],
        orig_time=meas_date(grid.start_uutc),
    )


def gap_annotations(info: SessionInfo, names: Sequence[str], grid: Grid) -> mne.Annotations:
    """``BAD_ACQ_SKIP`` wherever channels `names` have no samples on `grid`.

    Gaps between stored spans, and the stretches before a channel's first or after its last
    sample that other channels of the group cover. A stretch every channel shares is one
    annotation of all channels (empty ``ch_names``); others name their channels.

    Parameters
    ----------
    info : SessionInfo
        The recording.
    names : sequence of str
        Channels of one rate group.
    grid : Grid
        Their grid: onsets count from its first sample.

    Returns
    -------
    mne.Annotations
        One annotation per stretch: from its first missing sample to the first sample
        present again, so it covers exactly the samples without data.
    """
    holes: dict[tuple[int, int], list[str]] = {}
    for name in names:
        c = info.channel(name)
        stretches = [(g.start_uutc, g.end_uutc) for g in info.gaps(name)]
        if c.start_uutc > grid.start_uutc:
            stretches.append((grid.start_uutc, c.start_uutc))
        if c.end_uutc < grid.end_uutc:
            stretches.append((c.end_uutc, grid.end_uutc))
        for s in stretches:
            holes.setdefault(s, []).append(name)
    everyone = set(names)
    spans = sorted(holes)
    # on the grid: from the first sample missing to the first one present again (MEF times
    # are rounded to the microsecond; the samples are not)
    first = [(grid.index_at(a), grid.index_at(b)) for a, b in spans]
    return mne.Annotations(
        onset=[ka / grid.fs for ka, _ in first],
        duration=[(kb - ka) / grid.fs for ka, kb in first],
        description=[GAP] * len(spans),
        ch_names=[[] if set(holes[s]) == everyone else holes[s] for s in spans],
        orig_time=meas_date(grid.start_uutc),
    )


def events_to_annotations(
    events: pd.DataFrame, orig_time: dt.datetime | None = None, offset_s: float = 0.0
) -> mne.Annotations:
    """Events (BIDS ``events.tsv`` columns, the scroller's) as `mne.Annotations`.

    Parameters
    ----------
    events : pandas.DataFrame
        ``onset`` and ``duration`` in seconds (``n/a`` or missing durations are 0) and
        ``trial_type`` (else ``value``; neither: ``"n/a"``), as mne-bids reads them.
    orig_time : datetime, optional
        The ``meas_date`` of the Raw they are for (what onsets count from).
    offset_s : float
        Subtracted from every onset: where the Raw's first sample lies in the events' time
        (zero when both start at the recording start).

    Returns
    -------
    mne.Annotations
        One per row.

    Examples
    --------
    >>> import pandas as pd
    >>> events = pd.DataFrame({"onset": [12.5], "duration": [0.0], "trial_type": ["spike"]})
    >>> events_to_annotations(events).description.tolist()
    ['spike']
    """
    onset = pd.to_numeric(events["onset"], errors="coerce").to_numpy(np.float64) - offset_s
    if "duration" in events:
        duration = pd.to_numeric(events["duration"], errors="coerce").fillna(0.0)
    else:
        duration = pd.Series(0.0, index=events.index)
    for column in ("trial_type", "value"):
        if column in events:
            description = events[column].fillna("n/a").astype(str)
            break
    else:
        description = pd.Series("n/a", index=events.index)
    return mne.Annotations(
        onset=onset,
        duration=duration.to_numpy(np.float64),
        description=description.tolist(),
        orig_time=orig_time,
    )


def annotations_to_events(
    annotations: mne.Annotations,
    offset_s: float = 0.0,
    skip: Collection[str] = (GAP,),
) -> pd.DataFrame:
    """`mne.Annotations` as events (``onset``, ``duration``, ``trial_type``), sorted by onset.

    Parameters
    ----------
    annotations : mne.Annotations
        For instance ``raw.annotations`` (onsets from the Raw's first sample).
    offset_s : float
        Added to every onset: where the Raw's first sample lies in the events' time.
    skip : collection of str
        Descriptions left out (by default the gaps, which are no one's event).

    Returns
    -------
    pandas.DataFrame
        The columns of a BIDS ``events.tsv``, as the scroller keeps its events.

    Examples
    --------
    >>> import mne
    >>> annotations_to_events(mne.Annotations([3.0], [1.0], ["seizure"]))
       onset  duration trial_type
    0    3.0       1.0    seizure
    """
    keep = [i for i, d in enumerate(annotations.description) if d not in skip]
    out = pd.DataFrame(
        {
            "onset": np.asarray(annotations.onset, np.float64)[keep] + offset_s,
            "duration": np.asarray(annotations.duration, np.float64)[keep],
            "trial_type": pd.Series(
                np.asarray(annotations.description, dtype=object)[keep], dtype="object"
            ),
        }
    )
    return out.sort_values("onset", kind="stable").reset_index(drop=True)
