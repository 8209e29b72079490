"""Opening a session some of whose channels are damaged, without losing the others.

When a session does not open as a whole, each channel is tried alone, and the session is
opened again through a *shadow*: a temporary folder of symlinks to the session's own files,
without the damaged channels. Nothing is written next to the recording. Why and when:
``docs/readers.md``.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

from ..errors import CorruptDataError, PasswordError
from .blockformat import HEADER_BYTES, INDEX_DTYPE, UNIVERSAL_HEADER_BYTES

log = logging.getLogger(__name__)

CHANNEL_SUFFIX = ".timd"
SEGMENT_SUFFIX = ".segd"
SEGMENT_FILES = (".tmet", ".tidx", ".tdat")
#: Bytes of every time-series metadata (.tmet) file: universal header and three sections.
METADATA_BYTES = 16384
#: Where a universal header keeps its number of entries (little-endian int64).
NUMBER_OF_ENTRIES_AT = 32
#: Where a .tmet keeps whether its section 2 is encrypted (above 0: it is), and in section 2
#: its number of samples and of blocks (little-endian int64).
SECTION_2_ENCRYPTION_AT, NUMBER_OF_SAMPLES_AT, NUMBER_OF_BLOCKS_AT = 1024, 8920, 8928

#: Shadow folders are named ``mef3lab-salvage-<pid>-<random>`` after the process that made them.
SHADOW_PREFIX = "mef3lab-salvage-"

Opened = TypeVar("Opened")


def channel_dirs(session: Path) -> dict[str, Path]:
    """The session's time-series channel folders by channel name."""
    return {
        p.name[: -len(CHANNEL_SUFFIX)]: p
        for p in sorted(session.iterdir())
        if p.name.endswith(CHANNEL_SUFFIX) and p.is_dir()
    }


def file_problem(channel: Path) -> str | None:
    """Why a channel folder cannot be read: a file missing, or not the size it declares.

    Checked before any decoder opens the files: a sparse, huge index or metadata file
    (a few KiB on disk) would otherwise be read whole by every reader process.

    Parameters
    ----------
    channel : pathlib.Path
        A channel folder (``.timd``).

    Returns
    -------
    str or None
        The reason, for the user; None when every file is there at its declared size.
    """
    segments = sorted(
        p for p in channel.iterdir() if p.name.endswith(SEGMENT_SUFFIX) and p.is_dir()
    )
    if not segments:
        return f"{channel.name} holds no segment"
    for seg in segments:
        for ext in SEGMENT_FILES:
            if not (seg / (seg.name[: -len(SEGMENT_SUFFIX)] + ext)).is_file():
                return f"{seg.name} has no {ext} file"
        for ext in (".tmet", ".tidx"):
            why = size_problem(seg / (seg.name[: -len(SEGMENT_SUFFIX)] + ext))
            if why is not None:
                return f"{seg.name}: {why}"
    return None


def size_problem(path: Path) -> str | None:
    """Why a `.tmet` or `.tidx` file is not the size its format and header declare (or None).

    A `.tmet` is always `METADATA_BYTES`; a `.tidx` is its universal header and the number
    of entries that header declares, or longer while a writer appends to it (see
    `declared_index_bytes`).
    """
    size = path.stat().st_size
    if path.suffix == ".tmet":
        want = METADATA_BYTES
        what = "a time-series metadata file is"
    else:
        if size < UNIVERSAL_HEADER_BYTES:
            return f"{path.name} is {size} bytes, shorter than its universal header"
        want = declared_index_bytes(path)
        what = (
            f"its header declares {(want - UNIVERSAL_HEADER_BYTES) // INDEX_DTYPE.itemsize} "
            "index entries, which take"
        )
        if want < size and _being_appended(path, size - want):
            return None
    if size == want:
        return None
    return f"{path.name} is {size} bytes, but {what} {want} bytes"


def declared_index_bytes(tidx: Path) -> int:
    """The bytes of a `.tidx` file that its universal header declares (header and entries).

    A writer appending to a recording writes the new blocks, then their index entries, and
    only then the headers: meanwhile the file is longer than it declares, and its declared
    entries are the ones that are complete.
    """
    with tidx.open("rb") as f:
        f.seek(NUMBER_OF_ENTRIES_AT)
        entries = int.from_bytes(f.read(8), "little", signed=True)
    return UNIVERSAL_HEADER_BYTES + entries * INDEX_DTYPE.itemsize


