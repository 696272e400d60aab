"""The embedded world's endpoint speaks HTTP/2 with prior knowledge beside HTTP/1.1, as clients that
only speak HTTP/2 to a service need (the JavaScript SDK's Kinesis client): driven here by Node's own
HTTP/2 client (nghttp2, what that SDK sends through), on the port boto3 uses over HTTP/1.1."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import socket
import subprocess
import threading
import time

import pytest
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from emulation import World
from emulation.server import PREFACE, speaks_http2
from tests.conftest import embedded_only

# One HTTP/2 session to the world: the requests go out at once (concurrent streams), and with
# "leave" the session says GOAWAY right after them, before any answer, as the JavaScript SDK's
# handler does; the answers are read to their end either way.
NODE_CLIENT = r"""
import http2 from "node:http2";
let raw = "";
for await (const chunk of process.stdin) raw += chunk;
const input = JSON.parse(raw);
const session = http2.connect(input.url);
session.on("error", (e) => { console.error("session error", e.code, e.message); process.exit(3); });
await new Promise((resolve) => session.once("connect", resolve));
const answers = input.requests.map((r) => new Promise((resolve, reject) => {
  const stream = session.request({ ":method": r.method, ":path": r.path, ...r.headers });
  const parts = [];
  let head = {};
  stream.on("response", (h) => { head = h; });
  stream.on("data", (d) => parts.push(d));
  stream.on("end", () => resolve({ status: head[":status"], type: head["content-type"] || null,
                                    body: Buffer.concat(parts).toString("base64") }));
  stream.on("error", reject);
  stream.end(r.body ? Buffer.from(r.body, "base64") : undefined);
}));
if (input.leave) session.close();
const done = await Promise.all(answers);
session.close();
console.log(JSON.stringify(done));
"""


def _signed(world: World, service: str, method: str, path: str, body: bytes = b"",
            headers: dict[str, str] | None = None) -> dict:  # fmt: skip
    """A request as an SDK signs it, for the Node client: pseudo-headers come from the URL."""
    request = AWSRequest(method=method, url=f"{world.endpoint_url}{path}", data=body,
                         headers=headers or {})  # fmt: skip
    auth = S3SigV4Auth if service == "s3" else SigV4Auth
    if service == "s3":
        request.headers["X-Amz-Content-SHA256"] = hashlib.sha256(body).hexdigest()
    auth(Credentials("testing", "testing"), service, world.region).add_auth(request)
    sent = {k.lower(): v for k, v in request.headers.items() if k.lower() != "host"}
    return {"method": method, "path": path, "headers": sent,
            "body": base64.b64encode(body).decode() if body else None}  # fmt: skip


def _kinesis(world: World, action: str, payload: dict) -> dict:
    return _signed(world, "kinesis", "POST", "/", json.dumps(payload).encode(),
                   {"Content-Type": "application/x-amz-json-1.1",
                    "X-Amz-Target": f"Kinesis_20131202.{action}"})  # fmt: skip


def _over_http2(world: World, requests: list[dict], leave: bool = False) -> list[dict]:
    node = shutil.which("node")
    assert node, "Node.js is a prerequisite of set-up (the AWS CDK CLI runs on it)"
    done = subprocess.run([node, "--input-type=module", "-e", NODE_CLIENT],
                          input=json.dumps({"url": world.endpoint_url, "requests": requests,
                                            "leave": leave}),
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout)
    for answer in answers:
        answer["body"] = base64.b64decode(answer["body"])
    return answers


@pytest.fixture
def embedded(aws: World) -> World:
    return embedded_only(aws, "HTTP/2")


def test_kinesis_over_http2_answers_as_over_http11_on_the_same_port(embedded: World) -> None:
    kinesis = embedded.client("kinesis")
    kinesis.create_stream(StreamName="spoken", ShardCount=1)
    puts = [_kinesis(embedded, "PutRecord", {"StreamName": "spoken", "PartitionKey": f"k{i}",
                                             "Data": base64.b64encode(b"r%d" % i).decode()})
            for i in range(5)]  # fmt: skip
    answers = _over_http2(embedded, puts)  # five streams of one session, at once
    assert [a["status"] for a in answers] == [200] * 5
    assert all("SequenceNumber" in json.loads(a["body"]) for a in answers)
    shard = kinesis.list_shards(StreamName="spoken")["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(
        StreamName="spoken", ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    assert sorted(r["Data"] for r in kinesis.get_records(ShardIterator=iterator)["Records"]) == [
        b"r0", b"r1", b"r2", b"r3", b"r4"]  # fmt: skip
    [missing] = _over_http2(embedded, [_kinesis(embedded, "DescribeStream", {"StreamName": "no"})])
    assert missing["status"] == 400
    assert json.loads(missing["body"])["__type"] == "ResourceNotFoundException"


def test_large_bodies_cross_http2_flow_control_both_ways_after_the_clients_goaway(
    embedded: World,
) -> None:
    """Bodies many times the 64 KiB window each side starts with; the client leaves (GOAWAY) as
    soon as its requests are out and still gets every byte of the answers."""
    s3 = embedded.client("s3")
    s3.create_bucket(Bucket="spoken")
    big = hashlib.shake_256(b"world").digest(3 * 1024 * 1024)
    s3.put_object(Bucket="spoken", Key="down.bin", Body=big)
    [put] = _over_http2(embedded, [_signed(embedded, "s3", "PUT", "/spoken/up.bin", big[::-1])])
    assert put["status"] == 200
    assert s3.get_object(Bucket="spoken", Key="up.bin")["Body"].read() == big[::-1]
    answers = _over_http2(embedded, [_signed(embedded, "s3", "GET", "/spoken/down.bin"),
                                     _signed(embedded, "s3", "GET", "/spoken/up.bin")],
                          leave=True)  # fmt: skip
    assert [(a["status"], len(a["body"])) for a in answers] == [(200, len(big))] * 2
    assert answers[0]["body"] == big and answers[1]["body"] == big[::-1]
    [missing] = _over_http2(embedded, [_signed(embedded, "s3", "GET", "/spoken/none")], leave=True)
    assert missing["status"] == 404 and b"<Code>NoSuchKey</Code>" in missing["body"]


def test_the_first_bytes_decide_the_protocol_without_being_consumed() -> None:
    """HTTP/2's preface sent a byte at a time is still HTTP/2; an HTTP/1.1 request, silence and a
    closed connection are left to HTTP/1.1; the bytes looked at stay to be read."""

    def sniffed(send: bytes, pause: float = 0.0, close: bool = False) -> tuple[bool, bytes]:
        server, client = socket.socketpair()
        with server, client:

            def feed() -> None:
                for byte in send:
                    client.send(bytes([byte]))
                    time.sleep(pause)
                if close:
                    client.shutdown(socket.SHUT_WR)

            feeder = threading.Thread(target=feed)
            feeder.start()
            decided = speaks_http2(server, timeout=2.0)
            feeder.join()
            server.settimeout(1.0)
            left = b""
            while len(left) < len(send):
                left += server.recv(64)
            return decided, left

    assert sniffed(PREFACE, pause=0.02) == (True, PREFACE)
    assert sniffed(b"POST / HTTP/1.1\r\n") == (False, b"POST / HTTP/1.1\r\n")
    assert sniffed(b"PRx")[0] is False
    assert sniffed(b"", close=True)[0] is False
    server, client = socket.socketpair()
    with server, client:  # silent: decided when the time is up, as HTTP/1.1
        started = time.monotonic()
        assert speaks_http2(server, timeout=0.3) is False
        assert time.monotonic() - started < 5
