"""How a Glue table's objects are read: its SerDe, as Athena picks the reader from the catalog.

Athena reads a table with the SerDe its Glue entry names, and the text SerDes are what
awswrangler's ``to_csv``/``to_json`` with a ``database``, Glue crawlers over CSV, and CTAS
``format = 'TEXTFILE'|'JSON'`` register. Each is read here with Athena's rules:

- **LazySimpleSerDe** (``ROW FORMAT DELIMITED``, ``STORED AS TEXTFILE``): fields split on
  ``field.delim`` (Ctrl-A by default), no quoting, ``escape.delim`` when given; ``\\N`` (or
  ``serialization.null.format``) is null; a value that is not of its column's type reads as
  null, as Hive's lazy objects read it; a missing trailing field is null, extra ones are
  ignored.
- **OpenCSVSerde**: ``separatorChar``, ``quoteChar``, ``escapeChar`` (``,`` ``"`` none by
  default); every value is text and is converted to ``BOOLEAN``, integers, ``DOUBLE``,
  ``DECIMAL``, ``DATE`` (also as days since 1970) and ``TIMESTAMP`` (also as milliseconds since
  1970); a value that does not convert fails the query with ``HIVE_BAD_DATA`` naming object,
  line, column and value, unless the table property ``use.null.for.invalid.data`` is true.
- **The JSON SerDes** (OpenX's and Hive's): one object per line, keys matched to columns without
  regard to case (``mapping.<column>`` serde parameters rename), nested columns from nested
  JSON; a line that is no JSON object fails with ``HIVE_CURSOR_ERROR`` unless
  ``ignore.malformed.json`` is true (the row reads as nulls), a value of the wrong type with
  ``HIVE_BAD_DATA``.

Lines end at ``\\n``, ``\\r\\n`` or ``\\r``, as Hadoop's line reader ends them (so no SerDe here
reads a line break inside quotes, as Athena's do not); ``skip.header.line.count`` skips lines at
the start of every object; objects ending in ``.gz``, ``.bz2`` or ``.zst`` are decompressed.

Not emulated: ORC, Avro, Ion, the regex and Grok SerDes, CloudTrail's and other log SerDes
(refused with ``NOT_SUPPORTED`` naming the table's SerDe), collection and map delimiters of
``LazySimpleSerDe`` (a nested column of a delimited table is refused), Hadoop's ``.snappy``,
``.lz4`` and ``.deflate`` text codecs.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import json
import re
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from emulation.athena.errors import QueryFailed
from emulation.glue import InvalidInputException, split_top, struct_fields

LAZY_SIMPLE = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
OPEN_CSV = "org.apache.hadoop.hive.serde2.OpenCSVSerde"
JSON_SERDES = ("org.openx.data.jsonserde.JsonSerDe", "org.apache.hive.hcatalog.data.JsonSerDe")
TEXT_FORMATS = {  # the storage descriptor's formats of every text table
    "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
}
_PARQUET_HINTS = ("parquet",)
_REFUSED_HINTS = ("orc", "avro", "ion", "regex", "grok", "cloudtrail", "lazybinary")
_LINES = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class Reader:
    """How one table's objects decode: ``parquet`` (by column name), ``delimited``, ``opencsv``
    or ``json`` (by the declared columns)."""

    kind: str = "parquet"
    columns: tuple[tuple[str, str], ...] = ()
    delimiter: str = "\x01"
    quote: str = '"'
    escape: str | None = None
    null: str | None = "\\N"
    skip_header: int = 0
    invalid_as_null: bool = True
    ignore_malformed: bool = False
    keys: tuple[tuple[str, str], ...] = ()  # column → JSON key (``mapping.*``)


PARQUET = Reader()
KINDS = ("parquet", "delimited", "opencsv", "json")


def reader(glue_table: dict[str, Any]) -> Reader:
    """The reader of a Glue table, from its SerDe and parameters; refused when not emulated."""
    storage = glue_table.get("StorageDescriptor") or {}
    serde = storage.get("SerdeInfo") or {}
    library = serde.get("SerializationLibrary") or ""
    params = {str(k): str(v) for k, v in (serde.get("Parameters") or {}).items()}
    table_params = {str(k).lower(): str(v) for k, v in (glue_table.get("Parameters") or {}).items()}
    input_format = (storage.get("InputFormat") or "").lower()
    lowered = library.lower()
    if not library or any(h in lowered for h in _PARQUET_HINTS):
        if not library and any(h in input_format for h in _REFUSED_HINTS):
            _refuse(glue_table, storage.get("InputFormat"))
        return PARQUET  # no SerDe at all: the tables the world's services register are Parquet
    if any(h in lowered for h in _REFUSED_HINTS) or library not in (
        LAZY_SIMPLE,
        OPEN_CSV,
        *JSON_SERDES,
    ):
        _refuse(glue_table, library)
    columns = tuple(
        (str(c["Name"]), str(c.get("Type") or "string")) for c in storage.get("Columns") or []
    )
    skip = _count(table_params.get("skip.header.line.count", "0"), glue_table)
    if library == LAZY_SIMPLE:
        nested = [n for n, t in columns if _nested(t)]
        if nested:
            raise QueryFailed(
                "NOT_SUPPORTED",
                f"table '{glue_table.get('Name')}': nested columns of a delimited text table "
                f"are not emulated ({', '.join(nested)})",
            )
        return Reader(
            "delimited",
            columns,
            delimiter=_byte(params.get("field.delim", params.get("serialization.format"))),
            escape=_byte(params["escape.delim"]) if params.get("escape.delim") else None,
            null=params.get("serialization.null.format", "\\N"),
            skip_header=skip,
        )
    if library == OPEN_CSV:
        return Reader(
            "opencsv",
            columns,
            delimiter=params.get("separatorChar", ",") or ",",
            quote=params.get("quoteChar", '"') or '"',
            escape=params.get("escapeChar") or None,
            null=None,
            skip_header=skip,
            invalid_as_null=table_params.get("use.null.for.invalid.data", "").lower() == "true",
        )
    keys = tuple(
        (k[len("mapping.") :].lower(), v.lower())
        for k, v in sorted(params.items())
        if k.lower().startswith("mapping.")
    )
    return Reader(
        "json",
        columns,
        null=None,
        skip_header=skip,
        invalid_as_null=False,
        ignore_malformed=params.get("ignore.malformed.json", "").lower() == "true",
        keys=keys,
    )


def _byte(value: str | None) -> str:
    """A delimiter as Hive reads it: a number is the byte of that value (``serialization.format``
    ``1`` is Ctrl-A), anything else its first character; Ctrl-A when not given."""
    if not value:
        return "\x01"
    if value.isdigit() and int(value) < 128:
        return chr(int(value))
    return value[0]


def _refuse(glue_table: dict[str, Any], what: Any) -> None:
    raise QueryFailed(
        "NOT_SUPPORTED",
        f"table '{glue_table.get('Name')}': its SerDe {what} is not emulated (Parquet, "
        "LazySimpleSerDe, OpenCSVSerde and the JSON SerDes are)",
    )


def _count(value: str, glue_table: dict[str, Any]) -> int:
    try:
        count = int(value)
    except ValueError:
        count = -1
    if count < 0:
        raise QueryFailed(
            "INVALID_TABLE_PROPERTY",
            f"table '{glue_table.get('Name')}': skip.header.line.count {value!r} is not a "
            "whole number of lines",
        )
    return count


def _nested(hive: str) -> bool:
    return bool(re.match(r"\s*(struct|array|map)\s*<", hive, re.I))


def text_of(body: bytes, uri: str) -> str:
    """The object's text, decompressed as its name says (Hadoop picks the codec by suffix)."""
    name = uri.lower()
    try:
        if name.endswith(".gz"):
            body = gzip.decompress(body)
        elif name.endswith(".bz2"):
            body = bz2.decompress(body)
        elif name.endswith((".zst", ".zstd")):
            body = pa.input_stream(pa.BufferReader(body), compression="zstd").read()
        elif name.endswith((".snappy", ".lz4", ".deflate")):
            raise QueryFailed(
                "NOT_SUPPORTED", f"{uri}: Hadoop's {name.rsplit('.', 1)[1]} codec is not emulated"
            )
    except (OSError, EOFError, ValueError, pa.ArrowException) as exc:
        raise QueryFailed("HIVE_CURSOR_ERROR", f"{uri} cannot be decompressed: {exc}") from None
    return body.decode("utf-8", errors="replace")


