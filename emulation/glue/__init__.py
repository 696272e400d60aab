"""Glue: the Data Catalog's Hive column types as Arrow types (job runs come with the ETL work).

moto keeps the Data Catalog (databases, tables, columns); what it lacks is meaning for the type
strings. :func:`arrow_type` parses a Hive type string (``struct<a:int,b-c:string>``,
``array<double>``, ``decimal(10,2)`` …) into an Arrow type, so that consumers of a catalog table
(the Firehose format conversion, Athena) read and write data with the catalog's schema.

Not emulated: ``map`` types, ``uniontype``, column comments and parameters affecting SerDes.
"""

from __future__ import annotations

import pyarrow as pa

_PRIMITIVES = {
    "string": pa.string(),
    "varchar": pa.string(),
    "char": pa.string(),
    "tinyint": pa.int8(),
    "smallint": pa.int16(),
    "int": pa.int32(),
    "integer": pa.int32(),
    "bigint": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "binary": pa.binary(),
}


class InvalidInputException(ValueError):
    """A catalog type string that cannot be parsed (named like Glue's error)."""


def split_top(text: str, sep: str = ",") -> list[str]:
    """``text`` split at ``sep`` outside ``<…>`` and ``(…)`` (a type string's own parts)."""
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p.strip() for p in parts]


def struct_fields(hive: str) -> list[tuple[str, str]]:
    """The (name, type) of each field of a ``struct<a:int,b-c:string>`` type string."""
    fields = []
    for part in split_top(hive.strip()[len("struct<") : -1]):
        name, _, kind = part.partition(":")
        if not name or not kind:
            raise InvalidInputException(f"bad struct field {part!r} in {hive!r}")
        fields.append((name.strip().strip("`"), kind))
    return fields


def arrow_type(hive: str) -> pa.DataType:
    """The Arrow type for a Hive type string from the Glue Data Catalog."""
    text = hive.strip()
    lower = text.lower()
    if lower.startswith("struct<") and lower.endswith(">"):
        return pa.struct([pa.field(name, arrow_type(kind)) for name, kind in struct_fields(text)])
    if lower.startswith("array<") and lower.endswith(">"):
        return pa.list_(arrow_type(text[6:-1]))
    if lower.startswith("decimal"):
        inner = lower[len("decimal") :].strip("() ")
        precision, _, scale = inner.partition(",")
        return pa.decimal128(int(precision or 10), int(scale or 0))
    base = lower.split("(")[0]
    if base in _PRIMITIVES:
        return _PRIMITIVES[base]
    raise InvalidInputException(f"unknown Hive type {hive!r}")


def arrow_schema(columns: list[dict]) -> pa.Schema:
    """Arrow schema of Glue ``StorageDescriptor.Columns`` (``[{'Name', 'Type'}]``)."""
    return pa.schema([pa.field(c["Name"], arrow_type(c["Type"])) for c in columns])
