"""Attacks on a real server's hub authentication: a flood of made-up tokens, a hub that hangs.

The hub here is a small HTTP server answering ``/hub/api/user`` as JupyterHub does (slowly
for tokens it does not know, or not at all when told to hang). A known user, once checked,
is answered from the server's own cache whatever the flood; a hung hub costs a new token
`UNAVAILABLE` within the check's timeout, not the hub's.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import numpy as np
import pytest

from mef3lab.protocol import mef3lab_pb2 as pb
from mef3lab.protocol import mef3lab_pb2_grpc as pb_grpc

from .conftest import clean_env

ALICE = "alice-hub-token-41d2"


class FakeHub:
    """``GET /hub/api/user``: alice for her token, 403 (after `slow_s`) for others; or hangs."""

    def __init__(self, slow_s: float = 0.3) -> None:
        self.slow_s, self.hang, self.asked = slow_s, threading.Event(), 0
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # the http.server spelling
                hub.asked += 1
                if hub.hang.is_set():
                    time.sleep(60)
                token = self.headers.get("Authorization", "").partition(" ")[2]
                if token == ALICE:
                    body = {"kind": "user", "name": "alice", "groups": [], "scopes": []}
                    code = 200
                else:
                    time.sleep(hub.slow_s)
                    body, code = {"status": 403, "message": "no such token"}, 403
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hub/api"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def hub():
    h = FakeHub()
    yield h
    h.close()


def stats_call(address: str, token: str, timeout: float = 30) -> float:
    """Seconds one GetStats call took as the holder of `token` (raises grpc.RpcError)."""
    with grpc.insecure_channel(address) as channel:
        t0 = time.monotonic()
        pb_grpc.Mef3LabStub(channel).GetStats(
            pb.StatsRequest(), metadata=(("authorization", f"Bearer {token}"),), timeout=timeout
        )
        return time.monotonic() - t0


@pytest.fixture
def hub_server(launch, hub):
    env = clean_env(JUPYTERHUB_API_TOKEN="service-token", JUPYTERHUB_API_URL=hub.url)
    return launch(env=env, hub_auth=True, n_process_workers=1, n_prefetch=0)


def test_a_flood_of_made_up_tokens_does_not_slow_a_known_user(hub_server, hub):
    # Before: every check, cached ones too, went through HubAuth's one worker: a cached user's
    # call took seconds during such a flood.
    stats_call(hub_server.address, ALICE)  # checked once: cached from now on
    stop, refusals = threading.Event(), []

    def flood():
        with grpc.insecure_channel(hub_server.address) as channel:
            stub = pb_grpc.Mef3LabStub(channel)
            while not stop.is_set():
                md = (("authorization", f"Bearer {uuid.uuid4().hex}"),)
                try:
                    stub.GetStats(pb.StatsRequest(), metadata=md, timeout=30)
                except grpc.RpcError as err:
                    refusals.append(err.code())

    attackers = [threading.Thread(target=flood) for _ in range(16)]
    for t in attackers:
        t.start()
    try:
        time.sleep(1.0)
        latencies = [stats_call(hub_server.address, ALICE) for _ in range(40)]
    finally:
        stop.set()
        for t in attackers:
            t.join()
    p95 = float(np.percentile(latencies, 95))
    p50 = float(np.median(latencies))
    print(f"\nknown user during the flood: p50 {p50 * 1e3:.0f} ms, p95 {p95 * 1e3:.0f} ms")
    assert p95 < 1.0, latencies
    assert hub.asked > 16  # the flood did reach the hub, and was refused
    assert grpc.StatusCode.UNAUTHENTICATED in refusals
    assert set(refusals) <= {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.UNAVAILABLE}


def test_a_hung_hub_answers_unavailable_in_time_and_spares_known_users(hub_server, hub):
    # Before: every call waited as long as the hub hung (45 s observed).
    stats_call(hub_server.address, ALICE)
    hub.hang.set()
    t0 = time.monotonic()
    with pytest.raises(grpc.RpcError) as err:
        stats_call(hub_server.address, "never-seen-token")
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "did not answer within 5 s" in err.value.details()
    assert time.monotonic() - t0 < 15.0
    assert stats_call(hub_server.address, ALICE) < 2.0  # still cached
