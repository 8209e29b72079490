"""Until the numba kernels are in (they load once reads pause), mef3io reads: same samples,
and the same errors for a damaged recording."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from mef3lab.errors import CorruptDataError
from mef3lab.readers import numba as numba_engine
from mef3lab.readers import open_reader, warm_up
from mef3lab.testing.damage import CASES, damaged_copy


def test_reads_before_the_kernels_are_loaded_are_the_same_samples(recording, monkeypatch):
    warm_up()
    with open_reader(recording) as r:
        grid = r.info.rate_groups[0].grid
        k0, k1 = 1000, grid.n_samples - 1000
        with_kernels = r.read_raw(None, k0, k1).counts, r.read_index(None, k0, k1, "float64")
        monkeypatch.setattr(numba_engine, "_kernels", None)  # as in the first second of a process
        without = r.read_raw(None, k0, k1).counts, r.read_index(None, k0, k1, "float64")
    for a, b in zip(with_kernels, without, strict=True):
        np.testing.assert_array_equal(a, b)


def _outcome(read):
    try:
        return read()
    except CorruptDataError as exc:
        return str(exc)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_damaged_recording_reads_alike_before_and_after_the_kernels_load(
    recording, tmp_path, monkeypatch, case
):
    """mef3io judges some damage otherwise: a read it finds damaged waits for the kernels."""
    warm_up()
    damaged = damaged_copy(recording, tmp_path / "damaged.mefd", case, "ch001")
    with open_reader(damaged) as r:
        names = list(r.info.names)
        n = r.info.rate_groups[0].grid.n_samples
        reads = [
            lambda: r.read_raw(names, 0, n).counts,
            lambda: r.read_index(names, 0, n, "float32"),
            lambda: r.read_index([names[0]], 0, n, "float64"),
        ]
        loaded = [_outcome(read) for read in reads]
        monkeypatch.setattr(numba_engine, "_kernels", None)  # as in the first second of a process
        loading = [_outcome(read) for read in reads]
    for a, b in zip(loaded, loading, strict=True):
        if isinstance(a, str):
            assert a == b
        else:
            np.testing.assert_array_equal(a, b)


#: A fresh process (no kernels yet): what an open, a small read, a pause and a large read do.
_FIRST_LOOK = """
import json, sys, time
from mef3lab.readers import numba as engine, open_reader
engine.kernels.cached = lambda: False  # as before this machine first compiled them
engine.KERNELS_FOR_SAMPLES = 100_000  # the recording's whole is larger, one second is not
seen = {}
with open_reader(sys.argv[1]) as r:
    seen["after_open"] = engine._kernels is not None
    n = r.info.rate_groups[0].grid.n_samples
    r.read_index(None, 0, 256)
    r.read_index(None, 256, 512)  # back to back: no pause yet
    seen["after_small_reads"] = engine._kernels is not None
    deadline = time.monotonic() + 60
    while engine._kernels is None and time.monotonic() < deadline:
        time.sleep(0.05)
    seen["after_a_pause"] = engine._kernels is not None
print(json.dumps(seen))
"""

_LARGE_FIRST = """
import json, sys
from mef3lab.readers import numba as engine, open_reader
engine.kernels.cached = lambda: False  # as before this machine first compiled them
engine.KERNELS_FOR_SAMPLES = 100_000
with open_reader(sys.argv[1]) as r:
    r.read_index(None, 0, r.info.rate_groups[0].grid.n_samples)
    print(json.dumps({"after_a_large_read": engine._kernels is not None}))
"""

_KEPT_BUSY = """
import json, sys, time
from mef3lab.readers import numba as engine, open_reader
engine.kernels.cached = lambda: False  # as before this machine first compiled them
engine.LOAD_WITHIN_S = 0.5
with open_reader(sys.argv[1]) as r:
    t0, k = time.monotonic(), 0
    while engine._kernels is None and time.monotonic() - t0 < 60:
        r.read_index(None, k, k + 256)  # reads that never pause
        k = (k + 256) % 100_000
    print(json.dumps({"loaded": engine._kernels is not None, "after_s": time.monotonic() - t0}))
