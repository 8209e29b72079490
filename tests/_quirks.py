"""The quirks corpus (`mef3lab.testing.quirks`) for tests: each session written once per run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mef3lab.testing.quirks import write_quirk


def quirk_writer(tmp_path_factory) -> Callable[[str], Path]:
    """``quirk(name) -> Path``: quirk session `name` in the run's temporary folder.

    Every module's session fixture shares the folder, so each session is written once.
    """
    folder = Path(tmp_path_factory.getbasetemp()) / "quirks"
    folder.mkdir(exist_ok=True)
    return lambda name: write_quirk(folder, name)