def _being_appended(tidx: Path, extra: int) -> bool:
    """Whether `extra` bytes past a `.tidx` file's declared entries can be entries being written.

    They can when the data file holds at least a block header for each whole one of them,
    since a writer writes a block before its entry: a sparse index swollen far past its
    data (a few KiB on disk, declaring nothing) is refused without being read.
    """
    data = tidx.with_suffix(".tdat")
    return data.is_file() and extra // INDEX_DTYPE.itemsize * HEADER_BYTES <= data.stat().st_size


def being_written(channel: Path) -> bool:
    """Whether a writer is appending to a channel: an index holds entries not counted yet.

    A writer writes a block, then its index entry and the index's header, and the segment's
    metadata last: meanwhile an index file is longer than its header declares, or declares
    more blocks than its metadata counts. Decoders read every entry there is; such a channel
    is read through a `Shadow`, whose copies of the index and metadata agree (`_copy_segment`).
    """
    return any(_appending(t) for t in channel.glob(f"*{SEGMENT_SUFFIX}/*.tidx"))


def _appending(tidx: Path) -> bool:
    size = tidx.stat().st_size
    if size < UNIVERSAL_HEADER_BYTES:
        return False
    declared = declared_index_bytes(tidx)
    if size > declared:
        return True
    try:
        with tidx.with_suffix(".tmet").open("rb") as f:
            blocks = _counted(
                os.pread(f.fileno(), 1, SECTION_2_ENCRYPTION_AT)
                + os.pread(f.fileno(), 16, NUMBER_OF_SAMPLES_AT)
            )
    except OSError:
        return False
    return (
        blocks is not None and UNIVERSAL_HEADER_BYTES + blocks[1] * INDEX_DTYPE.itemsize < declared
    )


def _counted(fields: bytes) -> tuple[int, int] | None:
    """(samples, blocks) of a .tmet's encryption byte and its two counts; None if unreadable."""
    if len(fields) != 17 or int.from_bytes(fields[:1], "little", signed=True) > 0:
        return None  # cut short, or encrypted (levels 1 and 2; 0 and below: readable)
    samples = int.from_bytes(fields[1:9], "little", signed=True)
    blocks = int.from_bytes(fields[9:17], "little", signed=True)
    return (samples, blocks) if samples >= 0 and blocks >= 0 else None


class Shadow:
    """A temporary session folder of symlinks to `session`'s files, with only some channels.

    Parameters
    ----------
    session : pathlib.Path
        The session folder.
    channels : list of str
        The channels the shadow holds (every other file of the session is linked too).

    Attributes
    ----------
    path : pathlib.Path
        The shadow session folder, named as `session`.
    """

    def __init__(self, session: Path, channels: list[str]) -> None:
        self._tmp = Path(tempfile.mkdtemp(prefix=f"{SHADOW_PREFIX}{os.getpid()}-"))
        self.path = self._tmp / session.name
        self.path.mkdir()
        dirs = channel_dirs(session)
        for item in session.iterdir():
            if not item.name.endswith(CHANNEL_SUFFIX):  # session records etc.
                (self.path / item.name).symlink_to(item.resolve())
        for name in channels:
            _link_channel(dirs[name], self.path / dirs[name].name)

    def remove(self) -> None:
        """Delete the shadow (the links only; the recording is untouched)."""
        shutil.rmtree(self._tmp, ignore_errors=True)


def _link_channel(channel: Path, target: Path) -> None:
    """`target` as a link to `channel`, or a folder of links while a writer appends to it.

    In that folder each segment being written has copies of its index and metadata that
    agree (`_copy_segment`); its data file, only ever appended to, is linked.
    """
    if not being_written(channel):
        target.symlink_to(channel.resolve())
        return
    target.mkdir()
    for item in channel.iterdir():
        if not (item.name.endswith(SEGMENT_SUFFIX) and item.is_dir()):
            (target / item.name).symlink_to(item.resolve())
            continue
        (target / item.name).mkdir()
        tidx = item / (item.name[: -len(SEGMENT_SUFFIX)] + ".tidx")
        copied = _copy_segment(tidx, target / item.name) if tidx.is_file() else ()
        for f in item.iterdir():
            if f.name not in copied:
                (target / item.name / f.name).symlink_to(f.resolve())


