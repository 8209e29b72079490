"""`mef3lab walkthrough`: a generated recording, a running server, and one read through it.

What a newcomer should see within a minute: the recording described, a cold segment
decoded by a reader process, the same segment again from the cache, the next one
already prefetched, and the two lines that open it as xarray in a notebook.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from ..client import Mef3Client
from .synth import synthesize

#: The demo recording: an hour of 64-channel scalp-EEG-like data, with gaps and annotations.
DEMO = dict(channels=64, fs=256.0, seconds=3600.0, precision=2, gaps=4, seed=7)
#: The folder of the demo recording (`mef3lab demo` sets it for the notebooks it opens).
DEMO_DATA_ENV = "MEF3LAB_DEMO_DATA"


def demo_recording(folder: Path | str | None = None) -> Path:
    """The demo recording, generated on first use.

    Parameters
    ----------
    folder : pathlib.Path or str, optional
        Where it is (default: ``$MEF3LAB_DEMO_DATA``, else ``./demo-data``).

    Returns
    -------
    pathlib.Path
        The session folder, ``<folder>/demo.mefd``.
    """
    path = Path(folder or os.environ.get(DEMO_DATA_ENV) or "demo-data") / "demo.mefd"
    if not (path / ".complete").exists():
        print(
            f"generating a demo recording: {DEMO['channels']} channels, {DEMO['fs']:g} Hz, "
            f"{DEMO['seconds'] / 3600:g} h -> {path}",
            flush=True,
        )
        synthesize(path, overwrite=True, **DEMO)
        (path / ".complete").touch()
    return path


def walkthrough(
    address: str, path: str, password: str | None = None, out: Callable[[str], None] = print
) -> None:
    """Read a recording through a server cold, warm and prefetched, and say what happened.

    Parameters
    ----------
    address : str
        The server's address.
    path : str
        The recording, as the server sees it.
    password : str, optional
        Its password, if it is encrypted.
    out : callable
        Called with each line to show.
    """
    with Mef3Client(address) as client:
        info = client.open_file(path, password)
        out(f"server       {address}")
        out(f"recording    {path}")
        rates = ", ".join(f"{g.fs:g} Hz" for g in info.rate_groups)
        out(f"channels     {len(info.channels)} at {rates}")
        out(
            f"duration     {info.duration_s / 60:.1f} min, {len(info.annotations)} annotations, "
            f"{sum(len(info.gaps(n)) for n in info.names[:1])} gaps per channel"
        )
        group = info.rate_groups[0]
        for label in (
            "segment 0 (cold: decoded)",
            "segment 0 (warm: cache)",
            "segment 1 (prefetched)",
        ):
            index = 1 if label.startswith("segment 1") else 0
            t = time.perf_counter()
            data = client.get_signal_segment(path, index, channels=list(group.channels))
            out(
                f"{label:28s} {data.shape[0]} ch x {data.shape[1]} samples in "
                f"{(time.perf_counter() - t) * 1e3:7.1f} ms"
            )
            if "cold" in label:
                time.sleep(1.0)  # the user looks at the data; the server prefetches meanwhile
        s = client.stats()
        out(
            f"cache        {s['cache_bytes'] / 2**20:.0f} MiB in {s['cache_entries']} "
            f"channel-segments, {s['hits']} hits, {s['misses']} misses, "
            f"{s['prefetches']} prefetches"
        )
        out(
            "\nIn a notebook:\n"
            "    import mef3lab\n"
            f"    rec = mef3lab.open_recording({path!r}, address={address!r})\n"
            "    rec.signal.sel(time=slice(60, 70)).plot.line(x='time', add_legend=False)"
        )
