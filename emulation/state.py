"""A world's state saved to a folder and loaded into another world (LocalStack's "pods", through
the public API).

A run saves what its stack left in the world, and ``dfp world RUN_DIR`` loads it into a fresh one,
so notebooks, the AWS CLI and awswrangler can work on a finished run. Everything goes through
boto3, so a state saved from the embedded moto loads into any endpoint the world accepts.

Saved, for the resources named in a :class:`Selection` only (never anything else in the world):

- S3: every object of the selected buckets, byte for byte, with its content type;
- Glue Data Catalog: the selected databases, their tables and partitions;
- Kinesis: the selected streams (shards, retention) and their records in order (data, partition
  key, arrival time);
- DynamoDB: the selected tables (keys, attributes) and their items;
- Step Functions: the executions of the selected state machines (description and history), kept
  as JSON.

Not restored: Kinesis sequence numbers (records get new ones, in the saved order), and past Step
Functions executions (no API creates a finished execution; they stay readable in the folder).
Resources the stack's provisioning creates (roles, rules, delivery streams, jobs, state machines)
are recreated by provisioning, not by this module.

The folder: ``state.json`` (what was saved, counts, account and region) and one folder per
service. Loading checks every path it reads stays inside the folder, so a hostile ``state.json``
cannot make it read elsewhere.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from botocore.exceptions import ClientError

logger = logging.getLogger(__name__)

STATE_FILE = "state.json"
FORMAT_VERSION = 1
#: Batch sizes of the write APIs (AWS's limits).
_PUT_RECORDS_MAX = 500
_BATCH_WRITE_MAX = 25
_PARTITIONS_MAX = 100


class StateError(ValueError):
    """A saved state that cannot be loaded: names the file and what is wrong."""


@dataclass(frozen=True)
class Selection:
    """The resources whose state is saved: a stack's own, never the rest of a world."""

    buckets: tuple[str, ...] = ()
    databases: tuple[str, ...] = ()
    streams: tuple[str, ...] = ()
    tables: tuple[str, ...] = ()
    state_machines: tuple[str, ...] = ()  # ARNs


@dataclass
class Counts:
    objects: int = 0
    tables: int = 0
    partitions: int = 0
    records: int = 0
    items: int = 0
    executions: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


# ----------------------------------------------------------------------------------- helpers
def _safe_join(root: Path, relative: str, where: str) -> Path:
    """``root / relative``, refused unless it stays inside ``root``."""
    parts = PurePosixPath(relative).parts
    if not relative or PurePosixPath(relative).is_absolute() or ".." in parts:
        raise StateError(f"{where}: path {relative!r} leaves the state folder")
    path = root.joinpath(*parts)
    if not path.resolve().is_relative_to(root.resolve()):
        raise StateError(f"{where}: path {relative!r} leaves the state folder")
    return path


def _object_file(key: str) -> str:
    """Where an S3 key is kept: its own path when that is a plain relative path, else encoded."""
    parts = PurePosixPath(key).parts
    plain = (
        key
        and not key.startswith("/")
        and not key.endswith("/")
        and "//" not in key
        and ".." not in parts
        and "." not in parts
        and not any(p.endswith(".b64key") for p in parts)
    )
    if plain:
        return key
    return base64.urlsafe_b64encode(key.encode()).decode() + ".b64key"


def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> Iterator[Any]:
    """Every item under ``key`` of a paginated ``operation``, through boto3's own paginator."""
    for page in client.get_paginator(operation).paginate(**kwargs):
        yield from page.get(key, [])


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"not JSON: {type(value).__name__}")


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=1, sort_keys=True, default=_json_default) + "\n")


_TABLE_INPUT_KEYS = {
    "Name",
    "Description",
    "Owner",
    "Retention",
    "StorageDescriptor",
    "PartitionKeys",
    "ViewOriginalText",
    "ViewExpandedText",
    "TableType",
    "Parameters",
    "TargetTable",
}
_PARTITION_INPUT_KEYS = {"Values", "StorageDescriptor", "Parameters"}


def table_input(table: dict[str, Any]) -> dict[str, Any]:
    """The ``TableInput`` that recreates ``table`` (a ``GetTable`` answer): Glue refuses the
    fields it sets itself (``CreateTime``, ``DatabaseName``, ``CatalogId``…) in one."""
    return {k: v for k, v in table.items() if k in _TABLE_INPUT_KEYS}


