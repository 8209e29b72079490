"""What a recording is read through: the `RecordingSource` protocol and its `SourceSpec`.

A source is an open recording as the xarray engine and the widget see it, read in this
process (`EmbeddedSource`) or through a mef3lab server (`RemoteSource`). What travels to
dask workers is never a source but its spec: small, frozen and picklable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from ..model import SessionInfo

__all__ = ["RecordingSource", "SourceSpec"]


@runtime_checkable
class RecordingSource(Protocol):
    """An open recording as the xarray engine sees it, embedded or remote.

    Indices are those of the rate-group grid (`SessionInfo.rate_groups`): sample k of
    rate fs lies at ``grid.start_uutc + k * 1e6 / fs``. Implementations must be safe to
    call from several threads of one process (dask's threaded scheduler does so).
    """

    info: SessionInfo

    def read_index(
        self, channels: Sequence[str], k0: int, k1: int, dtype: str = "float32"
    ) -> np.ndarray:
        """Samples ``[k0, k1)`` of the channels' (one rate group's) grid: (n_channels, k1 - k0), NaN outside data
        (dtype "int32": the stored counts, RAW_NAN outside data).
        """
        ...

    def segment_samples(self, fs: float) -> int:
        """The preferred read length, in samples, at rate `fs` (a server's segment length)."""
        ...

    def hint(self, channels: Sequence[str], k0: int, k1: int, dtype: str = "float32") -> None:
        """Samples ``[k0, k1)`` of `channels` will probably be read next, as `dtype` (a server may prefetch).

        Called just before each read, so it must return at once; the engine ignores its failures.
        """
        ...

    def block_envelope(self, channel: str) -> dict[str, np.ndarray]:
        """Every stored block of `channel`: ``start_uutc``, ``end_uutc``, ``min``, ``max`` (channel units),
        from the block index (nothing decoded).
        """
        ...

    def close(self) -> None:
        """Release the reader or connection. Idempotent."""
        ...


@dataclass(frozen=True)
class SourceSpec:
    """How to open a recording: small, hashable and picklable (what dask ships to workers).

    `path` is absolute for embedded specs (workers may run elsewhere in the file system
    tree); for remote specs it is the path as the server sees it. `address` None means
    embedded. `engine` None means the reader's default engine. The password is kept out
    of ``repr`` so it does not end up in logs or tracebacks.
    """

    path: str
    password: str | None = field(default=None, repr=False)
    engine: str | None = None
    address: str | None = None

    @property
    def remote(self) -> bool:
        """Whether a server reads it (else this process does)."""
        return self.address is not None
