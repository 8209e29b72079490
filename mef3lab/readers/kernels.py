"""The RED kernels as a C function, loaded without numba when this machine compiled them before.

numba's first use in a process costs most of a second of CPU (and of the GIL), even with its
cache: it imports itself and builds its compiler before it loads a cached kernel. The kernel
(`red.decode`) is a C function that allocates nothing; once numba has compiled it, its
object code is kept in a file, and later processes load that with llvmlite alone, in a few
hundredths of a second. Why and how: ``docs/readers.md``.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import logging
import os
import sys
import threading
from pathlib import Path

import numpy as np

from .blockformat import CRC_TABLE, HEADER_BYTES, OK, STATE_FIELDS

log = logging.getLogger(__name__)

_SOURCES = ("red.py", "blockformat.py")  # what the object code is compiled from
#: numba's settings that change what it compiles (bounds checks, say): while one is set (to
#: anything), no object code is kept or loaded.
DEBUG_SWITCHES = ("NUMBA_BOUNDSCHECK", "NUMBA_OPT", "NUMBA_DEBUGINFO", "NUMBA_DISABLE_JIT")
_HEADER_END = b"\n"  # a file is one line of JSON, then the object code
_ELF = b"\x7fELF\x02\x01"  # 64-bit, little-endian: the objects `_undefined` reads
_P, _I = ctypes.c_void_p, ctypes.c_int64
_DECODE = ctypes.CFUNCTYPE(None, _P, _I, *(_P,) * 5, _I, _P, _I, _I, _I, *(_P,) * 6, _I, *(_P,) * 3)


class Kernels:
    """The RED kernel of this process: a C function, and what keeps its code loaded.

    Parameters
    ----------
    address : int
        Where `red.decode` is in this process.
    owner : object
        What owns its code (numba's compiled function, or llvmlite's engine).
    origin : str
        ``"numba"`` (compiled or loaded by numba here) or ``"object code"`` (loaded without it).
    """

    def __init__(self, address: int, owner: object, origin: str) -> None:
        self._decode = _DECODE(address)
        self._owner = owner
        self.origin = origin

    def decode_blocks(
        self,
        buf: np.ndarray,
        offsets: np.ndarray,
        counts: np.ndarray,
        firsts: np.ndarray,
        rows: np.ndarray,
        ends: np.ndarray,
        out: np.ndarray,
        resume: np.ndarray | None = None,
        left: np.ndarray | None = None,
    ) -> tuple[int, int]:
        """Decode the blocks at `offsets` of `buf` into the rows of `out`, without the GIL.

        Blocks are decoded two at a time, their range decoders interleaved: each is a chain
        of dependent divisions, and two independent chains keep the CPU busy while one
        waits. Blocks that need as many samples go in pairs: one needed in part would
        otherwise end early and leave its partner to go on alone. A block is decoded only as
        far as its row needs. If one is damaged, the blocks are decoded again in order, so
        that the first damaged one is reported, as one after another would.

        Parameters
        ----------
        buf : numpy.ndarray
            uint8: bytes of ``.tdat`` files that hold the blocks, one run after another.
        offsets, counts, firsts, rows, ends : numpy.ndarray
            int64, per block: where it starts in `buf`, how many samples it holds (as the
            index lists), where its first sample goes in its row (samples outside the row
            are dropped), its row of `out`, and the end of the bytes read for it (of its
            run of `buf`: a block must end there).
        out : numpy.ndarray
            int32, 2-D, each row contiguous: block b's k-th sample goes to
            ``out[rows[b], firsts[b] + k]``.
        resume : numpy.ndarray or None
            int64, ``(n_blocks, STATE_FIELDS)``: where an earlier call left each block (its
            `left` row), to go on from there; a row whose first field is 0 starts at the
            block's beginning (None: all do). Only for a block whose samples before that
            point all land before its row (``resume[b, 0] <= -firsts[b]``).
        left : numpy.ndarray or None
            int64, ``(n_blocks, STATE_FIELDS)``, written when decoding succeeds: where each
            block stopped, for a later call to go on from; a first field 0 for a block
            decoded to its end (None: not kept).

        Returns
        -------
        status : int
            `blockformat.OK`, or what is wrong with block b (a key of `blockformat.PROBLEMS`).
        b : int
            The block decoding stopped at (-1 when all are decoded).
        """
        args = [np.ascontiguousarray(a, np.int64) for a in (offsets, counts, firsts, rows, ends)]
        buf = np.ascontiguousarray(buf, np.uint8)
        if (
            out.dtype != np.int32
            or out.ndim != 2
            or not out.flags.writeable
            or (out.shape[1] > 1 and out.strides[1] != 4)
            or (out.shape[0] > 1 and (out.strides[0] % 4 or out.strides[0] < 4 * out.shape[1]))
        ):
            raise ValueError("out must be 2-D writeable int32 with contiguous rows, in order")
        # the kernel checks each block against its end; these are what it trusts
        if args[0].size and (args[3].min() < 0 or args[3].max() >= out.shape[0]):
            raise ValueError("a block's row is outside out")
        if args[0].size and (args[0].min() < 0 or args[4].min() < 0 or args[4].max() > buf.size):
            raise ValueError("a block's bytes are outside buf")
        n_blocks, width = args[0].size, out.shape[1]
        resume = _states(resume, n_blocks, args[1], args[4] - args[0])
        left = np.zeros((n_blocks, STATE_FIELDS), np.int64) if left is None else left
        if (
            left.shape != (n_blocks, STATE_FIELDS)
            or left.dtype != np.int64
            or not left.flags.c_contiguous
            or not left.flags.writeable
        ):
            raise ValueError("left must be writeable C-contiguous int64, (blocks, STATE_FIELDS)")
        stride = out.strides[0] // 4 if out.shape[0] > 1 else width
        counts = args[1]
        wanted = np.clip(width - args[2], 0, np.maximum(counts, 0))
        if (resume[:, 0] > np.maximum(0, -args[2])).any():
            raise ValueError("a block resumes after samples its row needs")
        room = int(max(1, (5 * counts + 1).max(initial=1)))
        scratch = np.zeros((2, 257), np.int64), np.zeros((2, 256 * 255), np.uint8)
        diffs = np.empty((2, room), np.uint8)
        result = np.empty(2, np.int64)

        def run(order: np.ndarray) -> tuple[int, int]:
            result[:] = -1, -2  # no status: the kernel did not finish (it never raises)
            self._decode(
                buf.ctypes.data, buf.size, *(a.ctypes.data for a in args), n_blocks,
                out.ctypes.data, out.shape[0], stride, width, CRC_TABLE.ctypes.data,
                order.ctypes.data, wanted.ctypes.data, *(s.ctypes.data for s in scratch),
                diffs.ctypes.data, room, resume.ctypes.data, left.ctypes.data, result.ctypes.data,
            )  # fmt: skip
            if result[0] < 0:
                raise RuntimeError("the RED kernel stopped without a result")
            return int(result[0]), int(result[1])

        status = run(np.argsort(resume[:, 0] - wanted, kind="stable"))
        if status[0] != OK:
            status = run(np.arange(n_blocks, dtype=np.int64))
        return status


def _states(resume: np.ndarray | None, n_blocks: int, counts, spans) -> np.ndarray:
    """`resume` as the kernel takes it, refused unless every state could be the kernel's own.

    A state comes back from another process; one the kernel did not write could make it
    read outside a block or divide by zero, so each field is checked against its block.
    """
    if resume is None:
        return np.zeros((n_blocks, STATE_FIELDS), np.int64)
    resume = np.ascontiguousarray(resume, np.int64)
    if resume.shape != (n_blocks, STATE_FIELDS):
        raise ValueError("resume must be int64 of shape (blocks, STATE_FIELDS)")
    done, at, low, rng, byte, diffs_done, value = resume.T
    on = done > 0
    fine = (
        (done >= 0)
        & (~on | ((done < counts) & (at > HEADER_BYTES) & (at <= spans)))
        & (~on | ((low >= 0) & (low < 2**32) & (rng > 0) & (rng < 2**32)))
        & (~on | ((byte >= 0) & (byte < 256) & (diffs_done >= 0)))
        & (~on | ((value >= -(2**31)) & (value < 2**31)))
    )
    if not fine.all():
        raise ValueError("a block's resume state is not one the kernel left")
    return resume


_lock = threading.Lock()
_loaded: Kernels | None = None


def load() -> Kernels:
    """The kernels of this process: from their object code if kept, else by numba (and kept).

    Once per process; a second call waits for the first.
    """
    global _loaded
    with _lock:
        if _loaded is None:
            _loaded = _from_object_code() or _from_numba()
        return _loaded


def cached() -> bool:
    """Whether object code compiled from this source is kept (for this or another CPU).

    Never while one of numba's debugging switches is set (`DEBUG_SWITCHES`): numba then
    compiles the kernel, and what it compiles is not kept.
    """
    if _debugging():
        return False
    key = _source_key()
    return any(any(d.glob(f"red-{key}-*.o")) for d in _directories() if d.is_dir())


def _debugging() -> bool:
    return any(os.environ.get(name) for name in DEBUG_SWITCHES)


def _directories() -> list[Path]:
    """Where object code is kept, in order.

    numba's cache folder if set, else the package's, or the user's if that is read-only.
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return [Path(os.environ["NUMBA_CACHE_DIR"]) / "mef3lab"]
    return [Path(__file__).parent / "__pycache__", Path.home() / ".cache" / "mef3lab"]


