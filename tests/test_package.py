"""`import mef3lab` is cheap (no decoder, no gRPC), and every public name resolves."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import mef3lab


def test_import_loads_no_decoder_and_no_grpc():
    code = (
        "import sys, mef3lab; "
        "print(sorted(m for m in ('grpc', 'pymef', 'mef3io', 'xarray') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_public_names_resolve():
    for name in mef3lab.__all__:
        assert getattr(mef3lab, name) is not None, name


HEAVY = ("xarray", "dask", "dask.array", "dask.distributed", "distributed")


def _modules_after(code: str) -> list[str]:
    """The `HEAVY` modules a fresh interpreter has imported after running `code`."""
    probe = f"{code}\nimport sys; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    return eval(out.strip().splitlines()[-1])


def test_import_loads_neither_xarray_nor_dask():
    assert _modules_after("import mef3lab") == []


def test_load_ext_returns_before_xarray_and_dask_are_imported_then_preloads_them():
    shell = (
        "import sys, threading\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "import mef3lab.jupyter.extension as ext\n"
        "ip = InteractiveShell.instance()\n"
        "preload, ext._preload = ext._preload, lambda: None\n"  # %load_ext on its own
        "ip.run_line_magic('load_ext', 'mef3lab')\n"
        f"print('HEAVY', sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
        "print('WIDGET', 'mef3lab.widget.scroller' in sys.modules)\n"
        "ip.run_line_magic('unload_ext', 'mef3lab')\n"
        "ext._preload = preload\n"
        "ip.run_line_magic('load_ext', 'mef3lab')\n"
        "[t.join(60) for t in threading.enumerate() if t.name == 'mef3lab-preload']\n"
        "from mef3lab.jupyter import progress\n"
        "assert not progress.enabled()\n"  # on from the next cell, on the main thread
        "ip.run_cell('pass')\n"
        "assert progress.enabled()\n"
        "ip.run_line_magic('unload_ext', 'mef3lab')\n"
        "assert not progress.enabled()\n"
        f"print('HEAVY', sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
        "print('WIDGET', 'mef3lab.widget.scroller' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", shell],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "MEF3LAB_SERVER": "127.0.0.1:9"},  # named: nothing is started
        timeout=120,
    ).stdout.splitlines()
    loaded, preloaded = (eval(line[6:]) for line in out if line.startswith("HEAVY "))
    assert loaded == []  # %load_ext itself: none of them
    assert preloaded == ["dask", "dask.array", "xarray"]  # in the background; never distributed
    # the scroller's module too (anywidget, ipywidgets): a first scroller does not import it
    assert [line for line in out if line.startswith("WIDGET ")] == ["WIDGET False", "WIDGET True"]


@pytest.mark.parametrize(
    ("server", "decoder"),
    [("127.0.0.1:9", False), ("not an address", True)],
    ids=["through-a-server", "no-server"],
)
def test_load_ext_preloads_the_decoder_only_where_recordings_are_decoded(server, decoder):
    shell = (
        "import sys, threading\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance()\n"
        "ip.run_line_magic('load_ext', 'mef3lab')\n"
        "[t.join(60) for t in threading.enumerate() if t.name == 'mef3lab-preload']\n"
        "from mef3lab.jupyter.extension import connection\n"
        "print('ADDRESS', repr(connection().address))\n"
        "from mef3lab.readers import numba as engine\n"
        "print('KERNELS', engine._kernels is not None)\n"
        "print('NUMBA', 'numba' in sys.modules or 'llvmlite' in sys.modules)\n"
        "ip.run_line_magic('unload_ext', 'mef3lab')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", shell],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "MEF3LAB_SERVER": server},  # named: nothing is started
        timeout=120,
    ).stdout.splitlines()
    address = eval(next(line[8:] for line in out if line.startswith("ADDRESS ")))
    assert (address is None) == decoder
    assert f"KERNELS {decoder}" in out
    if not decoder:
        assert "NUMBA False" in out  # not even imported


def test_reading_a_recording_never_imports_dask_distributed(recording):
    code = (
        "import mef3lab\n"
        f"rec = mef3lab.open_recording({str(recording)!r})\n"
        "assert rec.signal.isel(time=slice(0, 2560)).values.shape[1] == 2560\n"
    )
    assert _modules_after(code) == ["dask", "dask.array", "xarray"]


def test_an_unfiltered_scroller_draws_its_first_page_without_scipy_signal(recording):
    # scipy.signal's import is most of a first scroller's wait; a filter imports it.
    code = (
        "import sys\n"
        "import mef3lab\n"
        f"rec = mef3lab.open_recording({str(recording)!r})\n"
        "w = mef3lab.Scroller(rec, page_seconds=5)\n"
        "assert w.wait(60) and w.sent == 1\n"
        "print('UNFILTERED', 'scipy.signal' in sys.modules)\n"
        "w.highpass = 1.0\n"
        "assert w.wait(60) and w.sent == 2 and not w.message, w.message\n"
        "print('FILTERED', 'scipy.signal' in sys.modules)\n"
        "w.close()\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout.splitlines()
    assert "UNFILTERED False" in out
    assert "FILTERED True" in out


def test_a_distributed_client_imported_first_keeps_its_scheduler(recording):
    code = (
        "import dask, distributed\n"
        "import mef3lab\n"
        f"rec = mef3lab.open_recording({str(recording)!r})\n"
        "rec.signal.isel(time=slice(0, 10)).values\n"
        "assert dask.config.get('scheduler', None) is None\n"
    )
    assert "distributed" in _modules_after(code)