# -------------------------------------------------------------------------------------- save
def save_state(world: Any, folder: Path, selection: Selection) -> dict[str, Any]:
    """Write the selected resources' state into ``folder`` (created); return ``state.json``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    counts = Counts()
    manifest: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "account": world.account_id,
        "region": world.region,
        "buckets": {},
        "databases": [],
        "streams": {},
        "tables": [],
        "executions": [],
    }
    s3 = world.client("s3")
    for bucket in selection.buckets:
        objects: dict[str, dict[str, str]] = {}
        for listed in _pages(
            s3,
            "list_objects_v2",
            "Contents",
            Bucket=bucket,
        ):
            key = listed["Key"]
            got = s3.get_object(Bucket=bucket, Key=key)
            relative = _object_file(key)
            path = folder / "s3" / bucket / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(got["Body"].read())
            objects[key] = {"file": relative, "content_type": got.get("ContentType", "")}
            counts.objects += 1
        manifest["buckets"][bucket] = objects

    glue = world.client("glue")
    for database in selection.databases:
        described = glue.get_database(Name=database)["Database"]
        tables = []
        for table in _pages(glue, "get_tables", "TableList", DatabaseName=database):
            partitions = [
                {k: v for k, v in p.items() if k in _PARTITION_INPUT_KEYS}
                for p in _pages(
                    glue,
                    "get_partitions",
                    "Partitions",
                    DatabaseName=database,
                    TableName=table["Name"],
                )
            ]
            tables.append(
                {
                    "table": table_input(table),
                    "partitions": sorted(partitions, key=lambda p: p["Values"]),
                }
            )
            counts.tables += 1
            counts.partitions += len(partitions)
        manifest["databases"].append(
            {
                "database": {
                    k: v for k, v in described.items() if k in ("Name", "Description", "Parameters")
                },
                "tables": sorted(tables, key=lambda t: t["table"]["Name"]),
            }
        )

    kinesis = world.client("kinesis")
    for stream in selection.streams:
        summary = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
        records = list(_read_stream(kinesis, stream))
        relative = f"kinesis/{stream}.ndjson.gz"
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        with gzip.GzipFile(path, "wb", mtime=0) as out:  # mtime 0: same records, same bytes
            for record in records:
                out.write(json.dumps(record, sort_keys=True).encode() + b"\n")
        manifest["streams"][stream] = {
            "shards": summary["OpenShardCount"],
            "retention_hours": summary["RetentionPeriodHours"],
            "records": len(records),
            "file": relative,
        }
        counts.records += len(records)

    dynamodb = world.client("dynamodb")
    for table_name in selection.tables:
        table = dynamodb.describe_table(TableName=table_name)["Table"]
        items = [
            item
            for page in dynamodb.get_paginator("scan").paginate(TableName=table_name)
            for item in page.get("Items", [])
        ]
        relative = f"dynamodb/{table_name}.json"
        _write_json(folder / relative, sorted(items, key=lambda i: json.dumps(i, sort_keys=True)))
        manifest["tables"].append(
            {
                "TableName": table_name,
                "KeySchema": table["KeySchema"],
                "AttributeDefinitions": table["AttributeDefinitions"],
                "items": len(items),
                "file": relative,
            }
        )
        counts.items += len(items)

    sfn = world.client("stepfunctions")
    for arn in selection.state_machines:
        for execution in _pages(sfn, "list_executions", "executions", stateMachineArn=arn):
            described = sfn.describe_execution(executionArn=execution["executionArn"])
            described.pop("ResponseMetadata", None)
            history = list(
                _pages(
                    sfn,
                    "get_execution_history",
                    "events",
                    executionArn=execution["executionArn"],
                )
            )
            relative = f"stepfunctions/{described['name']}.json"
            _write_json(folder / relative, {"execution": described, "history": history})
            manifest["executions"].append(
                {
                    "stateMachineArn": arn,
                    "name": described["name"],
                    "status": described["status"],
                    "file": relative,
                }
            )
            counts.executions += 1
    manifest["executions"].sort(key=lambda e: (e["stateMachineArn"], e["name"]))
    manifest["counts"] = counts.as_dict()
    _write_json(folder / STATE_FILE, manifest)
    logger.info("world state saved to %s: %s", folder, manifest["counts"])
    return manifest


def _read_stream(kinesis: Any, stream: str) -> Iterator[dict[str, Any]]:
    """Every record of every shard, shard by shard in shard order."""
    shards = list(_pages(kinesis, "list_shards", "Shards", StreamName=stream))
    for shard in sorted(shards, key=lambda s: s["ShardId"]):
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10000)
            for record in page["Records"]:
                yield {
                    "shard": shard["ShardId"],
                    "partition_key": record["PartitionKey"],
                    "data": base64.b64encode(record["Data"]).decode(),
                    "arrival": record["ApproximateArrivalTimestamp"].astimezone(UTC).isoformat(),
                }
            if not page["Records"] and page.get("MillisBehindLatest", 0) == 0:
                break
            iterator = page.get("NextShardIterator")


# -------------------------------------------------------------------------------------- load
def read_manifest(folder: Path) -> dict[str, Any]:
    """``state.json`` of a saved state, checked enough to load it."""
    path = Path(folder) / STATE_FILE
    if not path.is_file():
        raise StateError(f"{path}: no saved world state here (a run saves it in world/)")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StateError(f"{path}: not a saved world state: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION:
        got = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise StateError(f"{path}: format {got!r}; this version loads format {FORMAT_VERSION}")
    return manifest


def _exists_ok(call: Callable[..., Any], **kwargs: Any) -> None:
    try:
        call(**kwargs)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in {
            "BucketAlreadyOwnedByYou",
            "AlreadyExistsException",
            "ResourceInUseException",
        }:
            raise


def _check_files(manifest: dict[str, Any], folder: Path, where: str) -> None:
    """Every file the manifest names is inside the folder and there, before anything loads."""
    try:
        paths = [
            _safe_join(folder / "s3" / bucket, kept["file"], where)
            for bucket, objects in manifest.get("buckets", {}).items()
            for kept in objects.values()
        ] + [
            _safe_join(folder, kept["file"], where)
            for kept in [*manifest.get("streams", {}).values(), *manifest.get("tables", [])]
        ]
    except (AttributeError, KeyError, TypeError) as exc:
        raise StateError(f"{where}: not a saved world state: {exc!r}") from exc
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise StateError(f"{where}: {len(missing)} saved files are missing, e.g. {missing[0]}")


def load_state(world: Any, folder: Path) -> dict[str, int]:
    """Load a saved state into ``world``; resources that exist are filled, not replaced.
    Every file is checked first: a broken state loads nothing."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    where = str(folder / STATE_FILE)
    _check_files(manifest, folder, where)
    counts = Counts()

    s3 = world.client("s3")
    for bucket, objects in manifest.get("buckets", {}).items():
        create: dict[str, Any] = {"Bucket": bucket}
        if world.region != "us-east-1":
            create["CreateBucketConfiguration"] = {"LocationConstraint": world.region}
        _exists_ok(s3.create_bucket, **create)
        for key, kept in sorted(objects.items()):
            path = _safe_join(folder / "s3" / bucket, kept["file"], where)
            extra = {"ContentType": kept["content_type"]} if kept.get("content_type") else {}
            s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes(), **extra)
            counts.objects += 1

    glue = world.client("glue")
    for entry in manifest.get("databases", []):
        database = entry["database"]["Name"]
        _exists_ok(glue.create_database, DatabaseInput=entry["database"])
        for kept in entry["tables"]:
            table = kept["table"]
            try:
                glue.create_table(DatabaseName=database, TableInput=table)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "AlreadyExistsException":
                    raise
                glue.update_table(DatabaseName=database, TableInput=table)
            counts.tables += 1
            partitions = kept.get("partitions", [])
            for start in range(0, len(partitions), _PARTITIONS_MAX):
                answer = glue.batch_create_partition(
                    DatabaseName=database,
                    TableName=table["Name"],
                    PartitionInputList=partitions[start : start + _PARTITIONS_MAX],
                )
                failed = [
                    e
                    for e in answer.get("Errors", [])
                    if e["ErrorDetail"]["ErrorCode"] != "AlreadyExistsException"
                ]
                if failed:
                    raise StateError(f"{where}: partitions of {table['Name']}: {failed[:3]}")
            counts.partitions += len(partitions)
        counts.partitions += repair_partitions(glue, s3, database)

    kinesis = world.client("kinesis")
    for stream, kept in manifest.get("streams", {}).items():
        _exists_ok(kinesis.create_stream, StreamName=stream, ShardCount=int(kept["shards"]))
        kinesis.get_waiter("stream_exists").wait(
            StreamName=stream, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100}
        )
        path = _safe_join(folder, kept["file"], where)
        with gzip.open(path, "rt") as lines:
            batch: list[dict[str, Any]] = []
            for line in lines:
                record = json.loads(line)
                batch.append(
                    {
                        "Data": base64.b64decode(record["data"]),
                        "PartitionKey": record["partition_key"],
                    }
                )
                if len(batch) == _PUT_RECORDS_MAX:
                    counts.records += _put_all(kinesis, stream, batch)
                    batch = []
            if batch:
                counts.records += _put_all(kinesis, stream, batch)

    dynamodb = world.client("dynamodb")
    for kept in manifest.get("tables", []):
        name = kept["TableName"]
        _exists_ok(
            dynamodb.create_table,
            TableName=name,
            KeySchema=kept["KeySchema"],
            AttributeDefinitions=kept["AttributeDefinitions"],
            BillingMode="PAY_PER_REQUEST",
        )
        items = json.loads(_safe_join(folder, kept["file"], where).read_text())
        for start in range(0, len(items), _BATCH_WRITE_MAX):
            requests = [
                {"PutRequest": {"Item": i}} for i in items[start : start + _BATCH_WRITE_MAX]
            ]
            pending: dict[str, Any] = {name: requests}
            while pending:
                pending = dynamodb.batch_write_item(RequestItems=pending).get(
                    "UnprocessedItems", {}
                )
        counts.items += len(items)
    counts.executions = len(manifest.get("executions", []))
    logger.info("world state loaded from %s: %s", folder, counts.as_dict())
    return counts.as_dict()


