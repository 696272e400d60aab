"""Athena that runs what it is given, which moto never does (it answers 0 rows).

In the embedded world ``StartQueryExecution`` carries the statement out
(:mod:`emulation.athena.backend`): the tables it names are looked up in the Glue Data Catalog,
their objects are read from the world's S3 with the table's SerDe (Parquet, delimited text,
OpenCSV, JSON lines: :mod:`emulation.athena.serdes`; decoded once and kept while unchanged:
:mod:`emulation.athena.data`), and the statement, written in Athena's Trino dialect, is translated
by sqlglot and run by DuckDB (:mod:`emulation.athena.engine`).

**Supported surface** (:mod:`emulation.athena.statements`):

- Queries: ``SELECT``/``WITH``/``VALUES`` over tables, views and ``information_schema``
  (``schemata``, ``tables``, ``columns``, ``views``); names as ``table``, ``db.table`` or
  ``awsdatacatalog.db.table``; ``EXPLAIN`` (DuckDB's plan, one line per row, column
  ``Query Plan``). ``ExecutionParameters`` fill ``?`` placeholders as bound values, never as SQL
  text: each must be one SQL literal. Functions are those sqlglot translates to DuckDB (date and
  time, JSON, regular expressions, approximate aggregates…), plus ``format_datetime`` with Java
  date patterns and ``UNNEST`` of several arrays side by side (:mod:`emulation.athena.dialect`);
  one without an equivalent fails with ``FUNCTION_NOT_FOUND`` naming it.
- Results as Athena gives them: a header row first (queries only), every value as
  ``VarCharValue``, ``ColumnInfo`` with Athena's type names, ``_col<N>`` names for unnamed
  expressions, ``bigint`` integer sums; ``MaxResults``/``NextToken`` pages; the CSV
  ``<output>/<id>.csv`` (every value quoted). DDL and utility statements answer rows without a
  header, each row one tab-joined value, and write ``<id>.txt``. ``StatementType`` and
  ``SubstatementType`` are reported (clients such as awswrangler read them).
- ``CREATE TABLE … WITH (…) AS SELECT`` (CTAS; formats PARQUET, TEXTFILE, JSON;
  ``external_location``, which must be empty, or ``<output>/tables/<id>/``; ``partitioned_by``;
  ``write_compression``; ``WITH NO DATA``), ``INSERT INTO`` a Parquet table (column list or all
  columns, ``VALUES`` or a query, values cast to the table's types, new partitions registered)
  and ``UNLOAD (…) TO '…' WITH (format, compression, field_delimiter, partitioned_by)``: each
  writes its objects, the data manifest (``DataManifestLocation``) and answers ``UpdateCount``
  with no rows.
- ``CREATE [OR REPLACE] VIEW`` stored in the catalog as Athena stores it (a ``VIRTUAL_VIEW``
  whose ``ViewOriginalText`` is the base64 Presto definition), ``DROP VIEW``, ``DROP TABLE``
  (the catalog entry; the data stays, as on Athena), ``CREATE``/``DROP DATABASE``.
- ``SHOW DATABASES|SCHEMAS``, ``SHOW TABLES|VIEWS [IN db] ['pattern']``, ``SHOW COLUMNS``,
  ``SHOW PARTITIONS``, ``SHOW CREATE TABLE|VIEW``, ``SHOW TBLPROPERTIES``,
  ``DESCRIBE [db.]table [column]`` (Hive's padded layout with ``# Partition Information``).
- ``MSCK REPAIR TABLE`` and ``ALTER TABLE … ADD|DROP [IF [NOT] EXISTS] PARTITION (…)
  [LOCATION '…']`` change the catalog's partitions; ``ALTER TABLE … ADD COLUMNS``, ``REPLACE
  COLUMNS``, ``SET TBLPROPERTIES`` and ``SET LOCATION`` its definition. Parquet is read by column
  name: a declared column no object holds reads as null.
- ``GetQueryExecution`` and ``BatchGetQueryExecution`` report ``Statistics`` (engine, queue and
  total milliseconds, ``DataScannedInBytes`` = bytes of the objects read, and the manifest);
  ``ListQueryExecutions`` pages newest first; ``StopQueryExecution`` interrupts the engine and
  the execution ends ``CANCELLED``. Without ``ResultConfiguration.OutputLocation`` the
  workgroup's output location is used.
- The catalog API SQL clients read before querying (``ListDataCatalogs``, ``GetDataCatalog``,
  ``ListDatabases``, ``GetDatabase``, ``ListTableMetadata``, ``GetTableMetadata``) answers from
  the Glue Data Catalog for ``AwsDataCatalog``, as on AWS (:mod:`emulation.athena.metadata`).
- Prepared statements per workgroup: the API (``Create``, ``Get``, ``Update``, ``Delete``,
  ``List``, ``BatchGet``) and ``EXECUTE name [USING …]``, ``PREPARE name FROM …``,
  ``DEALLOCATE PREPARE name`` (:mod:`emulation.athena.prepared`).
- Failures carry Athena's error names (``SYNTAX_ERROR``, ``TABLE_NOT_FOUND``,
  ``COLUMN_NOT_FOUND``, ``FUNCTION_NOT_FOUND``, ``TYPE_MISMATCH``, ``HIVE_PATH_ALREADY_EXISTS``,
  ``NOT_SUPPORTED``…) and its ``AthenaError`` category (2, the user's; 1 for internal errors).

- ``CREATE EXTERNAL TABLE … LOCATION 's3://…'`` (Hive DDL, as PyAthena's ``to_sql``, Glue
  tutorials and crawler-style DDL send it) registers a Parquet, delimited text (``ROW FORMAT
  DELIMITED``, or no format at all: Hive's text table), OpenCSV or JSON table in Glue as Athena
  does; other formats are refused at once. CTAS and ``UNLOAD`` write ``TEXTFILE`` as Hive does
  (unquoted, ``\\N`` for null), so what they write reads back.

**Not emulated**: other ``ALTER TABLE`` forms, ``bucketed_by``, ORC, Avro, the regex and log
SerDes, Iceberg, ``UPDATE``/``DELETE``/``MERGE``, ``INSERT INTO`` a text table, federated catalogs,
result reuse, workgroup limits and encryption. A partitioned table's partitions
are read from its location's ``key=value`` folders, as partition projection reads them; a partition
registered with a ``LOCATION`` outside the table's location is listed by ``SHOW PARTITIONS`` but its
data is not read. ``DataScannedInBytes`` counts every object of the tables read, where Athena counts
less when it prunes partitions or columns.
"""

from __future__ import annotations

import pathlib

import duckdb

from emulation.athena import metadata as metadata  # registers the catalog API's patch
from emulation.athena import prepared as prepared  # registers the prepared statements' patch
from emulation.athena.backend import install_in_process
from emulation.athena.data import clear_cache
from emulation.athena.errors import QueryFailed

__all__ = ["QueryFailed", "clear_cache", "connect", "install_in_process"]


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
