"""`import mef3lab` is cheap (no decoder, no gRPC), and every public name resolves."""

from __future__ import annotations

import subprocess
import sys

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
