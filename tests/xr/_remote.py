"""A real mef3lab server for the remote-mode tests (a helper module, imported by name)."""

from __future__ import annotations

#: Segments of one minute: the 10-minute `recording` is 10 dask chunks of 15 360 samples.
REMOTE_SEGMENT_S = 60.0


def start_server(**overrides):
    """A `mef3lab serve` child process (2 reader processes, 1-minute segments unless overridden)."""
    from mef3lab.server.process import ServerProcess

    config = dict(segment_seconds=REMOTE_SEGMENT_S, n_process_workers=2, log_level="WARNING")
    config.update(overrides)
    return ServerProcess(**config).start()
