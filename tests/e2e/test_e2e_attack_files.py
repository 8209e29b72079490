"""Attacks on a real server through the files themselves: links out of a root, pipes, nesting.

A session folder inside a root whose channel or segment is a link to a recording outside
every root is refused (before: opened and read); a channel file made a FIFO is refused at
once (before: every reader process hung in the pre-open, and the timeouts quarantined
bystanders' recordings); nested roots are judged by the innermost one.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time

import grpc
import numpy as np
import pytest

from mef3lab.errors import CorruptDataError, PathNotServedError
from mef3lab.protocol import gRPCMef3Server_pb2 as cpb
from mef3lab.protocol import gRPCMef3Server_pb2_grpc as cpb_grpc
from mef3lab.server.core.roots import ServedRoots
from mef3lab.testing.synth import synthesize

from .conftest import assert_same, wait_for, worker_pids


@pytest.fixture(scope="module")
def lab(tmp_path_factory, recording):
    """A root `lab` with one honest session, one whose channel links out, one whose segment
    links out, and one whose channel links to another session inside the root."""
    root = tmp_path_factory.mktemp("served") / "lab"
    root.mkdir()
    shutil.copytree(recording, root / "sub-01.mefd")
    channel_out = root / "channel-out.mefd"
    shutil.copytree(recording, channel_out)
    shutil.rmtree(channel_out / "ch003.timd")
    (channel_out / "ch003.timd").symlink_to(recording / "ch003.timd")
    segment_out = root / "segment-out.mefd"
    shutil.copytree(recording, segment_out)
    (segd,) = (segment_out / "ch005.timd").iterdir()
    shutil.rmtree(segd)
    segd.symlink_to(recording / "ch005.timd" / segd.name)
    inside = root / "linked-inside.mefd"
    shutil.copytree(recording, inside)
    shutil.rmtree(inside / "ch001.timd")
    (inside / "ch001.timd").symlink_to(root / "sub-01.mefd" / "ch001.timd")
    return root


def test_a_channel_or_segment_linking_out_of_the_root_is_not_opened(
    launch, connect, lab, recording, reference
):
    srv = launch(root=(f"lab={lab}",), n_process_workers=1, n_prefetch=0)
    c = connect(srv)
    for name, part in (("channel-out", "ch003.timd"), ("segment-out", "ch005.timd/")):
        with pytest.raises(PathNotServedError, match="a link that leads out") as err:
            c.open_file(f"lab/{name}.mefd")
        assert part in str(err.value) and str(recording) not in str(err.value)
        with grpc.insecure_channel(srv.address) as channel:
            reply = cpb_grpc.gRPCMef3ServerStub(channel).OpenFile(
                cpb.OpenFileRequest(file_path=f"lab/{name}.mefd"), timeout=30
            )
        assert not reply.file_opened and "leads out" in reply.error_message
    # A link that stays inside the root is fine, and reads what it links to.
    c.open_file("lab/linked-inside.mefd")
    assert_same(
        c.read_index("lab/linked-inside.mefd", 0, 2560, ["ch001", "ch002"]),
        reference(recording).read_index(["ch001", "ch002"], 0, 2560),
    )


def test_a_fifo_in_a_recording_is_refused_and_blames_nobody_else(
    launch, connect, recording, reference, tmp_path
):
    trap = tmp_path / "trap.mefd"
    shutil.copytree(recording, trap)
    (segd,) = (trap / "ch002.timd").iterdir()
    tmet = next(segd.glob("*.tmet"))
    tmet.unlink()
    os.mkfifo(tmet)
    srv = launch(n_process_workers=2, n_prefetch=0, read_timeout_s=5.0, quarantine_crashes=1)
    victim = connect(srv, client_id="victim")
    victim.open_file(str(recording))
    want = reference(recording).read_index(None, 0, 5120)
    wrong, stop = [], threading.Event()

    def read_along():
        while not stop.is_set():
            if not np.array_equal(victim.read_index(str(recording), 0, 5120), want, True):
                wrong.append(1)

    reader = threading.Thread(target=read_along)
    reader.start()
    try:
        attacker = connect(srv, client_id="attacker")
        for _ in range(3):
            with pytest.raises(CorruptDataError, match="not a regular file"):
                attacker.open_file(str(trap))
    finally:
        stop.set()
        reader.join()
    assert not wrong
    # Nobody's recording was quarantined: a new client opens and reads the victim's.
    fresh = connect(srv, client_id="fresh")
    fresh.open_file(str(recording))
    assert_same(fresh.read_index(str(recording), 0, 5120), want)


def test_nested_roots_are_judged_by_the_innermost(tmp_path, recording):
    data = tmp_path / "data"
    shutil.copytree(recording, data / "ieeg" / "pt.mefd")
    shutil.copytree(recording, data / "eeg.mefd")
    roots = ServedRoots.parse([f"all={data}", f"ieeg={data / 'ieeg'}"], ["ieeg=neuro"])
    pt = str(data / "ieeg" / "pt.mefd")
    for name in ("all/ieeg/pt.mefd", pt, "ieeg/pt.mefd"):
        with pytest.raises(PathNotServedError):
            roots.resolve(name, groups={"students"})  # before: all/... and the absolute path
        assert roots.resolve(name, groups={"neuro"}) == pt
    assert roots.resolve("all/eeg.mefd", groups={"students"}) == str(data / "eeg.mefd")


def test_a_link_swapped_in_while_open_is_not_followed(
    launch, connect, recording, reference, tmp_path_factory
):
    """A channel folder replaced by a link out of the root after the recording was opened.

    Before: the check was made at open only; once the reader processes were replaced (here
    killed, as the out-of-memory killer or an operator would) they opened the outside
    channel and served its values.
    """
    outside = synthesize(
        tmp_path_factory.mktemp("outside") / "secret.mefd",
        channels=8,
        fs=256.0,
        seconds=600.0,
        gaps=0,
        annotations=False,
        seed=99,
    )
    root = tmp_path_factory.mktemp("swap") / "lab"
    root.mkdir()
    session = root / "pt.mefd"
    shutil.copytree(recording, session)
    srv = launch(root=(f"lab={root}",), n_process_workers=2, n_prefetch=0, segment_seconds=10)
    c = connect(srv)
    c.open_file("lab/pt.mefd")
    assert_same(
        c.read_index("lab/pt.mefd", 0, 2560, ["ch002", "ch003"]),
        reference(recording).read_index(["ch002", "ch003"], 0, 2560),
    )

    (session / "ch003.timd").rename(root / "ch003-moved.timd")
    (session / "ch003.timd").symlink_to(outside / "ch003.timd")
    before = worker_pids(srv.pid)
    for pid in before:
        os.kill(pid, signal.SIGKILL)
    wait_for(
        lambda: len(p := worker_pids(srv.pid)) == 2 and not set(p) & set(before),
        what="new readers",
    )
    original = reference(recording).read_index(["ch002", "ch003"], 0, 256 * 600)
    served = []
    for k0 in range(0, 256 * 600, 256 * 40):  # for a few seconds, segments not read before
        try:
            got = c.read_index("lab/pt.mefd", k0, k0 + 2560, ["ch002", "ch003"])
        except PathNotServedError as err:  # read from the files now: refused
            assert "ch003.timd in this recording is a link that leads out" in str(err)
            assert str(outside) not in str(err)
        else:
            served.append(k0)
            assert_same(got, original[:, k0 : k0 + 2560])  # never the outside values
        time.sleep(0.2)
    assert served in ([], [0])  # only what was cached before the swap, if anything
    # A channel not swapped reads its own samples, or is refused with the recording (once the
    # server notices the recording changed, it reopens it whole); never anything else.
    for k0 in (0, 256 * 300):
        try:
            got = c.read_index("lab/pt.mefd", k0, k0 + 2560, ["ch001"])
        except PathNotServedError as err:
            assert "ch003.timd in this recording is a link that leads out" in str(err)
        else:
            assert_same(got, reference(recording).read_index(["ch001"], k0, k0 + 2560))
