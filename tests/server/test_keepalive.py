"""The server accepts the keepalive pings mef3lab's own client sends during a long call."""

from mef3lab.client.mef3client import CHANNEL_OPTIONS
from mef3lab.server.app import GRPC_OPTIONS


def test_the_server_accepts_the_clients_keepalive_pings():
    client, server = dict(CHANNEL_OPTIONS), dict(GRPC_OPTIONS)
    # gRPC's default minimum (5 min) would answer the client's second ping within a call that
    # sends nothing for a minute with GOAWAY "too_many_pings", failing every call of the client.
    accepted = server["grpc.http2.min_recv_ping_interval_without_data_ms"]
    assert accepted < client["grpc.keepalive_time_ms"]
