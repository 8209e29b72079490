"""Attacks on a real server through an encrypted recording's two passwords.

A level-1 password (the samples) must never show what only the level-2 password (the
subject: annotations, the real clock) shows, whoever opened the recording first; and a
level-2 holder always sees it all.
"""

from __future__ import annotations

import pytest

from mef3lab.readers import open_reader

from .conftest import assert_same


@pytest.mark.parametrize("first", ["level2", "level1"])
def test_each_password_sees_its_own_level_whoever_opened_first(
    launch, connect, encrypted_recording, passwords, first
):
    path = str(encrypted_recording)
    direct = {
        level: open_reader(path, getattr(passwords, level), "mef3io")
        for level in ("level1", "level2")
    }
    try:
        assert len(direct["level2"].info.annotations) > 0 == len(direct["level1"].info.annotations)
        srv = launch(n_process_workers=1, n_prefetch=0)
        order = [first, "level1" if first == "level2" else "level2"]
        clients = {level: connect(srv, client_id=f"holder-{level}") for level in order}
        for level in order:  # before: the second holder got the first holder's view
            info = clients[level].open_file(path, getattr(passwords, level))
            want = direct[level].info
            assert len(info.annotations) == len(want.annotations), level
            assert info.deidentified == want.deidentified, level
            assert info.start_uutc == want.start_uutc, level
        for level in order:
            assert_same(
                clients[level].read_index(path, 0, 3000), direct[level].read_index(None, 0, 3000)
            )
        clients[first].close_file(path)  # the other holder reads on, with its own view
        other = order[1]
        assert len(clients[other].info(path).annotations) == len(direct[other].info.annotations)
        assert_same(
            clients[other].read_index(path, 5000, 6000), direct[other].read_index(None, 5000, 6000)
        )
    finally:
        for r in direct.values():
            r.close()
