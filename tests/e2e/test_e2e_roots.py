"""A real server with served roots: both APIs open only what is under a root; List browses them."""

from __future__ import annotations

import shutil

import grpc
import pytest

from mef3lab.errors import NoRootsError, PathNotServedError, RecordingNotFoundError
from mef3lab.protocol import gRPCMef3Server_pb2 as cpb
from mef3lab.protocol import gRPCMef3Server_pb2_grpc as cpb_grpc

from .conftest import assert_same


@pytest.fixture(scope="module")
def served(tmp_path_factory, recording):
    """eeg/ holding a copy of `recording` as sub-01.mefd (and a folder), a link out of it, and the
    original outside.
    """
    base = tmp_path_factory.mktemp("served")
    eeg = base / "eeg"
    shutil.copytree(recording, eeg / "sub-01.mefd")
    (eeg / "late").mkdir()
    (eeg / "escape.mefd").symlink_to(recording)
    return eeg


@pytest.fixture(scope="module")
def rooted(module_launch, served):
    return module_launch(n_process_workers=1, n_prefetch=0, root=(f"lab={served}",))


def test_open_by_root_name_relative_or_absolute_reads_the_recording(
    rooted, connect, served, recording, reference
):
    c = connect(rooted)
    for name in ("lab/sub-01.mefd", "sub-01.mefd", str(served / "sub-01.mefd")):
        info = c.open_file(name)
        assert info.path == str(served / "sub-01.mefd")
        assert_same(
            c.read_index(name, 1000, 3000, ["ch003", "ch000"]),
            reference(recording).read_index(["ch003", "ch000"], 1000, 3000),
        )
    assert c.list_open_files() == [
        str(served / "sub-01.mefd")
    ]  # one recording, however it was named
    with pytest.raises(RecordingNotFoundError):
        c.open_file("lab/sub-99.mefd")  # inside the root: not found is no secret


@pytest.mark.parametrize(
    "how", ["absolute outside", "dotdot", "symlink out", "percent", "nul", "missing outside"]
)
def test_paths_outside_the_root_are_refused_by_both_apis(rooted, connect, served, recording, how):
    name = {
        "absolute outside": str(recording),
        "dotdot": "lab/../../recordings/plain.mefd",
        "symlink out": "lab/escape.mefd",
        "percent": "lab/%2e%2e/%2e%2e/plain.mefd",
        "nul": "lab/sub-01.mefd\0",
        "missing outside": str(recording.parent / "nothing.mefd"),
    }[how]
    with pytest.raises(PathNotServedError) as err:
        connect(rooted).open_file(name)
    assert str(err.value).startswith(
        f"{name!r} is not in a folder this server serves you"
    )  # nothing else said
    with grpc.insecure_channel(rooted.address) as channel:
        reply = cpb_grpc.gRPCMef3ServerStub(channel).OpenFile(
            cpb.OpenFileRequest(file_path=name), timeout=30
        )
    assert not reply.file_opened and "not in a folder this server serves" in reply.error_message


def test_list_browses_the_roots(rooted, connect):
    c = connect(rooted)
    assert c.list_recordings() == [("lab", False)]
    assert c.list_recordings("lab") == [
        ("lab/late", False),
        ("lab/sub-01.mefd", True),
    ]  # the link out is hidden
    assert c.list_recordings("lab/late") == []
    with pytest.raises(PathNotServedError):
        c.list_recordings("lab/..")


def test_a_server_without_roots_opens_any_path_and_has_nothing_to_list(server, connect, recording):
    c = connect(server)
    assert c.open_file(str(recording)).path == str(recording)
    with pytest.raises(NoRootsError):
        c.list_recordings()
