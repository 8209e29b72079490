"""`RemoteSource`: a recording on a mef3lab server behind the `RecordingSource` protocol.

It reads through a `Mef3Client` of its own, and turns the engine's read-ahead hints into
prefetch calls that nothing waits for.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence

import numpy as np

from ..client import Mef3Client
from ..errors import Mef3LabError
from .base import SourceSpec

__all__ = ["RemoteSource"]


class RemoteSource:
    """A recording on a mef3lab server, behind the `RecordingSource` protocol.

    Chunks are the server's segments (`segment_samples`). Reads never trigger the
    server's own readahead (dask reads chunks in any order); instead the engine's explicit
    `hint` asks for what comes next, without waiting for the answer.

    Opening first pings the server with a `connect_timeout` deadline, so a server that is
    down fails at once (connection refused) and one that never answers fails within that
    bound, rather than after a read's much longer deadline.

    Parameters
    ----------
    spec : SourceSpec
        A remote spec: the path as the server sees it, and the server's address.

    Raises
    ------
    mef3lab.errors.ServerUnavailableError
        When the server does not answer.
    mef3lab.errors.Mef3LabError
        When the server cannot open the recording (the exception it raised).
    """

    #: Seconds to wait for a first answer from the server when opening.
    connect_timeout: float = 10.0
    #: Hints still unanswered beyond this many are dropped (a busy server needs no more work).
    max_pending_hints: int = 4

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        self.client = Mef3Client(spec.address)
        self._hints: set = set()
        self._hints_lock = threading.Lock()  # the hints and the envelopes
        self._envelopes: dict[str, dict[str, np.ndarray]] = {}
        self._closed = False
        try:
            # a ping that touches no recording
            self.client.list_open_files(timeout=self.connect_timeout)
            self.info = self.client.open_file(spec.path, spec.password, spec.engine)
            grid = self.client.segment_grid(spec.path)
        except BaseException:
            self.client.shutdown()
            raise
        self._segment = {g.fs: g.segment_samples for g in grid.groups}

    def read_index(
        self, channels: Sequence[str], k0: int, k1: int, dtype: str = "float32"
    ) -> np.ndarray:
        """Samples ``[k0, k1)`` of the channels' grid (see `RecordingSource.read_index`)."""
        return self.client.read_index(self.spec.path, k0, k1, list(channels), dtype, prefetch=False)

    def segment_samples(self, fs: float) -> int:
        """The server's segment length at rate `fs`, in samples."""
        return self._segment[fs]

    def hint(self, channels: Sequence[str], k0: int, k1: int, dtype: str = "float32") -> None:
        """Send a Prefetch for ``[k0, k1)`` and return at once; its answer is ignored.

        Dropped when `max_pending_hints` are still unanswered.
        """
        with self._hints_lock:
            if self._closed or len(self._hints) >= self.max_pending_hints:
                return
            call = self.client.prefetch_nowait(
                self.spec.path, k0, k1, channels, dtype, self.connect_timeout
            )
            self._hints.add(call)
        call.add_done_callback(self._hint_done)

    def block_envelope(self, channel: str) -> dict[str, np.ndarray]:
        """Every stored block of `channel` (see `RecordingSource.block_envelope`).

        Asked of the server once per channel: the recording this source opened keeps its
        blocks (a grown recording is a new source, `Mef3Client.refresh`). Read-only arrays.
        """
        with self._hints_lock:
            env = self._envelopes.get(channel)
        if env is None:
            env = self.client.block_index(self.spec.path, channel)
            for a in env.values():
                a.flags.writeable = False
            with self._hints_lock:
                env = self._envelopes.setdefault(channel, env)
        return env

    def _hint_done(self, call) -> None:
        with self._hints_lock:
            self._hints.discard(call)

    def close(self) -> None:
        """Cancel the pending hints, close the recording on the server and the connection.

        Idempotent; a server that is gone delays it by `connect_timeout` at most.
        """
        with self._hints_lock:
            if self._closed:
                return
            self._closed = True
            pending, self._hints = list(self._hints), set()
        for call in pending:
            call.cancel()
        # a server that is gone has nothing left to release, and must not hold this up
        with contextlib.suppress(Mef3LabError):
            self.client.close_file(self.spec.path, timeout=self.connect_timeout)
        self.client.shutdown()
