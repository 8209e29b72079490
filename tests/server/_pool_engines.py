"""A reader engine for the pool tests: mef3io, plus files that make a read hang or crash.

A recording misbehaves under this engine when its folder holds a marker file:

* ``hang-on-read``: a read writes its process id into the marker, then sleeps (to be killed)
  for as long as the marker exists (at most two minutes): removing it lets a hung read finish;
* ``hang-on-open``: the same when the recording is opened;
* ``segfault-on-read``: a read kills its own process with SIGSEGV, as pymef does on some
  damaged blocks;
* ``read-log``: every open and read appends a line to it (what ran, in which order).

`StillbornContext` is a start method whose workers die before they can report for work,
as in a broken environment.
"""

from __future__ import annotations

import multiprocessing.context
import os
import signal
import time

from mef3lab.readers.mef3io import Mef3ioReader

ENGINE = "misbehaving"


class MisbehavingReader(Mef3ioReader):
    engine = ENGINE

    def _open(self):
        self._log(f"open {os.getpid()}")
        self._hang(self.path / "hang-on-open")
        return super()._open()

    def _read_float(self, names, t0, t1, out):
        self._misbehave(names, t0, t1)
        return super()._read_float(names, t0, t1, out)

    def _read_counts(self, names, t0, t1, out):  # what the server's segment store reads
        self._misbehave(names, t0, t1)
        return super()._read_counts(names, t0, t1, out)

    def _misbehave(self, names, t0, t1) -> None:
        self._log(f"read {','.join(names)} {t0} {t1}")
        self._hang(self.path / "hang-on-read")
        if (self.path / "segfault-on-read").exists():
            os.kill(os.getpid(), signal.SIGSEGV)

    @staticmethod
    def _hang(marker) -> None:
        if marker.exists():
            marker.write_text(str(os.getpid()))
            end = time.monotonic() + 120
            while marker.exists() and time.monotonic() < end:
                time.sleep(0.05)

    def _log(self, line: str) -> None:
        log = self.path / "read-log"
        if log.exists():
            with open(log, "a") as f:
                f.write(line + "\n")


#: What `ReaderPool(engines=...)` takes to make this engine available in its workers.
SPEC = {ENGINE: f"{__name__}:MisbehavingReader"}


class _StillbornProcess(multiprocessing.context.SpawnProcess):
    def run(self):
        os._exit(3)


class StillbornContext(multiprocessing.context.SpawnContext):
    Process = _StillbornProcess
