"""What a recording is read through: the `RecordingSource` protocol and its `SourceSpec`.

A source is an open recording, read in this process (`EmbeddedSource`) or through a
mef3lab server (`RemoteSource`). What travels to dask workers is never a source but its
spec: small, frozen and picklable.
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
    """An open recording as the xarray engine and the widget see it, embedded or remote.

    Indices are those of the rate-group grid (`SessionInfo.rate_groups`): sample k of rate
    fs lies at ``grid.start_uutc + k * 1e6 / fs``. Implementations must be safe to call
    from several threads of one process (dask's threaded scheduler does so).

    Attributes
    ----------
    info : SessionInfo
        The recording's description: channels, rate groups, spans, annotations.
    """

    info: SessionInfo

    def read_index(
        self, channels: Sequence[str], k0: int, k1: int, dtype: str = "float32"
    ) -> np.ndarray:
        """Samples ``[k0, k1)`` of the channels' grid (one rate group).

        Parameters
        ----------
        channels : sequence of str
            Channels of one rate group, rows in this order.
        k0, k1 : int
            The grid samples, ``k0 <= k1``.
        dtype : {"float32", "float64", "int32"}
            Values in channel units (NaN outside data), or the stored counts (`RAW_NAN`
            outside data).

        Returns
        -------
        numpy.ndarray
            Shape ``(len(channels), k1 - k0)``.

        Raises
        ------
        mef3lab.errors.FactorChangeError
            For "int32" when a channel's conversion factor changes inside the recording.
        """
        ...

    def segment_samples(self, fs: float) -> int:
        """The preferred read length in samples at rate `fs` (a server's segment length)."""
        ...

    def hint(self, channels: Sequence[str], k0: int, k1: int, dtype: str = "float32") -> None:
        """Say that samples ``[k0, k1)`` of `channels` will probably be read next, as `dtype`.

        A server may prefetch them. Called just before each read, so it must return at
        once; the engine ignores its failures.
        """
        ...

    def block_envelope(self, channel: str) -> dict[str, np.ndarray]:
        """Every stored block of `channel`, from the block index (nothing decoded).

        Returns
        -------
        dict of str to numpy.ndarray
            ``start_uutc``, ``end_uutc``, ``min``, ``max`` (channel units), one entry per block.
        """
        ...

    def close(self) -> None:
        """Release the reader or connection. Idempotent."""
        ...


@dataclass(frozen=True)
class SourceSpec:
    """How to open a recording: small, hashable and picklable (what dask ships to workers).

    The password is kept out of ``repr`` so that it does not end up in logs or tracebacks.

    Parameters
    ----------
    path : str
        The recording: absolute for a spec read in this process (workers may run in
        another folder); for a remote spec, the path as the server sees it.
    password : str, optional
        The recording's password, if it is encrypted.
    engine : str, optional
        The decoder for reads in this process; None: the reader's default.
    address : str, optional
        The server it is read through; None: this process.
    revision : int, optional
        Which opening of the recording: a spec of another revision gets a source of its
        own, opened as the recording is on disk then (a refresh, ``ds.mef3.refresh()``),
        while the sources of earlier revisions keep theirs.
    """

    path: str
    password: str | None = field(default=None, repr=False)
    engine: str | None = None
    address: str | None = None
    revision: int = 0

    @property
    def remote(self) -> bool:
        """Whether a server reads it (else this process does)."""
        return self.address is not None
