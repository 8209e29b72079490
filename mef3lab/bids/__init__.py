"""iEEG-BIDS datasets of MEF 3.0 runs: `open_bids` lists the runs and opens one with its sidecars.

BIDS plumbing (paths, entities, sidecar inheritance) is mne-bids's; sidecars are read with
pandas. Needs the ``mne`` extra. docs/mne-bids.md shows a session.
"""

from .dataset import ENTITIES, BidsDataset, open_bids
from .sidecars import SidecarError

__all__ = ["ENTITIES", "BidsDataset", "SidecarError", "open_bids"]
