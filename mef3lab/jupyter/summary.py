"""The compact HTML summary a recording's ``.mef3`` accessor shows in a notebook."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from ..formatting import count, hms, iso

if TYPE_CHECKING:
    import pandas as pd

    from ..accessor import _Mef3Accessor


def recording_html(acc: "_Mef3Accessor") -> str:
    """Channels and rates, duration as clock time, gaps, annotations, encryption, where it is read."""
    info = acc.info
    e = html.escape
    rates = "; ".join(f"{count(len(g.channels), 'channel')} at {g.fs:g} Hz" for g in info.rate_groups)
    gaps = acc.gaps
    ann = acc.annotations
    where = acc.spec.address or "this process"
    rows = [
        ("recording", f"<code>{e(acc.spec.path)}</code>"),
        ("read by", e(where)),
        ("channels", e(rates)),
        ("time", f"{e(iso(info.start_uutc))} + {hms(info.duration_s)}"),
        ("gaps", _gaps(gaps, len(info.channels))),
        ("annotations", str(len(ann)) + (f" ({e(', '.join(sorted(set(ann['type']))))})" if len(ann) else "")),
        ("encrypted", "yes" if info.encrypted else "no"),
    ]
    body = "".join(f"<tr><th style='text-align:left'>{k}</th><td style='text-align:left'>{v}</td></tr>"
                   for k, v in rows)
    return f"<div class='mef3lab-recording'><table>{body}</table></div>"


def _gaps(gaps: "pd.DataFrame", n_channels: int) -> str:
    if not len(gaps):
        return "none"
    per = gaps.groupby("channel")["duration_s"].agg(["size", "sum"])
    if len(per) == n_channels and per["size"].nunique() == 1 and per["sum"].round(6).nunique() == 1:
        return f"{per['size'].iloc[0]} per channel, {per['sum'].iloc[0]:.3f} s missing"
    return f"{len(gaps)} in {len(per)} channels, {gaps['duration_s'].sum():.3f} s missing"