@functools.cache
def _source_key() -> str:
    """A digest of the kernel's source (and Python's build): object code is only for it."""
    here = Path(__file__).parent
    h = hashlib.sha256(sys.implementation.cache_tag.encode())
    for name in _SOURCES:
        h.update((here / name).read_bytes())
    return h.hexdigest()[:16]


def _machine() -> str:
    """The CPU numba compiles for (its name and features): object code is only for it."""
    import llvmlite.binding as llvm

    return f"{llvm.get_host_cpu_name()} {llvm.get_host_cpu_features().flatten()}"


def _file_name(machine: str) -> str:
    return f"red-{_source_key()}-{hashlib.sha256(machine.encode()).hexdigest()[:16]}.o"


def _from_numba() -> Kernels:
    """Compile the kernel with numba, and keep its object code where it can be loaded again.

    Only ELF objects (Linux) are kept: elsewhere every process compiles it.
    """
    from . import red

    address = red.decode.address
    if _debugging():
        return Kernels(address, red.decode, "numba")
    try:
        symbol, code = red.object_code()
        if code.startswith(_ELF):
            _keep(symbol, code)
    except Exception:  # the kernels work the same; the next process loads numba too
        log.warning("the RED kernel's object code could not be kept", exc_info=True)
    return Kernels(address, red.decode, "numba")


