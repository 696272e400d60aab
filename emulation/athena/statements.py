"""Every statement Athena takes, sorted by kind and carried out against the catalog and S3.

The result of each is an :class:`Outcome`: Athena's statement type and sub-type (what
``GetQueryExecution`` reports, and what clients such as awswrangler read to know where the result
is), the result rows, and for writing statements the objects written. Queries (``SELECT``,
``WITH``, ``VALUES``, ``EXPLAIN``) give a result with a header row; DDL and utility statements
(``SHOW``, ``DESCRIBE``) give rows of tab-separated text without one, written as ``<id>.txt``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import sqlglot
from sqlglot import exp

from emulation.athena import serdes, writes
from emulation.athena.data import Objects, arrow_type, split_uri
from emulation.athena.engine import (
    Cancel,
    Catalog,
    is_view,
    parameters,
    parse,
    select,
    trino_type,
    view_sql,
    view_text,
)
from emulation.athena.errors import QueryFailed
from emulation.state import add_partitions, repair_partitions, table_input

logger = logging.getLogger(__name__)

_NAME = r"(?:`[^`]+`|\"[^\"]+\"|[\w-]+)"
_QUALIFIED = rf"({_NAME})(?:\s*\.\s*({_NAME}))?"
_COMMENTS = re.compile(r"^(?:\s+|--[^\n]*\n?|/\*.*?\*/)*", re.S)


def _unquote(name: str | None) -> str | None:
    return name.strip('`"').lower() if name else None


def _split(first: str, second: str | None, database: str | None) -> tuple[str, str]:
    """``db.table`` or ``table`` (in the session's database)."""
    db, name = (first, second) if second else (database, first)
    if not db:
        raise QueryFailed("SCHEMA_NOT_FOUND", f"no database given for table {_unquote(name)}")
    return _unquote(db) or "", _unquote(name) or ""


@dataclass
class Session:
    """What a statement runs with: the catalog, S3, the database in context, where results go."""

    catalog: Catalog
    s3: Any  # a boto3 client: what statements write
    objects: Objects  # what queries read
    database: str | None
    output: str | None  # the result folder (s3://…/), or None when none was given or set
    query_id: str
    cancel: Cancel | None = None


@dataclass
class Outcome:
    statement_type: str  # DML | DDL | UTILITY
    substatement: str  # SELECT, CREATE_TABLE_AS_SELECT, INSERT, UNLOAD, SHOW_TABLES, …
    rows: pa.Table | None = None  # a query's result (header row + CSV)
    text: list[list[str]] = field(default_factory=list)  # utility rows (tab-joined .txt)
    columns: list[tuple[str, str]] = field(default_factory=list)  # utility columns (name, type)
    update_count: int | None = None  # rows written by CTAS / INSERT INTO / UNLOAD
    manifest: str | None = None
    output: str | None = None  # where the statement put its result, when not <id>.csv/.txt
    scanned: int = 0


_HIVE_DDL = (
    "CREATE TABLE without EXTERNAL makes an Iceberg table on Athena, which is not emulated: "
    "CREATE EXTERNAL TABLE … STORED AS PARQUET LOCATION 's3://…', or CREATE TABLE … AS SELECT"
)


def run(query: str, session: Session, execution_parameters: list[str] | None = None) -> Outcome:
    """Carry out one statement."""
    text = _COMMENTS.sub("", query, count=1).strip().rstrip(";").strip()
    upper = text.upper()
    words = upper.split()
    first = words[0] if words else ""
    if first in ("SHOW", "DESCRIBE", "DESC"):
        return _utility(text, session)
    if first == "MSCK":
        return _msck(text, session)
    if first == "ALTER":
        return _alter(text, session)
    if first == "UNLOAD":
        return _unload(text, session, parameters(execution_parameters))
    if re.match(r"(CREATE|DROP)\s+(DATABASE|SCHEMA)\b", upper):
        return _database(text, session)
    if re.match(r"CREATE\s+EXTERNAL\s+TABLE\b", upper):
        return _create_external(text, session)
    if re.match(r"CREATE\s+TABLE\b", upper) and not re.search(
        r"\bAS\s*\(?\s*(SELECT|WITH|VALUES)\b", upper
    ):
        raise QueryFailed("NOT_SUPPORTED", _HIVE_DDL)  # Iceberg DDL, whatever dialect parses it
    if first == "EXPLAIN":
        inner = re.sub(r"^EXPLAIN\s+(ANALYZE\s+)?(\([^)]*\)\s*)?", "", text, flags=re.I)
        answer = select(
            parse(inner),
            session.database,
            session.catalog,
            session.objects,
            parameters(execution_parameters),
            explain=True,
            cancel=session.cancel,
        )
        return Outcome("DML", "EXPLAIN", rows=answer.rows)
    if re.match(r"DROP\s+(TABLE|VIEW)\b", upper):
        return _drop(text, session)
    tree = parse(text)
    if isinstance(tree, exp.Create):
        kind = str(tree.args.get("kind", "")).upper()
        if kind == "VIEW":
            return _create_view(tree, session, text)
        if kind == "TABLE" and isinstance(tree.expression, exp.Query):
            return _ctas(tree, session, parameters(execution_parameters))
        if kind == "TABLE":
            raise QueryFailed("NOT_SUPPORTED", _HIVE_DDL)
    if isinstance(tree, exp.Insert):
        return _insert(tree, session, parameters(execution_parameters))
    if isinstance(tree, exp.Query):
        answer = select(
            tree,
            session.database,
            session.catalog,
            session.objects,
            parameters(execution_parameters),
            cancel=session.cancel,
        )
        return Outcome("DML", "SELECT", rows=answer.rows, scanned=answer.scanned)
    raise QueryFailed("NOT_SUPPORTED", f"statement {type(tree).__name__} is not emulated")


# ------------------------------------------------------------------------------ utilities
_DESCRIBE = re.compile(
    rf"DESC(?:RIBE)?\s+(?:EXTENDED\s+|FORMATTED\s+)?{_QUALIFIED}(?:\s+({_NAME}))?$", re.I
)
_SHOW_TABLES = re.compile(
    rf"SHOW\s+(TABLES|VIEWS)(?:\s+(?:IN|FROM)\s+({_NAME}))?(?:\s+(?:LIKE\s+)?'((?:[^']|'')*)')?$",
    re.I,
)
_SHOW_DATABASES = re.compile(
    r"SHOW\s+(?:DATABASES|SCHEMAS)(?:\s+(?:LIKE\s+)?'((?:[^']|'')*)')?$", re.I
)
_SHOW_COLUMNS = re.compile(
    rf"SHOW\s+COLUMNS\s+(?:IN|FROM)\s+{_QUALIFIED}(?:\s+(?:IN|FROM)\s+({_NAME}))?$", re.I
)
_SHOW_ONE = re.compile(
    rf"SHOW\s+(PARTITIONS|CREATE\s+TABLE|CREATE\s+VIEW|TBLPROPERTIES)\s+{_QUALIFIED}$", re.I
)


def _pattern(like: str | None) -> re.Pattern[str] | None:
    """Athena's SHOW patterns: ``*`` any characters, ``|`` alternatives."""
    if not like:
        return None
    like = like.replace("''", "'")
    options = [re.escape(p).replace(r"\*", ".*") for p in like.split("|")]
    return re.compile("|".join(f"(?:{o})" for o in options), re.I)


def _utility(text: str, session: Session) -> Outcome:
    catalog = session.catalog
    if m := _SHOW_DATABASES.match(text):
        wanted = _pattern(m.group(1))
        names = [d for d in catalog.databases() if not wanted or wanted.fullmatch(d)]
        return _lines("SHOW_DATABASES", [("database_name", "string")], [[n] for n in names])
    if m := _SHOW_TABLES.match(text):
        db = _unquote(m.group(2)) or session.database
        if not db or not catalog.database_exists(db):
            raise QueryFailed("SCHEMA_NOT_FOUND", f"Schema '{db}' does not exist")
        wanted = _pattern(m.group(3))
        views = m.group(1).upper() == "VIEWS"
        names = [
            t["Name"]
            for t in catalog.tables(db)
            if (is_view(t) or not views) and (not wanted or wanted.fullmatch(t["Name"]))
        ]
        column = "views" if views else "tab_name"
        return _lines(f"SHOW_{m.group(1).upper()}", [(column, "string")], [[n] for n in names])
    if m := _SHOW_COLUMNS.match(text):
        db, name = _split(m.group(1), m.group(2), _unquote(m.group(3)) or session.database)
        table = catalog.require(db, name)
        return _lines("SHOW_COLUMNS", [("field", "string")], [[c] for c, _, _ in _columns(table)])
    if m := _SHOW_ONE.match(text):
        what = " ".join(m.group(1).upper().split())
        db, name = _split(m.group(2), m.group(3), session.database)
        table = catalog.require(db, name)
        if what == "PARTITIONS":
            keys = [k["Name"] for k in table.get("PartitionKeys", [])]
            if not keys:
                raise QueryFailed("NOT_PARTITIONED", f"Table '{db}.{name}' is not partitioned")
            rows = sorted(
                "/".join(f"{k}={v}" for k, v in zip(keys, p["Values"], strict=True))
                for p in catalog.partitions(db, name)
            )
            return _lines("SHOW_PARTITIONS", [("partition", "string")], [[r] for r in rows])
        if what == "TBLPROPERTIES":
            props = {"EXTERNAL": "TRUE", **(table.get("Parameters") or {})}
            return _lines(
                "SHOW_TBLPROPERTIES",
                [("prpt_name", "string"), ("prpt_value", "string")],
                [[k, str(v)] for k, v in props.items()],
            )
        if what == "CREATE VIEW":
            if not is_view(table):
                raise QueryFailed("NOT_A_VIEW", f"Relation '{db}.{name}' is a table, not a view")
            ddl = f'CREATE VIEW "{db}"."{name}" AS\n{view_sql(table)}'
            return _lines("SHOW_CREATE_VIEW", [("Create View", "string")], [[ddl]])
        if is_view(table):
            raise QueryFailed("NOT_A_TABLE", f"Relation '{db}.{name}' is a view: SHOW CREATE VIEW")
        return _lines(
            "SHOW_CREATE_TABLE",
            [("createtab_stmt", "string")],
            [[line] for line in _create_table_ddl(db, table).splitlines()],
        )
    if m := _DESCRIBE.match(text):
        db, name = _split(m.group(1), m.group(2), session.database)
        table = catalog.require(db, name)
        columns = _columns(table)
        only = _unquote(m.group(3))
        if only:
            columns = [c for c in columns if c[0] == only]
            if not columns:
                raise QueryFailed("COLUMN_NOT_FOUND", f"Column '{only}' cannot be resolved")
        rows = [_padded(c) for c in columns]
        keys = [
            (k["Name"], k["Type"], k.get("Comment") or "") for k in table.get("PartitionKeys", [])
        ]
        if keys and not only:
            rows += [
                ["", " ", " "],
                ["# Partition Information", " ", " "],
                _padded(("# col_name", "data_type", "comment")),
                ["", " ", " "],
            ]
            rows += [_padded(k) for k in keys]
        columns_info = [("col_name", "string"), ("data_type", "string"), ("comment", "string")]
        return _lines("DESCRIBE_TABLE", columns_info, rows)
    raise QueryFailed(
        "NOT_SUPPORTED", f"utility statement {text.split(None, 2)[:2]} is not emulated"
    )


def _columns(table: dict[str, Any]) -> list[tuple[str, str, str]]:
    listed = table.get("StorageDescriptor", {}).get("Columns", []) + table.get("PartitionKeys", [])
    return [(c["Name"], c["Type"], c.get("Comment") or "") for c in listed]


def _padded(column: tuple[str, str, str]) -> list[str]:
    """Hive's DESCRIBE layout: name and type padded to 20 characters."""
    return [f"{column[0]:<20}", f"{column[1]:<20}", f"{column[2]:<20}"]


def _lines(substatement: str, columns: list[tuple[str, str]], rows: list[list[str]]) -> Outcome:
    return Outcome("UTILITY", substatement, text=rows, columns=columns)


def _create_table_ddl(db: str, table: dict[str, Any]) -> str:
    storage = table["StorageDescriptor"]
    columns = ", \n".join(f"  `{c['Name']}` {c['Type']}" for c in storage.get("Columns", []))
    lines = [f"CREATE EXTERNAL TABLE `{db}`.`{table['Name']}`(", columns + ")"]
    keys = table.get("PartitionKeys", [])
    if keys:
        lines += [
            "PARTITIONED BY ( ",
            ", \n".join(f"  `{k['Name']}` {k['Type']}" for k in keys) + ")",
        ]
    serde = (storage.get("SerdeInfo") or {}).get("SerializationLibrary")
    if serde:
        lines += ["ROW FORMAT SERDE ", f"  '{serde}' "]
        parameters = (storage.get("SerdeInfo") or {}).get("Parameters") or {}
        if parameters:  # the delimiters: without them the DDL makes another table
            listed = ", \n".join(
                f"  {_hive_literal(k)}={_hive_literal(v)}" for k, v in parameters.items()
            )
            lines += ["WITH SERDEPROPERTIES ( ", listed + ") "]
    if storage.get("InputFormat"):
        lines += ["STORED AS INPUTFORMAT ", f"  '{storage['InputFormat']}' "]
    if storage.get("OutputFormat"):
        lines += ["OUTPUTFORMAT ", f"  '{storage['OutputFormat']}'"]
    lines += ["LOCATION", f"  '{storage.get('Location', '')}'"]
    props = table.get("Parameters") or {}
    if props:
        listed = ", \n".join(f"  {_hive_literal(k)}={_hive_literal(v)}" for k, v in props.items())
        lines += ["TBLPROPERTIES (", listed + ")"]
    return "\n".join(lines)


def _hive_literal(value: Any) -> str:
    """A Hive DDL string literal that reads back as ``value`` (Athena prints a tab delimiter as
    ``'\\t'`` and Ctrl-A as ``'\\u0001'``)."""
    out = []
    for ch in str(value):
        if ch in "\\'":
            out.append("\\" + ch)
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\n":
            out.append("\\n")
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "'" + "".join(out) + "'"


# ------------------------------------------------------------------------------ DDL
_MSCK = re.compile(rf"MSCK\s+REPAIR\s+TABLE\s+{_QUALIFIED}$", re.I)
_PARTITION_SPEC = re.compile(r"PARTITION\s*\(([^)]*)\)(?:\s*LOCATION\s*'((?:[^']|'')*)')?", re.I)
_ALTER = re.compile(
    rf"ALTER\s+TABLE\s+{_QUALIFIED}\s+(ADD|DROP)\s+(IF\s+(?:NOT\s+)?EXISTS\s+)?(PARTITION\b.*)$",
    re.I | re.S,
)


def _msck(text: str, session: Session) -> Outcome:
    m = _MSCK.match(text)
    if m is None:
        raise QueryFailed("SYNTAX_ERROR", "expected MSCK REPAIR TABLE [database.]table")
    db, name = _split(m.group(1), m.group(2), session.database)
    table = session.catalog.require(db, name)
    before = {tuple(p["Values"]) for p in session.catalog.partitions(db, name)}
    repair_partitions(session.catalog.glue, session.s3, db, name)
    keys = [k["Name"] for k in table.get("PartitionKeys", [])]
    added = sorted(
        tuple(p["Values"])
        for p in session.catalog.partitions(db, name)
        if tuple(p["Values"]) not in before
    )
    rows = [
        [f"Repair: Added partition to metastore {name}:{writes.folder(keys, v).rstrip('/')}"]
        for v in added
    ]
    return Outcome("DDL", "MSCK_REPAIR_TABLE", text=rows)


def _partition_spec(spec: str, keys: list[str], where: str) -> tuple[str, ...]:
    values: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, sep, value = item.partition("=")
        if not sep:
            raise QueryFailed("SYNTAX_ERROR", f"{where}: partition value {item!r} is not key=value")
        value = value.strip()
        if value[:1] == "'" and value[-1:] == "'":
            value = value[1:-1].replace("''", "'")
        values[_unquote(name.strip()) or ""] = value
    if sorted(values) != sorted(keys):
        raise QueryFailed(
            "INVALID_PARTITION_SPEC", f"{where}: partition keys are {keys}, got {sorted(values)}"
        )
    return tuple(values[k] for k in keys)


def _alter(text: str, session: Session) -> Outcome:
    m = _ALTER.match(text)
    if m is None:
        return _alter_table(text, session)
    db, name = _split(m.group(1), m.group(2), session.database)
    table = session.catalog.require(db, name)
    keys = [k["Name"] for k in table.get("PartitionKeys", [])]
    if not keys:
        raise QueryFailed("NOT_PARTITIONED", f"Table '{db}.{name}' is not partitioned")
    guarded = bool(m.group(4))
    specs = [
        (_partition_spec(s.group(1), keys, text[:60]), s.group(2))
        for s in _PARTITION_SPEC.finditer(m.group(5))
    ]
    if not specs:
        raise QueryFailed("SYNTAX_ERROR", "expected PARTITION (key = 'value', …)")
    glue = session.catalog.glue
    existing = {tuple(p["Values"]) for p in session.catalog.partitions(db, name)}
    location = table["StorageDescriptor"]["Location"].rstrip("/")
    if m.group(3).upper() == "ADD":
        present = [v for v, _ in specs if v in existing]
        if present and not guarded:
            raise QueryFailed("ALREADY_EXISTS", f"Partition already exists: {list(present[0])}")
        locations = {
            values: where.replace("''", "'")
            if where
            else f"{location}/{writes.folder(keys, values)}"
            for values, where in specs
        }
        add_partitions(glue, db, table, locations, existing)
        return Outcome("DDL", "ALTER_TABLE_ADD_PARTITION")
    missing = [v for v, _ in specs if v not in existing]
    if missing and not guarded:
        raise QueryFailed("PARTITION_NOT_FOUND", f"Partition not found: {list(missing[0])}")
    for values, _ in specs:
        if values in existing:
            glue.delete_partition(DatabaseName=db, TableName=name, PartitionValues=list(values))
    return Outcome("DDL", "ALTER_TABLE_DROP_PARTITION")


_ALTER_FORMS = (
    "ALTER TABLE … ADD|DROP PARTITION, ADD COLUMNS (…), REPLACE COLUMNS (…), "
    "SET TBLPROPERTIES (…) and SET LOCATION '…'"
)


def _alter_table(text: str, session: Session) -> Outcome:
    """``ALTER TABLE`` on a table's definition, as Athena changes a Hive table's Glue entry:
    ``ADD COLUMNS``, ``REPLACE COLUMNS``, ``SET TBLPROPERTIES``, ``SET LOCATION``. The data is
    not touched (Parquet columns are read by name: an added column reads as null)."""
    tree = _parse_hive(text)
    actions = (tree.args.get("actions") or []) if isinstance(tree, exp.Alter) else []
    if len(actions) != 1 or not isinstance(tree.this, exp.Table):
        raise QueryFailed("NOT_SUPPORTED", f"only {_ALTER_FORMS} are emulated")
    db, name = _target(tree, session)
    table = session.catalog.require(db, name)
    where = f"table '{db}.{name}'"
    if is_view(table):
        raise QueryFailed("NOT_SUPPORTED", f"'{db}.{name}' is a view: CREATE OR REPLACE VIEW")
    changed = table_input(table)
    storage = changed["StorageDescriptor"] = dict(changed.get("StorageDescriptor") or {})
    keys = {k["Name"] for k in table.get("PartitionKeys", [])}
    action = actions[0]
    if isinstance(action, exp.Schema | exp.ReplaceColumns):
        adding = isinstance(action, exp.Schema)
        given = _hive_columns(action, f"{where} {'ADD' if adding else 'REPLACE'} COLUMNS")
        kept = list(storage.get("Columns") or []) if adding else []
        clash = ({c["Name"] for c in kept} | keys) & {c["Name"] for c in given}
        if clash:
            raise QueryFailed(
                "DUPLICATE_COLUMN_NAME", f"{where}: columns already in the table: {sorted(clash)}"
            )
        storage["Columns"] = kept + given
        substatement = "ALTER_TABLE_ADD_COLUMNS" if adding else "ALTER_TABLE_REPLACE_COLUMNS"
    elif isinstance(action, exp.AlterSet) and action.args.get("location") is not None:
        location = action.args["location"].name
        if not location.startswith("s3://"):
            raise QueryFailed("SYNTAX_ERROR", f"{where}: SET LOCATION 's3://bucket/prefix/'")
        storage["Location"] = location
        substatement = "ALTER_TABLE_SET_LOCATION"
    elif isinstance(action, exp.AlterSet) and action.expressions:
        properties = [
            p
            for group in action.expressions
            for p in getattr(group, "expressions", None) or [group]
        ]
        if not properties or any(
            type(p) is not exp.Property or not isinstance(p.args.get("value"), exp.Literal)
            for p in properties
        ):
            raise QueryFailed("SYNTAX_ERROR", f"{where}: SET TBLPROPERTIES ('key'='value', …)")
        changed["Parameters"] = {
            **(changed.get("Parameters") or {}),
            **{p.name: p.args["value"].name for p in properties},
        }
        substatement = "ALTER_TABLE_SET_TBLPROPERTIES"
    else:
        raise QueryFailed("NOT_SUPPORTED", f"only {_ALTER_FORMS} are emulated")
    session.catalog.glue.update_table(DatabaseName=db, TableInput=changed)
    return Outcome("DDL", substatement)


_DATABASE = re.compile(
    rf"(CREATE|DROP)\s+(?:DATABASE|SCHEMA)\s+(IF\s+(?:NOT\s+)?EXISTS\s+)?({_NAME})(\s+CASCADE|\s+RESTRICT)?(?:\s+.*)?$",
    re.I | re.S,
)


def _database(text: str, session: Session) -> Outcome:
    m = _DATABASE.match(text)
    if m is None:
        raise QueryFailed("SYNTAX_ERROR", "expected CREATE|DROP DATABASE [IF [NOT] EXISTS] name")
    action, guarded, name = m.group(1).upper(), bool(m.group(2)), _unquote(m.group(3)) or ""
    glue = session.catalog.glue
    exists = session.catalog.database_exists(name)
    if action == "CREATE":
        if exists and not guarded:
            raise QueryFailed("ALREADY_EXISTS", f"Database {name} already exists")
        if not exists:
            glue.create_database(DatabaseInput={"Name": name})
        return Outcome("DDL", "CREATE_DATABASE")
    if not exists:
        if guarded:
            return Outcome("DDL", "DROP_DATABASE")
        raise QueryFailed("SCHEMA_NOT_FOUND", f"Database {name} does not exist")
    if session.catalog.tables(name) and "CASCADE" not in (m.group(4) or "").upper():
        raise QueryFailed("SCHEMA_NOT_EMPTY", f"Database {name} is not empty: DROP … CASCADE")
    glue.delete_database(Name=name)
    return Outcome("DDL", "DROP_DATABASE")


def _target(tree: exp.Expression, session: Session) -> tuple[str, str]:
    table = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
    if not isinstance(table, exp.Table):
        raise QueryFailed("SYNTAX_ERROR", "expected a table name")
    return _split(table.db or table.name, table.name if table.db else None, session.database)


_VIEW_BODY = re.compile(r"CREATE\s+(?:OR\s+REPLACE\s+)?VIEW\s+.+?\s+AS\s+(.*)$", re.I | re.S)


def _create_view(tree: exp.Create, session: Session, text: str) -> Outcome:
    db, name = _target(tree, session)
    query = tree.expression
    body = _VIEW_BODY.match(text)
    if not isinstance(query, exp.Query) or body is None:
        raise QueryFailed("SYNTAX_ERROR", "expected CREATE VIEW name AS query")
    existing = session.catalog.table(db, name)
    if existing is not None and not (tree.args.get("replace") and is_view(existing)):
        raise QueryFailed("ALREADY_EXISTS", f"View '{db}.{name}' already exists")
    sql = body.group(1).strip()  # kept as written, as Athena keeps it
    probe = parse(f"SELECT * FROM ({sql}) AS v LIMIT 0")
    columns = select(probe, db, session.catalog, session.objects).rows.schema
    hive = [(f.name, writes.hive_type(f.type)) for f in columns]
    table_input = {
        "Name": name,
        "TableType": "VIRTUAL_VIEW",
        "ViewOriginalText": view_text(sql, db, [(n, trino_type(t)) for n, t in hive]),
        "ViewExpandedText": "/* Presto View */",
        "Parameters": {"presto_view": "true", "comment": "Presto View"},
        "StorageDescriptor": {
            "Columns": [{"Name": n, "Type": t} for n, t in hive],
            "SerdeInfo": {},
        },
    }
    glue = session.catalog.glue
    if existing is not None:
        glue.update_table(DatabaseName=db, TableInput=table_input)
    else:
        glue.create_table(DatabaseName=db, TableInput=table_input)
    return Outcome("DDL", "CREATE_VIEW")


def _parse_hive(text: str) -> exp.Expression:
    """A Hive DDL statement (Athena parses its DDL as Hive's, not as Trino's), or SYNTAX_ERROR."""
    try:
        return sqlglot.parse_one(text, read="athena")
    except (sqlglot.errors.SqlglotError, ValueError, IndexError, RecursionError) as exc:
        detail = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise QueryFailed("SYNTAX_ERROR", detail) from None


def _hive_type(kind: exp.Expression) -> str:
    """A column type as Glue stores Hive's: ``array<struct<x:int,y:string>>``, ``decimal(10,2)``."""
    return re.sub(r"\s+", "", kind.sql(dialect="hive")).lower()


def _hive_columns(schema: exp.Expression | None, where: str) -> list[dict[str, Any]]:
    columns = []
    for definition in schema.expressions if schema is not None else []:
        if not isinstance(definition, exp.ColumnDef) or definition.args.get("kind") is None:
            raise QueryFailed(
                "SYNTAX_ERROR", f"{where}: expected `name type`, got {definition.sql()}"
            )
        column = {"Name": definition.name.lower(), "Type": _hive_type(definition.args["kind"])}
        for constraint in definition.constraints:
            if isinstance(constraint.kind, exp.CommentColumnConstraint):
                column["Comment"] = constraint.kind.this.name
        columns.append(column)
    names = [c["Name"] for c in columns]
    if len(set(names)) != len(names):
        raise QueryFailed(
            "DUPLICATE_COLUMN_NAME", f"{where}: a column name is given twice: {names}"
        )
    return columns


def _exists_already(tree: exp.Create, session: Session, db: str, name: str) -> bool:
    """Whether ``CREATE … IF NOT EXISTS`` finds the table there (nothing to do); a table already
    there without it, or a database that is not, fails as Athena fails it."""
    if session.catalog.table(db, name) is not None:
        if tree.args.get("exists"):
            return True
        raise QueryFailed("ALREADY_EXISTS", f"Table '{db}.{name}' already exists")
    if not session.catalog.database_exists(db):
        raise QueryFailed("SCHEMA_NOT_FOUND", f"Schema '{db}' does not exist")
    return False


_TEXT_SERDES = {  # the text SerDes the world reads → the table's classification
    serdes.LAZY_SIMPLE: "csv",
    serdes.OPEN_CSV: "csv",
    **dict.fromkeys(serdes.JSON_SERDES, "json"),
}
_DELIMITED = {  # ROW FORMAT DELIMITED's clauses → LazySimpleSerDe's parameters, as Hive stores them
    "fields": "field.delim",
    "escaped": "escape.delim",
    "collection_items": "collection.delim",
    "map_keys": "mapkey.delim",
    "lines": "line.delim",
    "null": "serialization.null.format",
}


def _storage(properties: list[exp.Expression], where: str) -> tuple[dict[str, Any], str]:
    """The storage descriptor's formats and SerDe of Hive DDL, with the table's classification.

    As on Athena: no ``STORED AS`` and no ``ROW FORMAT`` is a text table (``LazySimpleSerDe``,
    fields split on Ctrl-A); the formats and SerDes the world reads are Parquet, delimited text,
    OpenCSV and the JSON SerDes; anything else is refused here rather than registered and
    unreadable."""
    fileformat = next((p for p in properties if isinstance(p, exp.FileFormatProperty)), None)
    serde = next((p for p in properties if isinstance(p, exp.RowFormatSerdeProperty)), None)
    delimited = next((p for p in properties if isinstance(p, exp.RowFormatDelimitedProperty)), None)
    stored = None
    if fileformat is not None and isinstance(fileformat.this, exp.InputOutputFormat):
        inputformat = fileformat.this.args.get("input_format")
        text = inputformat.name if inputformat is not None else ""
        stored = (
            "PARQUET" if "parquet" in text.lower()
            else "TEXTFILE" if text == serdes.TEXT_FORMATS["InputFormat"] else text or "?"
        )  # fmt: skip
    elif fileformat is not None:
        stored = fileformat.this.name.upper()
    library = serde.this.name if serde is not None else None
    parquet_serde = writes.PARQUET_SERDE["SerdeInfo"]["SerializationLibrary"]
    parameters = {}
    if serde is not None and serde.args.get("serde_properties") is not None:
        parameters = {
            p.name: p.args["value"].name for p in serde.args["serde_properties"].expressions
        }
    if delimited is not None:
        parameters = {
            _DELIMITED[k]: v.name
            for k, v in delimited.args.items()
            if k in _DELIMITED and isinstance(v, exp.Literal)
        }
        if "field.delim" in parameters:
            parameters["serialization.format"] = parameters["field.delim"]
        library = serdes.LAZY_SIMPLE
    if (stored == "PARQUET" and library in (None, parquet_serde)) or (
        stored is None and library == parquet_serde
    ):
        info = {"SerializationLibrary": parquet_serde}
        if parameters:
            info["Parameters"] = parameters
        return {**writes.PARQUET_SERDE, "SerdeInfo": info}, "parquet"
    if stored in (None, "TEXTFILE") and (library is None or library in _TEXT_SERDES):
        library = library or serdes.LAZY_SIMPLE
        info: dict[str, Any] = {"SerializationLibrary": library}
        if library == serdes.LAZY_SIMPLE and not parameters:
            parameters = {"serialization.format": "1"}  # Hive's default: fields split on Ctrl-A
        if parameters:
            info["Parameters"] = parameters
        return {**serdes.TEXT_FORMATS, "SerdeInfo": info}, _TEXT_SERDES[library]
    raise QueryFailed(
        "NOT_SUPPORTED",
        f"{where}: {stored or 'TEXTFILE'} with {library or 'no SerDe'} is not emulated (Parquet, "
        "delimited text, OpenCSVSerde and the JSON SerDes are)",
    )


def _create_external(text: str, session: Session) -> Outcome:
    """Hive's ``CREATE EXTERNAL TABLE``, registered in Glue as Athena does.

    What pandas' ``to_sql`` through PyAthena, dbt-athena, Glue tutorials and hand-written DDL
    send: Parquet, delimited text, CSV and JSON tables (the formats the world reads, see
    :mod:`emulation.athena.serdes`); another format is refused here rather than failing every
    later query."""
    tree = _parse_hive(text)
    if not isinstance(tree, exp.Create) or not isinstance(tree.this, exp.Schema):
        raise QueryFailed("SYNTAX_ERROR", "expected CREATE EXTERNAL TABLE name (columns) …")
    db, name = _target(tree, session)
    properties = tree.args["properties"].expressions if tree.args.get("properties") else []
    storage, classification = _storage(properties, f"table '{db}.{name}'")
    location = next((p for p in properties if isinstance(p, exp.LocationProperty)), None)
    if location is None or not location.this.name.startswith("s3://"):
        raise QueryFailed(
            "SYNTAX_ERROR", f"table '{db}.{name}': LOCATION 's3://bucket/prefix/' is required"
        )
    if _exists_already(tree, session, db, name):
        return Outcome("DDL", "CREATE_TABLE")
    columns = _hive_columns(tree.this, f"table '{db}.{name}'")
    partitioned = next((p for p in properties if isinstance(p, exp.PartitionedByProperty)), None)
    keys = _hive_columns(partitioned.this if partitioned is not None else None,
                         f"table '{db}.{name}' PARTITIONED BY")  # fmt: skip
    clash = {c["Name"] for c in columns} & {k["Name"] for k in keys}
    if clash:
        raise QueryFailed(
            "DUPLICATE_COLUMN_NAME", f"partition columns are also table columns: {sorted(clash)}"
        )
    table_properties = {
        p.name: p.args["value"].name
        for p in properties
        if type(p) is exp.Property and isinstance(p.args.get("value"), exp.Literal)
    }
    comment = next((p for p in properties if isinstance(p, exp.SchemaCommentProperty)), None)
    table_input: dict[str, Any] = {
        "Name": name,
        "TableType": "EXTERNAL_TABLE",
        "StorageDescriptor": {"Columns": columns, "Location": location.this.name, **storage},
        "PartitionKeys": keys,
        "Parameters": {"EXTERNAL": "TRUE", "classification": classification, **table_properties},
    }
    if comment is not None:
        table_input["Description"] = comment.this.name
    if classification != "parquet":
        serdes.reader(table_input)  # a nested column of a delimited table fails here, not later
    session.catalog.glue.create_table(DatabaseName=db, TableInput=table_input)
    return Outcome("DDL", "CREATE_TABLE")


_DROP = re.compile(rf"DROP\s+(TABLE|VIEW)\s+(IF\s+EXISTS\s+)?{_QUALIFIED}$", re.I)


def _drop(text: str, session: Session) -> Outcome:
    m = _DROP.match(text)
    if m is None:
        raise QueryFailed("SYNTAX_ERROR", "expected DROP TABLE|VIEW [IF EXISTS] [db.]name")
    kind = m.group(1).upper()
    db, name = _split(m.group(3), m.group(4), session.database)
    table = session.catalog.table(db, name)
    if table is None:
        if m.group(2):
            return Outcome("DDL", f"DROP_{kind}")
        raise QueryFailed("TABLE_NOT_FOUND", f"Table '{db}.{name}' does not exist")
    if (kind == "VIEW") != is_view(table):
        raise QueryFailed("NOT_SUPPORTED", f"'{db}.{name}' is not a {kind.lower()}")
    # like Athena, DROP TABLE removes the catalog entry; the data stays in S3
    session.catalog.glue.delete_table(DatabaseName=db, Name=name)
    return Outcome("DDL", f"DROP_{kind}")


# ------------------------------------------------------------------------------ writing
def _options(tree: exp.Create) -> dict[str, Any]:
    """The ``WITH (…)`` properties of a CTAS, by Athena's names."""
    options: dict[str, Any] = {}
    properties = tree.args.get("properties")
    for prop in properties.expressions if properties else []:
        if isinstance(prop, exp.FileFormatProperty):
            options["format"] = prop.this.name.upper()
        elif isinstance(prop, exp.WithDataProperty):
            options["with_data"] = not prop.args.get("no")
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


def _format(options: dict[str, Any], default_compression: str, where: str) -> writes.Format:
    kind = str(options.get("format") or "PARQUET").upper()
    if kind not in ("PARQUET", "TEXTFILE", "JSON"):
        raise QueryFailed(
            "NOT_SUPPORTED", f"{where} format {kind!r}: PARQUET, TEXTFILE, JSON are emulated"
        )
    compression = str(
        options.get("write_compression")
        or options.get("parquet_compression")
        or options.get("compression")
        or default_compression
    ).upper()
    if compression not in writes.COMPRESSION or (
        kind != "PARQUET" and compression not in ("GZIP", "NONE", "UNCOMPRESSED")
    ):
        raise QueryFailed(
            "INVALID_TABLE_PROPERTY", f"{where} compression {compression!r} for {kind}"
        )
    delimiter = options.get("field_delimiter") or "\x01"
    return writes.Format(kind, writes.COMPRESSION[compression], delimiter)


def _partitioned(data: pa.Table, partitioned_by: list[str]) -> None:
    missing = [c for c in partitioned_by if c not in data.column_names]
    if missing:
        raise QueryFailed("COLUMN_NOT_FOUND", f"partition columns {missing} are not in the query")
    if partitioned_by and data.column_names[-len(partitioned_by) :] != partitioned_by:
        raise QueryFailed(
            "INVALID_TABLE_PROPERTY",
            "partition columns must be the last columns of the query, in order",
        )


def _output(session: Session, what: str) -> str:
    if not session.output:
        raise QueryFailed("INVALID_REQUEST", f"{what} needs a query result location")
    return session.output.rstrip("/")


def _ctas(tree: exp.Create, session: Session, bound: list[Any]) -> Outcome:
    db, name = _target(tree, session)
    options = _options(tree)
    fmt = _format(options, "GZIP", "CTAS")
    if options.get("bucketed_by"):
        raise QueryFailed("NOT_SUPPORTED", "CTAS bucketed_by is not emulated")
    if _exists_already(tree, session, db, name):
        return Outcome("DDL", "CREATE_TABLE_AS_SELECT", update_count=0)
    output = _output(session, "a CTAS")
    answer = select(
        tree.expression,
        session.database,
        session.catalog,
        session.objects,
        bound,
        cancel=session.cancel,
    )
    data = answer.rows
    partitioned_by = list(options.get("partitioned_by") or [])
    _partitioned(data, partitioned_by)
    location = (options.get("external_location") or f"{output}/tables/{session.query_id}").rstrip(
        "/"
    )
    writes.require_empty(session.s3, location, f"table '{db}.{name}'")
    with_data = options.get("with_data", True)
    written = writes.write_objects(
        session.s3,
        data if with_data else data.slice(0, 0),
        location,
        partitioned_by,
        fmt,
        session.query_id,
    )
    values_columns = [c for c in data.column_names if c not in partitioned_by]
    storage = {
        "Columns": [
            {"Name": c, "Type": writes.hive_type(data.schema.field(c).type)} for c in values_columns
        ],
        "Location": location + "/",
        **_serde(fmt),
    }
    classification = {"PARQUET": "parquet", "JSON": "json", "TEXTFILE": "csv"}[fmt.kind]
    table_input = {
        "Name": name,
        "TableType": "EXTERNAL_TABLE",
        "StorageDescriptor": storage,
        "PartitionKeys": [
            {"Name": c, "Type": writes.hive_type(data.schema.field(c).type)} for c in partitioned_by
        ],
        "Parameters": {"classification": classification, "has_encrypted_data": "false"},
    }
    glue = session.catalog.glue
    glue.create_table(DatabaseName=db, TableInput=table_input)
    if partitioned_by:
        locations = writes.partition_locations(partitioned_by, [v for v, _ in written], location)
        add_partitions(glue, db, table_input, locations, known=set())  # a new table
    result_folder = f"{output}/tables/{session.query_id}"
    manifest = writes.write_manifest(
        session.s3, f"{result_folder}-manifest.csv", [u for _, u in written]
    )
    count = data.num_rows if with_data else 0
    return Outcome(
        "DDL",
        "CREATE_TABLE_AS_SELECT",
        update_count=count,
        manifest=manifest,
        output=result_folder,
        scanned=answer.scanned,
    )


def _serde(fmt: writes.Format) -> dict[str, Any]:
    if fmt.kind == "PARQUET":
        return dict(writes.PARQUET_SERDE)
    if fmt.kind == "JSON":
        return {**serdes.TEXT_FORMATS, "SerdeInfo": {"SerializationLibrary": serdes.JSON_SERDES[0]}}
    return {
        **serdes.TEXT_FORMATS,
        "SerdeInfo": {
            "SerializationLibrary": serdes.LAZY_SIMPLE,
            "Parameters": {"field.delim": fmt.delimiter},
        },
    }


def _insert(tree: exp.Insert, session: Session, bound: list[Any]) -> Outcome:
    db, name = _target(tree, session)
    table = session.catalog.require(db, name)
    if is_view(table):
        raise QueryFailed("NOT_SUPPORTED", f"Cannot insert into view '{db}.{name}'")
    storage = table["StorageDescriptor"]
    if "parquet" not in (storage.get("SerdeInfo") or {}).get("SerializationLibrary", "").lower():
        raise QueryFailed(
            "NOT_SUPPORTED", f"INSERT INTO '{db}.{name}': only Parquet tables are emulated"
        )
    columns = storage.get("Columns", []) + table.get("PartitionKeys", [])
    names = [c["Name"] for c in columns]
    given = (
        [c.name.lower() for c in tree.this.expressions]
        if isinstance(tree.this, exp.Schema)
        else names
    )
    unknown = [c for c in given if c not in names]
    if unknown:
        raise QueryFailed(
            "COLUMN_NOT_FOUND", f"Insert column name does not exist in target table: {unknown[0]}"
        )
    query = tree.expression
    if isinstance(query, exp.Values):
        query = parse(f"SELECT * FROM ({query.sql(dialect='trino')}) AS v")
    output = _output(session, "INSERT INTO")
    answer = select(
        query, session.database, session.catalog, session.objects, bound, cancel=session.cancel
    )
    data = answer.rows
    if data.num_columns != len(given):
        raise QueryFailed(
            "TYPE_MISMATCH",
            f"Insert query has {data.num_columns} columns, "
            f"but table '{db}.{name}' takes {len(given)}",
        )
    arrays = []
    for column in columns:
        kind = arrow_type(column["Type"])
        if column["Name"] in given:
            values = data.column(given.index(column["Name"]))
            try:
                values = values.cast(kind) if kind is not None else values
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise QueryFailed(
                    "TYPE_MISMATCH",
                    "Insert query has mismatched column types: "
                    f"column {column['Name']} is {column['Type']}",
                ) from None
        else:
            values = pa.nulls(data.num_rows, kind or pa.string())
        arrays.append(values)
    rows = pa.table(arrays, names=names)
    keys = [k["Name"] for k in table.get("PartitionKeys", [])]
    compression = str((table.get("Parameters") or {}).get("parquet.compression") or "GZIP").upper()
    fmt = writes.Format("PARQUET", writes.COMPRESSION.get(compression, "gzip"))
    location = storage["Location"].rstrip("/")
    written = writes.write_objects(session.s3, rows, location, keys, fmt, session.query_id)
    if keys:
        locations = writes.partition_locations(keys, [v for v, _ in written], location)
        add_partitions(session.catalog.glue, db, table, locations)
    manifest = writes.write_manifest(
        session.s3, f"{output}/{session.query_id}-manifest.csv", [u for _, u in written]
    )
    return Outcome(
        "DML", "INSERT", update_count=rows.num_rows, manifest=manifest, scanned=answer.scanned
    )


_UNLOAD = re.compile(r"UNLOAD\s*\((.*)\)\s*TO\s*'((?:[^']|'')*)'\s*WITH\s*\((.*)\)$", re.I | re.S)
_OPTION = re.compile(r"(\w+)\s*=\s*('(?:[^']|'')*'|ARRAY\s*\[[^\]]*\])", re.I)


def _unload(text: str, session: Session, bound: list[Any]) -> Outcome:
    m = _UNLOAD.match(text)
    if m is None:
        raise QueryFailed("SYNTAX_ERROR", "expected UNLOAD (query) TO 's3://…' WITH (format = …)")
    options: dict[str, Any] = {}
    for key, value in _OPTION.findall(m.group(3)):
        if value.upper().startswith("ARRAY"):
            options[key.lower()] = re.findall(r"'((?:[^']|'')*)'", value)
        else:
            options[key.lower()] = value[1:-1].replace("''", "'")
    fmt = _format(options, "GZIP", "UNLOAD")
    location = m.group(2).replace("''", "'").rstrip("/")
    split_uri(location)
    writes.require_empty(session.s3, location, "UNLOAD")
    output = _output(session, "UNLOAD")
    answer = select(
        parse(m.group(1)),
        session.database,
        session.catalog,
        session.objects,
        bound,
        cancel=session.cancel,
    )
    partitioned_by = list(options.get("partitioned_by") or [])
    _partitioned(answer.rows, partitioned_by)
    written = writes.write_objects(
        session.s3, answer.rows, location, partitioned_by, fmt, session.query_id
    )
    manifest = writes.write_manifest(
        session.s3, f"{output}/{session.query_id}-manifest.csv", [u for _, u in written]
    )
    return Outcome(
        "DML",
        "UNLOAD",
        update_count=answer.rows.num_rows,
        manifest=manifest,
        scanned=answer.scanned,
    )
