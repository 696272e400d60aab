"""Queries in Athena's (Trino) dialect, run by DuckDB over the Glue catalog's data.

A query is parsed by sqlglot; every table it names is looked up in the Glue catalog (a view's SQL
is expanded the same way, ``information_schema`` is built from the catalog) and its rows are
handed to DuckDB (see :mod:`emulation.athena.data`); the query is translated to DuckDB's dialect
and run. Result names and types are then made Athena's: ``_col<N>`` for unnamed expressions,
``bigint`` for integer sums.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp
from sqlglot.optimizer.annotate_types import annotate_types

from emulation.athena import serdes
from emulation.athena.data import Objects, database, materialize
from emulation.athena.dialect import DATE_FORMS, rewrite, typed
from emulation.athena.errors import QueryFailed

logger = logging.getLogger(__name__)

CATALOG = "awsdatacatalog"
_INFO = "information_schema"
VIEW_PREFIX = "/* Presto View: "
VIEW_SUFFIX = " */"


class Catalog:
    """The Glue Data Catalog as queries see it (names are case-insensitive, as on Athena)."""

    def __init__(self, glue: Any) -> None:
        self.glue = glue

    def table(self, database: str, name: str) -> dict[str, Any] | None:
        try:
            return self.glue.get_table(DatabaseName=database.lower(), Name=name.lower())["Table"]
        except self.glue.exceptions.EntityNotFoundException:
            return None

    def require(self, database: str | None, name: str) -> dict[str, Any]:
        if not database:
            raise QueryFailed("SCHEMA_NOT_FOUND", f"no database given for table {name}")
        table = self.table(database, name)
        if table is None:
            raise QueryFailed(
                "TABLE_NOT_FOUND", f"Table '{CATALOG}.{database}.{name}' does not exist"
            )
        return table

    def database_exists(self, database: str) -> bool:
        try:
            self.glue.get_database(Name=database.lower())
            return True
        except self.glue.exceptions.EntityNotFoundException:
            return False

    def databases(self) -> list[str]:
        pages = self.glue.get_paginator("get_databases").paginate()
        return sorted(d["Name"] for page in pages for d in page["DatabaseList"])

    def tables(self, database: str) -> list[dict[str, Any]]:
        pages = self.glue.get_paginator("get_tables").paginate(DatabaseName=database.lower())
        return sorted((t for page in pages for t in page["TableList"]), key=lambda t: t["Name"])

    def partitions(self, database: str, name: str) -> list[dict[str, Any]]:
        pages = self.glue.get_paginator("get_partitions").paginate(
            DatabaseName=database.lower(), TableName=name.lower()
        )
        return [p for page in pages for p in page["Partitions"]]


def _null_column(column: dict[str, Any]) -> str:
    """A typed null standing for a declared column (DuckDB SQL)."""
    name = column["Name"].replace('"', '""')
    return f'CAST(NULL AS {serdes.duck_type(column.get("Type", "string"))}) AS "{name}"'


def is_view(table: dict[str, Any]) -> bool:
    return table.get("TableType") == "VIRTUAL_VIEW"


def view_text(sql: str, database: str, columns: list[tuple[str, str]]) -> str:
    """A view's ``ViewOriginalText`` as Athena stores it (base64 of its Presto definition)."""
    definition = {
        "originalSql": sql,
        "catalog": CATALOG,
        "schema": database,
        "columns": [{"name": n, "type": t} for n, t in columns],
    }
    encoded = base64.b64encode(json.dumps(definition).encode()).decode()
    return f"{VIEW_PREFIX}{encoded}{VIEW_SUFFIX}"


def view_sql(table: dict[str, Any]) -> str:
    """The SQL a catalog view was created with."""
    text = table.get("ViewOriginalText") or ""
    if text.startswith(VIEW_PREFIX) and text.endswith(VIEW_SUFFIX):
        encoded = text[len(VIEW_PREFIX) : -len(VIEW_SUFFIX)]
        with contextlib.suppress(ValueError):
            return json.loads(base64.b64decode(encoded))["originalSql"]
    raise QueryFailed(
        "HIVE_VIEW_TRANSLATION_ERROR", f"view {table.get('Name')!r} has no Presto definition"
    )


