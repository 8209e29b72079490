"""The server's HTTP side on real listeners: status JSON and page, Prometheus metrics, and
who sees paths.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mef3lab import __version__
from mef3lab.client import Mef3Client
from mef3lab.server.app import Server


class _Unix(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=10)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(self._path)


def _get_unix(path: str, route: str) -> tuple[int, str, bytes]:
    conn = _Unix(path)
    conn.request("GET", route)
    reply = conn.getresponse()
    return reply.status, reply.getheader("Content-Type"), reply.read()


@pytest.fixture(scope="module")
def server(tmp_path_factory, recording):
    folder = tmp_path_factory.mktemp("http")
    with (
        Server(
            port=0, http_port=0, http_socket=str(folder / "http.sock"), n_process_workers=1
        ) as srv,
        Mef3Client(srv.address) as c,
    ):
        c.open_file(str(recording))
        c.get_signal_segment(str(recording), 0)
        c.get_signal_segment(str(recording), 0)
        yield srv


def test_status_json_on_the_unix_socket_shows_paths_to_its_own_user(server, recording):
    code, kind, body = _get_unix(server.config.http_socket, "/api/status")
    s = json.loads(body)
    assert code == 200 and kind == "application/json"
    assert s["version"] == __version__ and s["address"] == server.address and s["paths_shown"]
    assert s["recordings"] == [
        {
            "path": str(recording),
            "channels": 8,
            "rates_hz": [256.0],
            "duration_s": 600.0,
            "encrypted": False,
            "clients": 1,
        }
    ]
    # one segment read twice: a miss, then a hit; the cache holds it as one entry per channel
    assert s["cache"]["hit_rate"] == 0.5 and s["cache"]["entries"] == 8 and s["clients"] == 1
    assert s["workers"]["alive"] == 1 and len(s["workers"]["pids"]) == 1
    assert (
        s["stats"]["hits"] == 1 and s["stats"]["misses"] == 1
    )  # every engine stat, whatever it holds


def test_tcp_callers_see_what_is_open_but_not_where(server, recording):
    url = server.http_urls[0]
    assert url.startswith("http://127.0.0.1:")
    s = json.load(urllib.request.urlopen(url + "api/status"))
    assert (
        not s["paths_shown"]
        and s["recordings"][0]["path"] is None
        and s["recordings"][0]["channels"] == 8
    )
    page = urllib.request.urlopen(url).read().decode()
    assert str(recording) not in page and "(path hidden)" in page
    assert str(recording) not in urllib.request.urlopen(url + "metrics").read().decode()


def test_status_page_refreshes_itself_and_links_its_data(server, recording):
    code, kind, body = _get_unix(server.config.http_socket, "/")
    page = body.decode()
    assert code == 200 and kind.startswith("text/html")
    assert (
        "http-equiv='refresh'" in page and "href='api/status'" in page and "href='metrics'" in page
    )
    assert str(recording) in page and "hit rate 50%" in page


def test_metrics_parse_as_prometheus_text(server):
    _, kind, body = _get_unix(server.config.http_socket, "/metrics")
    assert kind.startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert (
        families["mef3lab_hits"].type == "counter"
        and families["mef3lab_hits"].samples[0].value == 1
    )
    assert (
        families["mef3lab_cache_bytes"].type == "gauge"
        and families["mef3lab_cache_bytes"].samples[0].value > 0
    )
    assert families["mef3lab_server_info"].samples[0].labels == {"version": __version__}


def test_unknown_route_is_a_404_that_says_what_exists(server):
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(server.http_urls[0] + "nope")
    assert err.value.code == 404 and "/api/status" in err.value.read().decode()


def test_a_live_socket_is_not_taken_over_and_a_stale_one_is_replaced(tmp_path, server):
    with pytest.raises(OSError, match="already listening"):
        Server(port=0, http_socket=server.config.http_socket, n_process_workers=0).start()
    stale = tmp_path / "stale.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(stale))
    s.close()  # a socket file nobody listens on (a server that was killed)
    with Server(port=0, http_socket=str(stale), n_process_workers=0) as srv:
        assert _get_unix(str(stale), "/api/status")[0] == 200 and srv.http_urls == [f"unix:{stale}"]
    assert not os.path.exists(stale)  # removed when the server stops


def test_unix_only_server_has_a_unix_address(tmp_path, recording):
    with Server(port=-1, unix_socket=str(tmp_path / "g.sock"), n_process_workers=0) as srv:
        assert srv.address == f"unix:{tmp_path / 'g.sock'}"
        with Mef3Client(srv.address) as c:
            assert c.healthy() and c.open_file(str(recording)).names[0] == "ch000"


def test_port_minus_one_needs_a_unix_socket():
    with pytest.raises(ValueError, match="needs a Unix socket"):
        Server(port=-1, n_process_workers=0)
