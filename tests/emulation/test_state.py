"""A world's state saved to a folder loads back into an empty world, through the public API."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from emulation import World
from emulation.state import (
    STATE_FILE,
    Selection,
    StateError,
    load_state,
    read_manifest,
    repair_partitions,
    save_state,
)

BUCKET = "state-test-bucket"
OTHER = "not-selected-bucket"
KEYS = {
    "sales/day=2024-01-01/part-0.parquet": b"PAR1-a",
    "sales/day=2024-01-02/part-0.parquet": b"PAR1-b",
    "odd/../key with spaces": b"weird",  # not a plain path: kept under an encoded name
    "folder/": b"",
}


def _fill(world: World) -> None:
    s3 = world.client("s3")
    where = {} if world.region == "us-east-1" else {
        "CreateBucketConfiguration": {"LocationConstraint": world.region}}  # fmt: skip
    for bucket in (BUCKET, OTHER):
        s3.create_bucket(Bucket=bucket, **where)
    for key, body in KEYS.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body, ContentType="application/x-test")
    s3.put_object(Bucket=OTHER, Key="x", Body=b"must not be saved")
    glue = world.client("glue")
    glue.create_database(DatabaseInput={"Name": "statedb"})
    columns = [{"Name": "n", "Type": "bigint"}]
    glue.create_table(
        DatabaseName="statedb",
        TableInput={
            "Name": "sales",
            "PartitionKeys": [{"Name": "day", "Type": "string"}],
            "StorageDescriptor": {"Columns": columns, "Location": f"s3://{BUCKET}/sales/"},
        },
    )
    kinesis = world.client("kinesis")
    kinesis.create_stream(StreamName="state-stream", ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName="state-stream")
    for n in range(30):
        kinesis.put_record(
            StreamName="state-stream", Data=f'{{"n": {n}}}'.encode(), PartitionKey=f"k{n % 7}"
        )
    dynamodb = world.client("dynamodb")
    dynamodb.create_table(
        TableName="state-table",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for n in range(40):  # more than one batch write
        dynamodb.put_item(TableName="state-table", Item={"id": {"S": f"i{n}"}, "v": {"N": str(n)}})


SELECTION = Selection(
    buckets=(BUCKET,), databases=("statedb",), streams=("state-stream",), tables=("state-table",)
)


def _records(world: World) -> list[tuple[str, bytes]]:
    kinesis = world.client("kinesis")
    out = []
    for shard in kinesis.list_shards(StreamName="state-stream")["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName="state-stream", ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        out += [
            (r["PartitionKey"], r["Data"])
            for r in kinesis.get_records(ShardIterator=iterator)["Records"]
        ]
    return sorted(out)


def test_saved_state_loads_back_into_an_empty_world(aws: World, tmp_path: Path) -> None:
    _fill(aws)
    assert (
        repair_partitions(aws.client("glue"), aws.client("s3"), "statedb") == 2
    )  # MSCK REPAIR: the two day= folders
    records = _records(aws)
    items = aws.client("dynamodb").scan(TableName="state-table")["Items"]
    manifest = save_state(aws, tmp_path / "state", SELECTION)
    assert manifest["counts"] == {
        "objects": 4,
        "tables": 1,
        "partitions": 2,
        "records": 30,
        "items": 40,
        "executions": 0,
    }
    assert OTHER not in manifest["buckets"]  # only the selection is saved

    aws.reset()
    loaded = load_state(aws, tmp_path / "state")
    assert loaded["objects"] == 4 and loaded["records"] == 30 and loaded["items"] == 40
    s3 = aws.client("s3")
    for key, body in KEYS.items():
        got = s3.get_object(Bucket=BUCKET, Key=key)
        assert got["Body"].read() == body
        assert got["ContentType"] == "application/x-test"
    assert OTHER not in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    partitions = aws.client("glue").get_partitions(DatabaseName="statedb", TableName="sales")
    assert sorted(p["Values"][0] for p in partitions["Partitions"]) == ["2024-01-01", "2024-01-02"]
    assert _records(aws) == records
    again = aws.client("dynamodb").scan(TableName="state-table")["Items"]
    assert sorted(json.dumps(i, sort_keys=True) for i in again) == sorted(
        json.dumps(i, sort_keys=True) for i in items
    )


def test_the_same_state_saves_to_the_same_bytes(aws: World, tmp_path: Path) -> None:
    _fill(aws)
    save_state(aws, tmp_path / "a", SELECTION)
    save_state(aws, tmp_path / "b", SELECTION)
    for path in sorted((tmp_path / "a").rglob("*")):
        if path.is_file() and not path.name.endswith(".ndjson.gz"):  # arrival times differ
            assert (
                path.read_bytes()
                == (tmp_path / "b" / path.relative_to(tmp_path / "a")).read_bytes()
            ), path


def _state(folder: Path, manifest: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / STATE_FILE).write_text(json.dumps(manifest))
    return folder


@pytest.mark.parametrize("bad", ["../outside", "/etc/passwd", "a/../../b"])
def test_a_path_leaving_the_state_folder_is_refused(aws: World, tmp_path: Path, bad: str) -> None:
    outside = tmp_path / "outside"
    outside.write_bytes(b"secret")
    folder = _state(
        tmp_path / "state",
        {
            "format": 1,
            "account": "1",
            "region": aws.region,
            "buckets": {BUCKET: {"k": {"file": bad, "content_type": ""}}},
        },
    )
    with pytest.raises(StateError, match="leaves the state folder"):
        load_state(aws, folder)
    # checked before anything loads: not even the bucket was created
    assert BUCKET not in {b["Name"] for b in aws.client("s3").list_buckets()["Buckets"]}


@pytest.mark.endpoint_free
def test_a_folder_without_a_state_or_of_another_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="no saved world state"):
        read_manifest(tmp_path)
    _state(tmp_path, {"format": 99})
    with pytest.raises(StateError, match="format 99"):
        read_manifest(tmp_path)
    (tmp_path / STATE_FILE).write_bytes(gzip.compress(b"x"))
    with pytest.raises(StateError, match="not a saved world state"):
        read_manifest(tmp_path)


def test_a_state_with_a_missing_file_loads_nothing(aws: World, tmp_path: Path) -> None:
    folder = _state(
        tmp_path / "state",
        {
            "format": 1,
            "account": "1",
            "region": aws.region,
            "buckets": {BUCKET: {"k": {"file": "k", "content_type": ""}}},
        },
    )
    with pytest.raises(StateError, match="1 saved files are missing"):
        load_state(aws, folder)
    assert BUCKET not in {b["Name"] for b in aws.client("s3").list_buckets()["Buckets"]}
