"""MNE-Python on a mef3lab recording: a lazy `mne.io.BaseRaw` whose samples keep their time.

`to_mne` builds the Raw of one rate group, reading through the recording's source (in this
process or through a server); `events_to_annotations` and `annotations_to_events` carry a
reviewer's events (BIDS ``events.tsv`` columns) to MNE and back. MNE-Python is an optional
extra: its modules load on first use, and without it the names here raise an ImportError
that says what to install. docs/mne-bids.md explains gaps, units and annotations.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MNE_EXTRA", "annotations_to_events", "events_to_annotations", "require_mne", "to_mne"]

#: How to install what this package needs.
MNE_EXTRA = "pip install 'mef3lab[mne]'"

_LAZY = {
    "to_mne": "raw",
    "Mef3Raw": "raw",
    "events_to_annotations": "annotations",
    "annotations_to_events": "annotations",
}


def require_mne(module: str = "mne") -> None:
    """Raise an ImportError that names the extra to install when `module` is missing.

    Parameters
    ----------
    module : {"mne", "mne_bids"}
        What is needed: MNE-Python, or mne-bids (both come with the ``mne`` extra).

    Raises
    ------
    ImportError
        When `module` cannot be imported.
    """
    from importlib import import_module

    try:
        import_module(module)
    except ImportError as e:
        what = "mne-bids" if module == "mne_bids" else "MNE-Python"
        raise ImportError(
            f"{what} is needed for this (the 'mne' extra of mef3lab): {MNE_EXTRA}"
        ) from e


def __getattr__(name: str) -> Any:
    """`to_mne`, `Mef3Raw` and the event conversions, imported on first use (MNE checked)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mef3lab.mne_bridge' has no attribute {name!r}")
    require_mne()
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{module}"), name)
