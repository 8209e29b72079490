"""Recordings from a second writer (meflib through pymef's low-level API) and odd sessions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mef3lab.readers import open_reader

ENGINES = ("pymef", "mef3io", "numba")
START = 1_705_305_600_000_000


def write_with_pymef(path, channels: dict, factor: float = 0.01, units: str = "uV") -> Path:
    """Write int32 counts with meflib (pymef's writer), the way mef_tools drives it.

    `channels`: ``{name: (counts int32, valid bool mask, fs, start_uutc)}``. Each run of
    valid samples becomes blocks of its own (a real discontinuity), with its start time
    truncated to the microsecond as mef_tools does: a file unlike mef3io's in its details.
    """
    from pymef.mef_session import MefSession

    s = MefSession(str(path), "", read_metadata=False, new_session=True)
    for name, (counts, valid, fs, start) in channels.items():
        edges = np.flatnonzero(np.diff(np.concatenate([[0], np.asarray(valid, np.int8), [0]])))
        runs = list(zip(edges[::2], edges[1::2], strict=True))

        def t(k, start=start, fs=fs):
            return int(start + k * 1e6 / fs)

        s2 = dict(
            channel_description=name.encode(),
            session_description=b"second writer",
            recording_duration=int(len(counts) / fs * 1e6),
            sampling_frequency=fs,
            units_conversion_factor=factor,
            units_description=units.encode(),
            start_sample=0,
            number_of_samples=0,
            number_of_blocks=0,
            acquisition_channel_number=1,
        )
        block = int(fs * 10)
        (a, b), rest = runs[0], runs[1:]
        s.write_mef_ts_segment_metadata(
            name, 0, "", "", t(a), t(b), s2, dict(recording_time_offset=0, GMT_offset=0)
        )
        s.write_mef_ts_segment_data(
            name, 0, "", "", block, np.ascontiguousarray(counts[a:b], np.int32)
        )
        for a, b in rest:
            s.append_mef_ts_segment_data(
                name,
                0,
                "",
                "",
                t(a),
                t(b),
                block,
                np.ascontiguousarray(counts[a:b], np.int32),
                True,
            )
    return Path(path)


@pytest.fixture(scope="session")
def pymef_written():
    """(counts, valid) per channel of `pymef_recording`: 3 ch x 256 Hz x 2 min, gaps of 100, 3 and
    2000 samples.
    """
    rng = np.random.default_rng(7)
    n = 256 * 120
    out = {}
    for j, name in enumerate(("a", "b", "c")):
        counts = rng.integers(-9000, 9000, n).astype(np.int32)
        valid = np.ones(n, bool)
        valid[1000 + j : 1100] = False
        valid[5000:5003] = False
        valid[20000:22000] = False
        out[name] = (counts, valid)
    return out


@pytest.fixture(scope="session")
def depth_recording(tmp_path_factory) -> Path:
    """3 contacts (LA1-LA3) x 60 s at 2 kHz by meflib's writer: 10-s blocks, a gap at 35 s."""
    rng = np.random.default_rng(11)
    n = 120_000
    channels = {}
    for name in ("LA1", "LA2", "LA3"):
        walk = np.cumsum(rng.integers(-300, 300, n)).astype(np.int32)  # key samples, small steps
        valid = np.ones(n, bool)
        valid[70_000:71_000] = False  # blocks of their own after it
        channels[name] = (walk, valid, 2000.0, START)
    return write_with_pymef(tmp_path_factory.mktemp("depth") / "depth.mefd", channels)


@pytest.fixture(scope="session")
def pymef_recording(tmp_path_factory, pymef_written) -> Path:
    """A session written by meflib (pymef's low-level writer), factor 0.01, truncated block
    times.
    """
    path = tmp_path_factory.mktemp("second_writer") / "pymef.mefd"
    return write_with_pymef(path, {k: (c, v, 256.0, START) for k, (c, v) in pymef_written.items()})


@pytest.fixture(scope="session")
def rate_change_recording(tmp_path_factory) -> Path:
    """'changes': 256 Hz in segment 0, 512 Hz in segment 1; 'steady': 256 Hz; 'segmented': 256 Hz
    in three segments (the second seamless, the third after a 5 s gap)."""
    import mef3io

    path = tmp_path_factory.mktemp("rate_change") / "rate_change.mefd"
    x = np.round(np.random.default_rng(3).normal(0, 30, 256 * 20), 2)
    with mef3io.Writer(str(path), overwrite=True, units="uV") as w:
        w.write("changes", x, START, 256.0, precision=2)
        w.write("steady", x, START, 256.0, precision=2)
        w.write("changes", x, START + 30_000_000, 512.0, precision=2, new_segment=True)
        w.write("segmented", x[:1000], START, 256.0, precision=2)
        w.write(
            "segmented",
            x[1000:3000],
            START + round(1000 * 1e6 / 256),
            256.0,
            precision=2,
            new_segment=True,
        )
        w.write(
            "segmented",
            x[3000:],
            START + 5_000_000 + round(3000 * 1e6 / 256),
            256.0,
            precision=2,
            new_segment=True,
        )
    return path


@pytest.fixture(scope="module", params=ENGINES)
def engine(request) -> str:
    """Each test using it runs once per engine."""
    return request.param


@pytest.fixture
def open_all():
    """`open_all(path, password=None)` -> a reader per engine (pymef first), closed after the
    test.
    """
    opened = []

    def every(path, password=None):
        readers = tuple(open_reader(path, password, engine=e) for e in ENGINES)
        opened.extend(readers)
        return readers

    yield every
    for r in opened:
        r.close()
