"""Damaged copies of a recording: one channel broken in one of many ways, the rest intact.

What a shared server meets in a lab's archive: files cut short, flipped bits, deleted files,
absurd metadata and index entries (with matching CRCs, so only a reader's own checks catch
them), segments that disagree, a channel encrypted with another password. Tests and
benchmarks run every one of `CASES` through `damaged_copy`.
"""

from __future__ import annotations

import shutil
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..readers import blockformat, red

#: Bytes of MEF 3.0's universal header, which starts every file: header CRC (over bytes
#: 4..1024) at 0, body CRC (over the rest of the file) at 4.
HEADER = blockformat.UNIVERSAL_HEADER_BYTES
INDEX_ENTRY = blockformat.INDEX_DTYPE
#: Offsets in a .tmet file of time-series metadata section 2 fields (after the universal
#: header and the 1536-byte section 1).
TMET_FIELDS = {
    "sampling_frequency": (8720, "<d"),
    "units_conversion_factor": (8760, "<d"),
    "start_sample": (8912, "<q"),
    "number_of_samples": (8920, "<q"),
    "number_of_blocks": (8928, "<q"),
}


@dataclass(frozen=True)
class DamageCase:
    """One way of damaging a channel: `apply(channel_folder)` changes its files in place."""

    name: str
    what: str  # one line for a table: what was done to the channel
    apply: Callable[[Path], None]


def _segment(channel: Path, n: int = 0) -> Path:
    return sorted(channel.glob("*.segd"))[n]


def _file(channel: Path, ext: str) -> Path:
    seg = _segment(channel)
    return seg / (seg.stem + ext)


def _crc(data: bytes) -> int:
    buf = np.frombuffer(data, np.uint8)
    return int(red.crc32(buf, 0, len(buf), blockformat.CRC_TABLE)) & 0xFFFFFFFF


def _rewrite(path: Path, edit: Callable[[bytearray], None], fix_crcs: bool) -> None:
    """Edit a file's bytes; with `fix_crcs`, recompute its CRCs so the edit looks valid."""
    data = bytearray(path.read_bytes())
    edit(data)
    if fix_crcs:
        data[4:8] = struct.pack("<I", _crc(bytes(data[HEADER:])))
        data[0:4] = struct.pack("<I", _crc(bytes(data[4:HEADER])))
    path.write_bytes(bytes(data))


def truncate(ext: str, keep: float | int) -> Callable[[Path], None]:
    """Cut the file to `keep` bytes (int) or that fraction of its size (float)."""

    def apply(channel: Path) -> None:
        f = _file(channel, ext)
        size = f.stat().st_size
        n = keep if isinstance(keep, int) else int(size * keep)
        with open(f, "r+b") as fh:
            fh.truncate(min(n, size))

    return apply


def delete(ext: str) -> Callable[[Path], None]:
    """Delete the file."""
    return lambda channel: _file(channel, ext).unlink()


def flip(ext: str, where: float | int, count: int = 1) -> Callable[[Path], None]:
    """Invert `count` bytes from byte `where` (int) or that fraction of the body (float)."""

    def apply(channel: Path) -> None:
        def edit(data: bytearray) -> None:
            at = where if isinstance(where, int) else HEADER + int((len(data) - HEADER) * where)
            for i in range(at, min(at + count, len(data))):
                data[i] ^= 0xFF

        _rewrite(_file(channel, ext), edit, fix_crcs=False)

    return apply


def set_metadata(field: str, value: float) -> Callable[[Path], None]:
    """Write an absurd `value` into a .tmet field, CRCs recomputed."""
    offset, fmt = TMET_FIELDS[field]

    def apply(channel: Path) -> None:
        _rewrite(
            _file(channel, ".tmet"),
            lambda d: d.__setitem__(
                slice(offset, offset + struct.calcsize(fmt)), struct.pack(fmt, value)
            ),
            fix_crcs=True,
        )

    return apply


def set_index(field: str, value: int, entry: int | slice = 1) -> Callable[[Path], None]:
    """Write `value` into `field` of index entry `entry` (or a slice), CRCs recomputed."""

    def apply(channel: Path) -> None:
        def edit(data: bytearray) -> None:
            entries = np.frombuffer(
                data, INDEX_ENTRY, offset=HEADER, count=(len(data) - HEADER) // INDEX_ENTRY.itemsize
            )
            entries = entries.copy()
            entries[field][entry] = value
            data[HEADER : HEADER + entries.nbytes] = entries.tobytes()

        _rewrite(_file(channel, ".tidx"), edit, fix_crcs=True)

    return apply


def swap_index_entries(channel: Path) -> None:
    """Exchange the first two index entries: blocks out of time order."""

    def edit(data: bytearray) -> None:
        a, b, c = HEADER, HEADER + INDEX_ENTRY.itemsize, HEADER + 2 * INDEX_ENTRY.itemsize
        data[a:c] = data[b:c] + data[a:b]

    _rewrite(_file(channel, ".tidx"), edit, fix_crcs=True)


def duplicate_segment(channel: Path) -> None:
    """A second segment that is a copy of the first: two segments claiming the same samples."""
    seg = _segment(channel)
    twin = seg.with_name(seg.name.replace("-000000", "-000001"))
    shutil.copytree(seg, twin)
    for f in twin.iterdir():
        f.rename(twin / f.name.replace("-000000", "-000001"))


def empty_segment_folder(channel: Path) -> None:
    """The segment folder is there, with nothing in it."""
    for f in _segment(channel).iterdir():
        f.unlink()