def decode(body: bytes, uri: str, read: Reader, con: Any) -> pa.Table:
    """The rows of one text object, typed as the table declares them."""
    lines = _LINES.split(text_of(body, uri))
    if lines and lines[-1] == "":
        lines.pop()  # the object's last line ends with a line break
    numbered = list(enumerate(lines, start=1))[read.skip_header :]
    names = [n for n, _ in read.columns]
    if read.kind == "json":
        raw, numbers = _json_rows(numbered, read, uri)
    else:
        split = _delimited if read.kind == "delimited" else _csv
        raw, numbers = [], []
        for number, line in numbered:
            fields = split(line, read)
            raw.append([fields[i] if i < len(fields) else None for i in range(len(names))])
            numbers.append(number)
    text = pa.table(
        {f"c{i}": pa.array([row[i] for row in raw], pa.string()) for i in range(len(names))}
    )
    return _typed(text, numbers, read, uri, con)


def _delimited(line: str, read: Reader) -> list[str | None]:
    if read.escape:
        pattern = f"(?<!{re.escape(read.escape)}){re.escape(read.delimiter)}"
        fields = [re.sub(f"{re.escape(read.escape)}(.)", r"\1", f) for f in re.split(pattern, line)]
    else:
        fields = line.split(read.delimiter)
    return [None if f == read.null else f for f in fields]


