"""The embedded world's HTTP server: moto's, speaking HTTP/2 as well as HTTP/1.1 on one port.

AWS serves its endpoints over TLS, where client and server agree on HTTP/2 or HTTP/1.1 by ALPN.
Some SDKs speak only HTTP/2 to some services, e.g. the AWS SDK for JavaScript v3's Kinesis
client (its ``NodeHttp2Handler``). Pointed at a local ``http://`` endpoint, it opens the
connection with HTTP/2's preface at once ("prior knowledge", RFC 9113 §3.3). moto's werkzeug
server read that as a malformed HTTP/1.1 request and the client failed with a bare
``Protocol error``; LocalStack's gateway speaks both.

Here each connection's first bytes decide: HTTP/2's preface is served with the ``h2`` library's
protocol state machine, every stream dispatched to the same WSGI application, through the same
environ werkzeug builds for an HTTP/1.1 request (so the gap-fillers, the safety guard and moto's
header handling see no difference); anything else is werkzeug's HTTP/1.1, unchanged.

Not emulated: TLS (so no ALPN; a client must be willing to send the preface on a plain
connection), the HTTP/1.1 ``Upgrade: h2c`` dance (removed by RFC 9113; no AWS SDK sends it),
server push, stream priorities, and event-stream responses (``SubscribeToShard``: moto has no
such operation and answers it as unknown). The streams of one connection are answered one after
the other, each when its request has fully arrived, as a server with one worker per connection
would.
"""

from __future__ import annotations

import http.client
import io
import logging
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
from h2.connection import ConnectionInputs, ConnectionState
from moto.server import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    ThreadedMotoServer,
    create_backend_app,
)
from werkzeug.serving import make_server
from werkzeug.test import run_wsgi_app

from emulation.athena.rest import RestJsonAthena
from emulation.kinesis.cbor import CborKinesis

logger = logging.getLogger(__name__)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#: Seconds a new connection may take to send enough bytes to tell HTTP/2 from HTTP/1.1.
SNIFF_SECONDS = 10.0
#: Headers that describe one HTTP/1.1 connection and are forbidden in HTTP/2 (RFC 9113 §8.2.2).
_CONNECTION_HEADERS = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}
)
#: The receive window offered to clients: large request bodies (PutRecords, an S3 upload) then
#: arrive without waiting on a window update every 64 KiB.
_WINDOW = 16 * 1024 * 1024


def speaks_http2(connection: socket.socket, timeout: float = SNIFF_SECONDS) -> bool:
    """Whether a new connection opens with HTTP/2's preface. Looks without consuming: the bytes
    stay for whichever protocol reads them. The first three bytes decide (no HTTP/1.1 method
    starts with ``PRI``); a connection that closes or stays silent is left to HTTP/1.1."""
    previous = connection.gettimeout()
    deadline = time.monotonic() + timeout
    try:
        while True:
            connection.settimeout(max(0.001, deadline - time.monotonic()))
            seen = connection.recv(len(PREFACE), socket.MSG_PEEK)
            if not seen or not PREFACE.startswith(seen):
                return False
            if len(seen) >= 3:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)  # a client that sends its first bytes one by one
    except OSError:
        return False
    finally:
        connection.settimeout(previous)


@dataclass
class _Stream:
    """A request arriving on one stream."""

    headers: list[tuple[bytes, bytes]]
    body: io.BytesIO = field(default_factory=io.BytesIO)


@dataclass
class _Answer:
    """A response body still to send: HTTP/2 flow control may hold part of it back."""

    body: memoryview
    sent: int = 0


class _ClosesGracefully(h2.connection.H2ConnectionStateMachine):
    """h2's connection state machine, but a client's GOAWAY leaves the streams it already opened
    to complete, as RFC 9113 §6.8 allows. h2 closes the whole connection on it (python-hyper/h2
    #1181), and Node's HTTP/2 client (the JavaScript SDK's) sends its GOAWAY right after its
    requests (even ahead of their HEADERS frames), then reads the answers and keeps opening the
    window for them: h2 then failed the connection on the first window update or request, and
    every response over 64 KiB was lost."""

    _transitions = {
        **h2.connection.H2ConnectionStateMachine._transitions,
        (ConnectionState.IDLE, ConnectionInputs.RECV_GOAWAY): (None, ConnectionState.IDLE),
        (ConnectionState.SERVER_OPEN, ConnectionInputs.RECV_GOAWAY): (
            None,
            ConnectionState.SERVER_OPEN,
        ),
    }


