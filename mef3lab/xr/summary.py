"""The compact HTML summary a recording's ``.mef3`` accessor shows in a notebook."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Protocol

from ..formatting import count, hms, iso

if TYPE_CHECKING:
    import pandas as pd

    from ..model import SessionInfo
    from ..sources import SourceSpec


class Summarized(Protocol):
    """What the summary needs of a recording (the ``.mef3`` accessor is one)."""

    @property
    def spec(self) -> SourceSpec:
        """How the recording is opened: its path and the server, if any."""

    @property
    def info(self) -> SessionInfo:
        """The recording's description."""

    @property
    def gaps(self) -> pd.DataFrame:
        """One row per recording gap (``duration_s`` among the columns)."""

    @property
    def annotations(self) -> pd.DataFrame:
        """One row per annotation (``type`` among the columns)."""


def recording_html(acc: Summarized) -> str:
    """A recording's summary as an HTML table, for a notebook.

    Channels and rates, start and duration as clock time, gaps, annotations, encryption,
    and where it is read.

    Parameters
    ----------
    acc : Summarized
        The recording (a ``.mef3`` accessor).

    Returns
    -------
    str
        One ``<div class='mef3lab-recording'>`` holding the table.
    """
    info = acc.info
    e = html.escape
    rates = "; ".join(
        f"{count(len(g.channels), 'channel')} at {g.fs:g} Hz" for g in info.rate_groups
    )
    gaps = acc.gaps
    ann = acc.annotations
    where = acc.spec.address or "this process"
    rows = [
        ("recording", f"<code>{e(acc.spec.path)}</code>"),
        ("read by", e(where)),
        ("channels", e(rates)),
        ("time", f"{e(iso(info.start_uutc))} + {hms(info.duration_s)}"),
        ("gaps", _gaps(gaps, len(info.channels))),
        (
            "annotations",
            str(len(ann)) + (f" ({e(', '.join(sorted(set(ann['type']))))})" if len(ann) else ""),
        ),
        ("encrypted", "yes" if info.encrypted else "no"),
    ]
    body = "".join(
        f"<tr><th style='text-align:left'>{k}</th><td style='text-align:left'>{v}</td></tr>"
        for k, v in rows
    )
    return f"<div class='mef3lab-recording'><table>{body}</table></div>"


def _gaps(gaps: pd.DataFrame, n_channels: int) -> str:
    if not len(gaps):
        return "none"
    per = gaps.groupby("channel")["duration_s"].agg(["size", "sum"])
    if len(per) == n_channels and per["size"].nunique() == 1 and per["sum"].round(6).nunique() == 1:
        return f"{per['size'].iloc[0]} per channel, {per['sum'].iloc[0]:.3f} s missing"
    return f"{len(gaps)} in {len(per)} channels, {gaps['duration_s'].sum():.3f} s missing"
