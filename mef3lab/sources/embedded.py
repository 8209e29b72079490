"""`EmbeddedSource`: a `Reader` of this process behind the `RecordingSource` protocol."""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Sequence
from typing import ContextManager

import numpy as np

from ..readers import Reader

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
    """

    _decode_lock = threading.Lock()

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self.info = reader.info
        self._closed = False

    def _turn(self) -> ContextManager:
        return contextlib.nullcontext() if self.reader.thread_safe else EmbeddedSource._decode_lock

    def read_index(
        self, channels: Sequence[str], k0: int, k1: int, dtype: str = "float32"
    ) -> np.ndarray:
        with self._turn():
            if (
                dtype == "int32"
            ):  # one conversion_factor per channel: refused where it changes, as remote
                self.info.check_one_factor(channels)
                return self.reader.read_raw(list(channels), k0, k1).counts
            return self.reader.read_index(list(channels), k0, k1, dtype)

    def segment_samples(self, fs: float) -> int:
        """Whole seconds, at most `EMBEDDED_SEGMENT_SECONDS`, and about `EMBEDDED_CHUNK_BYTES` per chunk.

        One minute keeps the per-read overhead of opening MEF segment files negligible
        while a chunk of a typical iEEG rate group (say 128 channels at 2 kHz, float32)
        stays near dask's recommended ~100 MB; wide or fast groups (microwires at 32 kHz)
        get shorter chunks so one chunk never gets out of hand. Never below one second.
        """
        n_channels = max((len(g.channels) for g in self.info.rate_groups if g.fs == fs), default=1)
        seconds = EMBEDDED_CHUNK_BYTES / (4 * fs * n_channels)
        seconds = max(1.0, min(EMBEDDED_SEGMENT_SECONDS, math.floor(seconds)))
        return max(1, int(round(seconds * fs)))

    def hint(self, channels: Sequence[str], k0: int, k1: int, dtype: str = "float32") -> None:
        """Nothing to prefetch embedded: the OS page cache does that."""

    def block_envelope(self, channel: str) -> dict[str, np.ndarray]:
        with self._turn():
            return self.reader.block_envelope(channel)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            with self._turn():
                self.reader.close()


def _after_fork() -> None:
    """A forked child must not wait on a lock its parent held."""
    EmbeddedSource._decode_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