class WorldRequestHandler(MotoRequestHandler):
    """moto's request handler; a connection opening with HTTP/2's preface is served as HTTP/2."""

    def handle(self) -> None:
        if not speaks_http2(self.connection):
            super().handle()
            return
        try:
            self._serve_http2()
        except (ConnectionError, TimeoutError) as exc:
            self.connection_dropped(exc)

    # ------------------------------------------------------------------ HTTP/2

    def _serve_http2(self) -> None:
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        conn = h2.connection.H2Connection(config=config)
        conn.state_machine = _ClosesGracefully()
        conn.initiate_connection()
        conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: _WINDOW})
        conn.increment_flow_control_window(_WINDOW - 65535)
        self.connection.sendall(conn.data_to_send())
        streams: dict[int, _Stream] = {}
        answers: dict[int, _Answer] = {}
        while True:
            data = self.connection.recv(65536)
            if not data:
                return
            try:
                events = conn.receive_data(data)
            except h2.exceptions.ProtocolError as exc:  # h2 has queued the GOAWAY saying why
                logger.debug("HTTP/2 connection from %s ended: %s", self.client_address, exc)
                self.connection.sendall(conn.data_to_send())
                return
            for event in events:
                if isinstance(event, h2.events.RequestReceived):
                    streams[event.stream_id] = _Stream(list(event.headers))
                elif isinstance(event, h2.events.DataReceived):
                    if event.stream_id in streams:
                        streams[event.stream_id].body.write(event.data)
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    request = streams.pop(event.stream_id, None)
                    answer = request and self._answer(conn, event.stream_id, request)
                    if answer:
                        answers[event.stream_id] = answer
                elif isinstance(event, h2.events.StreamReset):
                    streams.pop(event.stream_id, None)
                    answers.pop(event.stream_id, None)
                # A client leaving without error (its GOAWAY) closes the connection itself once
                # it has its answers: the streams it opened, even behind its GOAWAY, are served.
                elif (
                    isinstance(event, h2.events.ConnectionTerminated)
                    and event.error_code != h2.errors.ErrorCodes.NO_ERROR
                ):
                    return
            _send_what_the_windows_allow(conn, answers)
            self.connection.sendall(conn.data_to_send())

    def _answer(
        self, conn: h2.connection.H2Connection, stream_id: int, request: _Stream
    ) -> _Answer | None:
        """Run the WSGI application on one stream's request; send the response's headers and
        return its body, to be sent as flow control allows (none: the stream is ended)."""
        environ = self._environ(request)
        try:
            app_iter, status, headers = run_wsgi_app(self.server.app, environ, buffered=True)
            body = b"".join(app_iter)
            code = status.split(" ", 1)[0]
            fields = [(name.lower(), value) for name, value in headers.items()
                      if name.lower() not in _CONNECTION_HEADERS]  # fmt: skip
        except Exception:  # what werkzeug's HTTP/1.1 handler answers: a 500, logged
            logger.exception("HTTP/2 request %s %s failed", environ["REQUEST_METHOD"], self.path)
            code = "500"
            body = b'{"__type": "InternalFailure", "message": "the local world failed"}'
            fields = [("content-type", "application/json")]
        if not any(name == "content-length" for name, _ in fields):
            fields.append(("content-length", str(len(body))))
        logger.debug("HTTP/2 %s %s %s", environ["REQUEST_METHOD"], self.path, code)
        conn.send_headers(stream_id, [(":status", code), *fields], end_stream=not body)
        return _Answer(memoryview(body)) if body else None

    def _environ(self, request: _Stream) -> dict[str, Any]:
        """The environ werkzeug (and moto's handler, which keeps underscored header names) makes
        for the same request over HTTP/1.1: the handler's request attributes are set from the
        stream and its own ``make_environ`` builds it."""
        message = http.client.HTTPMessage()
        method, path = "GET", "/"
        for raw_name, raw_value in request.headers:
            name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
            if name == ":method":
                method = value
            elif name == ":path":
                path = value
            elif name == ":authority":
                message["Host"] = value
            elif not name.startswith(":") and name != "content-length":
                message[name] = value
        body = request.body.getvalue()
        message["Content-Length"] = str(len(body))
        self.command, self.path, self.request_version = method, path, "HTTP/2.0"
        self.headers = message
        real_input = self.rfile
        self.rfile = io.BytesIO(body)
        try:
            return self.make_environ()
        finally:
            self.rfile = real_input


def _send_what_the_windows_allow(conn: h2.connection.H2Connection,
                                 answers: dict[int, _Answer]) -> None:  # fmt: skip
    """Send each pending body as far as its stream's and the connection's windows allow; end the
    stream when all of it is out. The rest waits for the client's window updates."""
    for stream_id in list(answers):
        answer = answers[stream_id]
        try:
            while answer.sent < len(answer.body):
                room = min(conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size)
                if room <= 0:
                    break
                chunk = answer.body[answer.sent : answer.sent + room]
                conn.send_data(stream_id, chunk.tobytes())
                answer.sent += len(chunk)
            if answer.sent >= len(answer.body):
                conn.end_stream(stream_id)
                del answers[stream_id]
        except h2.exceptions.StreamClosedError:  # the client reset it meanwhile
            del answers[stream_id]


class WorldServer(ThreadedMotoServer):
    """moto's threaded server with :class:`WorldRequestHandler`, its application also answering
    Athena's REST-JSON protocol (:mod:`emulation.athena.rest`) and Kinesis in CBOR
    (:mod:`emulation.kinesis.cbor`)."""

    def _server_entry(self) -> None:
        app = CborKinesis(RestJsonAthena(DomainDispatcherApplication(create_backend_app)))
        self._server = make_server(self._ip_address, self._port, app, True,
                                   request_handler=WorldRequestHandler)  # fmt: skip
        self._server_ready_event.set()
        self._server.serve_forever()
