"""Whether a recording changed on disk since it was opened: grown, or replaced.

A recording under monitoring grows (a writer appends blocks); one written again at the same
path is replaced. Both are told from cheap stat calls of each channel's index, data and
metadata files, and a few bytes of the index and data files that changed. What a server and
a source do about it: docs/server.md ("Growing and replaced recordings").
"""

from __future__ import annotations

import os
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["GROWN", "REPLACED", "ChangeWatch", "Snapshot", "fingerprint"]

#: The recording is longer: same files, only appended to (earlier bytes unchanged).
GROWN = "grown"
#: The recording is another one: a file was replaced, removed, shortened or rewritten.
REPLACED = "replaced"

#: The files a recording's samples come from.
_SAMPLE_FILES = (".tidx", ".tdat", ".tmet")
#: Files whose earlier bytes are compared when they changed (the metadata is rewritten whole).
_APPENDED = (".tidx", ".tdat")
#: Files a writer rewrites in place as it appends (empty for a moment): shorter is no sign.
_REWRITTEN = (".tmet",)
#: Bytes compared at the start (after the universal header) and at the old end of such a file.
_PROBE_AT, _PROBE_BYTES = 1024, 64

#: (name inside the session folder, size, mtime in ns, inode) of one file.
FileState = tuple[str, int, int, int]


def fingerprint(path: str | os.PathLike) -> tuple[FileState, ...]:
    """The state of a session's sample files: what changes when a writer touches them.

    One stat call per file (and one directory listing per channel and segment folder), so
    it is cheap enough to take on every open. Equal fingerprints: the same files, unchanged.
    A cache of anything read from a recording can key on it.

    Parameters
    ----------
    path : str or os.PathLike
        The session (``.mefd``) folder.

    Returns
    -------
    tuple of (str, int, int, int)
        (name inside the session folder, size, mtime in ns, inode) of every ``.tidx``,
        ``.tdat`` and ``.tmet`` file, sorted by name; empty when the folder cannot be listed.

    Examples
    --------
    >>> fingerprint("/nonexistent.mefd")
    ()
    """
    return _scan(Path(path), OSError)


def _scan(path: Path, skipped: type[OSError] | tuple[type[OSError], ...]) -> tuple[FileState, ...]:
    """`fingerprint`, leaving out what raises `skipped`; other errors raise."""
    out: list[FileState] = []
    for channel in _folders(path, ".timd", skipped):
        for segment in _folders(channel, ".segd", skipped):
            try:
                entries = list(os.scandir(segment))
            except skipped:
                continue
            for entry in entries:
                if entry.name.endswith(_SAMPLE_FILES):
                    try:
                        st = entry.stat()
                    except skipped:
                        continue
                    name = f"{channel.name}/{segment.name}/{entry.name}"
                    out.append((name, st.st_size, st.st_mtime_ns, st.st_ino))
    return tuple(sorted(out))


#: What a file or folder that is not there raises: a change. Any other error (too many open
#: files, say) says nothing about the recording.
_GONE = (FileNotFoundError, NotADirectoryError)


def _folders(parent: Path, suffix: str, skipped) -> list[Path]:
    try:
        return [Path(e.path) for e in os.scandir(parent) if e.name.endswith(suffix) and e.is_dir()]
    except skipped:
        return []


@dataclass(frozen=True)
class Snapshot:
    """A recording's files as they were: their `fingerprint` and a few of their bytes.

    Parameters
    ----------
    path : str
        The session folder.
    files : tuple of FileState
        Its `fingerprint`.
    probes : dict of str to bytes
        For each index and data file, its first bytes after the universal header and its
        last bytes, to tell an append from a rewrite.
    """

    path: str
    files: tuple[FileState, ...]
    probes: dict[str, tuple[bytes, bytes]]

    @classmethod
    def take(cls, path: str | os.PathLike) -> Snapshot:
        """The recording's files now.

        Parameters
        ----------
        path : str or os.PathLike
            The session folder.

        Returns
        -------
        Snapshot
        """
        files = fingerprint(path)
        probes = {}
        for name, size, _, _ in files:
            if name.endswith(_APPENDED):
                probes[name] = _probe(Path(path) / name, size)
        return cls(os.fspath(path), files, probes)

    def change(self) -> str | None:
        """How the recording differs from this snapshot now.

        Returns
        -------
        str or None
            None: unchanged; `GROWN`: every file is where it was, no index or data file
            shorter, their earlier bytes the same (new files may have appeared, metadata
            files be rewritten); `REPLACED`: anything else. None too when the files cannot be
            looked at now for a reason that is not theirs (too many open files, say): a
            recording is never judged replaced by a look that failed.
        """
        try:
            return self._change()
        except OSError:
            return None

    def _change(self) -> str | None:
        now = _scan(Path(self.path), _GONE)
        if now == self.files:
            return None
        current = {f[0]: f for f in now}
        for name, size, mtime, inode in self.files:
            new = current.get(name)
            if new is None or new[3] != inode:
                return REPLACED
            if new[1] < size and not name.endswith(_REWRITTEN):
                return REPLACED
            rewritten = new[1:3] != (size, mtime) and name in self.probes
            if rewritten and _probe(Path(self.path) / name, size, _GONE) != self.probes[name]:
                return REPLACED
        return GROWN


def _probe(path: Path, size: int, skipped=OSError) -> tuple[bytes, bytes]:
    """The bytes after a file's universal header, and the last bytes before `size`.

    Opened without blocking, and read only if it is a regular file: a pipe put in its place
    must not hang the caller. Empty when that raises `skipped`; other errors raise.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except skipped:
        return b"", b""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b"", b""
        at = max(0, size - _PROBE_BYTES)
        return os.pread(fd, _PROBE_BYTES, _PROBE_AT), os.pread(fd, size - at, at)
    except skipped:
        return b"", b""
    finally:
        os.close(fd)


class ChangeWatch:
    """A recording's `Snapshot`, compared with its files at most once per `interval` s.

    So that a read can ask on every call without a storm of stat calls. Thread-safe; a
    `REPLACED` answer sticks (the files may be put back, the readers have moved on).

    Parameters
    ----------
    snapshot : Snapshot
        The files as the recording was opened.
    interval : float
        The least time between two comparisons, in seconds.
    """

    def __init__(self, snapshot: Snapshot, interval: float = 1.0) -> None:
        self.snapshot = snapshot
        self.interval = interval
        self._lock = threading.Lock()
        self._checked = time.monotonic()
        self._last: str | None = None

    def check(self, force: bool = False) -> str | None:
        """The recording's change since its snapshot (see `Snapshot.change`).

        Parameters
        ----------
        force : bool
            Compare now, however recently it was (an open).

        Returns
        -------
        str or None
            None, `GROWN` or `REPLACED`; between comparisons, the last answer.
        """
        with self._lock:
            now = time.monotonic()
            if self._last == REPLACED or (not force and now - self._checked < self.interval):
                return self._last
            self._checked = now
        found = self.snapshot.change()
        with self._lock:
            if self._last != REPLACED:
                self._last = found
            return self._last
