"""Athena queries that really execute, which moto never does (it returns 0 rows).

In the embedded world ``StartQueryExecution`` runs the query: the tables it names are looked up in
the Glue Data Catalog, their S3 data (Parquet, Hive-style partitions) is read by DuckDB over the
world's endpoint (httpfs, offline from the ``duckdb-extension-httpfs`` package), and the query,
written in Athena's Trino dialect, is translated with sqlglot. ``GetQueryExecution`` reports
``QUEUED``/``RUNNING`` then ``SUCCEEDED``, or ``FAILED`` with ``StateChangeReason`` and
``AthenaError``; ``GetQueryResults`` returns Athena's result set (a header row first, every value as
``VarCharValue``, ``ColumnInfo`` with Athena's type names) with ``MaxResults``/``NextToken``
pagination; the results are also written as CSV to the output location (``<id>.csv``, every value
quoted), as Athena does. ``ExecutionParameters`` fill ``?`` placeholders as bound values, never as
SQL text: each must be one SQL literal.

``CREATE TABLE … WITH (…) AS SELECT`` (CTAS, what awswrangler's ``read_sql_query`` sends by
default) writes the result as Parquet under ``external_location`` (which must be empty, as on
Athena) or ``<output>/tables/<query id>/``, split into ``partitioned_by`` folders, compressed as
``write_compression`` says (Athena's default for Parquet: GZIP); registers the table and its
partitions in the Glue catalog; writes the data manifest
(``<output>/tables/<query id>-manifest.csv``, one object per line) and reports it as
``Statistics.DataManifestLocation``; and answers one row, ``rows``, the count written. Without
``ResultConfiguration.OutputLocation`` the workgroup's output location is used. Result columns an
expression produced without an alias are named ``_col<N>`` (position from 0) and integer sums are
``bigint``, as on Athena. ``MSCK REPAIR TABLE`` registers the Hive-style partitions found under
the table's location in the Glue catalog. Failures carry Athena's error names
(``FUNCTION_NOT_FOUND`` naming the function, ``TYPE_MISMATCH``, ``COLUMN_NOT_FOUND``,
``TABLE_NOT_FOUND``, ``SYNTAX_ERROR``…) and its ``AthenaError`` category (2, the user's) and type.

Not emulated: Hive DDL (``CREATE EXTERNAL TABLE``; use the Glue API; ``ALTER TABLE`` is accepted
and does nothing, partitions being read from S3 at query time), INSERT/UNLOAD, CTAS formats
other than Parquet and ``bucketed_by`` (refused with ``NOT_SUPPORTED``), views in the catalog,
federated catalogs, workgroup limits and encryption settings, data-scanned statistics, table
formats other than Parquet (JSON/CSV tables, Iceberg).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import logging
import pathlib
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp

from emulation._managed_state import embedded_client, follow_tracker
from emulation._patching import moto_patch

logger = logging.getLogger(__name__)

_RUN_LOCK = threading.Lock()
_DDL_NOOP = ("ALTER TABLE",)
_MSCK = re.compile(r"MSCK\s+REPAIR\s+TABLE\s+(?:[`\"]?(\w+)[`\"]?\.)?[`\"]?(\w+)[`\"]?\s*$", re.I)


@dataclass(frozen=True)
class Repair:
    """``MSCK REPAIR TABLE``: register the partitions found under the table's location."""

    database: str
    table: str


