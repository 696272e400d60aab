"""Record format conversion JSON → Arrow (→ Parquet) with the catalog table's schema, with
the OpenX JSON SerDe's semantics: unknown fields ignored, missing fields null, and a number sent
as a JSON string read into a numeric column (OpenX's ``JavaString*ObjectInspector`` parse it with
``Integer.parseInt``/``Long.parseLong``/``Double.parseDouble``; text that is no number fails the
record). A producer whose column changed type (DMS after ``MODIFY quantity VARCHAR``) still
converts; ``"three"`` does not."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj


def parse_type(target: pa.DataType) -> pa.DataType:
    """The type the JSON reader parses into: dates and timestamps as text, cast afterwards."""
    if pa.types.is_struct(target):
        return pa.struct([pa.field(f.name, parse_type(f.type)) for f in target])
    if pa.types.is_list(target):
        return pa.list_(parse_type(target.value_type))
    if pa.types.is_date(target) or pa.types.is_timestamp(target):
        return pa.string()
    return target


def cast(array: pa.Array, target: pa.DataType) -> pa.Array:
    if array.type == target:
        return array
    if pa.types.is_struct(target):
        children = [cast(array.field(i), f.type) for i, f in enumerate(target)]
        return pa.StructArray.from_arrays(children, fields=list(target), mask=array.is_null())
    if pa.types.is_list(target):
        return pa.ListArray.from_arrays(
            array.offsets, cast(array.flatten(), target.value_type), mask=array.is_null()
        )
    return pc.cast(array, target)


def convert(lines: list[bytes], schema: pa.Schema) -> pa.Table:
    """JSON records → an Arrow table with ``schema`` (raises on the first bad record).

    Arrow's reader takes a JSON number only for a numeric column; a single record it refuses is
    read again with OpenX's leniency (:func:`openx_values`) before it is called bad."""
    try:
        return convert_lines(b"\n".join(lines) + b"\n", len(lines), schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as first:
        if len(lines) != 1:
            raise
        try:
            document = json.loads(lines[0])
        except ValueError:
            raise first from None
        if not isinstance(document, dict):
            raise first from None
        coerced = openx_values(document, pa.struct(list(schema)), "")
        return convert_lines(json.dumps(coerced).encode() + b"\n", 1, schema)


_INTEGER = re.compile(r"^[+-]?[0-9]+$")
_DECIMAL = re.compile(r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$")


def openx_values(value: Any, target: pa.DataType, where: str) -> Any:
    """``value`` with numbers sent as strings made numbers where ``target`` is numeric, as the
    OpenX SerDe reads them; raises ``ValueError`` naming the field for text that is no number."""
    if isinstance(value, dict) and pa.types.is_struct(target):
        fields = {f.name: f.type for f in target}
        return {k: openx_values(v, fields[k], f"{where}.{k}" if where else k)
                if k in fields else v for k, v in value.items()}  # fmt: skip
    if isinstance(value, list) and pa.types.is_list(target):
        return [openx_values(v, target.value_type, f"{where}[]") for v in value]
    if not isinstance(value, str):
        return value
    text = value.strip()  # Double.parseDouble trims; Integer.parseInt does not
    if pa.types.is_integer(target):
        if not _INTEGER.match(value):
            raise ValueError(f"{where}: {value[:40]!r} is not a number for column type {target}")
        return int(value)
    if pa.types.is_floating(target):
        if not _DECIMAL.match(text):
            raise ValueError(f"{where}: {value[:40]!r} is not a number for column type {target}")
        return float(text)
    return value


_NOT_AN_OBJECT = re.compile(rb"(?m)^(?![ \t]*\{)")


def all_objects(joined: bytes) -> bool:
    """True when every record of ``joined`` (one per line, each line ended) starts a JSON object.

    Checked before Arrow's JSON reader sees the bytes: pyarrow 16 crashes the whole process
    (a segmentation fault) on a first line ``null``, and reads a later ``null`` as a row of
    nulls. A record that is not an object is not a row, and Firehose rejects it.
    """
    return _NOT_AN_OBJECT.search(joined, 0, max(0, len(joined) - 1)) is None


def convert_lines(payload: bytes, count: int, schema: pa.Schema) -> pa.Table:
    """:func:`convert` over ``count`` records already joined one per line."""
    if not all_objects(payload):
        raise ValueError("the record is not a JSON object")
    parse_schema = pa.schema([pa.field(f.name, parse_type(f.type)) for f in schema])
    options = pj.ParseOptions(explicit_schema=parse_schema, unexpected_field_behavior="ignore")
    table = pj.read_json(io.BytesIO(payload), parse_options=options)
    if table.num_rows != count:
        raise ValueError(f"expected {count} records, parsed {table.num_rows}")
    columns = [cast(table.column(f.name).combine_chunks(), f.type) for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)


def one_line(data: bytes) -> bytes:
    """Records may be formatted JSON over several lines; the reader needs one line each.

    In valid JSON a raw line break can only be whitespace between tokens (inside strings it is
    escaped), so replacing it with a space keeps the document; a record that was not valid JSON
    stays invalid and is rejected by the reader, record by record.
    """
    if b"\n" not in data and b"\r" not in data:
        return data
    return data.replace(b"\r", b" ").replace(b"\n", b" ")


def joined_lines(records: list[bytes]) -> bytes:
    """The records one per line (see :func:`_one_line`), checked once over the whole batch."""
    joined = b"\n".join(records) + b"\n"
    if b"\r" in joined or joined.count(b"\n") != len(records):
        joined = b"\n".join(one_line(d) for d in records) + b"\n"
    return joined