def _copy_segment(tidx: Path, folder: Path) -> tuple[str, ...]:
    """Copies in `folder` of a segment's metadata and of the index entries it counts.

    The metadata is read first, so the index copy can only hold more than it counts, and is
    cut to what it counts when those entries sum to its number of samples (else to the
    entries the index declares: a metadata that disagrees otherwise is damage, not lag).

    Returns
    -------
    tuple of str
        The names of the files copied (the others are to be linked).
    """
    if tidx.stat().st_size < UNIVERSAL_HEADER_BYTES:
        return ()
    tmet = tidx.with_suffix(".tmet")
    metadata = tmet.read_bytes() if tmet.is_file() else b""
    with tidx.open("rb") as f:
        index = f.read(declared_index_bytes(tidx))
    entries = np.frombuffer(
        index,
        INDEX_DTYPE,
        (len(index) - UNIVERSAL_HEADER_BYTES) // INDEX_DTYPE.itemsize,
        UNIVERSAL_HEADER_BYTES,
    )
    counted = None
    if len(metadata) == METADATA_BYTES:
        counted = _counted(
            metadata[SECTION_2_ENCRYPTION_AT : SECTION_2_ENCRYPTION_AT + 1]
            + metadata[NUMBER_OF_SAMPLES_AT : NUMBER_OF_SAMPLES_AT + 16]
        )
    n = len(entries)
    lagging = counted is not None and counted[1] < n
    if lagging and int(entries["number_of_samples"][: counted[1]].sum()) == counted[0]:
        n = counted[1]
    header = bytearray(index[:UNIVERSAL_HEADER_BYTES])  # declaring the entries it holds
    header[NUMBER_OF_ENTRIES_AT : NUMBER_OF_ENTRIES_AT + 8] = n.to_bytes(8, "little", signed=True)
    body = index[UNIVERSAL_HEADER_BYTES : UNIVERSAL_HEADER_BYTES + n * INDEX_DTYPE.itemsize]
    (folder / tidx.name).write_bytes(bytes(header) + body)
    if len(metadata) != METADATA_BYTES:
        return (tidx.name,)
    (folder / tmet.name).write_bytes(metadata)
    return tidx.name, tmet.name


def remove_shadows_of(pid: int) -> int:
    """Delete the shadows a process left behind (it died before it could).

    Parameters
    ----------
    pid : int
        The process that made them; call this only once it has ended.

    Returns
    -------
    int
        How many shadow folders were removed.
    """
    left = list(Path(tempfile.gettempdir()).glob(f"{SHADOW_PREFIX}{pid}-*"))
    for folder in left:
        shutil.rmtree(folder, ignore_errors=True)
    return len(left)


def remove_stale_shadows() -> int:
    """Delete the shadows of every process that no longer runs (e.g. after a crash).

    Returns
    -------
    int
        How many shadow folders were removed.
    """
    removed = 0
    for folder in Path(tempfile.gettempdir()).glob(f"{SHADOW_PREFIX}*-*"):
        pid = folder.name[len(SHADOW_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def _running(pid: int) -> bool:
    """Whether process `pid` exists (one of another user counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def open_salvaged(
    session: Path, open_session: Callable[[Path], Opened], failure: CorruptDataError | PasswordError
) -> tuple[Opened, Shadow, dict[str, str]]:
    """Open the channels of `session` that open on their own, through a `Shadow`.

    Parameters
    ----------
    session : pathlib.Path
        The session folder.
    open_session : callable
        ``open_session(path)`` opens a session folder, raising mef3lab errors.
    failure : CorruptDataError or PasswordError
        Why the whole session did not open.

    Returns
    -------
    opened : object
        What `open_session` returned for the shadow.
    shadow : Shadow
        The shadow; remove it once `opened` is closed.
    damaged : dict of str to str
        The channels left out, with the reason for each.

    Raises
    ------
    CorruptDataError or PasswordError
        `failure`, when no channel opens alone.
    """
    damaged: dict[str, str] = {}
    healthy: list[str] = []
    for name, folder in channel_dirs(session).items():
        reason = file_problem(folder)
        if reason is None:
            alone = Shadow(session, [name])
            try:
                close = getattr(open_session(alone.path), "close", None)
                if close is not None:
                    close()
            except PasswordError as exc:  # the session's password opens the others
                reason = f"it does not open with the session's password ({exc})"
            except CorruptDataError as exc:
                reason = str(exc.__cause__ or exc).replace(str(alone.path), str(session))
            finally:
                alone.remove()
        if reason is None:
            healthy.append(name)
        else:
            damaged[name] = reason
    if not healthy:
        raise failure
    shadow = Shadow(session, healthy)
    try:
        opened = open_session(shadow.path)
    except BaseException:
        shadow.remove()
        raise
    for name, reason in damaged.items():
        log.warning("%s: channel %r is damaged and left out: %s", session, name, reason)
    return opened, shadow, damaged
