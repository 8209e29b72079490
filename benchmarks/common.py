"""What every table shares: the run's parameters, servers, the direct baseline and the data
check.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mef3lab.client import Mef3Client
from mef3lab.readers import open_reader
from mef3lab.server.process import ServerProcess

from .data import (
    DAY,
    DAY_QUICK,
    FIRST_LOOK,
    FIRST_LOOK_SMOKE,
    FULL,
    MIXED,
    QUICK,
    WIDE,
    WIDE_QUICK,
    FirstLookSpec,
    RecordingSpec,
)


@dataclass(frozen=True)
class Params:
    """Everything a run depends on; `FULL_RUN` is the seed's setting, the others are smaller."""

    recording: RecordingSpec = FULL
    segment_s: int = 300  # the access pattern's segment (5 min)
    n_segments: int = 10  # segments read in sequence per client
    work_s: float = 0.3  # "client work" after each segment
    n_prefetch: int = 3
    workers: int = 2  # reader processes of the server
    offsets: tuple[int, ...] = (0, 8, 14)  # first segment of each concurrent client
    hit_reads: int = 10  # reads of one cached segment
    window_s: float = 10.0  # xarray: the window selected
    n_windows: int = 50  # xarray: random windows
    load_clients: int = 50  # table E: concurrent clients...
    load_s: float = 60.0  # ...for this long
    mixed_recording: RecordingSpec = MIXED  # table G: one recording many clients read subsets of
    mixed_clients: int = 30  # table G: concurrent clients
    mixed_s: float = 15.0  # table G: how long they read
    repeat: int = 1  # each measurement this many times, the best kept
    seed: int = 0
    flips: int = 100  # scroller: page flips timed per row
    wide: RecordingSpec = WIDE  # scroller: the recording of its wide rows (30-s pages)
    wide_flips: int = 20
    day: RecordingSpec = DAY  # clinical review (table H): a 24-h recording
    first_look: tuple[FirstLookSpec, ...] = FIRST_LOOK  # table J, beside MNE
    soak_clients: int = 50  # table K: well-behaved clients...
    soak_s: float = 300.0  # ...while attackers take turns for this long...
    soak_quiet_s: float = 60.0  # ...after the same load alone for this long
    attackers: int = 4  # table K: attackers at once
    turn_s: float = 5.0  # table K: how long one attack lasts
    hub_clients: int = 50  # table L: clients, each a hub user of its own...
    hub_s: float = 60.0  # ...making small reads for this long

    def with_repeat(self, n: int) -> Params:
        return replace(self, repeat=max(1, n))


FULL_RUN = Params()
QUICK_RUN = Params(
    recording=QUICK,
    segment_s=60,
    offsets=(0, 5, 10),
    load_s=15.0,
    flips=30,
    wide=WIDE_QUICK,
    wide_flips=6,
    mixed_s=5.0,
    day=DAY_QUICK,
    soak_s=30.0,
    soak_quiet_s=10.0,
    hub_s=15.0,
)
#: A few seconds end to end (the smoke test): 4 segments of 30 s, no client work.
SMOKE_RUN = Params(
    recording=RecordingSpec("smoke-4ch-2min", channels=4, fs=256.0, seconds=120.0, gaps=1),
    segment_s=30,
    n_segments=2,
    work_s=0.0,
    offsets=(0, 1, 2),
    hit_reads=2,
    window_s=5.0,
    n_windows=3,
    load_clients=4,
    load_s=2.0,
    flips=3,
    wide=RecordingSpec("smoke-8ch-2kHz-2min", channels=8, fs=2048.0, seconds=120.0, gaps=1),
    wide_flips=2,
    mixed_recording=RecordingSpec(
        "smoke-mixed-4ch-10min", channels=4, fs=256.0, seconds=600.0, gaps=1
    ),
    mixed_clients=3,
    mixed_s=1.0,
    first_look=FIRST_LOOK_SMOKE,
    soak_clients=4,
    soak_s=4.0,
    soak_quiet_s=2.0,
    turn_s=1.0,
    hub_clients=3,
    hub_s=2.0,
)


#: Seconds a server's reader processes are given, once started, to load their kernels.
WARM_S = 1.0


@contextlib.contextmanager
def server(params: Params, **overrides) -> Iterator[ServerProcess]:
    """A fresh server process (nothing cached), stopped on leaving, whatever happens.

    Warm: its reader processes started, and `WARM_S` later (their kernels loaded), as a
    server is by the time anyone reads from it. What a server's first second costs is
    table J's.
    """
    config = dict(
        n_prefetch=params.n_prefetch,
        n_process_workers=params.workers,
        segment_seconds=float(params.segment_s),
        log_level="WARNING",
    )
    config.update(overrides)
    with ServerProcess(**config) as proc:
        with Mef3Client(proc.address, timeout=60) as c:
            deadline = time.monotonic() + 60
            while (
                c.stats().get("workers", 0) < config["n_process_workers"]
                and time.monotonic() < deadline
            ):
                time.sleep(0.1)
        time.sleep(WARM_S)
        yield proc


class Direct:
    """The baseline: pymef (what the lab reads its files with) in this process, on the server's
    segment grid.
    """

    def __init__(self, path: Path, params: Params, engine: str = "pymef", threads: int = 0) -> None:
        self.reader = open_reader(path, engine=engine, threads=threads)
        self.names = list(self.reader.info.names)
        self.grid = self.reader.info.group_of(self.names).grid
        self.length = int(round(params.segment_s * self.grid.fs))
        self.n_total = -(-self.grid.n_samples // self.length)

    def bounds(self, i: int) -> tuple[int, int]:
        """Grid samples [k0, k1) of segment i (as the server cuts it)."""
        return i * self.length, min((i + 1) * self.length, self.grid.n_samples)

    def segment(self, i: int, dtype: str = "float32") -> np.ndarray:
        """Segment i of all channels, with `Reader.read` over the segment's time window."""
        k0, k1 = self.bounds(i)
        return self.reader.read(self.names, self.grid.uutc_of(k0), self.grid.uutc_of(k1), dtype)

    def close(self) -> None:
        self.reader.close()

    def __enter__(self) -> Direct:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sequence(read, indices, work_s: float) -> tuple[float, dict[int, np.ndarray]]:
    """`read(i)` for each index, `work_s` of client work after each.

    Returns (seconds, {first index: its array, last index: its array}).
    """
    keep = {indices[0], indices[-1]}
    kept = {}
    t = time.perf_counter()
    for i in indices:
        data = read(i)
        if i in keep:
            kept[i] = data
        if work_s:
            time.sleep(work_s)
    return time.perf_counter() - t, kept


def check_same(what: str, got: np.ndarray, want: np.ndarray) -> None:
    """Refuse a fast-but-wrong path: the samples must equal the direct read's, NaN for NaN."""
    if (
        got.shape != want.shape
        or got.dtype != want.dtype
        or not np.array_equal(got, want, equal_nan=True)
    ):
        raise AssertionError(
            f"{what}: the data differ from the direct read "
            f"(got {got.dtype}{got.shape}, direct {want.dtype}{want.shape})"
        )