def _csv(line: str, read: Reader) -> list[str | None]:
    try:
        row = next(
            csv.reader(
                [line],
                delimiter=read.delimiter[0],
                quotechar=read.quote[0],
                escapechar=read.escape[0] if read.escape else None,
                doublequote=read.escape is None,
                strict=False,
            ),
            [],
        )
    except csv.Error:
        return [line]
    return list(row)


def _json_rows(
    numbered: list[tuple[int, str]], read: Reader, uri: str
) -> tuple[list[list[str | None]], list[int]]:
    keys = dict(read.keys)
    wanted = [keys.get(name.lower(), name.lower()) for name, _ in read.columns]
    rows, numbers = [], []
    for number, line in numbered:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            if not read.ignore_malformed:
                raise QueryFailed(
                    "HIVE_CURSOR_ERROR", f"{uri} line {number}: Row is not a valid JSON Object"
                )
            record = {}
        folded = {str(k).lower(): v for k, v in record.items()}
        rows.append(
            [
                _json_text(folded.get(key), hive)
                for key, (_, hive) in zip(wanted, read.columns, strict=True)
            ]
        )
        numbers.append(number)
    return rows, numbers


def _json_text(value: Any, hive: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value) if _nested(hive) else value
    if isinstance(value, dict | list) and "map<" not in hive.lower():
        value = _fold(value)
    return json.dumps(value)


