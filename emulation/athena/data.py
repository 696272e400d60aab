"""A Glue table's data for a query: loaded into DuckDB once, kept while its objects stay the same.

Reading every object again through the world's S3 API for every query made a group-by over
`standard`'s 1.5M staged rows take seconds where the engine itself needs a fraction of one; the
objects of a table barely change between queries. So a table is loaded once into the process's
DuckDB database as a native table (scanning DuckDB's own storage is several times faster than
scanning Arrow) and queried there for as long as the listing of its location is the same: every
query lists the location again, so objects added, rewritten (a new ETag) or deleted since are
seen, as on Athena, and the table is then loaded again. Each object is fetched and decoded once
too (keyed by bucket, key, ETag and size, in a least-recently-used cache bounded by
``DFP_ATHENA_CACHE_MB``, 2048 by default), so reloading a table that gained one object reads only
that object.

Objects decode with the table's SerDe (:mod:`emulation.athena.serdes`): Parquet by column name,
text tables by their declared columns, so the cache is keyed by the reader too.

Partitions are those found under the table's location, Hive-style (``key=value`` folders), as
partition projection finds them; objects and folders whose names start with ``_`` or ``.`` are
skipped, as Athena skips them.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import threading
import urllib.parse
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from emulation.athena import serdes
from emulation.athena.dialect import MACROS
from emulation.athena.errors import QueryFailed

logger = logging.getLogger(__name__)

_HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
_CACHE: OrderedDict[tuple[str, str, str, int, serdes.Reader], pa.Table] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_cached_bytes = 0
# Whole tables, loaded into one DuckDB database of the process as native tables (scanning DuckDB's
# own storage is several times faster than scanning Arrow), keyed by their location, partition
# keys and every object's identity: a table whose objects have not changed since the last query is
# queried as it was loaded then; a table that changed is loaded again and its old copy dropped.
_DB: duckdb.DuckDBPyConnection | None = None
_NATIVE: OrderedDict[tuple[Any, ...], Native] = OrderedDict()
_NATIVE_KEPT = 16
_names = itertools.count()


@dataclass(frozen=True)
class S3Object:
    bucket: str
    key: str
    etag: str
    size: int

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def split_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` → (bucket, prefix without slashes at either end)."""
    if not uri.startswith("s3://"):
        raise QueryFailed("INVALID_TABLE_PROPERTY", f"location {uri!r} is not an s3:// URI")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    if not bucket:
        raise QueryFailed("INVALID_TABLE_PROPERTY", f"location {uri!r} names no bucket")
    return bucket, prefix.strip("/")


class Objects(Protocol):
    """Where a table's objects are listed and read from."""

    def list(self, bucket: str, prefix: str) -> list[S3Object]: ...

    def read(self, obj: S3Object) -> bytes: ...


def list_objects(objects: Objects, location: str) -> list[S3Object]:
    """The data objects under ``location``, in key order, hidden names left out."""
    bucket, prefix = split_uri(location)
    folder = f"{prefix}/" if prefix else ""
    found = []
    for obj in sorted(objects.list(bucket, folder), key=lambda o: o.key):
        relative = obj.key[len(folder) :]
        if not relative or relative.endswith("/") or relative.endswith("_$folder$"):
            continue
        if any(part[:1] in ("_", ".") for part in relative.split("/")):
            continue
        found.append(obj)
    return found


def _limit() -> int:
    return int(os.environ.get("DFP_ATHENA_CACHE_MB", "2048")) * 2**20


def decoded(objects: Objects, obj: S3Object, read: serdes.Reader = serdes.PARQUET) -> pa.Table:
    """The object's rows, from the cache or fetched and decoded now (by its table's SerDe)."""
    global _cached_bytes
    key = (obj.bucket, obj.key, obj.etag, obj.size, read)
    with _CACHE_LOCK:
        table = _CACHE.get(key)
        if table is not None:
            _CACHE.move_to_end(key)
            return table
    body = objects.read(obj)
    if read.kind != "parquet":
        table = serdes.decode(body, obj.uri, read, database())
    else:
        try:
            table = pq.read_table(pa.BufferReader(body))
        except (pa.ArrowInvalid, OSError) as exc:
            raise QueryFailed(
                "HIVE_BAD_DATA", f"{obj.uri} is not a readable Parquet file: {exc}"
            ) from None
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = table
            _cached_bytes += table.nbytes
        while _cached_bytes > _limit() and len(_CACHE) > 1:
            _, evicted = _CACHE.popitem(last=False)
            _cached_bytes -= evicted.nbytes
    return table


def clear_cache() -> None:
    """Forget every decoded object (tests; a world being thrown away)."""
    global _cached_bytes
    with _CACHE_LOCK:
        _CACHE.clear()
        _cached_bytes = 0
        for native in _NATIVE.values():
            _drop(native)
        _NATIVE.clear()


