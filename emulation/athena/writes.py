"""What CTAS, INSERT INTO and UNLOAD write: data objects split into Hive partition folders, the
data manifest (one object URI per line), and the catalog entries that make them a table."""

from __future__ import annotations

import gzip
import io
import json
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from emulation.athena.data import split_uri
from emulation.athena.errors import QueryFailed

HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
PARQUET_SERDE = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {
        "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    },
}
COMPRESSION = {
    "GZIP": "gzip",
    "SNAPPY": "snappy",
    "ZSTD": "zstd",
    "LZ4": "lz4",
    "NONE": "none",
    "UNCOMPRESSED": "none",
}

_HIVE_TYPES = (
    (pa.types.is_int64, "bigint"),
    (pa.types.is_int32, "int"),
    (pa.types.is_int16, "smallint"),
    (pa.types.is_int8, "tinyint"),
    (pa.types.is_float64, "double"),
    (pa.types.is_float32, "float"),
    (pa.types.is_boolean, "boolean"),
    (pa.types.is_date, "date"),
    (pa.types.is_timestamp, "timestamp"),
)


def hive_type(arrow: pa.DataType) -> str:
    """The Glue column type of an Arrow type (nested types spelled out, as Glue stores them)."""
    if pa.types.is_decimal(arrow):
        return f"decimal({arrow.precision},{arrow.scale})"
    if pa.types.is_struct(arrow):
        fields = ",".join(f"{f.name}:{hive_type(f.type)}" for f in arrow)
        return f"struct<{fields}>"
    if pa.types.is_list(arrow) or pa.types.is_large_list(arrow):
        return f"array<{hive_type(arrow.value_type)}>"
    return next((name for test, name in _HIVE_TYPES if test(arrow)), "string")


@dataclass(frozen=True)
class Format:
    """How data objects are encoded: Parquet, or text (delimited or JSON lines)."""

    kind: str  # PARQUET | TEXTFILE | JSON
    compression: str  # a pyarrow codec for Parquet; gzip or none for text
    delimiter: str = "\x01"

    @property
    def suffix(self) -> str:
        if self.kind == "PARQUET":
            return ".parquet"
        text = ".json" if self.kind == "JSON" else ".txt"
        return text + (".gz" if self.compression == "gzip" else "")


def encode(part: pa.Table, fmt: Format) -> bytes:
    if fmt.kind == "PARQUET":
        sink = io.BytesIO()
        pq.write_table(part, sink, compression=fmt.compression)
        return sink.getvalue()
    if fmt.kind == "JSON":
        text = "".join(json.dumps(row, default=str) + "\n" for row in part.to_pylist()).encode()
    else:
        text = hive_text(part, fmt.delimiter)
    return gzip.compress(text, mtime=0) if fmt.compression == "gzip" else text


def hive_text(part: pa.Table, delimiter: str) -> bytes:
    """Rows as Hive's LazySimpleSerDe writes them: fields joined by the delimiter, unquoted,
    ``\\N`` for null, ``true``/``false``; what :mod:`emulation.athena.serdes` reads back."""
    fields = []
    for name in part.column_names:
        column = part[name]
        if pa.types.is_nested(column.type):
            raise QueryFailed(
                "NOT_SUPPORTED", f"TEXTFILE: nested column {name!r} ({column.type}) is not emulated"
            )
        try:
            text = pc.cast(column, pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:  # e.g. binary not UTF-8
            raise QueryFailed(
                "NOT_SUPPORTED", f"TEXTFILE: column {name!r} cannot be written as text: {exc}"
            ) from None
        fields.append(pc.fill_null(text, "\\N"))
    if not fields or part.num_rows == 0:
        return b""
    lines = pc.binary_join_element_wise(*fields, delimiter)
    return "".join(f"{line}\n" for line in lines.to_pylist()).encode()


def partition_groups(
    data: pa.Table, partitioned_by: list[str]
) -> list[tuple[tuple[str, ...], pa.Table]]:
    """The rows of each partition (values as folder text), in a stable order."""
    if not partitioned_by:
        return [((), data)]
    keys = data.select(partitioned_by).to_pylist()
    distinct = sorted({tuple(row.values()) for row in keys}, key=repr)
    groups = []
    for values in distinct:
        mask = None
        for column, value in zip(partitioned_by, values, strict=True):
            test = pc.is_null(data[column]) if value is None else pc.equal(data[column], value)
            mask = test if mask is None else pc.and_(mask, test)
        text = tuple(HIVE_NULL if v is None else str(v) for v in values)
        groups.append((text, data.filter(mask).drop_columns(partitioned_by)))
    return groups


def folder(partitioned_by: list[str], values: tuple[str, ...]) -> str:
    return "".join(f"{c}={v}/" for c, v in zip(partitioned_by, values, strict=True))


def require_empty(s3: Any, location: str, what: str) -> None:
    """CTAS and UNLOAD never write into a location that holds objects (as on Athena)."""
    bucket, prefix = split_uri(location)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/" if prefix else "", MaxKeys=1)
    if listed.get("KeyCount", 0):
        raise QueryFailed(
            "HIVE_PATH_ALREADY_EXISTS",
            f"Target directory for {what} already exists: {location.rstrip('/')}/. "
            "You may need to manually clean the data at location before running the query.",
        )


def write_objects(
    s3: Any,
    data: pa.Table,
    location: str,
    partitioned_by: list[str],
    fmt: Format,
    query_id: str,
) -> list[tuple[tuple[str, ...], str]]:
    """Write ``data`` under ``location``, one object per partition; (values, URI) per object."""
    bucket, prefix = split_uri(location)
    written = []
    for n, (values, part) in enumerate(partition_groups(data, partitioned_by)):
        if part.num_rows == 0 and partitioned_by:
            continue
        key = f"{prefix}/{folder(partitioned_by, values)}{query_id}_{n:05d}{fmt.suffix}"
        s3.put_object(Bucket=bucket, Key=key.lstrip("/"), Body=encode(part, fmt))
        written.append((values, f"s3://{bucket}/{key.lstrip('/')}"))
    return written


def write_manifest(s3: Any, uri: str, objects: list[str]) -> str:
    """The data manifest Athena writes beside a CTAS, INSERT INTO or UNLOAD: one URI per line."""
    bucket, key = split_uri(uri)
    s3.put_object(Bucket=bucket, Key=key, Body="".join(o + "\n" for o in objects).encode())
    return uri


def partition_locations(
    partitioned_by: list[str], values: list[tuple[str, ...]], location: str
) -> dict[tuple[str, ...], str]:
    """Each partition's folder under ``location`` (the Hive layout the objects were written in)."""
    return {v: location.rstrip("/") + "/" + folder(partitioned_by, v) for v in values}
