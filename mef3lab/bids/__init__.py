"""iEEG-BIDS datasets of MEF 3.0 runs: `open_bids` lists the runs and opens one with its sidecars.

BIDS plumbing (paths, entities, sidecar inheritance) is mne-bids's; sidecars are read with
pandas. mne-bids comes with the ``mne`` extra: without it, the names here raise an
ImportError that says what to install. docs/mne-bids.md shows a session.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ENTITIES", "BidsDataset", "SidecarError", "open_bids"]

_LAZY = {
    "ENTITIES": "dataset",
    "BidsDataset": "dataset",
    "open_bids": "dataset",
    "SidecarError": "sidecars",
}


def __getattr__(name: str) -> Any:
    """The public names, imported on first use (mne-bids checked)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mef3lab.bids' has no attribute {name!r}")
    from importlib import import_module

    from ..mne_bridge import require_mne

    require_mne("mne_bids")
    return getattr(import_module(f"{__name__}.{module}"), name)
