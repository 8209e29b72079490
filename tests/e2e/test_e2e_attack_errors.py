"""Attacks on a real server through its error messages: what they say, and what they give away.

A filesystem condition is a status a caller can act on, never INTERNAL; a rooted server's
errors name recordings as clients do (``ROOT/path``), never by the server's own paths.
"""

from __future__ import annotations

import shutil

import grpc
import pytest

from mef3lab.protocol import gRPCMef3Server_pb2 as cpb
from mef3lab.protocol import gRPCMef3Server_pb2_grpc as cpb_grpc
from mef3lab.protocol import mef3lab_pb2 as pb
from mef3lab.protocol import mef3lab_pb2_grpc as pb_grpc


def test_a_name_the_system_refuses_is_an_invalid_argument_not_internal(server, tmp_path):
    # Before: INTERNAL, "internal server error: [Errno 36] File name too long".
    with grpc.insecure_channel(server.address) as channel:
        for name in (str(tmp_path / ("x" * 300 + ".mefd")), "/" + "y" * 5000 + ".mefd"):
            with pytest.raises(grpc.RpcError) as err:
                pb_grpc.Mef3LabStub(channel).Open(pb.OpenRequest(path=name), timeout=30)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "File name too long" in err.value.details()
            reply = cpb_grpc.gRPCMef3ServerStub(channel).OpenFile(
                cpb.OpenFileRequest(file_path=name), timeout=30
            )
            assert not reply.file_opened and "File name too long" in reply.error_message
            assert "internal server error" not in reply.error_message


def test_a_rooted_server_never_shows_its_paths_in_errors(
    launch, encrypted_recording, passwords, tmp_path
):
    root = tmp_path / "served"
    shutil.copytree(encrypted_recording, root / "sub-07.mefd")
    srv = launch(root=(f"clinic={root}",), n_process_workers=1, n_prefetch=0)
    with grpc.insecure_channel(srv.address) as channel:
        for password in ("", "wrong"):
            with pytest.raises(grpc.RpcError) as err:
                pb_grpc.Mef3LabStub(channel).Open(
                    pb.OpenRequest(path="clinic/sub-07.mefd", password=password), timeout=30
                )
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
            text = err.value.details()
            assert "clinic/sub-07.mefd" in text and str(tmp_path) not in text, text
            md = (("x-mef3lab-password", password),) if password else ()
            reply = cpb_grpc.gRPCMef3ServerStub(channel).OpenFile(
                cpb.OpenFileRequest(file_path="clinic/sub-07.mefd"), metadata=md, timeout=30
            )
            assert not reply.file_opened and reply.error_message
            assert str(tmp_path) not in reply.error_message, reply.error_message
        info = pb_grpc.Mef3LabStub(channel).Open(
            pb.OpenRequest(path="clinic/sub-07.mefd", password=passwords.level2), timeout=30
        )
        assert len(info.channels) == 3