# ------------------------------------------------------------------------------ parameters
def parameters(values: list[str] | None) -> list[Any]:
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


def parse(text: str) -> exp.Expression:
    """One statement in Athena's dialect (Trino forms DuckDB lacks rewritten: :mod:`.dialect`),
    or SYNTAX_ERROR."""
    try:
        tree = sqlglot.parse_one(text, read="trino")
    except (sqlglot.errors.SqlglotError, ValueError, IndexError, RecursionError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise QueryFailed("SYNTAX_ERROR", detail) from None
    refuse_table_functions(tree)
    return rewrite(tree)


def refuse_table_functions(tree: exp.Expression) -> None:
    """A table function in ``FROM`` other than ``UNNEST`` is refused as Athena refuses one it
    does not have (``FUNCTION_NOT_FOUND``): Athena has none of DuckDB's (``read_text``,
    ``read_csv_auto``, ``read_parquet``…), and those read the host's files. Checked on the query
    as written, before the dialect's rewrites (which may use DuckDB's own)."""
    for source in tree.find_all(exp.Table, exp.Lateral):
        function = source.this
        if isinstance(function, exp.Func) and not isinstance(function, exp.Unnest):
            name = function.name if isinstance(function, exp.Anonymous) else function.sql_name()
            raise QueryFailed("FUNCTION_NOT_FOUND", f"Table function '{name.lower()}' not "
                              "registered")  # fmt: skip


# ------------------------------------------------------------------------------ relations
@dataclass
class Relations:
    """The tables, views and catalog tables one query reads, as views in a schema of its own.

    Base tables are native tables of the process's database (:func:`data.materialize`); the
    query's references are rewritten to this query's views, keeping the name a reference was
    written with as its alias, so ``staged_cdc.col`` still resolves.
    """

    con: duckdb.DuckDBPyConnection
    catalog: Catalog
    objects: Objects
    schema: str
    scanned: int = 0
    done: set[tuple[str, str]] = field(default_factory=set)
    expanding: list[str] = field(default_factory=list)

    def bind(self, tree: exp.Expression, database: str | None) -> None:
        """Register every table ``tree`` names and point its references at them (in place)."""
        ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
        unaliased: set[tuple[str, str]] = set()  # (database, table) referred to by full name
        for table in list(tree.find_all(exp.Table)):
            name = table.name
            if not name or (not table.db and name.lower() in ctes):
                continue
            if isinstance(table.this, exp.Func | exp.Unnest):  # table functions
                continue
            catalog = table.catalog.lower()
            if catalog and catalog != CATALOG:
                raise QueryFailed(
                    "CATALOG_NOT_FOUND",
                    f"catalog '{table.catalog}' is not emulated (only {CATALOG})",
                )
            db = (table.db or database or "").lower()
            if db == _INFO:
                view = self._information_schema(name.lower())
            else:
                if not db:
                    raise QueryFailed("SCHEMA_NOT_FOUND", f"no database given for table {name}")
                view = self.register(db, name.lower())
            if not table.alias:
                unaliased.add((db, name.lower()))
                table.set("alias", exp.TableAlias(this=exp.to_identifier(name)))
            table.set("this", exp.to_identifier(view, quoted=True))
            table.set("db", exp.to_identifier(self.schema, quoted=True))
            table.set("catalog", None)
        # A column named with its table's database (``dfp.sales.qty``, Trino's fully qualified
        # reference, which SQLAlchemy writes for every column of a table with a schema) points
        # at the alias the table now has.
        for column in tree.find_all(exp.Column):
            if column.args.get("db") is None or not column.table:
                continue
            if (column.text("db").lower(), column.table.lower()) in unaliased and (
                not column.text("catalog") or column.text("catalog").lower() == CATALOG
            ):
                column.set("db", None)
                column.set("catalog", None)

    def register(self, db: str, name: str) -> str:
        view = f"{db}/{name}"
        if (db, name) in self.done:
            return view
        glue = self.catalog.require(db, name)
        if is_view(glue):
            if f"{db}.{name}" in self.expanding:
                raise QueryFailed("VIEW_IS_RECURSIVE", f"View '{db}.{name}' refers to itself")
            self.expanding.append(f"{db}.{name}")
            tree = parse(view_sql(glue))
            self.bind(tree, db)
            self.expanding.pop()
            self._create_view(view, tree.sql(dialect="duckdb"))
        else:
            native = materialize(self.objects, glue)
            self.scanned += native.scanned
            columns = glue["StorageDescriptor"].get("Columns", []) + glue.get("PartitionKeys", [])
            if native.name is None:
                empty = ", ".join(_null_column(c) for c in columns)
                self._create_view(view, f"SELECT {empty or '1 AS _'} WHERE false")
            else:
                # Parquet is read by column name, as Athena reads it: a column the table declares
                # and no object holds (one added by ALTER TABLE … ADD COLUMNS) reads as null.
                held = {
                    row[0].lower()
                    for row in self.con.execute(f'DESCRIBE main."{native.name}"').fetchall()
                }
                absent = [c for c in columns if c["Name"].lower() not in held]
                nulls = "".join(f", {_null_column(c)}" for c in absent)
                self._create_view(view, f'SELECT *{nulls} FROM main."{native.name}"')
        self.done.add((db, name))
        return view

    def _create_view(self, view: str, sql: str) -> None:
        self.con.execute(f'CREATE OR REPLACE VIEW "{self.schema}"."{view}" AS {sql}')

    def _information_schema(self, name: str) -> str:
        view = f"{_INFO}/{name}"
        if (_INFO, name) in self.done:
            return view
        rows = information_schema(self.catalog, name)
        relation = f"__dfp_info_{name}"
        self.con.register(relation, rows)
        self._create_view(view, f"SELECT * FROM {relation}")
        self.done.add((_INFO, name))
        return view


def information_schema(catalog: Catalog, name: str) -> pa.Table:
    """Athena's ``information_schema`` tables, built from the Glue catalog."""
    databases = catalog.databases()
    if name == "schemata":
        return pa.table(
            {
                "catalog_name": [CATALOG] * (len(databases) + 1),
                "schema_name": [_INFO, *databases],
            }
        )
    tables = [(db, t) for db in databases for t in catalog.tables(db)]
    if name == "tables":
        return pa.table(
            {
                "table_catalog": [CATALOG] * len(tables),
                "table_schema": [db for db, _ in tables],
                "table_name": [t["Name"] for _, t in tables],
                "table_type": ["VIEW" if is_view(t) else "BASE TABLE" for _, t in tables],
            }
        )
    if name == "views":
        views = [(db, t) for db, t in tables if is_view(t)]
        return pa.table(
            {
                "table_catalog": [CATALOG] * len(views),
                "table_schema": [db for db, _ in views],
                "table_name": [t["Name"] for _, t in views],
                "view_definition": [view_sql(t) for _, t in views],
            }
        )
    if name == "columns":
        records = []
        for db, t in tables:
            columns = t.get("StorageDescriptor", {}).get("Columns", []) + t.get("PartitionKeys", [])
            for n, column in enumerate(columns, start=1):
                records.append(
                    {
                        "table_catalog": CATALOG,
                        "table_schema": db,
                        "table_name": t["Name"],
                        "column_name": column["Name"],
                        "ordinal_position": n,
                        "column_default": None,
                        "is_nullable": "YES",
                        "data_type": trino_type(column["Type"]),
                        "comment": column.get("Comment"),
                        "extra_info": "partition key"
                        if column in t.get("PartitionKeys", [])
                        else None,
                    }
                )
        schema = pa.schema(
            [
                ("table_catalog", pa.string()),
                ("table_schema", pa.string()),
                ("table_name", pa.string()),
                ("column_name", pa.string()),
                ("ordinal_position", pa.int64()),
                ("column_default", pa.string()),
                ("is_nullable", pa.string()),
                ("data_type", pa.string()),
                ("comment", pa.string()),
                ("extra_info", pa.string()),
            ]
        )
        return pa.Table.from_pylist(records, schema=schema)
    raise QueryFailed("TABLE_NOT_FOUND", f"Table '{CATALOG}.{_INFO}.{name}' does not exist")


_TRINO_NAMES = {"string": "varchar", "int": "integer", "float": "real"}


def trino_type(hive: str) -> str:
    """A Glue (Hive) type as Athena's engine names it: ``string`` → ``varchar``, ``struct`` →
    ``row``."""
    lower = hive.strip().lower()
    lower = re.sub(r"\bstruct<", "row(", lower)
    lower = re.sub(r"\barray<", "array(", lower)
    lower = re.sub(r"\bmap<", "map(", lower).replace(">", ")")
    lower = re.sub(r"(\w+):", r"\1 ", lower)
    return re.sub(r"\b(string|int|float)\b", lambda m: _TRINO_NAMES[m.group(1)], lower)


# ------------------------------------------------------------------------------ running
class Cancel:
    """A stop request for a running statement: interrupts the engine it is running on."""

    def __init__(self) -> None:
        self.requested = False
        self._connection: duckdb.DuckDBPyConnection | None = None

    def hold(self, connection: duckdb.DuckDBPyConnection | None) -> None:
        self._connection = connection

    def check(self) -> None:
        if self.requested:
            raise QueryFailed("USER_CANCELLED", "Query was cancelled by user")

    def request(self) -> None:
        self.requested = True
        if self._connection is not None:
            self._connection.interrupt()
            # An interrupt that reaches the connection in the instant between the last check
            # and the engine's start is lost, and the statement runs to its end: repeat it
            # until the statement lets the connection go (a query of 10^12 rows did not stop).
            threading.Thread(target=self._interrupt_until_released, daemon=True).start()

    def _interrupt_until_released(self) -> None:
        for _ in range(600):  # a minute at most
            time.sleep(0.1)
            connection = self._connection
            if connection is None:
                return
            with contextlib.suppress(duckdb.Error):
                connection.interrupt()


def _annotate(
    tree: exp.Expression, con: duckdb.DuckDBPyConnection, schema: str, relations: Relations
) -> None:
    """Give the tree the types of its columns (each view's, as DuckDB has it) and of what is made
    of them, so that the translation keeps Trino's semantics where they hang on types (date
    arithmetic: :func:`emulation.athena.dialect.typed`). A query sqlglot cannot type is
    translated without those rewrites. A query without any of those forms is left as it is."""
    if next(tree.find_all(*DATE_FORMS), None) is None:
        return
    views: dict[str, dict[str, exp.DataType]] = {}
    for db, name in relations.done:
        view = f"{db}/{name}"
        views[view] = {
            column: exp.DataType.build(kind, dialect="duckdb")
            for column, kind, *_ in con.execute(f'DESCRIBE "{schema}"."{view}"').fetchall()
        }
    try:
        annotate_types(tree, schema={schema: views} if views else None, dialect="trino")
        typed(tree)
    except (sqlglot.errors.SqlglotError, ValueError, KeyError, TypeError, AttributeError) as exc:
        logger.debug("query types not annotated (%s): translated without them", exc)
    # The types served the rewrites only: with them, sqlglot translates other functions
    # differently (an array of percentiles cast to one double). Integers divide as integers by
    # the database's setting (:func:`emulation.athena.data.database`), whatever the types.
    for node in tree.walk():
        node.type = None


def name_unnamed_columns(tree: exp.Expression) -> None:
    """Athena names an unaliased expression's column ``_col<N>`` (its position, from 0)."""
    if not isinstance(tree, exp.Select):
        return
    for n, projection in enumerate(tree.expressions):
        if not isinstance(projection, exp.Alias | exp.Column | exp.Star):
            projection.replace(exp.alias_(projection.copy(), f"_col{n}"))


def athena_result_types(table: pa.Table) -> pa.Table:
    """DuckDB sums integers into a 128-bit integer (an Arrow decimal of scale 0); Athena gives
    ``bigint``."""
    for i, column in enumerate(table.schema):
        kind = column.type
        if pa.types.is_decimal(kind) and kind.scale == 0 and kind.precision > 18:
            # beyond bigint: kept as the decimal it is
            with contextlib.suppress(pa.ArrowInvalid, pa.ArrowNotImplementedError):
                table = table.set_column(i, column.name, table.column(i).cast(pa.int64()))
    return table


@dataclass
class Answer:
    """A query's rows and the bytes read from S3 to make them."""

    rows: pa.Table
    scanned: int


def select(
    tree: exp.Expression,
    database_name: str | None,
    catalog: Catalog,
    objects: Objects,
    bound: list[Any] | None = None,
    *,
    explain: bool = False,
    cancel: Cancel | None = None,
) -> Answer:
    """Run a query (or explain it); ``cancel`` can interrupt it while it runs."""
    if not isinstance(tree, exp.Query):
        raise QueryFailed("NOT_SUPPORTED", f"statement {type(tree).__name__} is not emulated")
    name_unnamed_columns(tree)
    bound = bound or []
    placeholders = len(list(tree.find_all(exp.Placeholder)))
    if placeholders != len(bound):
        raise QueryFailed(
            "INVALID_PARAMETER",
            f"the query has {placeholders} placeholders but {len(bound)} parameters were given",
        )
    con = database().cursor()
    schema = f"q_{uuid.uuid4().hex}"
    con.execute(f'CREATE SCHEMA "{schema}"')
    cancel = cancel or Cancel()
    cancel.hold(con)
    try:
        relations = Relations(con, catalog, objects, schema)
        relations.bind(tree, database_name)
        _annotate(tree, con, schema, relations)
        sql = tree.sql(dialect="duckdb")
        cancel.check()
        try:
            if explain:
                plan = con.execute(f"EXPLAIN {sql}", bound).fetchall()
                lines = [line for _, text in plan for line in str(text).splitlines()]
                return Answer(pa.table({"Query Plan": pa.array(lines, pa.string())}), 0)
            result = athena_result_types(con.execute(sql, bound).to_arrow_table())
        except duckdb.InterruptException:
            raise QueryFailed("USER_CANCELLED", "Query was cancelled by user") from None
        except duckdb.Error as exc:
            raise failure(exc) from None
        cancel.check()  # stopped in the instant before the engine started
        return Answer(result, relations.scanned)
    finally:
        cancel.hold(None)
        with contextlib.suppress(duckdb.Error):
            con.execute(f'DROP SCHEMA "{schema}" CASCADE')
        con.close()


_NO_FUNCTION = re.compile(r"Function with name (\S+) does not exist")
_NO_MATCH = re.compile(r"argument types '([^(']+)\(([^']*)\)'")


def failure(exc: Exception) -> QueryFailed:
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
    if "Catalog" in name:
        return QueryFailed("TABLE_NOT_FOUND", first)
    if "Binder" in name:
        # A reference that resolves to nothing (a column, or the table qualifying one: Trino's
        # "Column 't.x' cannot be resolved") is COLUMN_NOT_FOUND; any other analysis error (an
        # aggregate in GROUP BY, a column neither grouped nor aggregated) is the query's own
        # mistake, Athena's SYNTAX_ERROR, not a missing table.
        kind = "COLUMN_NOT_FOUND" if "not found" in first.lower() else "SYNTAX_ERROR"
        return QueryFailed(kind, first)
    if "Parser" in name:
        return QueryFailed("SYNTAX_ERROR", first)
    if "Permission" in name:  # the host's files: data.database() never reads them
        return QueryFailed("PERMISSION_DENIED", first)
    if "Conversion" in name or "InvalidInput" in name:
        return QueryFailed("INVALID_CAST_ARGUMENT", first)
    return QueryFailed("GENERIC_INTERNAL_ERROR", first)
