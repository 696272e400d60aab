"""DMS-style CDC delivery: the messages DMS writes to a Kinesis data stream target.

Given the change log of the source tables (a full-load snapshot, then ``insert``/``update``/
``delete`` versions in commit order), :func:`dms_messages` renders each change as DMS's JSON
message (``data`` + ``metadata``) and computes its Kinesis partition key, honouring the endpoint's
``KinesisSettings``:

* ``MessageFormat``: ``json`` (DMS's formatted JSON, tab-indented) or ``json-unformatted`` (one
  line). The NDJSON files always hold one message per line; :func:`record_bytes` gives the bytes
  DMS would put on the stream in the chosen format.
* ``IncludeTransactionDetails``: ``transaction-id`` is always on CDC records; with this setting also
  ``transaction-record-id``, ``prev-transaction-id``, ``prev-transaction-record-id``,
  ``commit-timestamp`` and ``stream-position``.
* ``IncludePartitionValue``: ``partition-key-value`` in the metadata (not for ``schema-table``).
* ``PartitionIncludeSchemaTable``: partition values are prefixed ``schema.table.``.
* ``IncludeNullAndEmpty``: off by default, so null and empty-string columns are left out of
  ``data``, as DMS does.
* ``PartitionKeyType`` (task table mapping): ``primary-key`` or ``schema-table``.

Ordering: messages come in commit order (load first), so order per partition key holds.

Not rendered here: control records for DDL (the simulated schema never changes by itself; the
``schema_drift`` fault of :mod:`harness.faults` alters a table mid-window and writes them, as
``IncludeTableAlterOperations`` and ``IncludeControlDetails`` ask), the
``awsdms_apply_exceptions`` control table, before-images, LOB handling, and DMS task lifecycle.
Values are rendered as DMS does for a MySQL-compatible source: dates ``YYYY-MM-DD``, timestamps
``YYYY-MM-DDTHH:MM:SSZ``, numbers as JSON numbers.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Literal

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from pipeline.contracts.cdc import PRIMARY_KEYS, SCHEMA_NAME_DEFAULT, TABLES

logger = logging.getLogger(__name__)


class DmsSettings(BaseModel):
    """DMS Kinesis endpoint settings (``KinesisSettings``) and the task's partition key type."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    message_format: Literal["json", "json-unformatted"] = "json"
    partition_key_type: Literal["primary-key", "schema-table"] = "primary-key"
    include_transaction_details: bool = False
    include_partition_value: bool = False
    partition_include_schema_table: bool = False
    include_table_alter_operations: bool = False
    include_control_details: bool = False
    include_null_and_empty: bool = False
    schema_name: str = Field(default=SCHEMA_NAME_DEFAULT, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


def _sql_value(column: str, arrow_type: pa.DataType) -> str:
    """SQL rendering a column as DMS does (casts are several times faster than strftime)."""
    quoted = f'"{column}"'
    if pa.types.is_timestamp(arrow_type):  # second precision by contract
        return f"replace(CAST(CAST({quoted} AS TIMESTAMP) AS VARCHAR), ' ', 'T') || 'Z'"
    if pa.types.is_date(arrow_type):
        return f"CAST({quoted} AS VARCHAR)"
    return quoted


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _json_object_sql(pairs: list[tuple[str, object, bool]]) -> str:
    """SQL building a JSON object from (key, value, is_sql) pairs.

    Constant parts are rendered once in Python and merged into one literal, so a row costs only
    its varying values; that keeps the full load near the speed of a plain text write.
    """
    pieces: list[str] = []
    literal = "{"
    for i, (key, value, is_sql) in enumerate(pairs):
        literal += ("," if i else "") + json.dumps(key) + ":"
        if is_sql:
            pieces += [_sql_literal(literal), f"to_json({value})"]
            literal = ""
        else:
            literal += json.dumps(value, separators=(",", ":"))
    pieces.append(_sql_literal(literal + "}"))
    return " || ".join(pieces)


def _render_table(
    con: duckdb.DuckDBPyConnection,
    name: str,
    changes: pa.Table,
    settings: DmsSettings,
    start: dt.datetime,
) -> tuple[pa.Table, pa.Table]:
    """The table's full-load messages and its CDC messages, each in commit order."""
    schema = TABLES[name]
    pk = PRIMARY_KEYS[name]
    con.register("changes", changes)
    data_fields = ", ".join(f"'{f.name}': {_sql_value(f.name, f.type)}" for f in schema)
    data_json = f"to_json({{{data_fields}}})"
    if not settings.include_null_and_empty and any(f.nullable for f in schema):
        # DMS leaves null and empty columns out; the primary key (first column) is never null.
        data_json = f"""regexp_replace({data_json}, ',"[^"]+":(null|"")', '', 'g')"""
    schema_table = f"{settings.schema_name}.{name}"
    pk_text = f'CAST("{pk}" AS VARCHAR)'
    if settings.partition_key_type == "schema-table":
        partition = _sql_literal(schema_table)
    elif settings.partition_include_schema_table:
        partition = f"{_sql_literal(schema_table + '.')} || {pk_text}"
    else:
        partition = pk_text
    epoch_us = int(start.timestamp() * 1_000_000)
    ts = "strftime(make_timestamp(_commit_us + {epoch} + {lag}), '%Y-%m-%dT%H:%M:%S.%fZ')"
    load_commits = pc.unique(
        changes.filter(pc.equal(changes["_op"], "load"))["_commit_us"]
    ).to_pylist()
    if len(load_commits) == 1:  # the usual case: one snapshot time, one literal
        moment = start + dt.timedelta(microseconds=load_commits[0])
        load_ts: tuple[str, object, bool] = (
            "timestamp",
            moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            False,
        )
    else:
        load_ts = ("timestamp", ts.format(epoch=epoch_us, lag="0"), True)
    head = [
        ("record-type", "data", False),
        ("operation", "_op", True),
        ("partition-key-type", settings.partition_key_type, False),
    ]
    if settings.include_partition_value and settings.partition_key_type != "schema-table":
        head.append(("partition-key-value", partition, True))
    tail = [("schema-name", settings.schema_name, False), ("table-name", name, False)]
    load_meta = [load_ts, *head, *tail]
    load_meta[2] = ("operation", "load", False)
    # DMS reads the change a little after its commit; the lag is deterministic per sequence.
    lag = "((_seq * 7919) % 900000 + 100000)"
    cdc_meta = [("timestamp", ts.format(epoch=epoch_us, lag=lag), True), *head, *tail,
                ("transaction-id", "_txn", True)]  # fmt: skip
    if settings.include_transaction_details:
        cdc_meta += [
            ("transaction-record-id", 1, False),
            ("prev-transaction-id", "_txn - 1", True),
            ("prev-transaction-record-id", 1, False),
            ("commit-timestamp", ts.format(epoch=epoch_us, lag="0"), True),
            (
                "stream-position",
                "'dfp-binlog.000001:' || CAST(_txn * 512 AS VARCHAR) || ':0:' "
                "|| CAST(_txn * 512 + 511 AS VARCHAR) || ':' || CAST(_txn AS VARCHAR)",
                True,
            ),
        ]
    select = """
        SELECT {partition} AS partition_key,
               '{{"data":' || {data_json} || ',"metadata":' || {meta} || '}}' AS message,
               '{name}' AS "table", _op AS operation, _seq AS seq, _commit_us AS commit_us
        FROM changes WHERE {where}
    """
    parts = [
        con.execute(
            select.format(partition=partition, data_json=data_json, meta=_json_object_sql(m),
                          name=name, where=where)
        ).to_arrow_table()
        for m, where in ((load_meta, "_op = 'load'"), (cdc_meta, "_op <> 'load'"))
    ]  # fmt: skip
    con.unregister("changes")
    return parts[0], parts[1]


def dms_messages(
    changes: dict[str, pa.Table], settings: DmsSettings, start: dt.datetime
) -> pa.Table:
    """Every DMS message for ``changes`` in commit order.

    Columns: ``partition_key``, ``message`` (one-line JSON), ``table``, ``operation``, ``seq``
    (global commit order) and ``commit_us`` (µs since ``start``).
    """
    con = duckdb.connect()
    try:
        con.execute("SET threads TO 2")
        con.execute("SET preserve_insertion_order TO true")
        parts = [
            _render_table(con, name, table, settings, start) for name, table in changes.items()
        ]
    finally:
        con.close()
    # Full-load messages precede all changes; sorting only the (small) change part by commit
    # order avoids copying the bulk of the strings.
    load = pa.concat_tables(p[0] for p in parts)
    seq = load["seq"].to_numpy()
    if len(seq) > 1 and not (np.diff(seq) > 0).all():
        load = load.take(pc.sort_indices(load, [("seq", "ascending")]))
    cdc = pa.concat_tables(p[1] for p in parts)
    cdc = cdc.take(pc.sort_indices(cdc, [("seq", "ascending")]))
    return pa.concat_tables([load, cdc])


def write_ndjson(messages: pa.Array | pa.ChunkedArray, path: Path) -> int:
    """Write one message per line (the messages' own bytes, no re-encoding); returns the count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    chunked = messages if isinstance(messages, pa.ChunkedArray) else pa.chunked_array([messages])
    count = 0
    with path.open("wb") as handle:
        for chunk in chunked.chunks:
            if len(chunk) == 0:
                continue
            lines = pc.binary_join_element_wise(chunk, pa.scalar(""), "\n")
            width = np.int64 if pa.types.is_large_string(lines.type) else np.int32
            offsets = np.frombuffer(lines.buffers()[1], dtype=width)
            first, last = offsets[lines.offset], offsets[lines.offset + len(lines)]
            handle.write(memoryview(lines.buffers()[2])[first:last])
            count += len(chunk)
    return count


def record_bytes(message: str, settings: DmsSettings) -> bytes:
    """The bytes DMS puts in the Kinesis record for ``message`` in the chosen format."""
    if settings.message_format == "json-unformatted":
        return message.encode()
    return json.dumps(json.loads(message), indent="\t").encode()
