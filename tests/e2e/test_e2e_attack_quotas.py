"""Attacks on a real server: quotas taken under made-up client ids.

A client id is the caller's to choose; the open limit counts per identity (the user with
authentication on), so one user opening recordings under many ids locks out only themself.
"""

from __future__ import annotations

import shutil

import pytest

from mef3lab.client import Mef3Client
from mef3lab.errors import TooManyOpenError

from .conftest import assert_same, clean_env

TOKENS = {"mallory": "mallory-token-1b9e", "alice": "alice-token-7f3a"}


def test_one_user_under_many_client_ids_cannot_lock_others_out(
    launch, recording, tmp_path, reference
):
    copies = []
    for i in range(6):
        copies.append(tmp_path / f"copy{i}.mefd")
        shutil.copytree(recording, copies[-1])
    tokens = tmp_path / "tokens"
    tokens.write_text("".join(f"{user} {token}\n" for user, token in TOKENS.items()))
    # Before: 4 per client id, so 8 made-up ids could hold 32 recordings, past max_open_total.
    srv = launch(
        env=clean_env(),
        token_file=str(tokens),
        max_open_per_client=4,
        max_open_total=5,
        n_process_workers=1,
        n_prefetch=0,
    )
    sybils = [
        Mef3Client(srv.address, client_id=f"made-up-{i}", token=TOKENS["mallory"], timeout=60)
        for i in range(8)
    ]
    try:
        opened, refused = 0, []
        for i, c in enumerate(sybils):
            for path in copies[:5]:
                try:
                    c.open_file(str(path))
                    opened += 1
                except TooManyOpenError as exc:
                    refused.append((i, str(exc)))
        # Re-opens of the same recording under other ids hold no new place: 4 distinct ones
        # open under the first id, none more under any other id.
        assert {str(p) for c in sybils for p in c.list_open_files()} == {
            str(p.resolve()) for p in copies[:4]
        }
        assert refused and all(
            "user:mallory has, over all its clients, 4 recordings open" in text
            for _, text in refused
        )
        with Mef3Client(srv.address, token=TOKENS["alice"], timeout=60) as alice:
            alice.open_file(str(copies[5]))  # the server's last place is still there
            assert_same(
                alice.read_index(str(copies[5]), 0, 2560, ["ch003"]),
                reference(recording).read_index(["ch003"], 0, 2560),
            )
    finally:
        for c in sybils:
            c.shutdown()


def test_without_authentication_the_peer_host_is_the_identity(launch, recording, tmp_path):
    copies = []
    for i in range(3):
        copies.append(tmp_path / f"copy{i}.mefd")
        shutil.copytree(recording, copies[-1])
    srv = launch(max_open_per_client=2, n_process_workers=1, n_prefetch=0)
    a = Mef3Client(srv.address, client_id="a", timeout=60)
    b = Mef3Client(srv.address, client_id="b", timeout=60)
    try:
        a.open_file(str(copies[0]))
        b.open_file(str(copies[1]))
        with pytest.raises(TooManyOpenError, match="ipv4:127.0.0.1 has, over all its clients"):
            b.open_file(str(copies[2]))
        a.close_file(str(copies[0]))
        b.open_file(str(copies[2]))  # a place came free
    finally:
        a.shutdown()
        b.shutdown()
