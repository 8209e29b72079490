"""The numba engine (the default): mef3io for everything but the samples, which `red` decodes.

Decoding is the server's bottleneck, and `red`'s kernel (loaded by `kernels`, without numba
once it was compiled on this machine) decodes the same blocks with less CPU than
meflib or mef3io. Metadata, passwords, annotations, the block index and error mapping are
mef3io's (`NumbaReader` extends `Mef3ioReader`), so the engines can differ only in the decoded
samples, which the tests compare. A channel this engine cannot decode safely is read by mef3io
exactly as the mef3io engine would (which channels: ``docs/readers.md``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CorruptDataError
from ..model import RAW_NAN, SessionInfo, run_starts
from . import blockformat as fmt
from . import kernels
from .mef3io import Mef3ioReader
from .resume import BlockKey, ResumeStates, Stop

log = logging.getLogger(__name__)

#: Reads of fewer samples (all channels) decode on the calling thread: well under a
#: millisecond, less than handing channels to a thread would save.
PARALLEL_SAMPLES = 50_000


#: Counts decoded at once before they are scaled into a float read (at least one channel):
#: the temporary they take stays small, however long the read.
FLOAT_BATCH_SAMPLES = 1 << 22

#: A read of this many samples (all channels) or more waits for the kernels to load rather
#: than being decoded by mef3io: loading them costs less than mef3io's slower decoding.
KERNELS_FOR_SAMPLES = 4_000_000
#: The kernels load once no read has run for this long (seconds) ...
IDLE_BEFORE_LOADING_S = 0.2
#: ... or this long after the first read at the latest (reads that keep coming, a
#: scroller's read-ahead, say, are work the kernels do faster) ...
LOAD_WITHIN_S = 2.0
#: ... or at once when mef3io has decoded this many samples (all reads): a process reading
#: that much (a 32-kHz page of 64 channels) gains more from them than loading them costs.
LOAD_AFTER_SAMPLES = 2_000_000

#: The kernels, once loaded; None until then.
_kernels: kernels.Kernels | None = None
_load_when_idle = True


def loaded_at_start() -> None:
    """Say that this process loads the kernels itself as it starts (a reader process).

    A process that finds their object code kept (`kernels.cached`) loads them as it opens a
    recording, in a few hundredths of a second, and its reads wait for them. Without it, a
    process reads with mef3io until it has a moment to spare for loading them
    (`_IdleLoader`): numba then takes the GIL for most of a second, and beside an opening or
    a first page it would slow both. A process that started loading them as it started has paid
    most of that by its first read: its reads wait for the kernels instead (its openings,
    which need no kernels, do not), so none is decoded at mef3io's speed, slowed further by
    the loading beside it.
    """
    global _load_when_idle
    _load_when_idle = False


def _load_kernels() -> None:
    """Load the kernels (`kernels.load`), then let reads use them.

    Once per process: a second call (another thread) waits for the first.
    """
    global _kernels
    _kernels = kernels.load()


class _IdleLoader:
    """Loads the kernels on a thread of its own once reads pause, or have decoded much.

    At the first pause (`IDLE_BEFORE_LOADING_S`), once mef3io has decoded
    `LOAD_AFTER_SAMPLES`, or `LOAD_WITHIN_S` after the first read, whichever comes first.

    Reads that come before they are in are decoded by mef3io, as for a channel left out of
    `_blocks`: the first look at a recording waits neither for numba nor for them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # a read began or ended
        self._reading = 0
        self._decoded = 0  # samples mef3io decoded in this process
        self._last = 0.0
        self._thread: threading.Thread | None = None

    @contextmanager
    def reading(self, samples: int) -> Iterator[None]:
        """Around a read of `samples` made before the kernels are in.

        The first one starts the loader.
        """
        with self._lock:
            self._reading += 1
        try:
            yield
        finally:
            with self._lock:
                self._reading -= 1
                self._decoded += samples
                self._last = time.monotonic()
                self._changed.notify_all()
                if self._thread is None and _load_when_idle:
                    self._thread = threading.Thread(
                        target=self._run, name="mef3lab-warm-up", daemon=True
                    )
                    self._thread.start()

    def _run(self) -> None:
        deadline = time.monotonic() + LOAD_WITHIN_S
        with self._changed:
            while self._decoded < LOAD_AFTER_SAMPLES:
                now = time.monotonic()
                quiet = now - self._last if not self._reading else 0.0
                if quiet >= IDLE_BEFORE_LOADING_S or now >= deadline:
                    break
                self._changed.wait(min(deadline - now, IDLE_BEFORE_LOADING_S - quiet))
        try:
            _load_kernels()
        except Exception:  # reads go on without the kernels (mef3io decodes)
            log.exception("loading the decoder's kernels failed")


