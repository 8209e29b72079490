"""TLS: a real server with a certificate of a CA made here; clients trust it by MEF3LAB_TLS_CA."""

from __future__ import annotations

import pytest

from mef3lab.client import Mef3Client
from mef3lab.errors import AuthenticationError, ServerUnavailableError

from ._pki import write_pki
from .conftest import assert_same, clean_env

TOKEN = "tls-token-8e21"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """Files: ca.pem (the lab's CA), other-ca.pem (another CA), server.pem/.key (signed by ca)."""
    return write_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_server(module_launch, pki):
    return module_launch(
        env=clean_env(MEF3LAB_TOKEN=TOKEN),
        n_process_workers=1,
        n_prefetch=0,
        tls_cert=str(pki / "server.pem"),
        tls_key=str(pki / "server.key"),
    )


def test_a_client_trusting_the_ca_reads_over_tls(
    tls_server, pki, recording, reference, monkeypatch
):
    monkeypatch.setenv("MEF3LAB_TLS_CA", str(pki / "ca.pem"))
    monkeypatch.setenv("MEF3LAB_TOKEN", TOKEN)
    for address in (tls_server.address, tls_server.address.replace("127.0.0.1", "localhost")):
        with Mef3Client(address) as c:
            c.open_file(str(recording))
            assert_same(
                c.read_index(str(recording), 100, 4100, ["ch005"]),
                reference(recording).read_index(["ch005"], 100, 4100),
            )


def test_tls_still_needs_the_token(tls_server, pki, recording):
    with (
        Mef3Client(tls_server.address, token=None, tls_ca=(pki / "ca.pem").read_bytes()) as c,
        pytest.raises(AuthenticationError),
    ):
        c.open_file(str(recording))


@pytest.mark.parametrize("ca", [None, "other-ca.pem"])
def test_a_client_that_does_not_trust_the_certificate_cannot_connect(
    tls_server, pki, recording, ca
):
    trusted = None if ca is None else (pki / ca).read_bytes()
    with (
        Mef3Client(tls_server.address, token=TOKEN, tls_ca=trusted, timeout=10) as c,
        pytest.raises(ServerUnavailableError),
    ):
        c.open_file(str(recording))


def test_a_certificate_without_its_key_is_refused(launch, pki):
    with pytest.raises(RuntimeError, match="needs both --tls-cert and --tls-key"):
        launch(tls_cert=str(pki / "server.pem"))