class QueryFailed(Exception):
    """A query Athena would fail; ``error_type`` names Athena's error (e.g. SYNTAX_ERROR)."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message


@dataclass
class _Run:
    state: str = "QUEUED"
    reason: str | None = None
    error_type: str | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    columns: list[dict[str, Any]] = field(default_factory=list)
    completed: float | None = None
    output: str | None = None  # the execution's OutputLocation (a CTAS: <output>/tables/<id>)
    manifest: str | None = None  # a CTAS's data manifest


@dataclass
class Ctas:
    """A CTAS statement, evaluated: where and how its result is to be written and registered."""

    database: str
    table: str
    data: pa.Table
    location: str | None  # external_location, or None for <output>/tables/<query id>
    compression: str
    partitioned_by: list[str]


_COMPRESSION = {
    "GZIP": "gzip",
    "SNAPPY": "snappy",
    "ZSTD": "zstd",
    "LZ4": "lz4",
    "NONE": "none",
    "UNCOMPRESSED": "none",
}


def _ctas_options(tree: exp.Create) -> dict[str, Any]:
    """The ``WITH (…)`` properties of a CTAS, by Athena's names."""
    options: dict[str, Any] = {}
    properties = tree.args.get("properties")
    for prop in properties.expressions if properties else []:
        if isinstance(prop, exp.FileFormatProperty):
            options["format"] = prop.this.name.upper()
        elif isinstance(prop, exp.PartitionedByProperty):
            options["partitioned_by"] = [e.name for e in prop.this.expressions]
        elif isinstance(prop, exp.Property):
            value = prop.args.get("value")
            if isinstance(value, exp.Array):
                options[prop.name.lower()] = [e.name for e in value.expressions]
            else:
                options[prop.name.lower()] = value.name if value is not None else None
        else:
            raise QueryFailed("NOT_SUPPORTED", f"CTAS property {prop.sql('trino')} is not emulated")
    return options


def _httpfs_path() -> pathlib.Path:
    import duckdb_extension_httpfs

    base = pathlib.Path(duckdb_extension_httpfs.__file__).parent / "extensions"
    return base / f"v{duckdb.__version__}" / "httpfs.duckdb_extension"


def connect(endpoint: str, region: str) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection reading ``s3://`` from the world (offline httpfs, dummy keys)."""
    con = duckdb.connect()
    con.execute(f"LOAD '{_httpfs_path()}'")
    host = endpoint.split("//", 1)[1].rstrip("/")
    con.execute(
        "CREATE SECRET world (TYPE S3, KEY_ID 'testing', SECRET 'testing', "
        f"REGION '{region}', ENDPOINT '{host}', URL_STYLE 'path', USE_SSL false)"
    )
    # DuckDB 1.5.5 fails an internal assertion when statistics propagation meets an aggregate
    # over a Hive partition column (``max(version)`` of a partitioned table). Athena has no such
    # limit, so the optimisation is off; results are the same, plans a little slower.
    con.execute("SET disabled_optimizers = 'statistics_propagation'")
    return con


def _athena_type(arrow: pa.DataType) -> str:
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


def _parameters(values: list[str] | None) -> list[Any]:
    """Each ExecutionParameter must be exactly one SQL literal; bound, never spliced."""
    bound = []
    for value in values or []:
        if not isinstance(value, str) or not value.strip():
            raise QueryFailed("INVALID_PARAMETER", f"parameter {value!r:.100} is empty")
        try:
            parsed = sqlglot.parse_one(value, read="trino")
        except (sqlglot.errors.SqlglotError, ValueError, IndexError, RecursionError) as exc:
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise QueryFailed("INVALID_PARAMETER", f"parameter {value!r:.100}: {detail}") from None
        if isinstance(parsed, exp.Neg) and isinstance(parsed.this, exp.Literal):
            parsed = exp.Literal.number(f"-{parsed.this.this}")
        if not isinstance(parsed, exp.Literal | exp.Null | exp.Boolean):
            raise QueryFailed("INVALID_PARAMETER", f"parameter {value!r:.100} is not a literal")
        if isinstance(parsed, exp.Null):
            bound.append(None)
        elif isinstance(parsed, exp.Boolean) or parsed.is_string:
            bound.append(parsed.this)
        else:
            number = parsed.this
            bound.append(float(number) if any(c in number for c in ".eE") else int(number))
    return bound