_idle_loader = _IdleLoader()


@dataclass(frozen=True)
class _Blocks:
    """One channel's blocks in time order, with where each lies on disk."""

    starts: np.ndarray  # µUTC of each block's first sample
    counts: np.ndarray  # samples per block
    offsets: np.ndarray  # byte offset in its segment's .tdat
    sizes: np.ndarray  # block bytes
    segment: np.ndarray  # index into `files`
    files: tuple[Path, ...]  # each segment's .tdat


class NumbaReader(Mef3ioReader):
    """A recording whose samples are decoded by mef3lab's own RED kernels (`red`).

    Opened by ``open_reader(path, engine="numba")``; `Reader` describes the interface.
    """

    engine = "numba"
    warm_up = staticmethod(_load_kernels)

    def _open(self) -> SessionInfo:
        # decoding threads, started by the first large read
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._resume = ResumeStates()
        if _kernels is None and kernels.cached():  # cheap to load: beside the opening
            threading.Thread(target=_load_kernels, name="mef3lab-kernels", daemon=True).start()
        info = super()._open()
        self._blocks: dict[str, _Blocks] = {}
        for c in info.channels:
            blocks = self._index(c.name, c.fs)
            if blocks is not None:
                self._blocks[c.name] = blocks
        return info

    def _share(self) -> dict[str, Any]:
        """`Mef3ioReader._share` and where each channel's blocks lie, in the recording's files."""
        return {
            **super()._share(),
            "blocks": {
                name: replace(b, files=tuple(Path(self._unshadowed(str(f))) for f in b.files))
                for name, b in self._blocks.items()
            },
        }

    def _adopt(self, state: dict[str, Any]) -> None:
        self._pool = None
        self._pool_lock = threading.Lock()
        self._resume = ResumeStates()
        super()._adopt(state)
        self._blocks = dict(state["blocks"])

    def _index(self, name: str, fs: float) -> _Blocks | None:
        """The channel's block table from its .tidx files; None (reason logged): mef3io reads it."""
        # times as mef3io reads them (files may store them offset or negated)
        table = self.block_tables[name]
        segs = table.segments
        if name in self.rate_changes or len({s["units_conversion_factor"] for s in segs}) > 1:
            return self._slow(name, "its segments differ in rate or conversion factor")
        parts, files = [], []
        for i, s in enumerate(segs):
            seg = Path(s["path"])  # <channel>-<n>.segd, holding <channel>-<n>.tidx and .tdat
            tidx = seg / (seg.stem + ".tidx")
            try:
                size = tidx.stat().st_size - fmt.UNIVERSAL_HEADER_BYTES
                if size < 0 or size % fmt.INDEX_DTYPE.itemsize:
                    return self._slow(name, f"{tidx.name} is not a whole number of index entries")
                parts.append(
                    (i, np.fromfile(tidx, fmt.INDEX_DTYPE, offset=fmt.UNIVERSAL_HEADER_BYTES))
                )
            except OSError as exc:
                return self._slow(name, f"{tidx.name} cannot be read ({exc})")
            files.append(seg / (seg.stem + ".tdat"))
        idx = np.concatenate([p for _, p in parts])
        # The index files add where each block lies; they must describe mef3io's blocks.
        if (
            len(idx) != len(table.counts)
            or [len(p) for _, p in parts] != [s["number_of_blocks"] for s in segs]
            or not np.array_equal(idx["number_of_samples"], table.counts)
        ):
            return self._slow(name, "its index files differ from mef3io's block table")
        if (idx["flags"] & (fmt.LEVEL_1 | fmt.LEVEL_2)).any():
            return self._slow(name, "its blocks are encrypted")
        if not _regular(table.starts, table.counts, table.discontinuity, fs):
            return self._slow(name, "its block times do not follow its sample counts")
        return _Blocks(
            table.starts,
            table.counts,
            idx["file_offset"].astype(np.int64),
            idx["block_bytes"].astype(np.int64),
            np.concatenate([np.full(len(p), i) for i, p in parts]),
            tuple(files),
        )

    def close(self) -> None:
        """Stop the decoding threads, then close as `Mef3ioReader` does."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown()
        super().close()

    def resume_from(self, stops: Sequence[tuple]) -> None:
        """Go on from where another reader's kernel stopped in blocks (`Reader.resume_from`)."""
        self._resume.offer(stops)

    @contextmanager
    def stops_left(self) -> Iterator[list[tuple]]:
        """Where reads on this thread stop in blocks at their ends (`Reader.stops_left`)."""
        with self._resume.collecting() as got:
            yield got

    @property
    def decoded_here(self) -> tuple[str, ...]:
        """The channels whose samples mef3lab's kernels decode (the others: mef3io)."""
        return tuple(self._blocks)

    def _slow(self, name: str, why: str) -> None:
        log.info("%s: channel %r is decoded by mef3io: %s", self.path, name, why)
        return None

    # -- reads ------------------------------------------------------------------------------
    def _read_counts(self, names: Sequence[str], t0: int, t1: int, out: np.ndarray) -> None:
        read = Mef3ioReader._read_counts
        if _kernels is None and self._read_while_loading(read, names, t0, t1, out):
            return

        sink = self._resume.sink()

        def run(a: int, b: int) -> None:
            for i in self._decode(names[a:b], t0, out[a:b], sink):
                Mef3ioReader._read_counts(self, [names[a + i]], t0, t1, out[a + i : a + i + 1])

        self._each_channel(len(names), out.shape[1], run)

    def _read_float(self, names: Sequence[str], t0: int, t1: int, out: np.ndarray) -> None:
        read = Mef3ioReader._read_float
        if _kernels is None and self._read_while_loading(read, names, t0, t1, out):
            return

        n = out.shape[1]
        step = max(1, FLOAT_BATCH_SAMPLES // max(1, n))  # channels decoded before scaling

        def run(a: int, b: int) -> None:
            for c in range(a, b, step):
                counts = np.empty((min(b, c + step) - c, n), np.int32)
                slow = self._decode(names[c : c + len(counts)], t0, counts)
                for i, row in enumerate(counts, start=c):
                    if i - c in slow:
                        Mef3ioReader._read_float(self, [names[i]], t0, t1, out[i : i + 1])
                        continue
                    # In float64, rounded once into out's type: exactly
                    # (counts * factor).astype(...), as mef3io computes it.
                    factor = self.info.channel(names[i]).conversion_factor
                    np.multiply(row, factor, out=out[i], casting="unsafe")
                    out[i][row == RAW_NAN] = np.nan

        self._each_channel(len(names), n, run)

    def _read_while_loading(self, read: Callable, names, t0: int, t1: int, out) -> bool:
        """Read through mef3io before the kernels are in; False: the kernels must read it.

        A large read (`KERNELS_FOR_SAMPLES`), any read of a process that loads them as it
        starts (`loaded_at_start`), and any read once their object code is kept (loading it
        costs less than mef3io's slower decoding) waits for them. mef3io reads every channel
        at once and judges some damage otherwise than the kernels (a block it cannot read
        fails every channel of the read, unnamed), so a read it finds damaged waits for the
        kernels and is decoded as it would be once they are loaded: the same samples and the
        same errors, whenever the read comes.
        """
        if out.size >= KERNELS_FOR_SAMPLES or not _load_when_idle or kernels.cached():
            _load_kernels()  # waits for the loading thread if one is at it
            return False
        try:
            with _idle_loader.reading(out.size):
                read(self, names, t0, t1, out)
        except CorruptDataError:
            _load_kernels()
            return False
        return True

    def _each_channel(
        self, n_channels: int, n_samples: int, run: Callable[[int, int], None]
    ) -> None:
        """run(a, b) over runs of channels ``[a, b)``, up to `threads` at once.

        The kernels release the GIL. The calling thread works through the first run itself
        and the decoding threads through the others, so a page of a few blocks per channel
        costs one handoff per thread, not one per channel.
        """
        runs = min(self.threads, n_channels) if n_channels * n_samples >= PARALLEL_SAMPLES else 1
        if runs <= 1:
            run(0, n_channels)
            return
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="mef3lab-decode")
            pool = self._pool
        edges = [n_channels * j // runs for j in range(runs + 1)]
        others = [pool.submit(run, a, b) for a, b in zip(edges[1:-1], edges[2:], strict=True)]
        try:
            run(0, edges[1])
        finally:
            wait(others)  # they write into the same array: none may outlive the read
        for done in others:
            done.result()

    def _decode(
        self, names: Sequence[str], t0: int, out: np.ndarray, sink: list[Stop] | None = None
    ) -> list[int]:
        """Counts of `names` from grid time t0 into the rows of `out`; the rows left to mef3io.

        One call of the kernels decodes them all. Left to mef3io: the rows of channels left
        out of `_blocks` (including those that change rate), and of a channel found to hold
        a block the kernels cannot decode (left out from then on). Damage is reported as when
        channels are decoded one after another: the first in `names` order. A block an
        earlier read stopped in goes on from there (`ResumeStates`); where this one stops
        at the row's end goes to `sink`.
        """
        decoder = _kernels
        if decoder is None:  # mef3io reads them while the kernels load
            return list(range(len(names)))
        slow: list[int] = []
        runs: list[_Run] = []
        damage: CorruptDataError | None = None  # found before decoding: after the blocks before it
        for row, name in enumerate(names):
            b = self._blocks.get(name)
            if b is None:
                slow.append(row)
                continue
            try:
                runs += self._runs_of(name, b, row, t0, out.shape[1])
            except CorruptDataError as exc:
                damage = exc
                break
        out[[r for r in range(len(names)) if r not in slow]] = RAW_NAN
        data, runs, unreadable = _read_runs(runs)
        damage = unreadable or damage  # a file that cannot be read comes before the rest
        while runs:
            offsets, counts, firsts, rows, ends, owner = _arguments(runs)
            # only a block that starts before the row can go on where a read stopped
            early = np.flatnonzero(firsts < 0)
            resume = np.zeros((len(offsets), fmt.STATE_FIELDS), np.int64)
            if early.size and self._resume:
                keys = _block_keys(runs, owner, early, data, offsets)
                resume[early] = self._resume.states(keys, firsts[early])
            left = np.zeros_like(resume)
            status, k = decoder.decode_blocks(
                data, offsets, counts, firsts, rows, ends, out, resume, left
            )
            if status == fmt.OK:
                stopped = np.flatnonzero(left[:, 0])
                at_end = firsts[stopped] + left[stopped, 0] == out.shape[1]
                used = early[resume[early, 0] > 0]
                self._resume.update(
                    _block_keys(runs, owner, stopped, data, offsets), left[stopped], at_end, sink,
                    _block_keys(runs, owner, used, data, offsets),
                )  # fmt: skip
                break
            bad = runs[owner[k]]
            if status != fmt.UNSUPPORTED:
                at = int(bad.offsets[k - int(np.searchsorted(owner, owner[k]))] + bad.lo)
                raise CorruptDataError(
                    f"{self.path}: channel {bad.name!r}: the block at byte {at} of "
                    f"{bad.file.name} cannot be read: {fmt.PROBLEMS[status]}; the file is damaged"
                )
            self._blocks.pop(bad.name, None)
            self._slow(bad.name, fmt.PROBLEMS[status])
            slow.append(bad.row)
            runs = [r for r in runs if r.row != bad.row]  # the others again
        if damage is not None:
            raise damage
        return sorted(slow)

    def _runs_of(self, name: str, b: _Blocks, row: int, t0: int, n: int) -> list[_Run]:
        """The bytes of `name`'s blocks that hold its n grid samples from t0, per segment file."""
        period = 1e6 / self.info.channel(name).fs
        # A block's first sample lands at the grid index nearest its time (half a period decides).
        firsts = np.ceil((b.starts - t0) / period - 0.5).astype(np.int64)
        hit = np.flatnonzero((firsts < n) & (firsts + b.counts > 0))
        runs = []
        for seg in np.unique(b.segment[hit]):
            sel = hit[b.segment[hit] == seg]
            lo, hi = int(b.offsets[sel].min()), int((b.offsets[sel] + b.sizes[sel]).max())
            size = b.files[seg].stat().st_size  # an index may place blocks past the file's end
            if lo >= size:
                raise CorruptDataError(
                    f"{self.path}: channel {name!r}: the index places blocks at byte {lo} of "
                    f"{b.files[seg].name}, which has {size} bytes; the files are damaged"
                )
            runs.append(
                _Run(
                    name,
                    row,
                    int(seg),
                    b.files[seg],
                    lo,
                    min(hi, size) - lo,
                    b.offsets[sel] - lo,
                    b.counts[sel],
                    firsts[sel],
                )
            )
        return runs


@dataclass(frozen=True)
class _Run:
    """Consecutive bytes of one segment file, holding blocks of one channel a read needs."""

    name: str
    row: int  # the channel's row of the read
    segment: int  # which of the channel's segments
    file: Path
    lo: int  # where its bytes start in `file`
    size: int  # how many to read (the file may hold fewer than its blocks say)
    offsets: np.ndarray  # each block's start, from `lo`
    counts: np.ndarray
    firsts: np.ndarray  # where each block's first sample goes in the row
    base: int = 0  # once read: where its bytes start in the read's buffer ...
    got: int = 0  # ... and how many were read


def _read_runs(runs: list[_Run]) -> tuple[np.ndarray, list[_Run], CorruptDataError | None]:
    """The runs' bytes, one after another in one buffer, and the runs read (`base`, `got`).

    Reading stops at a run whose file cannot be read: the runs before it, and its error.
    """
    data = np.empty(sum(r.size for r in runs), np.uint8)
    done, base = [], 0
    for r in runs:
        try:
            got = _pread_into(r.file, r.lo, data[base : base + r.size])
        except CorruptDataError as exc:
            return data, done, exc
        done.append(replace(r, base=base, got=got))
        base += r.size
    return data, done, None


def _arguments(runs: list[_Run]) -> tuple[np.ndarray, ...]:
    """The read runs' blocks as `Kernels.decode_blocks` takes them, and which run each is of.

    (offsets, counts, firsts, rows, ends, owner), int64: a block ends within what was read
    of its run.
    """

    def each(f) -> np.ndarray:
        return np.concatenate([f(i, r) for i, r in enumerate(runs)]).astype(np.int64)

    return (
        each(lambda i, r: r.offsets + r.base),
        each(lambda i, r: r.counts),
        each(lambda i, r: r.firsts),
        each(lambda i, r: np.full(len(r.offsets), r.row)),
        each(lambda i, r: np.full(len(r.offsets), r.base + r.got)),
        each(lambda i, r: np.full(len(r.offsets), i)),
    )


def _block_keys(
    runs: list[_Run], owner: np.ndarray, blocks: np.ndarray, data: np.ndarray, at: np.ndarray
) -> list[BlockKey]:
    """Blocks of the read runs (indices in `_arguments` order) as `ResumeStates` knows them.

    With each block's CRC (its first 4 bytes in `data`, at `at`): a block written again in
    its place is not resumed with the old one's state.
    """
    first = np.searchsorted(owner, owner[blocks])  # each one's run's first block
    return [
        (r.name, r.segment, r.lo + int(r.offsets[b - f]), _crc_of(data, int(at[b])))
        for r, b, f in zip((runs[i] for i in owner[blocks]), blocks, first, strict=True)
    ]


def _crc_of(data: np.ndarray, at: int) -> int:
    """The block CRC stored at `at` of `data` (0 where fewer than 4 bytes were read)."""
    return int.from_bytes(data[at : at + 4].tobytes(), "little") if at + 4 <= data.size else 0


def _regular(starts: np.ndarray, counts: np.ndarray, disc: np.ndarray, fs: float) -> bool:
    """True when each block starts where its run's sample count puts it (±1 µs)."""
    new = run_starts(starts, counts, disc, fs)
    first = np.maximum.accumulate(np.where(new, np.arange(len(starts)), 0))
    before = np.concatenate([[0], np.cumsum(counts)[:-1]])  # samples before each block
    expected = starts[first] + (before - before[first]) * (1e6 / fs)
    return bool((np.abs(starts - expected) <= 1.0).all())


def _pread_into(path: Path, offset: int, out: np.ndarray) -> int:
    """Bytes of `path` from `offset` into `out` (uint8); how many (fewer if the file is shorter)."""
    try:
        with open(path, "rb", buffering=0) as f:
            f.seek(offset)
            return f.readinto(memoryview(out)) or 0
    except OSError as exc:
        raise CorruptDataError(f"{path} cannot be read: {exc}") from exc