def foreign_channel(password: str) -> Callable[[Path], None]:
    """Replace the channel by one encrypted with `password`, which the session does not have."""

    def apply(channel: Path) -> None:
        from .synth import synthesize

        other = channel.parent / ".foreign.mefd"
        synthesize(
            other,
            channels=1,
            fs=256.0,
            seconds=30.0,
            gaps=0,
            password1=password,
            password2=password + "2",
            overwrite=True,
        )
        shutil.rmtree(channel)
        src = next(other.glob("*.timd"))
        shutil.copytree(src, channel)
        # rename ch000 -> this channel, deepest first
        for f in sorted(channel.rglob("*"), key=lambda p: -len(p.parts)):
            if src.stem in f.name:
                f.rename(f.with_name(f.name.replace(src.stem, channel.stem)))
        shutil.rmtree(other)

    return apply


#: Every way of damaging a channel (`CASE_BY_NAME` finds one by name).
CASES: tuple[DamageCase, ...] = (
    DamageCase("tmet-truncated-half", ".tmet cut to half its size", truncate(".tmet", 0.5)),
    DamageCase("tmet-header-only", ".tmet cut to its universal header", truncate(".tmet", HEADER)),
    DamageCase("tmet-empty", ".tmet empty", truncate(".tmet", 0)),
    DamageCase("tmet-deleted", ".tmet deleted", delete(".tmet")),
    DamageCase(
        "tmet-bitflip-body", ".tmet: 8 bytes inverted in its metadata", flip(".tmet", 8700, 8)
    ),
    DamageCase(
        "tmet-bitflip-header",
        ".tmet: its universal header's channel name inverted",
        flip(".tmet", 52, 4),
    ),
    DamageCase(
        "tmet-rate-zero",
        ".tmet sampling rate 0 (CRCs fixed)",
        set_metadata("sampling_frequency", 0.0),
    ),
    DamageCase(
        "tmet-rate-negative",
        ".tmet sampling rate -256 (CRCs fixed)",
        set_metadata("sampling_frequency", -256.0),
    ),
    DamageCase(
        "tmet-rate-nan",
        ".tmet sampling rate NaN (CRCs fixed)",
        set_metadata("sampling_frequency", float("nan")),
    ),
    DamageCase(
        "tmet-samples-absurd",
        ".tmet number of samples 2**62 (CRCs fixed)",
        set_metadata("number_of_samples", 2**62),
    ),
    DamageCase(
        "tmet-blocks-absurd",
        ".tmet number of blocks 2**40 (CRCs fixed)",
        set_metadata("number_of_blocks", 2**40),
    ),
    DamageCase("tidx-truncated-half", ".tidx cut to half its size", truncate(".tidx", 0.5)),
    DamageCase(
        "tidx-truncated-mid-entry",
        ".tidx cut inside its first entry",
        truncate(".tidx", HEADER + 20),
    ),
    DamageCase("tidx-empty", ".tidx empty", truncate(".tidx", 0)),
    DamageCase("tidx-deleted", ".tidx deleted", delete(".tidx")),
    DamageCase("tidx-bitflip", ".tidx: 16 bytes of its entries inverted", flip(".tidx", 0.4, 16)),
    DamageCase(
        "tidx-block-bytes-absurd",
        ".tidx block size 4 GB - 1 (CRCs fixed)",
        set_index("block_bytes", 2**32 - 1),
    ),
    DamageCase(
        "tidx-block-samples-absurd",
        ".tidx block of 2**31 samples (CRCs fixed)",
        set_index("number_of_samples", 2**31),
    ),
    DamageCase(
        "tidx-offset-past-end",
        ".tidx block offset past the end of .tdat (CRCs fixed)",
        set_index("file_offset", 2**40),
    ),
    DamageCase(
        "tidx-offset-negative", ".tidx block offset -1 (CRCs fixed)", set_index("file_offset", -1)
    ),
    DamageCase(
        "tidx-blocks-swapped",
        ".tidx first two blocks out of time order (CRCs fixed)",
        swap_index_entries,
    ),
    DamageCase("tdat-truncated-half", ".tdat cut to half its size", truncate(".tdat", 0.5)),
    DamageCase("tdat-header-only", ".tdat cut to its universal header", truncate(".tdat", HEADER)),
    DamageCase("tdat-empty", ".tdat empty", truncate(".tdat", 0)),
    DamageCase("tdat-deleted", ".tdat deleted", delete(".tdat")),
    DamageCase(
        "tdat-bitflip", ".tdat: 1 byte inverted mid-file (a block's CRC fails)", flip(".tdat", 0.5)
    ),
    DamageCase(
        "tdat-bitflips-many",
        ".tdat: 64 bytes inverted at 10 places",
        lambda ch: [flip(".tdat", k / 10 + 0.01, 64)(ch) for k in range(10)],
    ),
    DamageCase(
        "segments-overlap",
        "a second segment, a copy of the first (segments disagree)",
        duplicate_segment,
    ),
    DamageCase("segment-folder-empty", "the segment folder is empty", empty_segment_folder),
    DamageCase(
        "foreign-password",
        "the channel is encrypted with a password the session does not have",
        foreign_channel("other-pw"),
    ),
)
CASE_BY_NAME = {c.name: c for c in CASES}


def damaged_copy(intact: Path, out: Path, case: DamageCase | str, channel: str) -> Path:
    """Copy session `intact` to `out` and damage one channel there.

    Parameters
    ----------
    intact : pathlib.Path
        The session to copy; it is not changed.
    out : pathlib.Path
        Where the copy goes (replaced if present).
    case : DamageCase or str
        One of `CASES`, or its name.
    channel : str
        The channel to damage (its first segment, unless the case says otherwise).

    Returns
    -------
    pathlib.Path
        `out`.
    """
    case = CASE_BY_NAME[case] if isinstance(case, str) else case
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(intact, out)
    case.apply(out / f"{channel}.timd")
    return out
