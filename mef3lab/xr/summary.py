"""The compact HTML summary a recording's ``.mef3`` accessor shows in a notebook."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Protocol

from ..formatting import count, hms
from ..model import ORDER_ACQUISITION, ORDER_NATURAL

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

    Channels, their order and units, rates, start (the recording's local time) and
    duration, gaps, annotations, encryption, what to know about its times, and where it is
    read.

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
        ("order", ORDER_TEXT[info.order]),
        ("units", e(units_text(info))),
        ("time", f"{e(info.clock(info.start_uutc))} + {hms(info.duration_s)}"),
        ("gaps", _gaps(gaps, len(info.channels))),
        (
            "annotations",
            str(len(ann)) + (f" ({e(', '.join(sorted(set(ann['type']))))})" if len(ann) else ""),
        ),
        ("encrypted", "yes" if info.encrypted else "no"),
        *(("note", e(n)) for n in info.notes),
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
    return (
        f"{count(len(gaps), 'gap')} in {count(len(per), 'channel')}, "
        f"{gaps['duration_s'].sum():.3f} s missing"
    )


#: How each channel order is said.
ORDER_TEXT = {
    ORDER_ACQUISITION: "as acquired (acquisition channel numbers)",
    ORDER_NATURAL: "by name, contacts by number (no distinct acquisition numbers)",
}


def units_text(info: SessionInfo) -> str:
    """The recording's units, canonical, with the file's spellings where they differ.

    Parameters
    ----------
    info : SessionInfo
        The recording's description.

    Returns
    -------
    str
        E.g. ``"µV (stored as b'uV')"``; ``"?"`` for channels without units.
    """
    shown = sorted({c.units or "?" for c in info.channels})
    stored = sorted({c.units_text for c in info.channels if c.units_text not in shown})
    return ", ".join(shown) + (f" (stored as {', '.join(stored)})" if stored else "")
