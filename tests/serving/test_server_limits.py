"""``dfp serve``'s HTTP server under slow and hostile clients: bounded threads, timeouts, limits.

The site is a stand-in with the real API handler over clients that find nothing, so these tests
need no world; the routes over real data are covered by the browser and handler tests.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from pathlib import Path

import pytest

from harness.serve import ForecastServer
from pipeline.serving.handler import Settings, make_handler


class _Nothing:
    def get_item(self, **_):
        return {}

    def start_query_execution(self, **_):
        return {"QueryExecutionId": "q"}

    def get_query_execution(self, **_):
        return {"QueryExecution": {"Status": {"State": "SUCCEEDED"}}}

    def get_query_results(self, **_):
        return {"ResultSet": {"Rows": [{"Data": [{"VarCharValue": "item_id"}]}]}}


class _Site:
    summary: dict = {}
    run_dir = Path(".")

    def __init__(self) -> None:
        self.api = make_handler(_Nothing(), _Nothing(), Settings("t", "d", "s3://b/"))

    def dashboard(self, name: str) -> None:
        return None


@pytest.fixture
def server():
    server = ForecastServer(_Site(), socket_timeout=0.5, workers=4, backlog=8).start()
    yield server
    server.stop()


def request(server: ForecastServer, path: str, method: str = "GET", **kwargs):
    host, port = server.httpd.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=10)
    connection.request(method, path, **kwargs)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, body


def test_an_id_with_an_encoded_newline_is_a_400(server) -> None:
    status, body = request(server, "/api/forecast/P00001%0A")
    assert status == 400 and "item id" in json.loads(body)["error"]
    assert request(server, "/api/forecast/P00001")[0] == 404


def test_a_host_that_is_not_this_machine_is_refused(server, monkeypatch) -> None:
    """A page whose name was rebound to 127.0.0.1 (DNS rebinding) sends its own name as the
    Host: it would read the site as its own. Only this machine's names are answered."""
    status, body = request(server, "/api/forecast/P00001", headers={"Host": "evil.example"})
    assert status == 421 and "Host is not this machine" in json.loads(body)["error"]
    for host in ("127.0.0.1:8080", "localhost", "[::1]:80"):
        assert request(server, "/api/forecast/P00001", headers={"Host": host})[0] == 404
    monkeypatch.setenv("DFP_LOCAL_HOSTS", "forecasts.internal")
    assert request(server, "/", headers={"Host": "forecasts.internal:8080"})[0] == 200
    # A server opened to the network (--host: then only_local_names is off) is reached by the
    # machine's other names; this one stays on loopback, as every server a test starts.
    opened = ForecastServer(_Site(), socket_timeout=0.5, workers=2, only_local_names=False).start()
    try:
        port = opened.httpd.server_address[1]
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/", headers={"Host": f"build-7.example.net:{port}"})
        assert connection.getresponse().status == 200
        connection.close()
    finally:
        opened.stop()


def _serving(server: ForecastServer, before: set[threading.Thread]) -> int:
    """Threads started since ``before`` that serve this server: its pool's workers, or threads
    whose target is bound to it (a thread-per-connection server's). Counting every thread of the
    process also counted those another test's emulator started meanwhile in this worker."""
    return sum(
        1 for t in threading.enumerate()
        if t not in before and (t.name.startswith("dfp-serve")
                                or getattr(getattr(t, "_target", None), "__self__", None)
                                is server.httpd)
    )  # fmt: skip


def test_idle_connections_hold_a_bounded_number_of_threads(server) -> None:
    before = set(threading.enumerate())
    host, port = server.httpd.server_address[:2]
    idle = [socket.create_connection((host, port)) for _ in range(100)]
    try:
        deadline = time.monotonic() + 10
        while server.httpd.refused == 0 and time.monotonic() < deadline:
            assert _serving(server, before) <= 4  # the pool's workers, not one a socket
            time.sleep(0.05)
        assert server.httpd.refused > 0  # beyond workers + backlog: closed at once
        assert _serving(server, before) <= 4
    finally:
        for sock in idle:
            sock.close()
    # Silent connections time out; the server answers again.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if request(server, "/api/forecast/P1")[0] == 404:
                break
        except (ConnectionError, http.client.HTTPException):
            time.sleep(0.2)
    else:
        pytest.fail("the server did not answer after the idle connections timed out")


def test_oversized_request_lines_and_bodies_are_refused(server) -> None:
    status, body = request(server, "/api/products?q=" + "a" * 10_000)
    assert status == 414 and json.loads(body)["error"]
    status, _ = request(server, "/api/products?q=x", body=b"x" * 100)
    assert status == 413
    status, body = request(server, "/api/products?q=x", method="POST")
    assert status == 501 and b"Traceback" not in body


def test_a_port_in_use_fails_the_bind_as_an_oserror_not_an_attributeerror() -> None:
    """The server closes itself when its bind fails; its pool must exist by then (an
    ``AttributeError`` hid the real error, and ``dfp serve`` showed a traceback)."""
    from http.server import BaseHTTPRequestHandler

    from harness.serve import BoundedHTTPServer

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError) as failed:
            BoundedHTTPServer(taken.getsockname(), BaseHTTPRequestHandler)
        assert failed.value.errno is not None  # the bind's own error (address in use)