def _keep(symbol: str, code: bytes) -> None:
    """Write the object code into the first folder that takes it (atomically)."""
    machine = _machine()
    header = {"symbol": symbol, "machine": machine, "sha256": hashlib.sha256(code).hexdigest()}
    blob = json.dumps(header).encode() + _HEADER_END + code
    for d in _directories():
        path = d / _file_name(machine)
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            d.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(blob)
            os.replace(tmp, path)
            return
        except OSError:
            tmp.unlink(missing_ok=True)
    log.info("no folder took the RED kernel's object code: each process compiles it")


def _from_object_code() -> Kernels | None:
    """The kept object code, loaded by llvmlite.

    None when there is none for this source and CPU, or it is damaged.
    """
    if not cached():
        return None
    try:
        machine = _machine()
    except Exception:
        return None
    for d in _directories():
        path = d / _file_name(machine)
        try:
            blob = path.read_bytes()
        except OSError:
            continue
        try:
            head, code = blob.split(_HEADER_END, 1)
            header = json.loads(head)
            if header["machine"] != machine or header["sha256"] != hashlib.sha256(code).hexdigest():
                raise ValueError("not this machine's, or not whole")
            engine = _link(code)
            address = engine.get_function_address(header["symbol"])
            if not address:
                raise ValueError("it lacks the kernel")
        except Exception as exc:
            log.warning("%s is not loaded (%s): numba compiles the kernel again", path, exc)
            continue
        return Kernels(address, engine, "object code")
    return None


def _link(code: bytes):
    """An llvmlite engine holding `code`, its references that this process lacks stubbed.

    numba's functions call into numba's own C helpers only to raise an exception, which the
    kernel never does (it allocates nothing, and reports problems as a status): those
    references are bound to functions that do nothing.
    """
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    missing = [s for s in _undefined(code) if not llvm.address_of_symbol(s)]
    stubs = "\n".join(f'define ptr @"{s}"() {{\n  ret ptr null\n}}' for s in missing)
    module = llvm.parse_assembly(stubs)
    module.verify()
    target = llvm.Target.from_default_triple().create_target_machine()
    engine = llvm.create_mcjit_compiler(module, target)
    engine.add_object_file(llvm.ObjectFileRef.from_data(code))
    engine.finalize_object()
    return engine


_SYMBOL = np.dtype(
    [("name", "<u4"), ("info", "u1"), ("other", "u1"), ("section", "<u2"), ("value", "<u8"),
     ("size", "<u8")]
)  # fmt: skip


def _undefined(code: bytes) -> list[str]:
    """The names an ELF-64 little-endian object refers to but does not define."""
    if not code.startswith(_ELF):
        raise ValueError("not a 64-bit little-endian ELF object")
    import llvmlite.binding as llvm

    sections = {s.name(): s.data() for s in llvm.ObjectFileRef.from_data(code).sections()}
    symbols = np.frombuffer(sections[b".symtab"], _SYMBOL)
    names = sections[b".strtab"]
    return [
        names[int(s["name"]) : names.index(b"\0", int(s["name"]))].decode()
        for s in symbols
        if s["section"] == 0 and s["name"] != 0
    ]