_ARROW_TYPES = {
    "string": pa.string(),
    "varchar": pa.string(),
    "char": pa.string(),
    "int": pa.int32(),
    "integer": pa.int32(),
    "bigint": pa.int64(),
    "smallint": pa.int16(),
    "tinyint": pa.int8(),
    "double": pa.float64(),
    "float": pa.float32(),
    "real": pa.float32(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
}


def arrow_type(hive: str) -> pa.DataType | None:
    """The Arrow type of a Hive/Glue scalar type; ``None`` for complex types."""
    lower = hive.strip().lower()
    if lower.startswith("decimal"):
        digits = lower[len("decimal") :].strip("() ") or "10,0"
        precision, _, scale = digits.partition(",")
        return pa.decimal128(int(precision), int(scale or 0))
    return _ARROW_TYPES.get(lower.split("(")[0])


def partition_values(relative: str, keys: list[dict[str, str]]) -> dict[str, str | None] | None:
    """The ``key=value`` folders of an object's path below the table; ``None`` when a partition
    key has no folder (the object lies outside every partition and is not read)."""
    found: dict[str, str | None] = {}
    for part in relative.split("/")[:-1]:
        name, sep, value = part.partition("=")
        if sep:
            value = urllib.parse.unquote(value)
            found[name.lower()] = None if value == _HIVE_NULL else value
    values = {}
    for key in keys:
        if key["Name"].lower() not in found:
            return None
        values[key["Name"]] = found[key["Name"].lower()]
    return values


def _constant(value: str | None, hive: str, rows: int, where: str) -> pa.Array:
    kind = arrow_type(hive) or pa.string()
    if value is None:
        return pa.nulls(rows, kind)
    try:
        scalar = pa.scalar(value, pa.string()).cast(kind)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise QueryFailed(
            "HIVE_INVALID_PARTITION_VALUE", f"{where}: {value!r} is not a valid {hive}"
        ) from None
    return pa.repeat(scalar, rows)


@dataclass(frozen=True)
class Native:
    """A table loaded into the process's DuckDB database: its name there (``None``: no object
    yet) and the bytes of the objects behind it."""

    location: str
    name: str | None
    scanned: int
    objects: int


def database() -> duckdb.DuckDBPyConnection:
    """The process's DuckDB database; each query runs on a cursor of its own.

    It holds only what the world loads into it (Arrow tables of S3 objects it read itself), so it
    never reads the host: DuckDB's file and URL access is off and locked, and a query naming
    ``read_text('~/.aws/credentials')`` or ``read_csv_auto('/etc/passwd')`` is refused by DuckDB
    even if it got past the table-function check in :func:`emulation.athena.engine.parse`."""
    global _DB
    with _CACHE_LOCK:
        if _DB is None:
            _DB = duckdb.connect()
            # the bar would print into the server's output (in Jupyter, DuckDB refuses the
            # setting without ipywidgets, and draws no bar there anyway)
            with contextlib.suppress(duckdb.Error):
                _DB.execute("SET enable_progress_bar = false")
            # Trino divides integers as integers (7 / 2 is 3, sum(x) / count(*) a whole
            # number); DuckDB's ``/`` makes a double unless told. Set for every cursor, by the
            # values' own types at run time (struct fields included), before the lock.
            _DB.execute("SET GLOBAL integer_division = true")
            for macro in MACROS:  # Trino's functions DuckDB lacks
                _DB.execute(macro)
            _DB.execute("SET enable_external_access = false")
            _DB.execute("SET lock_configuration = true")  # no query may turn it back on
        return _DB


def _drop(native: Native) -> None:
    if native.name is not None and _DB is not None:
        cursor = _DB.cursor()
        try:
            cursor.execute(f'DROP TABLE IF EXISTS main."{native.name}"')
        finally:
            cursor.close()


def materialize(objects: Objects, glue_table: dict[str, Any]) -> Native:
    """The table's rows as a native DuckDB table, loaded now unless its objects are unchanged."""
    location = glue_table["StorageDescriptor"]["Location"]
    keys = glue_table.get("PartitionKeys") or []
    read = serdes.reader(glue_table)
    listed = list_objects(objects, location)
    identity = (
        location,
        read,
        tuple((k["Name"], k["Type"]) for k in keys),
        tuple((o.bucket, o.key, o.etag, o.size) for o in listed),
    )
    with _CACHE_LOCK:
        known = _NATIVE.get(identity)
        if known is not None:
            _NATIVE.move_to_end(identity)
            return known
    rows, scanned, count = _assemble(objects, location, keys, listed, read)
    name = None
    if rows is not None:
        name = f"t_{next(_names)}"
        cursor = database().cursor()
        try:
            cursor.register("incoming", rows)
            cursor.execute(f'CREATE TABLE main."{name}" AS SELECT * FROM incoming')
        finally:
            cursor.close()
    native = Native(location, name, scanned, count)
    with _CACHE_LOCK:
        stale = [i for i, n in _NATIVE.items() if n.location == location]
        for old in stale:  # an older listing of the same table: never queried again
            _drop(_NATIVE.pop(old))
        _NATIVE[identity] = native
        while len(_NATIVE) > _NATIVE_KEPT:
            _drop(_NATIVE.popitem(last=False)[1])
    logger.debug("loaded %s: %d objects as %s", location, count, name)
    return native


def _assemble(
    objects: Objects,
    location: str,
    keys: list[dict[str, str]],
    listed: list[S3Object],
    read: serdes.Reader,
) -> tuple[pa.Table | None, int, int]:
    """Every row of the listed objects, partition columns appended."""
    _, prefix = split_uri(location)
    folder = f"{prefix}/" if prefix else ""
    parts, scanned = [], 0
    for obj in listed:
        data = decoded(objects, obj, read)
        if keys:
            values = partition_values(obj.key[len(folder) :], keys)
            if values is None:
                continue
            for key in keys:
                if key["Name"] in data.column_names:
                    data = data.drop_columns([key["Name"]])
                data = data.append_column(
                    key["Name"],
                    _constant(values[key["Name"]], key["Type"], data.num_rows, obj.uri),
                )
        parts.append(data)
        scanned += obj.size
    if not parts:
        return None, 0, 0
    try:
        rows = pa.concat_tables(parts, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise QueryFailed(
            "HIVE_PARTITION_SCHEMA_MISMATCH", f"objects under {location} disagree: {exc}"
        ) from None
    return rows, scanned, len(parts)
