"""Kinesis in CBOR, byte for byte as the AWS SDKs for Java send it (``aws.cborEnabled`` on, their
default): blobs as byte strings, timestamps as tag 1 over epoch milliseconds, answers in CBOR."""

from __future__ import annotations

import time

import cbor2
import pytest

from emulation import World
from emulation.kinesis.cbor import CBOR_TYPE
from tests.conftest import embedded_only, signed_request


def _cbor(world: World, action: str, body: bytes | dict) -> tuple[int, str, object]:
    data = body if isinstance(body, bytes) else cbor2.dumps(body)
    status, kind, raw = signed_request(world, "kinesis", "POST", "/", data, {
        "Content-Type": CBOR_TYPE, "X-Amz-Target": f"Kinesis_20131202.{action}"})  # fmt: skip
    # tag 1's values kept as they are: AWS's are milliseconds (RFC 8949's, seconds)
    millis = {1: lambda value, _immutable: value}
    return status, kind, cbor2.loads(raw, semantic_decoders=millis) if raw else None


@pytest.fixture
def embedded(aws: World) -> World:
    return embedded_only(aws, "Kinesis in CBOR")


def test_a_java_sdks_cbor_calls_are_answered_in_cbor(embedded: World) -> None:
    kinesis = embedded.client("kinesis")
    kinesis.create_stream(StreamName="binary", ShardCount=1)
    before = time.time() * 1000
    payload = bytes(range(256)) * 3  # not UTF-8, not base64: bytes as they are
    record = {"StreamName": "binary", "PartitionKey": "k", "Data": payload}
    status, kind, put = _cbor(embedded, "PutRecord", record)
    assert (status, kind) == (200, CBOR_TYPE) and put["ShardId"]
    # what boto3 reads over JSON is what was sent over CBOR
    shard = put["ShardId"]
    iterator = kinesis.get_shard_iterator(
        StreamName="binary", ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    assert kinesis.get_records(ShardIterator=iterator)["Records"][0]["Data"] == payload
    status, _, got = _cbor(embedded, "GetRecords", {"ShardIterator": iterator})
    [record] = got["Records"]
    assert status == 200 and record["Data"] == payload  # a byte string, not base64 text
    arrived = record["ApproximateArrivalTimestamp"]
    assert isinstance(arrived, int) and before - 5_000 <= arrived <= time.time() * 1000 + 5_000
    # a request's timestamp (tag 1 over milliseconds): AT_TIMESTAMP from just after the record
    status, _, later = _cbor(embedded, "GetShardIterator", {
        "StreamName": "binary", "ShardId": shard, "ShardIteratorType": "AT_TIMESTAMP",
        "Timestamp": cbor2.CBORTag(1, arrived + 1000)})  # fmt: skip
    assert status == 200
    status, _, none = _cbor(embedded, "GetRecords", {"ShardIterator": later["ShardIterator"]})
    assert status == 200 and none["Records"] == []


def test_cbor_errors_are_cbor_maps_aws_sdks_read(embedded: World) -> None:
    status, kind, missing = _cbor(embedded, "DescribeStream", {"StreamName": "absent"})
    assert (status, kind, missing["__type"]) == (400, CBOR_TYPE, "ResourceNotFoundException")
    assert "absent" in missing["message"]
    status, kind, garbled = _cbor(embedded, "ListStreams", b"\xff\x00not cbor")
    assert (status, kind, garbled["__type"]) == (400, CBOR_TYPE, "SerializationException")
    assert "not CBOR" in garbled["message"]
