"""What a server is doing, as one JSON-able dict, and that dict as a small HTML table.

The dict is what ``/api/status`` returns; the status page and a notebook's server handle
render it with `render_html`, so the three always agree. Engine counters are taken
generically (whatever `Engine.stats()` holds ends up under ``"stats"``). Which recordings a
caller sees is its `Viewer`'s choice (`access`).
"""

from __future__ import annotations

import html
import os
import time
from typing import TYPE_CHECKING, Any

from ...formatting import hms
from ...version import __version__

if TYPE_CHECKING:  # a kernel renders a status page without loading the server
    from ..core.engine import Engine
    from .access import Viewer

_STARTED = time.time()


def status(engine: Engine, address: str, viewer: Viewer) -> dict[str, Any]:
    """The server's state, as ``/api/status`` returns it.

    Parameters
    ----------
    engine : Engine
        The server's engine.
    address : str
        The server's gRPC address.
    viewer : Viewer
        Who asks: which recordings are listed, and whether with their paths.

    Returns
    -------
    dict
        Version, pid, uptime, address, reader processes, cache, prefetch, clients, the
        recordings `viewer` may see, and every engine counter (``"stats"``).
    """
    show_paths = viewer.shows_paths
    stats = engine.stats()
    pool = engine.pool.stats()
    lookups = stats.get("hits", 0) + stats.get("misses", 0)
    recordings = []
    for rec in sorted(filter(viewer.sees, engine.recordings()), key=lambda r: r.path):
        info = rec.info
        recordings.append(
            {
                "path": rec.path if show_paths else None,
                "channels": len(info.channels),
                "rates_hz": [g.fs for g in info.rate_groups],
                "duration_s": info.duration_s,
                "encrypted": bool(info.encrypted),
                "clients": len(rec.clients),
            }
        )
    return {
        "version": __version__,
        "pid": os.getpid(),
        "uptime_s": round(time.time() - _STARTED, 1),
        "address": address,
        "paths_shown": show_paths,
        "workers": {
            "configured": engine.config.n_process_workers,
            "alive": stats.get("workers", 0),
            "pids": list(pool.get("pids", [])),
            "restarts": stats.get("worker_restarts", 0),
        },
        "cache": {
            "bytes": stats.get("cache_bytes", 0),
            "budget_bytes": stats.get("cache_budget_bytes", 0),
            "entries": stats.get("cache_entries", 0),
            "hit_rate": round(stats.get("hits", 0) / lookups, 4) if lookups else None,
        },
        "prefetch": {
            "depth": engine.config.n_prefetch,
            "started": stats.get("prefetches", 0),
            "hits": stats.get("prefetch_hits", 0),
        },
        "clients": stats.get("clients", 0),
        "recordings": recordings,
        "stats": stats,
    }


def render_html(s: dict[str, Any], title: str = "mef3lab server") -> str:
    """A compact HTML table of a status dict.

    Parameters
    ----------
    s : dict
        From `status`, or a client's reduced version of one (without ``"recordings"``).
    title : str, default "mef3lab server"
        The table's heading.

    Returns
    -------
    str
        An HTML fragment.
    """
    e = html.escape
    w, c, p = s.get("workers", {}), s.get("cache", {}), s.get("prefetch", {})
    rate = c.get("hit_rate")
    pids = ", ".join(str(x) for x in w.get("pids", [])) or "none (decoding in the server)"
    rows = [
        ("address", f"<code>{e(str(s.get('address', '?')))}</code>"),
        ("version", e(str(s.get("version", "?")))),
        (
            "reader processes",
            f"{w.get('alive', '?')} of {w.get('configured', '?')} alive "
            f"(pids {e(pids)}), {w.get('restarts', 0)} restarts",
        ),
        (
            "cache",
            f"{_mib(c.get('bytes', 0))} of {_mib(c.get('budget_bytes', 0))} in "
            f"{c.get('entries', 0)} segments, hit rate {'–' if rate is None else f'{rate:.0%}'}",
        ),
        (
            "prefetch",
            f"depth {p.get('depth', '?')}: {p.get('started', 0)} started, {p.get('hits', 0)} used",
        ),
        ("clients", str(s.get("clients", 0))),
    ]
    recs = s.get("recordings")
    if recs is None:  # a client's reduced status: counts only
        n = s.get("stats", {}).get("open_recordings", "?")
        recs, note = [], f"<p>{n} open (the server's own status page lists them)</p>"
    else:
        note = "<p>no recordings open</p>"
    head = "".join(
        f"<tr><th style='text-align:left'>{k}</th><td style='text-align:left'>{v}</td></tr>"
        for k, v in rows
    )
    if recs:
        body = "".join(
            f"<tr><td style='text-align:left'>{_where(r)}</td><td>{r['channels']}</td>"
            f"<td>{e(', '.join(f'{f:g}' for f in r['rates_hz']))} Hz</td>"
            f"<td>{hms(r['duration_s'])}</td>"
            f"<td>{'yes' if r['encrypted'] else 'no'}</td><td>{r['clients']}</td></tr>"
            for r in recs
        )
        table = (
            "<table><tr><th>recording</th><th>channels</th><th>rates</th><th>duration</th>"
            f"<th>encrypted</th><th>clients</th></tr>{body}</table>"
        )
    else:
        table = note
    return (
        f"<div class='mef3lab-status'><b>{e(title)}</b><table>{head}</table>"
        f"<b>open recordings</b>{table}</div>"
    )


def render_page(s: dict[str, Any], refresh_s: int = 5) -> str:
    """The status page: `render_html` in a document that reloads itself every `refresh_s` s."""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>mef3lab server</title>"
        f"<meta http-equiv='refresh' content='{refresh_s}'>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 10px}</style></head><body>"
        f"{render_html(s)}<p style='color:#888'>refreshes every {refresh_s} s; "
        "JSON: <a href='api/status'>api/status</a>, Prometheus: <a href='metrics'>metrics</a></p>"
        "</body></html>"
    )


def _where(r: dict[str, Any]) -> str:
    path = r.get("path")
    return f"<code>{html.escape(path)}</code>" if path else "<i>(path hidden)</i>"


def _mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"
