"""Shared fixtures: small real recordings written once per test session by `synthesize`.

Each recording fixture is a `pathlib.Path` to a .mefd folder; its `*_plan` twin is the
`SynthPlan` it was written from (`plan.signal(i)` = channel i exactly as written, NaN in
gaps), so any layer can compare what it serves with what is on disk, sample for sample.
"""

from __future__ import annotations

from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
from _processes import ProcessTag

from mef3lab.readers import warm_up
from mef3lab.testing.synth import plan, synthesize

#: 8 ch x 256 Hz x 10 min; gaps of 0.4 s, 3 s, 20 s and 0.02 s (5 samples); annotations.
RECORDING = dict(
    channels=8,
    fs=256.0,
    seconds=600.0,
    precision=2,
    gaps=[(61.2, 0.4), (150.0, 3.0), (333.3, 20.0), (480.01, 0.02)],
    seed=0,
)
#: 6 ch alternating 1024 Hz / 256 Hz x 2 min, staggered starts and ends (2.5 s steps), 2 gaps.
MIXED_RATE = dict(
    channels=6,
    fs=[1024.0, 256.0],
    seconds=120.0,
    precision=1,
    gaps=[(40.0, 0.3), (70.0, 5.0)],
    stagger_s=2.5,
    seed=1,
)
#: 3 ch x 256 Hz x 1 min, one 0.5 s gap, encrypted with PASSWORDS.
ENCRYPTED = dict(channels=3, fs=256.0, seconds=60.0, precision=2, gaps=[(20.0, 0.5)], seed=2)

Passwords = namedtuple("Passwords", "level1 level2")
PASSWORDS = Passwords(level1="tech-only-1", level2="subject-2")


@pytest.fixture(scope="session", autouse=True)
def decoder_kernels_loaded() -> None:
    """The test process reads as a process past its first look does: with the RED kernels.

    A process loads them only once its reads pause (`mef3lab.readers.numba`), so without
    this a test's reads would be decoded by mef3io or the kernels depending on what ran
    before it. The loading itself is tested in fresh processes
    (tests/readers/test_kernels_loading.py).
    """
    warm_up()


@pytest.fixture(scope="session")
def recordings_dir(tmp_path_factory) -> Path:
    """A session-wide temporary folder holding the shared recordings."""
    return tmp_path_factory.mktemp("recordings")


@pytest.fixture(scope="session")
def recording(recordings_dir) -> Path:
    """Plain recording (RECORDING): 8 ch, 256 Hz, 10 min, 4 gaps (one of 5 samples), annotations."""
    return synthesize(recordings_dir / "plain.mefd", **RECORDING)


@pytest.fixture(scope="session")
def recording_plan():
    """The SynthPlan the `recording` fixture was written from."""
    return plan(**RECORDING)


@pytest.fixture(scope="session")
def mixed_rate_recording(recordings_dir) -> Path:
    """Two rate groups (1024 Hz: ch000/2/4, 256 Hz: ch001/3/5), channels starting and ending
    apart.
    """
    return synthesize(recordings_dir / "mixed.mefd", **MIXED_RATE)


@pytest.fixture(scope="session")
def mixed_rate_plan():
    """The SynthPlan the `mixed_rate_recording` fixture was written from."""
    return plan(**MIXED_RATE)


@pytest.fixture(scope="session")
def passwords() -> Passwords:
    """The level-1 and level-2 passwords of `encrypted_recording`."""
    return PASSWORDS


@pytest.fixture(scope="session")
def encrypted_recording(recordings_dir) -> Path:
    """Encrypted recording (ENCRYPTED) with PASSWORDS.level1 / PASSWORDS.level2."""
    return synthesize(
        recordings_dir / "encrypted.mefd",
        **ENCRYPTED,
        password1=PASSWORDS.level1,
        password2=PASSWORDS.level2,
    )


@pytest.fixture(scope="session")
def encrypted_plan():
    """The SynthPlan the `encrypted_recording` fixture was written from."""
    return plan(**ENCRYPTED)


@pytest.fixture(scope="session")
def direct_read():
    """`direct_read(path, channels, t0, t1, password=None, dtype="float32")`: mef3io alone, no
    mef3lab.

    A reference independent of mef3lab's readers: channels of one rate, window [t0, t1) µUTC,
    shape (n_channels, n), NaN in gaps.
    """
    import mef3io

    def read(path, channels, t0, t1, password=None, dtype="float32") -> np.ndarray:
        names = [channels] if isinstance(channels, str) else list(channels)
        with mef3io.Reader(str(path), password or "") as r:
            return np.atleast_2d(r.read(names, int(t0), int(t1), dtype=dtype))

    return read


@pytest.fixture(scope="session")
def expected_read():
    """`expected_read(plan, names, grid, k0, k1, dtype="float32")`: what reading samples [k0, k1)
    of rate-group `grid` must return for channels `names` of `plan` (NaN outside and in gaps)."""

    def expected(plan_, names, grid, k0: int, k1: int, dtype="float32") -> np.ndarray:
        out = np.full((len(names), k1 - k0), np.nan, dtype=np.float64)
        for row, name in enumerate(names):
            i = plan_.index(name)
            off = grid.index_at(plan_.starts_uutc[i])  # channel sample 0 on the group grid
            sig = plan_.signal(i)
            a, b = max(k0, off), min(k1, off + sig.size)
            if b > a:
                out[row, a - k0 : b - k0] = sig[a - off : b - off]
        return out.astype(dtype)

    return expected


@pytest.fixture
def process_tag(monkeypatch) -> ProcessTag:
    """A `ProcessTag` set in this test's environment (kernels, servers and Jupyter inherit it)."""
    import uuid

    tag = ProcessTag(uuid.uuid4().hex)
    monkeypatch.setenv(ProcessTag.VAR, tag.value)
    return tag


#: `factor_change_recording`: channel 'gain' stores each MEF segment with its own conversion
#: factor: (first channel sample, samples, factor, start offset in µs) per segment; 'steady' one.
FACTOR_SEGMENTS = (
    (0, 10_240, 0.5, 0),
    (10_240, 10_240, 0.1, 40_000_000),
    (20_480, 9_728, 0.25, 82_000_000),
)
FACTOR_STEADY = 0.2


@pytest.fixture(scope="session")
def factor_change_recording(recordings_dir) -> Path:
    """256 Hz, 2 min: 'gain' in three MEF segments of factors 0.5, 0.1 (seamless, at 40 s) and
    0.25 (after a 2 s gap), as a gain change mid-recording leaves them; 'steady' one factor."""
    import mef3io

    path = recordings_dir / "factor_change.mefd"
    start = 1_705_305_600_000_000
    rng = np.random.default_rng(11)
    with mef3io.Writer(str(path), overwrite=True, units="uV") as w:
        for i, (_, n, factor, offset) in enumerate(FACTOR_SEGMENTS):
            w.write_int32(
                "gain",
                rng.integers(-4000, 4000, n).astype(np.int32),
                factor,
                start + offset,
                256.0,
                new_segment=i > 0,
            )
        w.write_int32(
            "steady",
            rng.integers(-4000, 4000, 30_720).astype(np.int32),
            FACTOR_STEADY,
            start,
            256.0,
        )
    return path