def execute(
    query: str,
    database: str | None,
    catalog_tables: Any,
    endpoint: str,
    region: str,
    parameters: list[str] | None = None,
) -> pa.Table | Ctas | Repair | None:
    """Run an Athena (Trino) query over the catalog's S3 data; ``None`` for no-op DDL, a
    :class:`Ctas` or a :class:`Repair` for the caller to carry out (it holds the clients).

    ``catalog_tables(database, name)`` returns the Glue table dict or ``None``.
    """
    text = query.strip().rstrip(";")
    upper = text.upper()
    if upper.startswith("MSCK"):
        repair = _MSCK.match(text)
        if repair is None:
            raise QueryFailed("SYNTAX_ERROR", "expected MSCK REPAIR TABLE [database.]table")
        db = repair.group(1) or database
        if not db or catalog_tables(db, repair.group(2)) is None:
            raise QueryFailed("TABLE_NOT_FOUND", f"Table '{db}.{repair.group(2)}' does not exist")
        return Repair(db, repair.group(2))
    if upper.startswith(_DDL_NOOP):
        return None  # partitions are discovered from the S3 layout at query time
    if upper.startswith(("CREATE DATABASE", "CREATE SCHEMA", "DROP DATABASE", "DROP SCHEMA")):
        return None
    try:
        tree = sqlglot.parse_one(text, read="trino")
    except (sqlglot.errors.SqlglotError, ValueError, IndexError, RecursionError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise QueryFailed("SYNTAX_ERROR", detail) from None
    ctas: exp.Create | None = None
    if (
        isinstance(tree, exp.Create)
        and str(tree.args.get("kind", "")).upper() == "TABLE"
        and isinstance(tree.expression, exp.Query)
    ):
        ctas, tree = tree, tree.expression
    if not isinstance(tree, exp.Query):
        raise QueryFailed("NOT_SUPPORTED", f"statement {type(tree).__name__} is not emulated")
    _name_unnamed_columns(tree)
    bound = _parameters(parameters)
    placeholders = len(list(tree.find_all(exp.Placeholder)))
    if placeholders != len(bound):
        raise QueryFailed(
            "INVALID_PARAMETER",
            f"the query has {placeholders} placeholders but {len(bound)} parameters were given",
        )
    con = connect(endpoint, region)
    try:
        ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
        for table in tree.find_all(exp.Table):
            name = table.name
            if not name or (not table.db and name in ctes):
                continue
            db = table.db or database
            if not db:
                raise QueryFailed("SCHEMA_NOT_FOUND", f"no database for table {name}")
            glue = catalog_tables(db, name)
            if glue is None:
                raise QueryFailed(
                    "TABLE_NOT_FOUND", f"Table 'awsdatacatalog.{db}.{name}' does not exist"
                )
            _register(con, db, name, glue)
        if database:
            con.execute(f'CREATE SCHEMA IF NOT EXISTS "{database}"')
            con.execute(f"SET schema = '{database}'")
        sql = tree.sql(dialect="duckdb")
        try:
            result = _athena_result_types(con.execute(sql, bound).to_arrow_table())
        except duckdb.Error as exc:
            raise _failure(exc) from None
    finally:
        con.close()
    return result if ctas is None else _ctas(ctas, database, result)


def _ctas(tree: exp.Create, database: str | None, data: pa.Table) -> Ctas:
    target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
    db = target.db or database
    if not db:
        raise QueryFailed("SCHEMA_NOT_FOUND", f"no database for table {target.name}")
    options = _ctas_options(tree)
    fmt = str(options.pop("format", "PARQUET")).upper()
    if fmt != "PARQUET":
        raise QueryFailed("NOT_SUPPORTED", f"CTAS format {fmt!r}: only PARQUET is emulated")
    if options.get("bucketed_by"):
        raise QueryFailed("NOT_SUPPORTED", "CTAS bucketed_by is not emulated")
    compression = str(
        options.get("write_compression") or options.get("parquet_compression") or "GZIP"
    ).upper()
    if compression not in _COMPRESSION:
        raise QueryFailed("INVALID_TABLE_PROPERTY", f"write_compression {compression!r}")
    partitioned_by = list(options.get("partitioned_by") or [])
    missing = [c for c in partitioned_by if c not in data.column_names]
    if missing:
        raise QueryFailed("COLUMN_NOT_FOUND", f"partition columns {missing} are not in the query")
    if partitioned_by and data.column_names[-len(partitioned_by) :] != partitioned_by:
        raise QueryFailed(
            "INVALID_TABLE_PROPERTY",
            "partition columns must be the last columns of the query, in order",
        )
    return Ctas(
        database=db,
        table=target.name,
        data=data,
        location=options.get("external_location"),
        compression=_COMPRESSION[compression],
        partitioned_by=partitioned_by,
    )


def _name_unnamed_columns(tree: exp.Query) -> None:
    """Athena names an unaliased expression's column ``_col<N>`` (its position, from 0)."""
    if not isinstance(tree, exp.Select):
        return
    for n, projection in enumerate(tree.expressions):
        if not isinstance(projection, exp.Alias | exp.Column | exp.Star):
            projection.replace(exp.alias_(projection.copy(), f"_col{n}"))


def _athena_result_types(table: pa.Table) -> pa.Table:
    """DuckDB sums integers into a 128-bit integer (an Arrow decimal of scale 0); Athena gives
    ``bigint``."""
    for i, column in enumerate(table.schema):
        kind = column.type
        if pa.types.is_decimal(kind) and kind.scale == 0 and kind.precision > 18:
            # beyond bigint: kept as the decimal it is
            with contextlib.suppress(pa.ArrowInvalid, pa.ArrowNotImplementedError):
                table = table.set_column(i, column.name, table.column(i).cast(pa.int64()))
    return table


_NO_FUNCTION = re.compile(r"Function with name (\S+) does not exist")
_NO_MATCH = re.compile(r"argument types '([^(']+)\(([^']*)\)'")


def _failure(exc: Exception) -> QueryFailed:
    """DuckDB's error as Athena (Trino) reports it: its error name and a message in its words."""
    name = type(exc).__name__
    first = str(exc).splitlines()[0] if str(exc) else name
    if missing := _NO_FUNCTION.search(first):
        return QueryFailed("FUNCTION_NOT_FOUND", f"Function '{missing.group(1)}' not registered")
    if mismatch := _NO_MATCH.search(first):
        function, kinds = mismatch.group(1), mismatch.group(2).lower()
        if not function[:1].isalpha():  # an operator: +, =, ||, …
            return QueryFailed("TYPE_MISMATCH", f"Cannot apply operator: {function}({kinds})")
        return QueryFailed(
            "FUNCTION_NOT_FOUND", f"Unexpected parameters ({kinds}) for function {function}"
        )
    if "Binder" in name or "Catalog" in name:
        kind = "COLUMN_NOT_FOUND" if "column" in first.lower() else "TABLE_NOT_FOUND"
        return QueryFailed(kind, first)
    if "Parser" in name:
        return QueryFailed("SYNTAX_ERROR", first)
    if "Conversion" in name or "InvalidInput" in name:
        return QueryFailed("INVALID_CAST_ARGUMENT", first)
    return QueryFailed("GENERIC_INTERNAL_ERROR", first)


def _register(con: duckdb.DuckDBPyConnection, db: str, name: str, glue: dict[str, Any]) -> None:
    storage = glue["StorageDescriptor"]
    location = storage["Location"].rstrip("/")
    partitions = glue.get("PartitionKeys", [])
    con.execute(f'CREATE SCHEMA IF NOT EXISTS "{db}"')
    columns = [(c["Name"], c["Type"]) for c in storage["Columns"]] + [
        (p["Name"], p["Type"]) for p in partitions
    ]
    hive_types = ", ".join(f"'{p['Name']}': '{_duck_type(p['Type'])}'" for p in partitions)
    # Like Athena, skip objects whose names start with "_" or "." (_SUCCESS, .crc, …).
    source = (
        f"read_parquet('{location}/**/[!_.]*', hive_partitioning = {bool(partitions)}, "
        f"union_by_name = true{', hive_types = {' + hive_types + '}' if partitions else ''})"
    )
    try:
        con.execute(f'CREATE OR REPLACE VIEW "{db}"."{name}" AS SELECT * FROM {source}')
        con.execute(f'SELECT * FROM "{db}"."{name}" LIMIT 0')
    except duckdb.IOException:  # no objects yet: an empty table with the catalog's columns
        empty = ", ".join(f'CAST(NULL AS {_duck_type(kind)}) AS "{col}"' for col, kind in columns)
        con.execute(f'CREATE OR REPLACE VIEW "{db}"."{name}" AS SELECT {empty} WHERE false')


def _duck_type(hive: str) -> str:
    lower = hive.lower()
    simple = {
        "string": "VARCHAR",
        "int": "INTEGER",
        "integer": "INTEGER",
        "bigint": "BIGINT",
        "double": "DOUBLE",
        "float": "FLOAT",
        "boolean": "BOOLEAN",
        "date": "DATE",
        "timestamp": "TIMESTAMP",
        "smallint": "SMALLINT",
        "tinyint": "TINYINT",
    }
    return simple.get(lower.split("(")[0], "VARCHAR")


def result_set(table: pa.Table | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Athena's Rows (header first) and ColumnInfo for a result table."""
    if table is None:
        return [], []
    columns = [
        {
            "CatalogName": "hive",
            "SchemaName": "",
            "TableName": "",
            "Name": f.name,
            "Label": f.name,
            "Type": _athena_type(f.type),
            "Precision": 0,
            "Scale": 0,
            "Nullable": "UNKNOWN",
            "CaseSensitive": _athena_type(f.type) == "varchar",
        }
        for f in table.schema
    ]
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


# ------------------------------------------------------------------------ embedded moto patch
@moto_patch("athena")
def install_in_process() -> None:
    """Make the in-process moto execute Athena queries (idempotent)."""
    from moto.athena.models import AthenaBackend, Execution, QueryResults
    from moto.athena.responses import AthenaResponse
    from moto.core.exceptions import JsonRESTError

    original_start = AthenaBackend.start_query_execution
    original_results = AthenaBackend.get_query_results
    original_describe = AthenaResponse.get_query_execution

    def start_query_execution(self, query, context, config, workgroup, execution_parameters):  # type: ignore[no-untyped-def]
        exec_id = original_start(self, query, context, config, workgroup, execution_parameters)
        execution = self.executions[exec_id]
        execution._dfp = _Run()
        threading.Thread(
            target=_run_in_process,
            args=(self, execution),
            daemon=True,
            name=f"athena-{exec_id}",
        ).start()
        return exec_id

    def get_query_results(self, exec_id: str):  # type: ignore[no-untyped-def]
        execution = self.executions.get(exec_id)
        run = getattr(execution, "_dfp", None)
        if run is None:
            return original_results(self, exec_id)
        if run.state != "SUCCEEDED":
            raise JsonRESTError(
                "InvalidRequestException",
                f"Query has not yet finished. Current state: {run.state}"
                if run.state in ("QUEUED", "RUNNING")
                else f"Query did not succeed: {run.reason}",
            )
        return QueryResults(rows=run.rows, column_info=run.columns)

    def describe(self):  # type: ignore[no-untyped-def]
        body = json.loads(original_describe(self))
        execution = self.athena_backend.executions[self._get_param("QueryExecutionId")]
        run = getattr(execution, "_dfp", None)
        if run is not None:
            status = body["QueryExecution"]["Status"]
            if run.completed:
                status["CompletionDateTime"] = run.completed
            described = body["QueryExecution"]
            if run.output:
                described["ResultConfiguration"] = {
                    **(described.get("ResultConfiguration") or {}),
                    "OutputLocation": run.output,
                }
            if run.manifest:
                described["Statistics"] = {
                    **(described.get("Statistics") or {}),
                    "DataManifestLocation": run.manifest,
                }
            if run.reason:
                status["StateChangeReason"] = run.reason
                internal = run.error_type in (None, "GENERIC_INTERNAL_ERROR")
                status["AthenaError"] = {  # Athena's catalog: 1 SYSTEM / 200 engine, 2 USER / 1000
                    "ErrorCategory": 1 if internal else 2,
                    "ErrorType": 200 if internal else 1000,
                    "Retryable": False,
                    "ErrorMessage": run.reason,
                }
        return json.dumps(body)

    def results_response(self):  # type: ignore[no-untyped-def]
        exec_id = self._get_param("QueryExecutionId")
        result = self.athena_backend.get_query_results(exec_id).to_dict()
        rows = result["ResultSet"]["Rows"]
        size = int(self._get_param("MaxResults") or 1000)
        start = int(self._get_param("NextToken") or 0)
        result["ResultSet"]["Rows"] = rows[start : start + size]
        if start + size < len(rows):
            result["NextToken"] = str(start + size)
        return json.dumps(result)

    AthenaBackend.start_query_execution = start_query_execution
    AthenaBackend.get_query_results = get_query_results
    follow_tracker(Execution)
    AthenaResponse.get_query_execution = describe
    AthenaResponse.get_query_results = results_response


def _run_in_process(backend: Any, execution: Any) -> None:
    from moto.glue.models import glue_backends

    run: _Run = execution._dfp
    run.state = "RUNNING"
    s3 = embedded_client("s3", backend.region_name)
    endpoint = s3.meta.endpoint_url
    glue = glue_backends[backend.account_id][backend.region_name]

    def catalog(db: str, name: str) -> dict[str, Any] | None:
        try:
            return glue.get_table(db, name).as_dict()
        except Exception:
            return None

    context = execution.context or {}
    try:
        with _RUN_LOCK:
            table = execute(
                execution.query,
                context.get("Database"),
                catalog,
                endpoint,
                backend.region_name,
                execution.execution_parameters,
            )
        # moto has appended "<id>.csv" to a given location; the folder is the output
        given = (execution.config or {}).get("OutputLocation")
        output = given.removesuffix(f"{execution.id}.csv") if given else None
        output = output or _workgroup_output(backend, execution)
        if isinstance(table, Repair):
            from emulation.state import repair_partitions

            glue_client = embedded_client("glue", backend.region_name)
            repair_partitions(glue_client, s3, table.database, table.table)
            table = None
        if isinstance(table, Ctas):
            if not output:
                raise QueryFailed("INVALID_REQUEST", "a CTAS needs a query result location")
            written = _write_ctas(
                table,
                execution.id,
                output.rstrip("/"),
                s3,
                embedded_client("glue", backend.region_name),
            )
            run.output = f"{output.rstrip('/')}/tables/{execution.id}"
            run.manifest = f"{run.output}-manifest.csv"
            table = pa.table({"rows": pa.array([written], pa.int64())})
        run.rows, run.columns = result_set(table)
        if output and output.startswith("s3://") and run.manifest is None:
            run.output = f"{output.rstrip('/')}/{execution.id}.csv"
            bucket, _, key = run.output[5:].partition("/")
            s3.put_object(Bucket=bucket, Key=key, Body=results_csv(run.rows))
        run.state = "SUCCEEDED"
    except QueryFailed as exc:
        run.reason, run.error_type, run.state = str(exc), exc.error_type, "FAILED"
    except Exception as exc:
        run.reason = f"GENERIC_INTERNAL_ERROR: {type(exc).__name__}: {exc}"
        run.state = "FAILED"
        logger.warning("Athena query failed internally: %s", exc)
    run.completed = time.time()


def _workgroup_output(backend: Any, execution: Any) -> str | None:
    """The workgroup's result location, used when the request gives none (as Athena does)."""
    group = execution.workgroup or backend.work_groups.get("primary")
    configuration = getattr(group, "configuration", None) or {}
    return (configuration.get("ResultConfiguration") or {}).get("OutputLocation")


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


def _hive_type(arrow: pa.DataType) -> str:
    if pa.types.is_decimal(arrow):
        return f"decimal({arrow.precision},{arrow.scale})"
    return next((name for test, name in _HIVE_TYPES if test(arrow)), "string")


def _write_ctas(plan: Ctas, query_id: str, output: str, s3: Any, glue: Any) -> int:
    """Write a CTAS's result as Parquet, register the table and its partitions, write the data
    manifest; the number of rows written."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    location = (plan.location or f"{output}/tables/{query_id}").rstrip("/")
    bucket, _, prefix = location[len("s3://") :].partition("/")
    if not location.startswith("s3://") or not bucket:
        raise QueryFailed("INVALID_TABLE_PROPERTY", f"external_location {location!r}")
    if s3.list_objects_v2(Bucket=bucket, Prefix=prefix + "/", MaxKeys=1).get("KeyCount", 0):
        raise QueryFailed(
            "HIVE_PATH_ALREADY_EXISTS",
            f"Target directory for table '{plan.database}.{plan.table}' already exists: "
            f"{location}/. You may need to manually clean the data at location ...",
        )
    try:
        glue.get_table(DatabaseName=plan.database, Name=plan.table)
        raise QueryFailed("ALREADY_EXISTS", f"Table '{plan.database}.{plan.table}' already exists")
    except glue.exceptions.EntityNotFoundException:
        pass
    data = plan.data
    values_columns = [c for c in data.column_names if c not in plan.partitioned_by]
    groups: list[tuple[tuple[str, ...], pa.Table]] = [((), data)]
    if plan.partitioned_by:
        keys = data.select(plan.partitioned_by).to_pylist()
        distinct = sorted({tuple(row.values()) for row in keys}, key=repr)
        groups = []
        for values in distinct:
            mask = None
            for column, value in zip(plan.partitioned_by, values, strict=True):
                test = pc.is_null(data[column]) if value is None else pc.equal(data[column], value)
                mask = test if mask is None else pc.and_(mask, test)
            groups.append(
                (
                    tuple("__HIVE_DEFAULT_PARTITION__" if v is None else str(v) for v in values),
                    data.filter(mask),
                )
            )
    written: list[str] = []
    for n, (values, part) in enumerate(groups):
        folder = "".join(f"{c}={v}/" for c, v in zip(plan.partitioned_by, values, strict=True))
        key = f"{prefix}/{folder}{query_id}_{n:05d}.parquet".lstrip("/")
        sink = io.BytesIO()
        pq.write_table(part.select(values_columns), sink, compression=plan.compression)
        s3.put_object(Bucket=bucket, Key=key, Body=sink.getvalue())
        written.append(f"s3://{bucket}/{key}")
    storage = {
        "Columns": [
            {"Name": c, "Type": _hive_type(data.schema.field(c).type)} for c in values_columns
        ],
        "Location": location + "/",
        "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
        "SerdeInfo": {
            "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
        },
    }
    glue.create_table(
        DatabaseName=plan.database,
        TableInput={
            "Name": plan.table,
            "TableType": "EXTERNAL_TABLE",
            "StorageDescriptor": storage,
            "PartitionKeys": [
                {"Name": c, "Type": _hive_type(data.schema.field(c).type)}
                for c in plan.partitioned_by
            ],
            "Parameters": {"classification": "parquet", "has_encrypted_data": "false"},
        },
    )
    if plan.partitioned_by:
        partitions = [
            {
                "Values": list(values),
                "StorageDescriptor": {
                    **storage,
                    "Location": location
                    + "/"
                    + "".join(
                        f"{c}={v}/" for c, v in zip(plan.partitioned_by, values, strict=True)
                    ),
                },
            }
            for values, _ in groups
        ]
        for start in range(0, len(partitions), 100):
            glue.batch_create_partition(
                DatabaseName=plan.database,
                TableName=plan.table,
                PartitionInputList=partitions[start : start + 100],
            )
    out_bucket, _, out_key = output[len("s3://") :].partition("/")
    manifest_key = f"{out_key}/tables/{query_id}-manifest.csv".lstrip("/")
    s3.put_object(
        Bucket=out_bucket, Key=manifest_key, Body="".join(p + "\n" for p in written).encode()
    )
    return data.num_rows