def _fold(value: Any) -> Any:
    """Nested keys in lower case, as the JSON SerDes match struct fields to them."""
    if isinstance(value, dict):
        return {str(k).lower(): _fold(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_fold(v) for v in value]
    return value


def duck_type(hive: str) -> str:
    """DuckDB's type for a Glue (Hive) column type, nested types included."""
    text = hive.strip()
    lower = text.lower()
    if lower.startswith("struct<") and lower.endswith(">"):
        try:
            fields = [f'"{name.lower()}" {duck_type(kind)}' for name, kind in struct_fields(text)]
        except InvalidInputException as exc:
            raise QueryFailed("HIVE_INVALID_METADATA", str(exc)) from None
        return f"STRUCT({', '.join(fields)})"
    if lower.startswith("array<") and lower.endswith(">"):
        return f"{duck_type(text[6:-1])}[]"
    if lower.startswith("map<") and lower.endswith(">"):
        key, value = [*split_top(text[4:-1]), "string"][:2]
        return f"MAP({duck_type(key)}, {duck_type(value)})"
    if lower.startswith("decimal"):
        digits = lower[len("decimal") :].strip("() ") or "10,0"
        precision, _, scale = digits.partition(",")
        return f"DECIMAL({int(precision)}, {int(scale or 0)})"
    simple = {
        "tinyint": "TINYINT",
        "smallint": "SMALLINT",
        "int": "INTEGER",
        "integer": "INTEGER",
        "bigint": "BIGINT",
        "float": "FLOAT",
        "real": "FLOAT",
        "double": "DOUBLE",
        "boolean": "BOOLEAN",
        "date": "DATE",
        "timestamp": "TIMESTAMP",
        "binary": "BLOB",
    }
    return simple.get(lower.split("(")[0].strip(), "VARCHAR")


def _expression(column: str, hive: str, read: Reader) -> str:
    kind = duck_type(hive)
    if kind == "VARCHAR":
        return column
    if _nested(hive):
        return f"TRY_CAST(TRY_CAST({column} AS JSON) AS {kind})"
    if read.kind == "opencsv" and kind == "DATE":  # OpenCSVSerde: also days since 1970
        return (
            f"CASE WHEN regexp_full_match({column}, '-?[0-9]+') "
            f"THEN DATE '1970-01-01' + TRY_CAST({column} AS INTEGER) "
            f"ELSE TRY_CAST({column} AS DATE) END"
        )
    if read.kind == "opencsv" and kind == "TIMESTAMP":  # also milliseconds since 1970
        return (
            f"CASE WHEN regexp_full_match({column}, '-?[0-9]+') "
            f"THEN make_timestamp(TRY_CAST({column} AS BIGINT) * 1000) "
            f"ELSE TRY_CAST({column} AS TIMESTAMP) END"
        )
    if kind == "BOOLEAN":  # Hive: true/false in any case; anything else is not a boolean
        return (
            f"CASE WHEN lower({column}) = 'true' THEN true "
            f"WHEN lower({column}) = 'false' THEN false END"
        )
    return f"TRY_CAST({column} AS {kind})"


def _typed(text: pa.Table, numbers: list[int], read: Reader, uri: str, con: Any) -> pa.Table:
    """The text columns converted to the declared types; a value that does not convert is null
    (lenient readers) or fails naming object, line, column and value."""
    selects = [
        f'{_expression(f"c{i}", hive, read)} AS "{name}"'
        for i, (name, hive) in enumerate(read.columns)
    ]
    cursor = con.cursor()
    try:
        cursor.register("dfp_text_rows", text)
        typed = cursor.execute(
            f"SELECT {', '.join(selects) or '1 AS _'} FROM dfp_text_rows"
        ).to_arrow_table()
    finally:
        cursor.close()
    if read.invalid_as_null:
        return typed
    for i, (name, hive) in enumerate(read.columns):
        lost = pc.and_(pc.is_valid(text[f"c{i}"]), pc.is_null(typed[name]))
        if pc.any(lost).as_py():
            row = pc.index(lost, True).as_py()
            raise QueryFailed(
                "HIVE_BAD_DATA",
                f"{uri} line {numbers[row]}: Error parsing field value "
                f"'{text[f'c{i}'][row].as_py()}' for field {i} (column '{name}'): "
                f"not a {hive}",
            )
    return typed