def _put_all(kinesis: Any, stream: str, batch: list[dict[str, Any]]) -> int:
    """Put a batch, retrying the entries the stream refused (throttling), in order."""
    pending = batch
    while pending:
        answer = kinesis.put_records(StreamName=stream, Records=pending)
        pending = [r for r, a in zip(pending, answer["Records"], strict=True) if "ErrorCode" in a]
    return len(batch)


# -------------------------------------------------------------------------- partition repair
def repair_partitions(glue: Any, s3: Any, database: str, table_name: str | None = None) -> int:
    """``MSCK REPAIR TABLE`` for ``table_name`` or every partitioned table of ``database``:
    register the Hive-style ``key=value/`` folders found under each table's location. Returns how
    many were added."""
    added = 0
    tables = (
        [glue.get_table(DatabaseName=database, Name=table_name)["Table"]]
        if table_name
        else _pages(glue, "get_tables", "TableList", DatabaseName=database)
    )
    for table in tables:
        keys = [k["Name"] for k in table.get("PartitionKeys", [])]
        location = table.get("StorageDescriptor", {}).get("Location", "")
        if not keys or not location.startswith("s3://"):
            continue
        bucket, _, prefix = location[len("s3://") :].partition("/")
        prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        known = {
            tuple(p["Values"])
            for p in _pages(
                glue,
                "get_partitions",
                "Partitions",
                DatabaseName=database,
                TableName=table["Name"],
            )
        }
        found: dict[tuple[str, ...], str] = {}
        try:
            listed = list(
                _pages(
                    s3,
                    "list_objects_v2",
                    "Contents",
                    Bucket=bucket,
                    Prefix=prefix,
                )
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "NoSuchBucket":
                continue
            raise
        for obj in listed:
            folders = obj["Key"][len(prefix) :].split("/")[:-1]
            if len(folders) < len(keys):
                continue
            pairs = [f.partition("=") for f in folders[: len(keys)]]
            if [p[0] for p in pairs] != keys or any(not p[1] for p in pairs):
                continue
            values = tuple(p[2] for p in pairs)
            found.setdefault(values, f"s3://{bucket}/{prefix}{'/'.join(folders[: len(keys)])}/")
        added += len(add_partitions(glue, database, table, found, known))
    return added


def add_partitions(
    glue: Any,
    database: str,
    table: dict[str, Any],
    locations: dict[tuple[str, ...], str],
    known: set[tuple[str, ...]] | None = None,
) -> list[tuple[str, ...]]:
    """Register the partitions of ``locations`` (values → folder) that the catalog does not have
    (``known``, read from the catalog when not given), with the table's storage otherwise;
    returns the values added, in order."""
    if known is None:
        known = {
            tuple(p["Values"])
            for p in _pages(
                glue, "get_partitions", "Partitions", DatabaseName=database, TableName=table["Name"]
            )
        }
    new = sorted(values for values in locations if values not in known)
    inputs = [
        {
            "Values": list(values),
            "StorageDescriptor": {**table["StorageDescriptor"], "Location": locations[values]},
        }
        for values in new
    ]
    for start in range(0, len(inputs), _PARTITIONS_MAX):
        glue.batch_create_partition(
            DatabaseName=database,
            TableName=table["Name"],
            PartitionInputList=inputs[start : start + _PARTITIONS_MAX],
        )
    return new
