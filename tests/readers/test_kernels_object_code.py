"""The RED kernel's object code, kept once numba compiled it, and loaded without numba.

A fresh process that finds it decodes with the same kernel at once, without importing numba;
object code that is damaged, cut short or another CPU's is never loaded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from mef3lab.readers import kernels

_FRESH = """
import json, sys, time
import numpy as np
import mef3io
from mef3lab.readers import numba as engine, open_reader
t0 = time.perf_counter()
with open_reader(sys.argv[1]) as r:
    names = [n for n in r.info.names if n in r.decoded_here]
    n = r.info.rate_groups[0].grid.n_samples
    got = r.read_raw(names, 0, n).counts  # the first read, of all the recording
    first_read = "kernel" if engine._kernels is not None else "mef3io"
    engine._load_kernels()  # (in a process without kept object code: at its first pause)
    again = r.read_raw(names, 0, n).counts
    origin = engine._kernels.origin
with mef3io.Reader(sys.argv[1]) as m:
    want = np.stack([m.read_raw(c)["samples"] for c in names])
print(json.dumps({"first_read": first_read, "origin": origin, "numba": "numba" in sys.modules,
                  "channels": names,
                  "same": bool(np.array_equal(got, want) and np.array_equal(again, want))}))
"""


def _fresh(path, env=None) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _FRESH, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def kept_file():
    """The object code this test process's kernels keep (compiled here, or loaded)."""
    kernels.load()
    found = [f for d in kernels._directories() for f in d.glob(f"red-{kernels._source_key()}-*.o")]
    assert found, "loading the kernels kept no object code"
    return found[0]


def test_a_fresh_process_decodes_with_the_kept_kernel_and_never_imports_numba(
    factor_change_recording, kept_file
):
    """A recording mef3io wrote: its channel of one factor is decoded by the kernel."""
    got = _fresh(factor_change_recording)
    assert got == {
        "first_read": "kernel",
        "origin": "object code",
        "numba": False,
        "channels": ["steady"],
        "same": True,
    }


def test_the_first_process_compiles_with_numba_and_keeps_it_for_the_next(
    factor_change_recording, tmp_path
):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    first = _fresh(factor_change_recording, env)
    assert first["first_read"] == "mef3io" and first["origin"] == "numba" and first["same"]
    assert len(list((tmp_path / "mef3lab").glob("red-*.o"))) == 1
    second = _fresh(factor_change_recording, env)
    assert second == {**first, "first_read": "kernel", "origin": "object code", "numba": False}


def _damaged(kept: bytes, how: str) -> bytes:
    head, code = kept.split(b"\n", 1)
    if how == "a byte of its code flipped":
        code = bytearray(code)
        code[len(code) // 2] ^= 0xFF
        return head + b"\n" + bytes(code)
    if how == "cut short":
        return kept[: len(kept) - 1000]
    if how == "another CPU's":
        header = json.loads(head)
        header["machine"] = "another " + header["machine"]
        return json.dumps(header).encode() + b"\n" + code
    assert how == "not JSON ahead of the code"
    return b"{" + kept


@pytest.mark.parametrize(
    "how",
    ["a byte of its code flipped", "cut short", "another CPU's", "not JSON ahead of the code"],
)
def test_object_code_that_is_not_whole_or_not_this_machines_is_not_loaded(
    kept_file, tmp_path, monkeypatch, how
):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    (tmp_path / "mef3lab").mkdir()
    target = tmp_path / "mef3lab" / kept_file.name
    shutil.copyfile(kept_file, target)
    assert kernels._from_object_code().origin == "object code"  # the copy as kept loads
    target.write_bytes(_damaged(kept_file.read_bytes(), how))
    assert kernels.cached()
    assert kernels._from_object_code() is None


def test_the_loaded_kernel_decodes_as_numbas(blocks_of, kept_file, tmp_path, monkeypatch):
    """The object code loaded apart and this process's kernel give the same samples and
    report the same problem."""
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    (tmp_path / "mef3lab").mkdir()
    shutil.copyfile(kept_file, tmp_path / "mef3lab" / kept_file.name)
    apart, here = kernels._from_object_code(), kernels.load()
    assert apart is not here and apart.origin == "object code"
    buf, offsets, counts = blocks_of
    n = len(offsets)
    firsts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    rows, ends = np.zeros(n, np.int64), np.full(n, len(buf), np.int64)
    damaged = buf.copy()
    damaged[int(offsets[n // 2]) + 320] ^= 0xFF  # a sample byte: the CRC no longer matches
    for data in (buf, damaged):
        a, b = (np.zeros((1, int(counts.sum())), np.int32) for _ in range(2))
        assert apart.decode_blocks(data, offsets, counts, firsts, rows, ends, a) == (
            here.decode_blocks(data, offsets, counts, firsts, rows, ends, b)
        )
        np.testing.assert_array_equal(a, b)


@pytest.fixture
def blocks_of(factor_change_recording):
    """The 'steady' channel's .tdat bytes, and its blocks' offsets and counts."""
    from mef3lab.readers import open_reader

    with open_reader(factor_change_recording) as r:
        b = r._blocks["steady"]
        return np.fromfile(b.files[0], np.uint8), b.offsets, b.counts
