"""Athena's result shapes: the ``GetQueryResults`` rows and column info, and the result files."""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

import pyarrow as pa


def athena_type(arrow: pa.DataType) -> str:
    if pa.types.is_string(arrow) or pa.types.is_large_string(arrow):
        return "varchar"
    if pa.types.is_int64(arrow):
        return "bigint"
    if pa.types.is_integer(arrow):
        return "integer"
    if pa.types.is_floating(arrow):
        return "double"
    if pa.types.is_boolean(arrow):
        return "boolean"
    if pa.types.is_date(arrow):
        return "date"
    if pa.types.is_timestamp(arrow):
        return "timestamp"
    if pa.types.is_decimal(arrow):
        return "decimal"
    if pa.types.is_list(arrow):
        return "array"
    if pa.types.is_struct(arrow):
        return "row"
    return "varchar"


def _text(value: Any) -> str | None:
    """A value as Athena renders it in results."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None).isoformat(sep=" ", timespec="milliseconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


def _column(name: str, kind: str) -> dict[str, Any]:
    return {
        "CatalogName": "hive",
        "SchemaName": "",
        "TableName": "",
        "Name": name,
        "Label": name,
        "Type": kind,
        "Precision": 0,
        "Scale": 0,
        "Nullable": "UNKNOWN",
        "CaseSensitive": kind in ("varchar", "string"),
    }


def result_set(table: pa.Table) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A query's Rows (header first, as Athena gives for queries) and ColumnInfo."""
    columns = [_column(f.name, athena_type(f.type)) for f in table.schema]
    rows = [{"Data": [{"VarCharValue": f.name} for f in table.schema]}]
    for record in table.to_pylist():
        rows.append(
            {
                "Data": [
                    {"VarCharValue": t} if (t := _text(v)) is not None else {}
                    for v in record.values()
                ]
            }
        )
    return rows, columns


def text_result(
    columns: list[tuple[str, str]], lines: list[list[str]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], bytes]:
    """A DDL or utility statement's result as Athena gives it: no header row, each row one
    tab-joined value (however many columns ColumnInfo lists), and the same lines as ``.txt``."""
    joined = ["\t".join(line) for line in lines]
    rows = [{"Data": [{"VarCharValue": line}]} for line in joined]
    info = [_column(name, kind) for name, kind in columns]
    return rows, info, "".join(line + "\n" for line in joined).encode()


def results_csv(rows: list[dict[str, Any]]) -> bytes:
    """The CSV Athena writes: header, then every value quoted; nulls empty and unquoted."""
    out = io.StringIO()
    for row in rows:
        cells = [
            '"' + cell["VarCharValue"].replace('"', '""') + '"' if "VarCharValue" in cell else ""
            for cell in row["Data"]
        ]
        out.write(",".join(cells) + "\n")
    return out.getvalue().encode()
