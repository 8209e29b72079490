"""Encrypted sessions: level 2 on both engines, level 1 through mef3io, typed refusals."""

from __future__ import annotations

import numpy as np
import pytest

from mef3lab.errors import Level1PasswordError, PasswordError
from mef3lab.readers import open_reader


def _check_data(r, plan_, expected_read):
    g = r.info.rate_groups[0].grid
    np.testing.assert_array_equal(r.read(), expected_read(plan_, r.info.names, g, 0, g.n_samples))


def test_level2_password_on_both_engines(
    encrypted_recording, encrypted_plan, passwords, engine, expected_read
):
    with open_reader(encrypted_recording, passwords.level2, engine=engine) as r:
        assert r.info.encrypted
        assert len(r.info.annotations) == len(encrypted_plan.annotations)
        _check_data(r, encrypted_plan, expected_read)


def test_level1_password_with_the_default_engine(
    encrypted_recording, encrypted_plan, passwords, expected_read
):
    with open_reader(encrypted_recording, passwords.level1) as r:
        assert r.engine == "numba"
        assert r.info.encrypted
        _check_data(r, encrypted_plan, expected_read)
        assert r.info.annotations == () and r.annotations_locked  # records need level 2


def test_level1_password_with_mef3io(encrypted_recording, encrypted_plan, passwords, expected_read):
    with open_reader(encrypted_recording, passwords.level1, engine="mef3io") as r:
        _check_data(r, encrypted_plan, expected_read)


def test_level1_password_with_pymef_explicitly_refused(encrypted_recording, passwords):
    with pytest.raises(Level1PasswordError, match="level-1"):
        open_reader(encrypted_recording, passwords.level1, engine="pymef")


@pytest.mark.parametrize("password", [None, "", "wrong-password", "a-much-too-long-password"])
@pytest.mark.parametrize("which", ["pymef", "mef3io", None])
def test_wrong_or_missing_password(encrypted_recording, password, which):
    with pytest.raises(PasswordError) as err:
        open_reader(encrypted_recording, password, engine=which)
    assert not isinstance(err.value, Level1PasswordError)
    assert str(encrypted_recording) in str(err.value)
    assert password is None or password == "" or password not in str(err.value)  # never echoes it


def test_plain_session_ignores_a_password(recording, engine):
    with open_reader(recording, "whatever", engine=engine) as r:
        assert not r.info.encrypted
        assert r.read("ch000", None, r.info.start_uutc + 1_000_000).shape == (1, 256)
