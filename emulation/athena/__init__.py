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

Not emulated: Hive DDL (``CREATE EXTERNAL TABLE``; use the Glue API), CTAS/INSERT/UNLOAD, views in
the catalog, federated catalogs, workgroup limits and encryption settings, data-scanned statistics,
table formats other than Parquet (JSON/CSV tables, Iceberg).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import pathlib
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
_DDL_NOOP = ("MSCK", "ALTER TABLE")


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
) -> pa.Table | None:
    """Run an Athena (Trino) query over the catalog's S3 data; ``None`` for no-op DDL.

    ``catalog_tables(database, name)`` returns the Glue table dict or ``None``.
    """
    text = query.strip().rstrip(";")
    upper = text.upper()
    if upper.startswith(_DDL_NOOP):
        return None  # partitions are discovered from the S3 layout at query time
    if upper.startswith(("CREATE DATABASE", "CREATE SCHEMA", "DROP DATABASE", "DROP SCHEMA")):
        return None
    try:
        tree = sqlglot.parse_one(text, read="trino")
    except (sqlglot.errors.SqlglotError, ValueError, IndexError, RecursionError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise QueryFailed("SYNTAX_ERROR", detail) from None
    if not isinstance(tree, exp.Query):
        raise QueryFailed("NOT_SUPPORTED", f"statement {type(tree).__name__} is not emulated")
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
            return con.execute(sql, bound).to_arrow_table()
        except duckdb.Error as exc:
            raise QueryFailed(_error_type(exc), str(exc).splitlines()[0]) from None
    finally:
        con.close()


def _error_type(exc: Exception) -> str:
    name = type(exc).__name__
    if "Binder" in name or "Catalog" in name:
        return "COLUMN_NOT_FOUND" if "column" in str(exc).lower() else "TABLE_NOT_FOUND"
    if "Parser" in name:
        return "SYNTAX_ERROR"
    if "Conversion" in name or "InvalidInput" in name:
        return "INVALID_CAST_ARGUMENT"
    return "GENERIC_INTERNAL_ERROR"


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
    simple = {"string": "VARCHAR", "int": "INTEGER", "integer": "INTEGER", "bigint": "BIGINT",
              "double": "DOUBLE", "float": "FLOAT", "boolean": "BOOLEAN", "date": "DATE",
              "timestamp": "TIMESTAMP", "smallint": "SMALLINT", "tinyint": "TINYINT"}  # fmt: skip
    return simple.get(lower.split("(")[0], "VARCHAR")


def result_set(table: pa.Table | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Athena's Rows (header first) and ColumnInfo for a result table."""
    if table is None:
        return [], []
    columns = [
        {"CatalogName": "hive", "SchemaName": "", "TableName": "", "Name": f.name,
         "Label": f.name, "Type": _athena_type(f.type), "Precision": 0, "Scale": 0,
         "Nullable": "UNKNOWN", "CaseSensitive": _athena_type(f.type) == "varchar"}
        for f in table.schema
    ]  # fmt: skip
    rows = [{"Data": [{"VarCharValue": f.name} for f in table.schema]}]
    for record in table.to_pylist():
        rows.append(
            {"Data": [{"VarCharValue": t} if (t := _text(v)) is not None else {}
                      for v in record.values()]}
        )  # fmt: skip
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
            if run.reason:
                status["StateChangeReason"] = run.reason
                status["AthenaError"] = {
                    "ErrorCategory": 2,
                    "ErrorType": 1000,
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
        run.rows, run.columns = result_set(table)
        location = (execution.config or {}).get("OutputLocation")
        if location and location.startswith("s3://"):
            bucket, _, key = location[5:].partition("/")
            s3.put_object(Bucket=bucket, Key=key, Body=results_csv(run.rows))
        run.state = "SUCCEEDED"
    except QueryFailed as exc:
        run.reason, run.error_type, run.state = str(exc), exc.error_type, "FAILED"
    except Exception as exc:
        run.reason = f"GENERIC_INTERNAL_ERROR: {type(exc).__name__}: {exc}"
        run.state = "FAILED"
        logger.warning("Athena query failed internally: %s", exc)
    run.completed = time.time()
