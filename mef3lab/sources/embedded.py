"""`EmbeddedSource`: a `Reader` of this process behind the `RecordingSource` protocol.

It decides how long an embedded chunk is (`EmbeddedSource.segment_samples`), and lets
readers that are not thread-safe take turns.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager

import numpy as np

from ..errors import RecordingChangedError
from ..readers import Reader
from ..readers.changes import REPLACED, ChangeWatch

__all__ = ["EMBEDDED_CHUNK_BYTES", "EMBEDDED_SEGMENT_SECONDS", "EmbeddedSource"]

#: Upper bound on the preferred chunk length of embedded reads.
EMBEDDED_SEGMENT_SECONDS = 60.0
#: Target size of one embedded chunk (all channels of a rate group, float32).
EMBEDDED_CHUNK_BYTES = 64 * 2**20


class EmbeddedSource:
    """A `Reader` of this process, behind the `RecordingSource` protocol.

    pymef keeps global state, so reads of pymef readers (of every recording of the process)
    take turns on one lock. Engines that declare themselves thread-safe (mef3io and numba
    release the GIL while decoding) read at once, so dask's threaded scheduler decodes
    chunks on every core.

    Parameters
    ----------
    reader : Reader
        An open reader; the source closes it.
    watch : ChangeWatch or None
        The recording's files as the reader opened them: reads are refused once they were
        written again (a grown recording is read as it was opened). None: never compared.
    """

    _decode_lock = threading.Lock()

    def __init__(self, reader: Reader, watch: ChangeWatch | None = None) -> None:
        self.reader = reader
        self.info = reader.info
        self.watch = watch
        self._closed = False

    def _check_files(self) -> None:
        """Refuse to read a recording written again since it was opened (looked at each second)."""
        if self.watch is not None and self.watch.check() == REPLACED:
            raise RecordingChangedError(
                f"{self.watch.snapshot.path} changed on disk since it was opened (it was written "
                "again, not only appended to); reopen it (ds.mef3.refresh()) to read it as it is "
                "now"
            )

    def _turn(self) -> AbstractContextManager:
        return contextlib.nullcontext() if self.reader.thread_safe else EmbeddedSource._decode_lock

    def read_index(
        self, channels: Sequence[str], k0: int, k1: int, dtype: str = "float32"
    ) -> np.ndarray:
        """Samples ``[k0, k1)`` of the channels' grid (see `RecordingSource.read_index`)."""
        self._check_files()
        with self._turn():
            if dtype == "int32":
                # one conversion_factor per channel: refused where it changes, as remote
                self.info.check_one_factor(channels)
                return self.reader.read_raw(list(channels), k0, k1).counts
            return self.reader.read_index(list(channels), k0, k1, dtype)

    def segment_samples(self, fs: float) -> int:
        """The preferred read length at rate `fs`: whole seconds, one at least.

        At most `EMBEDDED_SEGMENT_SECONDS`, which keeps the cost of opening MEF segment
        files small beside a read's; shorter when a chunk of the rate group (all its
        channels, float32) would exceed `EMBEDDED_CHUNK_BYTES`, so wide or fast groups get
        chunks of about that size.
        """
        n_channels = max((len(g.channels) for g in self.info.rate_groups if g.fs == fs), default=1)
        seconds = EMBEDDED_CHUNK_BYTES / (4 * fs * n_channels)
        seconds = max(1.0, min(EMBEDDED_SEGMENT_SECONDS, math.floor(seconds)))
        return max(1, int(round(seconds * fs)))

    def hint(self, channels: Sequence[str], k0: int, k1: int, dtype: str = "float32") -> None:
        """Nothing to prefetch embedded: the OS page cache does that."""

    def block_envelope(self, channel: str) -> dict[str, np.ndarray]:
        """Every stored block of `channel` (see `RecordingSource.block_envelope`)."""
        self._check_files()
        with self._turn():
            return self.reader.block_envelope(channel)

    def close(self) -> None:
        """Close the reader. Idempotent."""
        if not self._closed:
            self._closed = True
            with self._turn():
                self.reader.close()


def _after_fork() -> None:
    """A forked child must not wait on a lock its parent held."""
    EmbeddedSource._decode_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