"""

_MUCH_DECODED = """
import json, sys, time
from mef3lab.readers import numba as engine, open_reader
engine.kernels.cached = lambda: False  # as before this machine first compiled them
engine.IDLE_BEFORE_LOADING_S = engine.LOAD_WITHIN_S = 600.0  # only the samples decoded count
engine.LOAD_AFTER_SAMPLES = 10_000
with open_reader(sys.argv[1]) as r:
    t0, k = time.monotonic(), 0
    while engine._kernels is None and time.monotonic() - t0 < 60:
        r.read_index(None, k, k + 256)  # 8 channels: 2,048 samples a read, never a pause
        k = (k + 256) % 100_000
    print(json.dumps({"loaded": engine._kernels is not None, "after_s": time.monotonic() - t0}))
"""

_LOADED_AT_START = """
import json, sys, threading
from mef3lab.readers import numba as engine, open_reader
engine.loaded_at_start()
threading.Thread(target=engine._load_kernels).start()  # as a reader process starts
with open_reader(sys.argv[1]) as r:
    r.read_index(None, 0, 256)
    print(json.dumps({"after_a_small_read": engine._kernels is not None}))
"""


def _fresh(script: str, path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_kernels_load_once_reads_pause_not_beside_an_opening(recording):
    """An opening and the reads right after it are left the CPU (mef3io decodes them); the
    kernels load in the first pause."""
    assert _fresh(_FIRST_LOOK, recording) == {
        "after_open": False,
        "after_small_reads": False,
        "after_a_pause": True,
    }


def test_a_large_read_loads_the_kernels_first(recording):
    assert _fresh(_LARGE_FIRST, recording) == {"after_a_large_read": True}


def test_reads_that_never_pause_get_the_kernels_soon_after_all(recording):
    got = _fresh(_KEPT_BUSY, recording)
    assert got["loaded"] and got["after_s"] >= 0.4


def test_the_kernels_load_at_once_when_much_has_been_decoded_without_them(recording):
    got = _fresh(_MUCH_DECODED, recording)
    assert got["loaded"] and got["after_s"] < 30


def test_a_process_loading_them_as_it_starts_reads_with_them(recording):
    """A reader process's reads wait for the kernels it is loading, not decoded by mef3io."""
    assert _fresh(_LOADED_AT_START, recording) == {"after_a_small_read": True}


_STRIDED = """
import json, sys
import numpy as np
from mef3lab.readers import open_reader, warm_up
warm_up()
with open_reader(sys.argv[1]) as r:
    names = list(r.info.names)
    block = np.full((len(names), 4096), 7, np.int32)  # rows with room after them
    r.read_raw(names, 0, 1000, out=block[:, :1000])
    alone = r.read_raw(names, 0, 1000).counts
print(json.dumps({"same": bool(np.array_equal(block[:, :1000], alone)),
                  "room_untouched": bool((block[:, 1000:] == 7).all())}))
"""


def test_rows_with_room_after_them_are_decoded_into_their_own_row_only(recording):
    """A reader process decodes into rows on pages of their own (strided)."""
    assert _fresh(_STRIDED, recording) == {"same": True, "room_untouched": True}


_READER_PROCESS_IMPORTS = """
import json, sys
from multiprocessing import Pipe
from mef3lab.server.pool.worker import worker_main
parent, child = Pipe()
child.send(("stop",))
worker_main(parent, -1, 4, {})  # stops at once, as the first message says
print(json.dumps({"mef3io": "mef3io" in sys.modules}))
"""


def test_a_reader_process_imports_mef3io_before_it_is_ready(recording):
    """Openings parse with mef3io: a reader process's first opening must not import it."""
    assert _fresh(_READER_PROCESS_IMPORTS, recording) == {"mef3io": True}
