"""Athena queries execute over the catalog's S3 data: Trino dialect, results, pagination, errors."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from emulation import World
from emulation.state import repair_partitions
from harness.runner import run
from harness.scenario import load_scenario


@pytest.fixture(scope="module")
def staged(world: World, tmp_path_factory):
    if world.kind != "embedded":
        pytest.skip("Athena queries execute in the embedded world only (moto's server cannot be "
                    "extended from here); emulation.athena.execute is the same engine")  # fmt: skip
    world.reset()
    out = tmp_path_factory.mktemp("athena-run")
    summary = run(load_scenario("smoke"), Path(out) / "r", world=world, until="staging").summary
    names = json.loads((Path(out) / "r" / "stack.json").read_text())
    return world, summary, names


def query(world: World, names: dict, sql: str, **extra) -> dict:
    athena = world.client("athena")
    qid = athena.start_query_execution(
        QueryString=sql,
        QueryExecutionContext={"Database": names["glue_database"]},
        ResultConfiguration={"OutputLocation": f"s3://{names['buckets']['athena-results']}/q/"},
        **extra,
    )["QueryExecutionId"]

    def done():
        state = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
        return state if state["Status"]["State"] not in ("QUEUED", "RUNNING") else None

    return world.wait_for(done, what=f"query {qid}", timeout=120)


def rows(world: World, execution: dict, page: int = 1000) -> list[list[str | None]]:
    athena = world.client("athena")
    out, token = [], None
    while True:
        kwargs = {"QueryExecutionId": execution["QueryExecutionId"], "MaxResults": page}
        if token:
            kwargs["NextToken"] = token
        result = athena.get_query_results(**kwargs)
        out += [[c.get("VarCharValue") for c in r["Data"]] for r in result["ResultSet"]["Rows"]]
        token = result.get("NextToken")
        if not token:
            return out


def test_group_by_over_partitions_matches_what_was_staged(staged) -> None:
    world, summary, names = staged
    execution = query(
        world, names, 'SELECT "table", count(*) AS n FROM staged_cdc GROUP BY 1 ORDER BY 1'
    )
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
    header, *data = rows(world, execution)
    assert header == ["table", "n"]
    assert {t: int(n) for t, n in data} == summary["staging"]["rows"]


ATHENA_QUERIES = {
    "date_trunc": "SELECT date_trunc('week', data.sold_at) AS week, sum(data.quantity) AS units "
    "FROM staged_cdc WHERE \"table\" = 'sales' GROUP BY 1 ORDER BY 1",
    "approx_percentile": "SELECT approx_percentile(data.unit_price, 0.5) AS median_price "
    "FROM staged_cdc WHERE \"table\" = 'sales'",
    "window": "SELECT product_id, sale_id FROM (SELECT data.product_id AS product_id, "
    "data.sale_id AS sale_id, row_number() OVER (PARTITION BY data.product_id "
    "ORDER BY data.sold_at DESC) AS rn FROM staged_cdc WHERE \"table\" = 'sales') WHERE rn = 1",
    "partition_filter": "SELECT count(*) FROM staged_cdc WHERE \"table\" = 'sales' "
    "AND dt >= '2020-01-01' AND metadata.\"operation\" = 'load'",
    "date_functions": "SELECT date_format(data.sold_at, '%Y-%m') AS month, "
    "date_add('day', 1, CAST(data.sold_at AS date)) AS next_day, day_of_week(data.sold_at) AS dow "
    "FROM staged_cdc WHERE \"table\" = 'sales' LIMIT 3",
    "hyphenated_struct_field": 'SELECT metadata."table-name" AS t, count(*) FROM staged_cdc '
    "GROUP BY 1",
    "cte_and_join": "WITH p AS (SELECT data.product_id AS id, data.category AS category "
    "FROM staged_cdc WHERE \"table\" = 'products') SELECT p.category, sum(s.data.quantity) "
    "FROM staged_cdc s JOIN p ON s.data.product_id = p.id WHERE s.\"table\" = 'sales' "
    "GROUP BY 1 ORDER BY 2 DESC",
}


@pytest.mark.parametrize("name", list(ATHENA_QUERIES))
def test_athena_dialect_queries_return_rows(staged, name: str) -> None:
    world, _, names = staged
    execution = query(world, names, ATHENA_QUERIES[name])
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
    header, *data = rows(world, execution)
    assert data, name
    assert all(len(r) == len(header) for r in data)


def test_results_paginate_and_are_written_as_csv(staged) -> None:
    world, _, names = staged
    sql = "SELECT data.product_id AS id FROM staged_cdc WHERE \"table\" = 'products' ORDER BY 1"
    execution = query(world, names, sql)
    paged = rows(world, execution, page=3)
    assert paged == rows(world, execution, page=1000)
    assert len(paged) > 4
    location = execution["ResultConfiguration"]["OutputLocation"]
    bucket, _, key = location[5:].partition("/")
    csv = world.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    assert csv.splitlines() == ['"id"'] + [f'"{r[0]}"' for r in paged[1:]]


def test_parameters_are_bound_never_spliced(staged) -> None:
    world, _, names = staged
    sql = "SELECT count(*) FROM staged_cdc WHERE \"table\" = 'products' AND data.product_id = ?"
    hit = query(world, names, sql, ExecutionParameters=["'P00001'"])
    assert rows(world, hit)[1] == ["1"]
    injection = query(world, names, sql, ExecutionParameters=["'x'' OR ''1''=''1'"])
    assert injection["Status"]["State"] == "SUCCEEDED"
    assert rows(world, injection)[1] == ["0"]
    not_literal = query(world, names, sql, ExecutionParameters=["1 OR 1=1"])
    assert not_literal["Status"]["State"] == "FAILED"
    assert "not a literal" in not_literal["Status"]["StateChangeReason"]


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELEC 1", "SYNTAX_ERROR"),
        ("SELECT * FROM no_such_table", "TABLE_NOT_FOUND"),
        ("SELECT no_such_column FROM staged_cdc", "COLUMN_NOT_FOUND"),
        ('SELECT "table", count(*) FROM staged_cdc GROUP BY 1, 2', "SYNTAX_ERROR"),
        ('SELECT "table", count(*) FROM staged_cdc', "SYNTAX_ERROR"),  # not grouped
        ("SELECT t.x FROM staged_cdc", "COLUMN_NOT_FOUND"),
        ("SELECT no_such_function(1)", "FUNCTION_NOT_FOUND: Function 'no_such_function'"),
        ('SELECT abs("table") FROM staged_cdc', "Unexpected parameters (varchar) for function abs"),
        ('SELECT "table" + 1 FROM staged_cdc', "TYPE_MISMATCH"),
    ],
)
def test_a_query_that_cannot_run_fails_with_a_reason(staged, sql: str, reason: str) -> None:
    world, _, names = staged
    execution = query(world, names, sql)
    assert execution["Status"]["State"] == "FAILED"
    assert reason in execution["Status"]["StateChangeReason"]
    assert execution["Status"]["AthenaError"]["ErrorMessage"]
    assert execution["Status"]["AthenaError"]["ErrorCategory"] == 2  # the user's error
    with pytest.raises(world.client("athena").exceptions.InvalidRequestException):
        world.client("athena").get_query_results(QueryExecutionId=execution["QueryExecutionId"])


def test_a_query_never_reads_the_hosts_files(staged, tmp_path) -> None:
    """Athena has none of DuckDB's file readers, and the world must not lend them out: anyone on
    the loopback port (a notebook, `dfp world`'s clients) could read ~/.aws/credentials. Refused
    as Athena refuses a table function it lacks; and DuckDB's own file access is off and locked,
    for a form the check does not see."""
    from emulation.athena.data import database

    world, _, names = staged
    secret = tmp_path / "secret.txt"
    secret.write_text("not for queries\n")
    for sql in (
        f"SELECT * FROM read_text('{secret}')",
        f"SELECT * FROM read_csv_auto('{secret}')",
        f"SELECT (SELECT content FROM read_text('{secret}'))",
        f"WITH x AS (SELECT * FROM read_blob('{secret}')) SELECT * FROM x",
        f"SELECT * FROM staged_cdc, LATERAL read_text('{secret}')",
        f"CREATE TABLE leak AS SELECT * FROM read_text('{secret}')",
    ):
        execution = query(world, names, sql)
        assert execution["Status"]["State"] == "FAILED", sql
        reason = execution["Status"]["StateChangeReason"]
        assert reason.startswith("FUNCTION_NOT_FOUND: Table function 'read_"), (sql, reason)
    unnest = query(world, names, "SELECT * FROM UNNEST(ARRAY[1, 2]) AS t(x)")  # Athena's own
    assert unnest["Status"]["State"] == "SUCCEEDED"
    cursor = database().cursor()
    try:
        with pytest.raises(duckdb.PermissionException):
            cursor.execute("SELECT * FROM read_text(?)", [str(secret)])
        with pytest.raises(duckdb.InvalidInputException, match="locked"):
            cursor.execute("SET enable_external_access = true")
    finally:
        cursor.close()


def test_marker_and_hidden_objects_are_not_read_as_data(staged) -> None:
    world, _, names = staged
    s3 = world.client("s3")
    bucket = names["buckets"]["staged"]
    before = rows(world, query(world, names, "SELECT count(*) FROM staged_cdc"))[1][0]
    # Spark's commit marker and checksum files sit next to the data; Athena skips "_" and "."
    s3.put_object(Bucket=bucket, Key="cdc/table=sales/dt=2099-01-01/_SUCCESS", Body=b"")
    s3.put_object(Bucket=bucket, Key="cdc/table=sales/dt=2099-01-01/.part-0.crc", Body=b"x")
    execution = query(world, names, "SELECT count(*) FROM staged_cdc")
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
    assert rows(world, execution)[1][0] == before


def test_unnamed_columns_are_named_by_position_and_integer_sums_are_bigint(staged) -> None:
    world, _, names = staged
    sql = 'SELECT "table", count(*), sum(data.quantity) AS units FROM staged_cdc GROUP BY 1'
    execution = query(world, names, sql)
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
    result = world.client("athena").get_query_results(
        QueryExecutionId=execution["QueryExecutionId"]
    )
    info = result["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]
    assert [(c["Name"], c["Type"]) for c in info] == [
        ("table", "varchar"), ("_col1", "bigint"), ("units", "bigint")
    ]  # fmt: skip


def test_ctas_writes_parquet_registers_the_table_and_its_manifest(staged) -> None:
    world, _, names = staged
    bucket = names["buckets"]["athena-results"]
    location = f"s3://{bucket}/ctas/units_by_table"
    sql = (
        "CREATE TABLE units_by_table WITH (external_location = "
        f"'{location}', format = 'PARQUET', write_compression = 'SNAPPY', "
        "partitioned_by = ARRAY['table']) AS "
        'SELECT count(*) AS n, "table" FROM staged_cdc GROUP BY 2'
    )
    execution = query(world, names, sql)
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
    expected = {r[0]: int(r[1]) for r in rows(world, query(
        world, names, 'SELECT "table", count(*) FROM staged_cdc GROUP BY 1'))[1:]}  # fmt: skip
    # Athena answers a CTAS with no rows, the count in UpdateCount and a `rows` column
    answer = world.client("athena").get_query_results(
        QueryExecutionId=execution["QueryExecutionId"]
    )
    assert answer["ResultSet"]["Rows"] == [] and answer["UpdateCount"] == len(expected)
    assert [c["Name"] for c in answer["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]] == ["rows"]
    assert (execution["StatementType"], execution["SubstatementType"]) == (
        "DDL", "CREATE_TABLE_AS_SELECT")  # fmt: skip
    manifest = execution["Statistics"]["DataManifestLocation"]
    assert manifest.endswith(f"tables/{execution['QueryExecutionId']}-manifest.csv")
    m_bucket, _, m_key = manifest[5:].partition("/")
    s3 = world.client("s3")
    files = s3.get_object(Bucket=m_bucket, Key=m_key)["Body"].read().decode().split()
    assert len(files) == len(expected)
    assert all(f.startswith(f"{location}/table=") for f in files)
    glue = world.client("glue")
    table = glue.get_table(DatabaseName=names["glue_database"], Name="units_by_table")["Table"]
    assert [c["Name"] for c in table["PartitionKeys"]] == ["table"]
    assert [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]] == [
        ("n", "bigint")
    ]
    partitions = glue.get_partitions(
        DatabaseName=names["glue_database"], TableName="units_by_table"
    )
    assert sorted(p["Values"][0] for p in partitions["Partitions"]) == sorted(expected)
    # the new table reads back like any other
    again = rows(world, query(world, names, 'SELECT "table", n FROM units_by_table'))
    assert {t: int(n) for t, n in again[1:]} == expected
    # Athena never writes into a location that holds data, nor over an existing table
    repeat = query(world, names, sql)
    assert repeat["Status"]["State"] == "FAILED"
    assert "Table 'dfp.units_by_table' already exists" in repeat["Status"]["StateChangeReason"]
    elsewhere = query(world, names, sql.replace("TABLE units_by_table", "TABLE other_name"))
    assert "HIVE_PATH_ALREADY_EXISTS" in elsewhere["Status"]["StateChangeReason"]


def test_ctas_without_a_location_writes_under_the_output_tables_folder(staged) -> None:
    world, _, names = staged
    execution = query(world, names, "CREATE TABLE one_row AS SELECT 1 AS x")
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
    table = world.client("glue").get_table(DatabaseName=names["glue_database"], Name="one_row")
    location = table["Table"]["StorageDescriptor"]["Location"]
    bucket = names["buckets"]["athena-results"]
    assert location == f"s3://{bucket}/q/tables/{execution['QueryExecutionId']}/"
    refused = query(world, names, "CREATE TABLE other WITH (format = 'ORC') AS SELECT 1 AS x")
    assert refused["Status"]["State"] == "FAILED"
    assert "NOT_SUPPORTED" in refused["Status"]["StateChangeReason"]


def test_the_workgroups_output_location_is_used_when_none_is_given(staged) -> None:
    world, _, names = staged
    athena = world.client("athena")
    bucket = names["buckets"]["athena-results"]
    athena.create_work_group(Name="analysts", Configuration={
        "ResultConfiguration": {"OutputLocation": f"s3://{bucket}/analysts/"}})  # fmt: skip
    qid = athena.start_query_execution(
        QueryString="SELECT 42 AS answer",
        WorkGroup="analysts",
        QueryExecutionContext={"Database": names["glue_database"]},
    )["QueryExecutionId"]

    def done():
        state = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
        return state if state["Status"]["State"] not in ("QUEUED", "RUNNING") else None

    execution = world.wait_for(done, what=f"query {qid}", timeout=120)
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
    location = execution["ResultConfiguration"]["OutputLocation"]
    assert location == f"s3://{bucket}/analysts/{qid}.csv"
    csv = world.client("s3").get_object(Bucket=bucket, Key=f"analysts/{qid}.csv")["Body"].read()
    assert csv.decode().splitlines() == ['"answer"', '"42"']


def _awswrangler(staged, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """awswrangler and a boto3 session, with the world's variables set as ``dfp world`` exports
    them (awswrangler builds some clients of its own from the environment)."""
    import boto3

    wr = pytest.importorskip("awswrangler", reason="awswrangler is a dev dependency")
    world = staged[0]
    for name, value in world.environment().items():
        if name.startswith("AWS_") or name == "DFP_LOCAL_RUN":
            monkeypatch.setenv(name, value)
    return wr, boto3.Session(region_name=world.region)


def test_awswrangler_reads_with_its_defaults(staged, monkeypatch: pytest.MonkeyPatch) -> None:
    """awswrangler's read_sql_query as a notebook calls it: CTAS, the manifest, the Parquet
    files, the temporary table dropped; and without CTAS, the CSV results."""

    wr, session = _awswrangler(staged, monkeypatch)
    world, _, names = staged
    database = names["glue_database"]
    sql = 'SELECT "table", count(*) AS n FROM staged_cdc GROUP BY 1 ORDER BY 1'
    expected = {r[0]: int(r[1]) for r in rows(world, query(world, names, sql))[1:]}
    frame = wr.athena.read_sql_query(sql, database=database, boto3_session=session)
    assert dict(zip(frame["table"], frame["n"], strict=True)) == expected
    assert str(frame["n"].dtype) == "Int64"
    temporary = [t["Name"] for t in world.client("glue").get_tables(DatabaseName=database)[
        "TableList"] if t["Name"].startswith("temp_table_")]  # fmt: skip
    assert temporary == []  # awswrangler dropped its CTAS table
    plain = wr.athena.read_sql_query(sql, database=database, ctas_approach=False,
                                     boto3_session=session)  # fmt: skip
    assert dict(zip(plain["table"], plain["n"], strict=True)) == expected
    assert (
        repair_partitions(world.client("glue"), world.client("s3"), database) > 0
    )  # what dfp world does on loading a run
    partitions = wr.catalog.get_partitions(database=database, table="staged_cdc",
                                           boto3_session=session)  # fmt: skip
    staged = {v[0] for v in partitions.values()}
    assert staged == set(expected)  # one table= folder per staged table


def test_the_catalog_api_answers_from_glue_as_sql_clients_read_it(staged, monkeypatch) -> None:
    """ListDataCatalogs … GetTableMetadata read the Glue catalog for AwsDataCatalog, as on AWS:
    what PyAthena's SQLAlchemy dialect (JupySQL, pandas with reflection, BI tools) asks first."""
    import botocore.exceptions

    world, _, names = staged
    athena, glue = world.client("athena"), world.client("glue")
    database = names["glue_database"]
    catalogs = athena.list_data_catalogs()["DataCatalogsSummary"]
    assert {"CatalogName": "AwsDataCatalog", "Type": "GLUE"} in catalogs
    assert athena.get_data_catalog(Name="awsdatacatalog")["DataCatalog"]["Type"] == "GLUE"
    listed = athena.list_databases(CatalogName="AwsDataCatalog")["DatabaseList"]
    assert database in {d["Name"] for d in listed}
    assert athena.get_database(CatalogName="AwsDataCatalog", DatabaseName=database)[
        "Database"]["Name"] == database  # fmt: skip
    # Every Glue table, one page at a time, with Glue's columns, keys and location.
    glue_tables = {t["Name"]: t for t in glue.get_tables(DatabaseName=database)["TableList"]}
    assert len(glue_tables) >= 2
    seen, token = {}, None
    while True:
        extra = {"NextToken": token} if token else {}
        page = athena.list_table_metadata(CatalogName="AwsDataCatalog", DatabaseName=database,
                                          MaxResults=1, **extra)  # fmt: skip
        assert len(page["TableMetadataList"]) == 1
        seen |= {t["Name"]: t for t in page["TableMetadataList"]}
        token = page.get("NextToken")
        if not token:
            break
    assert set(seen) == set(glue_tables)
    staged_cdc = athena.get_table_metadata(CatalogName="AwsDataCatalog", DatabaseName=database,
                                           TableName="staged_cdc")["TableMetadata"]  # fmt: skip
    assert staged_cdc == json.loads(json.dumps(seen["staged_cdc"], default=str)) | {
        k: staged_cdc[k] for k in ("CreateTime",) if k in staged_cdc}  # fmt: skip
    glue_cdc = glue_tables["staged_cdc"]
    assert [(c["Name"], c["Type"]) for c in staged_cdc["Columns"]] == [
        (c["Name"], c["Type"]) for c in glue_cdc["StorageDescriptor"]["Columns"]]  # fmt: skip
    assert [c["Name"] for c in staged_cdc["PartitionKeys"]] == [
        c["Name"] for c in glue_cdc["PartitionKeys"]]  # fmt: skip
    assert staged_cdc["Parameters"]["location"] == glue_cdc["StorageDescriptor"]["Location"]
    filtered = athena.list_table_metadata(CatalogName="AwsDataCatalog", DatabaseName=database,
                                          Expression="staged_.*")["TableMetadataList"]  # fmt: skip
    assert [t["Name"] for t in filtered] == ["staged_cdc"]
    # What is not there is AWS's MetadataException, whose message clients parse.
    missing = ((athena.get_table_metadata, {"DatabaseName": database, "TableName": "nope"}),
               (athena.list_table_metadata, {"DatabaseName": "nope"}),
               (athena.get_database, {"DatabaseName": "nope"}))  # fmt: skip
    for call, kwargs in missing:
        with pytest.raises(athena.exceptions.MetadataException) as refused:
            call(CatalogName="AwsDataCatalog", **kwargs)
        assert "Error Code: EntityNotFoundException" in str(refused.value)
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        athena.list_table_metadata(CatalogName="AwsDataCatalog", DatabaseName=database,
                                   NextToken="not-a-token")  # fmt: skip
    assert refused.value.response["Error"]["Code"] == "InvalidRequestException"
    with pytest.raises(athena.exceptions.MetadataException, match="not emulated"):
        athena.list_table_metadata(CatalogName="federated", DatabaseName=database)

    # PyAthena's SQLAlchemy dialect reflects the tables and reads one.
    import pandas as pd
    import sqlalchemy as sa

    for name, value in world.environment().items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    output = f"s3://{names['buckets']['athena-results']}/sqlalchemy/"
    engine = sa.create_engine(f"awsathena+rest://@athena.{world.region}.amazonaws.com:443/"
                              f"{database}?s3_staging_dir={output}")  # fmt: skip
    inspector = sa.inspect(engine)
    assert set(inspector.get_table_names(schema=database)) == {
        n for n, t in glue_tables.items() if t.get("TableType") != "VIRTUAL_VIEW"}  # fmt: skip
    columns = [c["name"] for c in inspector.get_columns("staged_cdc", schema=database)]
    assert columns[: len(glue_cdc["StorageDescriptor"]["Columns"])] == [
        c["Name"] for c in glue_cdc["StorageDescriptor"]["Columns"]]  # fmt: skip
    assert not inspector.has_table("nope", schema=database)
    table = sa.Table("staged_cdc", sa.MetaData(), autoload_with=engine, schema=database)
    with engine.connect() as connection:
        frame = pd.read_sql(sa.select(table.c["table"]).limit(3), connection)
    assert len(frame) == 3


def test_integers_divide_as_integers_over_a_tables_columns(staged) -> None:
    """``sum(quantity) / count(*)`` over the catalog's int column is a whole number on Athena
    (bigint / bigint); DuckDB's ``/`` answered the fraction."""
    world, _, names = staged
    sql = ('SELECT sum(data.quantity) / count(*) AS whole, '
           "CAST(sum(data.quantity) AS double) / count(*) AS exact, "
           "data.quantity / 2 AS half FROM staged_cdc WHERE \"table\" = 'sales' "
           "GROUP BY data.quantity ORDER BY data.quantity DESC LIMIT 1")  # fmt: skip
    execution = query(world, names, sql)
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
    whole, exact, half = rows(world, execution)[1]
    assert int(whole) == int(float(exact)) and "." not in whole and "." not in half
    info = world.client("athena").get_query_results(QueryExecutionId=execution["QueryExecutionId"])
    kinds = [c["Type"] for c in info["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]]
    assert kinds[0] == "bigint" and kinds[1] == "double"


def test_columns_named_with_their_database_resolve_as_on_trino(staged) -> None:
    """``db.table.column`` and ``awsdatacatalog.db.table.column``, as SQLAlchemy writes every
    column of a table with a schema; the same rows as the short names."""
    world, _, names = staged
    db = names["glue_database"]
    short = 'SELECT "table", count(*) AS n FROM staged_cdc GROUP BY "table" ORDER BY "table"'
    full = (f'SELECT {db}.staged_cdc."table", count(*) AS n FROM awsdatacatalog.{db}.staged_cdc '
            f'WHERE awsdatacatalog.{db}.staged_cdc.event_type IS NOT NULL OR true '
            f'GROUP BY {db}.staged_cdc."table" ORDER BY 1')  # fmt: skip
    expected = rows(world, query(world, names, short))
    assert len(expected) > 2
    execution = query(world, names, full)
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
    assert rows(world, execution) == expected
    # A table given an alias is known by it alone, as on Trino.
    aliased = query(world, names, f"SELECT {db}.staged_cdc.event_type FROM {db}.staged_cdc s")
    assert aliased["Status"]["State"] == "FAILED"


def test_alter_table_changes_the_definition_and_parquet_is_read_by_name(staged) -> None:
    """ADD COLUMNS, SET TBLPROPERTIES, SET LOCATION and REPLACE COLUMNS change the Glue entry as
    Athena does; a declared column no object holds yet reads as null, as on Athena."""
    import io

    import pyarrow.parquet as pq

    world, _, names = staged
    db, bucket = names["glue_database"], names["buckets"]["athena-results"]
    s3, glue = world.client("s3"), world.client("glue")

    def put(key: str, table: pa.Table) -> None:
        sink = io.BytesIO()
        pq.write_table(table, sink)
        s3.put_object(Bucket=bucket, Key=key, Body=sink.getvalue())

    put("ddl/evolving/part-0.parquet", pa.table({"id": pa.array([1, 2], pa.int64()),
                                                 "name": ["a", "b"]}))  # fmt: skip
    created = query(world, names, "CREATE EXTERNAL TABLE evolving (id bigint, name string) "
                    f"STORED AS PARQUET LOCATION 's3://{bucket}/ddl/evolving/'")  # fmt: skip
    assert created["Status"]["State"] == "SUCCEEDED", created["Status"]

    def columns() -> list[str]:
        entry = glue.get_table(DatabaseName=db, Name="evolving")["Table"]
        return [c["Name"] for c in entry["StorageDescriptor"]["Columns"]]

    added = query(world, names, "ALTER TABLE evolving ADD COLUMNS (score double COMMENT 'new')")
    assert added["Status"]["State"] == "SUCCEEDED", added["Status"]
    assert columns() == ["id", "name", "score"]
    read = "SELECT id, score FROM evolving ORDER BY id"
    assert rows(world, query(world, names, read)) == [["id", "score"], ["1", None], ["2", None]]
    put("ddl/evolving/part-1.parquet", pa.table({"id": pa.array([3], pa.int64()),
                                                 "name": ["c"], "score": [0.5]}))  # fmt: skip
    assert rows(world, query(world, names, read))[-1] == ["3", "0.5"]

    for sql, reason in (("ALTER TABLE evolving ADD COLUMNS (ID int)", "DUPLICATE_COLUMN_NAME"),
                        ("ALTER TABLE evolving RENAME TO other", "NOT_SUPPORTED"),
                        ("ALTER TABLE nope ADD COLUMNS (x int)", "TABLE_NOT_FOUND")):  # fmt: skip
        refused = query(world, names, sql)
        assert refused["Status"]["State"] == "FAILED"
        assert reason in refused["Status"]["StateChangeReason"], sql
    assert columns() == ["id", "name", "score"]

    query(world, names, "ALTER TABLE evolving SET TBLPROPERTIES ('owner'='analytics')")
    query(world, names, f"ALTER TABLE evolving SET LOCATION 's3://{bucket}/ddl/moved/'")
    query(world, names, "ALTER TABLE evolving REPLACE COLUMNS (id bigint, label string)")
    entry = glue.get_table(DatabaseName=db, Name="evolving")["Table"]
    assert entry["Parameters"]["owner"] == "analytics"
    assert entry["Parameters"]["EXTERNAL"] == "TRUE"  # kept
    assert entry["StorageDescriptor"]["Location"] == f"s3://{bucket}/ddl/moved/"
    assert columns() == ["id", "label"]


def test_msck_repair_table_registers_the_partitions_found_in_s3(staged) -> None:
    world, summary, names = staged
    glue = world.client("glue")
    database = names["glue_database"]
    for partition in glue.get_partitions(DatabaseName=database, TableName="staged_cdc")[
        "Partitions"
    ]:
        glue.delete_partition(DatabaseName=database, TableName="staged_cdc",
                              PartitionValues=partition["Values"])  # fmt: skip
    execution = query(world, names, "MSCK REPAIR TABLE staged_cdc")
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
    partitions = glue.get_partitions(DatabaseName=database, TableName="staged_cdc")["Partitions"]
    assert {p["Values"][0] for p in partitions} == set(summary["staging"]["rows"])
    assert all(p["StorageDescriptor"]["Location"].endswith(f"dt={p['Values'][1]}/")
               for p in partitions)  # fmt: skip
    missing = query(world, names, "MSCK REPAIR TABLE no_such_table")
    assert "TABLE_NOT_FOUND" in missing["Status"]["StateChangeReason"]


def utility(world: World, names: dict, sql: str) -> tuple[dict, list[list[str]], list[str]]:
    """A DDL/utility statement: its execution, its rows split on tabs, its column names."""
    execution = query(world, names, sql)
    assert execution["Status"]["State"] == "SUCCEEDED", (sql, execution["Status"])
    result = world.client("athena").get_query_results(
        QueryExecutionId=execution["QueryExecutionId"]
    )
    lines = [r["Data"][0]["VarCharValue"].split("\t") for r in result["ResultSet"]["Rows"]]
    columns = [c["Name"] for c in result["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]]
    return execution, lines, columns


def test_show_and_describe_answer_from_the_catalog_without_a_header_row(staged) -> None:
    world, _, names = staged
    database = names["glue_database"]
    glue = world.client("glue")
    catalog = sorted(t["Name"] for t in glue.get_tables(DatabaseName=database)["TableList"])
    execution, lines, columns = utility(world, names, "SHOW TABLES")
    assert columns == ["tab_name"] and sorted(line[0] for line in lines) == catalog
    assert (execution["StatementType"], execution["SubstatementType"]) == ("UTILITY", "SHOW_TABLES")
    assert execution["ResultConfiguration"]["OutputLocation"].endswith(".txt")
    _, lines, _ = utility(world, names, f"SHOW TABLES IN {database} 'staged*'")
    assert [line[0] for line in lines] == [t for t in catalog if t.startswith("staged")]
    _, lines, _ = utility(world, names, "SHOW DATABASES")
    assert [database] in lines
    staged_table = glue.get_table(DatabaseName=database, Name="staged_cdc")["Table"]
    described = staged_table["StorageDescriptor"]["Columns"] + staged_table["PartitionKeys"]
    _, lines, columns = utility(world, names, "DESCRIBE staged_cdc")
    assert columns == ["col_name", "data_type", "comment"]
    listed = [(line[0].strip(), line[1].strip()) for line in lines if line[0].strip()]
    keys = [k["Name"] for k in staged_table["PartitionKeys"]]
    assert listed[: len(described)] == [(c["Name"], c["Type"]) for c in described]
    assert ("# Partition Information", "") in listed and listed[-len(keys) :] == [
        (k["Name"], k["Type"]) for k in staged_table["PartitionKeys"]]  # fmt: skip
    _, lines, _ = utility(world, names, "SHOW COLUMNS IN staged_cdc")
    assert [line[0] for line in lines] == [c["Name"] for c in described]
    _, lines, columns = utility(world, names, "SHOW CREATE TABLE staged_cdc")
    ddl = "\n".join(line[0] for line in lines)
    assert columns == ["createtab_stmt"] and ddl.startswith(
        f"CREATE EXTERNAL TABLE `{database}`.`staged_cdc`(")  # fmt: skip
    assert staged_table["StorageDescriptor"]["Location"] in ddl and "PARTITIONED BY" in ddl
    _, lines, _ = utility(world, names, "SHOW TBLPROPERTIES staged_cdc")
    assert ["EXTERNAL", "TRUE"] in lines
    missing = query(world, names, "DESCRIBE no_such_table")
    assert "TABLE_NOT_FOUND" in missing["Status"]["StateChangeReason"]


def test_partitions_are_added_dropped_and_shown(staged) -> None:
    world, _, names = staged
    database = names["glue_database"]
    glue = world.client("glue")
    before = {tuple(p["Values"]) for p in glue.get_partitions(
        DatabaseName=database, TableName="staged_cdc")["Partitions"]}  # fmt: skip
    keys = [k["Name"] for k in glue.get_table(DatabaseName=database, Name="staged_cdc")["Table"][
        "PartitionKeys"]]  # fmt: skip
    spec = ", ".join(f"{k} = 'x{n}'" for n, k in enumerate(keys))
    utility(world, names, f"ALTER TABLE staged_cdc ADD PARTITION ({spec})")
    new = tuple(f"x{n}" for n in range(len(keys)))
    after = {tuple(p["Values"]) for p in glue.get_partitions(
        DatabaseName=database, TableName="staged_cdc")["Partitions"]}  # fmt: skip
    assert after == before | {new}
    again = query(world, names, f"ALTER TABLE staged_cdc ADD PARTITION ({spec})")
    assert "ALREADY_EXISTS" in again["Status"]["StateChangeReason"]
    utility(world, names, f"ALTER TABLE staged_cdc ADD IF NOT EXISTS PARTITION ({spec})")
    _, lines, columns = utility(world, names, "SHOW PARTITIONS staged_cdc")
    shown = "/".join(f"{k}={v}" for k, v in zip(keys, new, strict=True))
    assert columns == ["partition"] and [shown] in lines and len(lines) == len(after)
    utility(world, names, f"ALTER TABLE staged_cdc DROP PARTITION ({spec})")
    final = {tuple(p["Values"]) for p in glue.get_partitions(
        DatabaseName=database, TableName="staged_cdc")["Partitions"]}  # fmt: skip
    assert final == before
    wrong = query(world, names, "ALTER TABLE staged_cdc ADD PARTITION (nope = 'a')")
    assert "INVALID_PARTITION_SPEC" in wrong["Status"]["StateChangeReason"]
    other = query(world, names, "ALTER TABLE staged_cdc RENAME TO staged_other")
    assert "NOT_SUPPORTED" in other["Status"]["StateChangeReason"]


def test_views_are_kept_in_the_catalog_and_queried_like_tables(staged) -> None:
    world, summary, names = staged
    database = names["glue_database"]
    sql = 'CREATE VIEW per_table AS SELECT "table", count(*) AS n FROM staged_cdc GROUP BY 1'
    execution, _, _ = utility(world, names, sql)
    assert execution["SubstatementType"] == "CREATE_VIEW"
    view = world.client("glue").get_table(DatabaseName=database, Name="per_table")["Table"]
    assert view["TableType"] == "VIRTUAL_VIEW"
    assert view["ViewOriginalText"].startswith("/* Presto View: ")
    assert [(c["Name"], c["Type"]) for c in view["StorageDescriptor"]["Columns"]] == [
        ("table", "string"), ("n", "bigint")]  # fmt: skip
    got = rows(world, query(world, names, "SELECT * FROM per_table ORDER BY 1"))
    assert {t: int(n) for t, n in got[1:]} == summary["staging"]["rows"]
    # a view over a view, named with the catalog
    utility(world, names, "CREATE VIEW top AS SELECT max(n) AS most "
            f"FROM awsdatacatalog.{database}.per_table")  # fmt: skip
    most = rows(world, query(world, names, "SELECT most FROM top"))[1][0]
    assert int(most) == max(summary["staging"]["rows"].values())
    twice = query(world, names, sql)
    assert "ALREADY_EXISTS" in twice["Status"]["StateChangeReason"]
    replaced = sql.replace("CREATE VIEW", "CREATE OR REPLACE VIEW")
    utility(world, names, replaced.replace("count(*)", "count(*) + 1"))
    got = rows(world, query(world, names, "SELECT * FROM per_table ORDER BY 1"))
    assert {t: int(n) - 1 for t, n in got[1:]} == summary["staging"]["rows"]
    _, lines, _ = utility(world, names, "SHOW VIEWS")
    assert sorted(line[0] for line in lines) == ["per_table", "top"]
    _, lines, _ = utility(world, names, "SHOW CREATE VIEW per_table")
    assert "count(*) + 1" in "\n".join(line[0] for line in lines)
    utility(world, names, "DROP VIEW top")
    utility(world, names, "DROP VIEW per_table")
    utility(world, names, "DROP VIEW IF EXISTS per_table")
    gone = query(world, names, "SELECT * FROM per_table")
    assert "TABLE_NOT_FOUND" in gone["Status"]["StateChangeReason"]


def test_information_schema_lists_the_catalog(staged) -> None:
    world, _, names = staged
    database = names["glue_database"]
    glue = world.client("glue")
    staged_table = glue.get_table(DatabaseName=database, Name="staged_cdc")["Table"]
    sql = ("SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = "
           f"'{database}' AND table_name = 'staged_cdc' ORDER BY ordinal_position")  # fmt: skip
    got = rows(world, query(world, names, sql))[1:]
    listed = staged_table["StorageDescriptor"]["Columns"] + staged_table["PartitionKeys"]
    assert [r[0] for r in got] == [c["Name"] for c in listed]
    assert all(not t.startswith(("string", "struct<")) for _, t in got)  # the engine's names
    tables = rows(world, query(world, names, "SELECT table_name FROM information_schema.tables "
                               f"WHERE table_schema = '{database}'"))[1:]  # fmt: skip
    catalog = {t["Name"] for t in glue.get_tables(DatabaseName=database)["TableList"]}
    assert {r[0] for r in tables} == catalog


def test_insert_into_appends_typed_rows_and_registers_new_partitions(staged) -> None:
    world, _, names = staged
    database = names["glue_database"]
    bucket = names["buckets"]["athena-results"]
    utility(world, names, (
        f"CREATE TABLE counts WITH (external_location = 's3://{bucket}/ins/counts', "
        "partitioned_by = ARRAY['day']) AS "
        "SELECT 'a' AS item, 1 AS units, '2024-01-01' AS day"))  # fmt: skip
    execution = query(world, names, "INSERT INTO counts VALUES ('b', 2, '2024-01-02'), "
                      "('c', 3, '2024-01-01')")  # fmt: skip
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
    assert (execution["StatementType"], execution["SubstatementType"]) == ("DML", "INSERT")
    result = world.client("athena").get_query_results(
        QueryExecutionId=execution["QueryExecutionId"]
    )
    assert result["UpdateCount"] == 2 and result["ResultSet"]["Rows"] == []
    query(world, names, "INSERT INTO counts (item, day) SELECT 'd', '2024-01-03'")
    got = rows(world, query(world, names, "SELECT item, units, day FROM counts ORDER BY 1"))
    assert got[1:] == [["a", "1", "2024-01-01"], ["b", "2", "2024-01-02"],
                       ["c", "3", "2024-01-01"], ["d", None, "2024-01-03"]]  # fmt: skip
    partitions = world.client("glue").get_partitions(DatabaseName=database, TableName="counts")
    assert sorted(p["Values"][0] for p in partitions["Partitions"]) == [
        "2024-01-01", "2024-01-02", "2024-01-03"]  # fmt: skip
    wrong = query(world, names, "INSERT INTO counts VALUES ('e', 'many', '2024-01-01')")
    assert "TYPE_MISMATCH" in wrong["Status"]["StateChangeReason"]
    too_many = query(world, names, "INSERT INTO counts VALUES ('e', 1, '2024-01-01', 9)")
    assert "TYPE_MISMATCH" in too_many["Status"]["StateChangeReason"]


def test_unload_writes_the_result_and_its_manifest(staged) -> None:
    world, summary, names = staged
    bucket = names["buckets"]["athena-results"]
    target = f"s3://{bucket}/unload/per_table"
    sql = (f"UNLOAD (SELECT count(*) AS n, \"table\" FROM staged_cdc GROUP BY 2) TO '{target}' "
           "WITH (format = 'PARQUET', compression = 'SNAPPY', "
           "partitioned_by = ARRAY['table'])")  # fmt: skip
    execution = query(world, names, sql)
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
    assert execution["SubstatementType"] == "UNLOAD"
    manifest = execution["Statistics"]["DataManifestLocation"]
    m_bucket, _, m_key = manifest[5:].partition("/")
    s3 = world.client("s3")
    files = s3.get_object(Bucket=m_bucket, Key=m_key)["Body"].read().decode().split()
    folders = sorted(f.split("/")[-2] for f in files)
    assert folders == sorted(f"table={t}" for t in summary["staging"]["rows"])
    import io

    import pyarrow.parquet as pq

    counts = {}
    for uri in files:
        key = uri[len(f"s3://{bucket}/") :]
        table = pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
        counts[uri.split("/")[-2].split("=")[1]] = table.column("n")[0].as_py()
    assert counts == summary["staging"]["rows"]
    again = query(world, names, sql)
    assert "HIVE_PATH_ALREADY_EXISTS" in again["Status"]["StateChangeReason"]
    text = query(world, names, "UNLOAD (SELECT 1 AS a, 'x' AS b, CAST(NULL AS integer) AS c, "
                 f"true AS d) TO 's3://{bucket}/unload/t' "
                 "WITH (format = 'TEXTFILE', field_delimiter = ',', "
                 "compression = 'NONE')")  # fmt: skip
    assert text["Status"]["State"] == "SUCCEEDED", text["Status"]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="unload/t/")["Contents"]
    body = s3.get_object(Bucket=bucket, Key=listed[0]["Key"])["Body"].read()
    assert body == b"1,x,\\N,true\n"  # Hive's text: unquoted, \N for null


def test_executions_are_listed_batch_described_and_stopped(staged) -> None:
    world, _, names = staged
    athena = world.client("athena")
    first = query(world, names, "SELECT count(*) FROM staged_cdc")
    assert first["Statistics"]["DataScannedInBytes"] > 0
    assert first["Statistics"]["TotalExecutionTimeInMillis"] >= first["Statistics"][
        "EngineExecutionTimeInMillis"]  # fmt: skip
    second = query(world, names, "SELECT 1")
    listed = athena.list_query_executions(MaxResults=1)  # the latest first, a page at a time
    assert listed["QueryExecutionIds"] == [second["QueryExecutionId"]]
    following = athena.list_query_executions(MaxResults=1, NextToken=listed["NextToken"])
    assert following["QueryExecutionIds"] == [first["QueryExecutionId"]]
    batch = athena.batch_get_query_execution(
        QueryExecutionIds=[first["QueryExecutionId"], "no-such-id"]
    )
    assert [e["QueryExecutionId"] for e in batch["QueryExecutions"]] == [first["QueryExecutionId"]]
    assert batch["QueryExecutions"][0]["Statistics"] == first["Statistics"]
    assert batch["UnprocessedQueryExecutionIds"][0]["QueryExecutionId"] == "no-such-id"
    with pytest.raises(athena.exceptions.InvalidRequestException):
        athena.get_query_execution(QueryExecutionId="no-such-id")
    for made_up in ("abc", "-5"):  # a token this server never gave
        with pytest.raises(athena.exceptions.InvalidRequestException):
            athena.list_query_executions(NextToken=made_up)
        with pytest.raises(athena.exceptions.InvalidRequestException):
            athena.get_query_results(QueryExecutionId=second["QueryExecutionId"], NextToken=made_up)
    slow = athena.start_query_execution(
        # 10^12 rows, in Athena's own SQL (sequence gives at most 10,000 values)
        QueryString="SELECT count(*) FROM UNNEST(sequence(1, 10000)) a(x), "
        "UNNEST(sequence(1, 10000)) b(y), UNNEST(sequence(1, 10000)) c(z)",
        QueryExecutionContext={"Database": names["glue_database"]},
        ResultConfiguration={"OutputLocation": f"s3://{names['buckets']['athena-results']}/q/"},
    )["QueryExecutionId"]
    athena.stop_query_execution(QueryExecutionId=slow)

    def ended():
        state = athena.get_query_execution(QueryExecutionId=slow)["QueryExecution"]["Status"]
        return state if state["State"] not in ("QUEUED", "RUNNING") else None

    assert world.wait_for(ended, what="the stopped query", timeout=60)["State"] == "CANCELLED"


def test_awswrangler_describes_unloads_and_uses_its_cache(staged, monkeypatch) -> None:

    wr, session = _awswrangler(staged, monkeypatch)
    world, summary, names = staged
    database = names["glue_database"]
    output = f"s3://{names['buckets']['athena-results']}/wr/"
    described = wr.athena.describe_table(table="staged_cdc", database=database,
                                         s3_output=output, boto3_session=session)  # fmt: skip
    glue = world.client("glue").get_table(DatabaseName=database, Name="staged_cdc")["Table"]
    keys = {k["Name"] for k in glue["PartitionKeys"]}
    assert set(described.loc[described["Partition"], "Column Name"]) == keys
    assert len(described) == len(glue["StorageDescriptor"]["Columns"]) + len(keys)
    ddl = wr.athena.show_create_table(table="staged_cdc", database=database, s3_output=output,
                                      boto3_session=session)  # fmt: skip
    assert "CREATE EXTERNAL TABLE" in ddl and "staged_cdc" in ddl
    sql = 'SELECT "table", count(*) AS n FROM staged_cdc GROUP BY 1'
    unloaded = wr.athena.read_sql_query(sql, database=database, ctas_approach=False,
                                        unload_approach=True, s3_output=f"{output}unload/",
                                        boto3_session=session)  # fmt: skip
    assert dict(zip(unloaded["table"], unloaded["n"], strict=True)) == summary["staging"]["rows"]
    cached = wr.athena.read_sql_query(sql, database=database, ctas_approach=False,
                                      athena_cache_settings={"max_cache_seconds": 900},
                                      s3_output=output, boto3_session=session)  # fmt: skip
    assert dict(zip(cached["table"], cached["n"], strict=True)) == summary["staging"]["rows"]


def test_explain_answers_the_plan_and_hive_ddl_is_refused_naming_the_way(staged) -> None:
    world, _, names = staged
    explained = query(world, names, "EXPLAIN SELECT count(*) FROM staged_cdc")
    assert explained["Status"]["State"] == "SUCCEEDED", explained["Status"]
    header, *plan = rows(world, explained)
    assert header == ["Query Plan"] and plan
    for ddl, reason in (
        ("CREATE TABLE t (a int)", "Iceberg"),
        ("CREATE TABLE IF NOT EXISTS t (a int) LOCATION 's3://b/t/' "
         "TBLPROPERTIES ('table_type'='ICEBERG')", "Iceberg"),  # awswrangler's to_iceberg
        ("CREATE EXTERNAL TABLE t (a int) STORED AS ORC LOCATION 's3://b/t/'", "ORC"),
        ("CREATE EXTERNAL TABLE t (a int) ROW FORMAT SERDE "
         "'org.apache.hadoop.hive.serde2.RegexSerDe' LOCATION 's3://b/t/'", "RegexSerDe"),
        ("CREATE EXTERNAL TABLE t (a int) ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' "
         "STORED AS PARQUET LOCATION 's3://b/t/'", "LazySimpleSerDe"),
        ("CREATE EXTERNAL TABLE t (a array<int>) ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' "
         "LOCATION 's3://b/t/'", "nested columns"),
        ("CREATE EXTERNAL TABLE t (a int) STORED AS PARQUET", "LOCATION"),
        ("CREATE EXTERNAL TABLE t (a int, a string) STORED AS PARQUET LOCATION 's3://b/t/'",
         "DUPLICATE_COLUMN_NAME"),
        ("CREATE EXTERNAL TABLE t (a int) PARTITIONED BY (a string) STORED AS PARQUET "
         "LOCATION 's3://b/t/'", "also table columns"),
    ):  # fmt: skip
        refused = query(world, names, ddl)
        assert refused["Status"]["State"] == "FAILED"
        assert reason in refused["Status"]["StateChangeReason"], ddl
    assert world.client("glue").get_tables(DatabaseName=names["glue_database"],
                                           Expression="t")["TableList"] == []  # fmt: skip


def test_create_external_table_registers_a_parquet_table_as_athena_does(staged, monkeypatch):
    """Hive DDL as people write it and as pandas' to_sql through PyAthena sends it: the table
    is in Glue with Hive's types, its partitions are added, and queries read it."""
    import io

    import pandas as pd
    import pyarrow.parquet as pq
    import sqlalchemy as sa

    world, _, names = staged
    db, bucket = names["glue_database"], names["buckets"]["athena-results"]
    s3, glue = world.client("s3"), world.client("glue")
    table = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "name": ["a", "b", "c"]})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    s3.put_object(Bucket=bucket, Key="ddl/people/part-0.parquet", Body=sink.getvalue())
    ddl = (
        f"CREATE EXTERNAL TABLE IF NOT EXISTS `{db}`.`people` (`id` bigint COMMENT 'key', "
        "`name` string, `tags` array<struct<k:string,v:int>>, `price` decimal(10,2)) "
        "COMMENT 'hand-written' STORED AS PARQUET "
        f"LOCATION 's3://{bucket}/ddl/people/' TBLPROPERTIES ('parquet.compression'='SNAPPY')"
    )
    for _ in range(2):  # IF NOT EXISTS: the second is a no-op
        created = query(world, names, ddl)
        assert created["Status"]["State"] == "SUCCEEDED", created["Status"]
        assert created["StatementType"] == "DDL"
    entry = glue.get_table(DatabaseName=db, Name="people")["Table"]
    assert [(c["Name"], c["Type"]) for c in entry["StorageDescriptor"]["Columns"]] == [
        ("id", "bigint"), ("name", "string"), ("tags", "array<struct<k:string,v:int>>"),
        ("price", "decimal(10,2)")]  # fmt: skip
    assert entry["StorageDescriptor"]["Columns"][0]["Comment"] == "key"
    assert entry["Description"] == "hand-written"
    assert entry["Parameters"]["parquet.compression"] == "SNAPPY"
    assert entry["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"].endswith(
        "ParquetHiveSerDe")  # fmt: skip
    again = query(world, names, ddl.replace(" IF NOT EXISTS", ""))
    assert "ALREADY_EXISTS" in again["Status"]["StateChangeReason"]
    read = query(world, names, f"SELECT id, name FROM {db}.people ORDER BY id")
    assert rows(world, read) == [["id", "name"], ["1", "a"], ["2", "b"], ["3", "c"]]

    # pandas' to_sql through PyAthena: its DDL, its uploads, its partitions.
    from pyathena.pandas.util import to_sql

    for name, value in world.environment().items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    engine = sa.create_engine(f"awsathena+rest://@athena.{world.region}.amazonaws.com:443/"
                              f"{db}?s3_staging_dir=s3://{bucket}/sqlalchemy/")  # fmt: skip
    frame = pd.DataFrame({"store": ["s1", "s1", "s2"], "units": [3, 4, 5],
                          "day": ["2024-01-01", "2024-01-02", "2024-01-01"]})  # fmt: skip
    with engine.connect() as connection:
        to_sql(frame, "sold", connection.connection.driver_connection,
               location=f"s3://{bucket}/ddl/sold/", schema=db, partitions=["day"],
               if_exists="fail")  # fmt: skip
    sold = glue.get_table(DatabaseName=db, Name="sold")["Table"]
    assert [k["Name"] for k in sold["PartitionKeys"]] == ["day"]
    assert len(glue.get_partitions(DatabaseName=db, TableName="sold")["Partitions"]) == 2
    summed = query(
        world, names, f"SELECT day, sum(units) AS u FROM {db}.sold GROUP BY 1 ORDER BY 1"
    )
    assert rows(world, summed) == [["day", "u"], ["2024-01-01", "8"], ["2024-01-02", "4"]]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT format_datetime(TIMESTAMP '2024-01-02 03:04:05.123', "
         "'yyyy-MM-dd''T''HH:mm:ss.SSS') AS v", [{"v": "2024-01-02T03:04:05.123"}]),
        ("SELECT a, b FROM UNNEST(ARRAY[1, 2], ARRAY['x', 'y', 'z']) AS t(a, b)",
         [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}, {"a": None, "b": "z"}]),
        ("SELECT json_extract_scalar('{\"a\": {\"b\": 3}}', '$.a.b') AS v", [{"v": "3"}]),
        ("SELECT regexp_extract('abc123', '[0-9]+') AS v", [{"v": "123"}]),
        ("SELECT approx_distinct(x) AS v FROM UNNEST(ARRAY[1, 2, 2]) AS t(x)", [{"v": 2}]),
        ("SELECT date_diff('day', DATE '2024-01-01', DATE '2024-02-01') AS v", [{"v": 31}]),
        # Trino's semantics where DuckDB's differ (each answered otherwise before):
        ("SELECT 7 / 2 AS a, -7 / 2 AS b, 7e0 / 2 AS c", [{"a": 3, "b": -3, "c": 3.5}]),
        ("SELECT date_diff('month', DATE '2024-01-31', DATE '2024-03-01') AS v", [{"v": 1}]),
        ("SELECT date_add('month', 1, DATE '2024-01-31') AS a, DATE '2024-01-01' + "
         "INTERVAL '1' DAY AS b, date_trunc('month', DATE '2024-03-05') AS c",
         [{"a": dt.date(2024, 2, 29), "b": dt.date(2024, 1, 2), "c": dt.date(2024, 3, 1)}]),
        ("SELECT sequence(DATE '2024-01-30', DATE '2024-02-01', INTERVAL '1' DAY) AS v",
         [{"v": [dt.date(2024, 1, 30), dt.date(2024, 1, 31), dt.date(2024, 2, 1)]}]),
        ("SELECT slice(ARRAY[1, 2, 3, 4], 2, 2) AS a, slice(ARRAY[1, 2, 3, 4], -2, 2) AS b",
         [{"a": [2, 3], "b": [3, 4]}]),
        ("SELECT format('%s-%d', 'a', 3) AS v", [{"v": "a-3"}]),
        # Trino functions DuckDB lacks (FUNCTION_NOT_FOUND before):
        ("SELECT width_bucket(5.5e0, 0e0, 10e0, 4) AS a, width_bucket(-1, 0, 10, 4) AS b, "
         "url_extract_host('https://u@Shop.example:8080/a?b=1') AS c, codepoint('A') AS d, "
         "is_nan(nan()) AS e, parse_datetime('2024-01-02 03:04', 'yyyy-MM-dd HH:mm') AS f",
         [{"a": 3, "b": 0, "c": "Shop.example", "d": 65, "e": True,
           "f": dt.datetime(2024, 1, 2, 3, 4)}]),
        ("SELECT any_match(ARRAY[1, 2], x -> x > 1) AS a, all_match(ARRAY[1, 2], x -> x > 1) "
         "AS b, none_match(ARRAY[1, 2], x -> x > 5) AS c", [{"a": True, "b": False, "c": True}]),
        ("SELECT element_at(map_agg(k, v), 'b') AS v FROM (VALUES ('a', 1), ('b', 2)) AS t(k, v)",
         [{"v": 2}]),
        ("SELECT approx_percentile(x, ARRAY[0.5, 0.9]) AS v FROM (VALUES 1e0, 2e0, 3e0) AS t(x)",
         [{"v": [2.0, 3.0]}]),
    ],
)  # fmt: skip
def test_trino_functions_analysts_use_answer_as_on_athena(sql: str, expected: list) -> None:
    from emulation.athena.engine import parse, select

    assert select(parse(sql), None, None, None).rows.to_pylist() == expected


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT format_datetime(TIMESTAMP '2024-01-02 03:04:05', 'G yyyy') AS v",  # an era
        "SELECT no_such_function(1) AS v",
    ],
)
def test_a_function_without_an_equivalent_fails_naming_it(sql: str) -> None:
    from emulation.athena import QueryFailed
    from emulation.athena.engine import parse, select

    with pytest.raises(QueryFailed) as failed:
        select(parse(sql), None, None, None)
    assert failed.value.error_type == "FUNCTION_NOT_FOUND"
    assert sql.split("(")[0].split()[-1] in failed.value.message


def test_awswrangler_writes_a_table_and_reads_it_with_params_and_chunks(
    staged, monkeypatch
) -> None:
    import pandas as pd

    wr, session = _awswrangler(staged, monkeypatch)
    names = staged[2]
    database = names["glue_database"]
    bucket = names["buckets"]["athena-results"]
    days = ["2024-01-01", "2024-01-01", "2024-01-02", "2024-01-02"]
    frame = pd.DataFrame({"item": ["a", "b", "c", "d"], "units": [1, 2, 3, 4], "day": days})
    wr.s3.to_parquet(frame, path=f"s3://{bucket}/wr/mine/", dataset=True, database=database,
                     table="mine", partition_cols=["day"], boto3_session=session)  # fmt: skip
    back = wr.athena.read_sql_query("SELECT item, units, day FROM mine ORDER BY item",
                                    database=database, boto3_session=session)  # fmt: skip
    assert back.astype(str).values.tolist() == frame.astype(str).values.tolist()
    named = wr.athena.read_sql_query("SELECT sum(units) AS n FROM mine WHERE day = :day",
                                     database=database, params={"day": "2024-01-02"},
                                     boto3_session=session)  # fmt: skip
    assert named["n"].tolist() == [7]
    qmark = wr.athena.read_sql_query("SELECT sum(units) AS n FROM mine WHERE day = ?",
                                     database=database, params=["'2024-01-01'"],
                                     paramstyle="qmark", ctas_approach=False,
                                     boto3_session=session)  # fmt: skip
    assert qmark["n"].tolist() == [3]
    chunks = wr.athena.read_sql_query("SELECT item FROM mine ORDER BY item", database=database,
                                      chunksize=2, boto3_session=session)  # fmt: skip
    assert [c["item"].tolist() for c in chunks] == [["a", "b"], ["c", "d"]]


def _put(world: World, bucket: str, key: str, body: bytes | str) -> None:
    world.client("s3").put_object(
        Bucket=bucket, Key=key, Body=body.encode() if isinstance(body, str) else body
    )


def _created(world: World, names: dict, *statements: str) -> None:
    for statement in statements:
        made = query(world, names, statement)
        assert made["Status"]["State"] == "SUCCEEDED", (made["Status"], statement)


def test_text_tables_are_read_with_their_serde_as_athena_reads_them(staged) -> None:
    """Delimited text, OpenCSV and JSON lines, registered by Hive DDL as Glue tutorials and
    crawlers have them: each read with its SerDe's rules for nulls, bad values, quotes, case,
    headers, compression and line ends; what Athena fails on fails naming object, line, column."""
    import gzip

    world, _, names = staged
    db, bucket = names["glue_database"], names["buckets"]["athena-results"]
    glue = world.client("glue")

    # LazySimpleSerDe: no quoting, \N is null, a bad number reads as null, a missing trailing
    # field is null and an extra one ignored, CRLF and CR end lines, the header is skipped in
    # every object, a .gz object is decompressed; partitions from their folders.
    ddl = (
        f"CREATE EXTERNAL TABLE {db}.sold_csv (item string, units int, price double, "
        "day date, ok boolean) PARTITIONED BY (store string) ROW FORMAT DELIMITED "
        "FIELDS TERMINATED BY ',' STORED AS TEXTFILE "
        f"LOCATION 's3://{bucket}/text/sold/' TBLPROPERTIES ('skip.header.line.count'='1')"
    )
    assert query(world, names, ddl)["Status"]["State"] == "SUCCEEDED"
    entry = glue.get_table(DatabaseName=db, Name="sold_csv")["Table"]
    assert entry["StorageDescriptor"]["SerdeInfo"] == {
        "SerializationLibrary": "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
        "Parameters": {"field.delim": ",", "serialization.format": ","},
    }
    assert entry["StorageDescriptor"]["InputFormat"] == "org.apache.hadoop.mapred.TextInputFormat"
    assert entry["Parameters"]["classification"] == "csv"
    _put(
        world,
        bucket,
        "text/sold/store=s1/a.csv",
        'item,units,price,day,ok\r\n"a",3,1.5,2024-01-01,true\r\nb,x,\\N,2024-01-02,TRUE\r\n'
        "c,,2.0,not a day,maybe,extra\r\nd,7\r\n",
    )
    _put(
        world,
        bucket,
        "text/sold/store=s2/b.csv.gz",
        gzip.compress(b"item,units,price,day,ok\re,5,0.25,2024-02-29,false\r"),
    )
    query(world, names, f"MSCK REPAIR TABLE {db}.sold_csv")
    read = query(
        world, names, "SELECT item, units, price, day, ok, store FROM sold_csv ORDER BY item"
    )
    assert read["Status"]["State"] == "SUCCEEDED", read["Status"]
    assert rows(world, read)[1:] == [
        ['"a"', "3", "1.5", "2024-01-01", "true", "s1"],
        ["b", None, None, "2024-01-02", "true", "s1"],
        ["c", None, "2.0", None, None, "s1"],
        ["d", "7", None, None, None, "s1"],
        ["e", "5", "0.25", "2024-02-29", "false", "s2"],
    ]
    info = world.client("athena").get_query_results(QueryExecutionId=read["QueryExecutionId"])
    assert [c["Type"] for c in info["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]] == [
        "varchar",
        "integer",
        "double",
        "date",
        "boolean",
        "varchar",
    ]

    # No STORED AS and no ROW FORMAT: Hive's text table, fields split on Ctrl-A.
    query(
        world,
        names,
        f"CREATE EXTERNAL TABLE {db}.plain (a string, b bigint) "
        f"LOCATION 's3://{bucket}/text/plain/'",
    )
    _put(world, bucket, "text/plain/x", "one\x011\ntwo\x012\n")
    plain = query(world, names, "SELECT a, b * 10 AS b FROM plain ORDER BY a")
    assert rows(world, plain)[1:] == [["one", "10"], ["two", "20"]]

    # OpenCSVSerde: quotes and escapes; a value that is not of its column's type fails naming
    # the object, line, column and value, unless use.null.for.invalid.data is true.
    opencsv = (
        f"CREATE EXTERNAL TABLE {db}.{{name}} (name string, n bigint, d date) "
        "ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.OpenCSVSerde' "
        "WITH SERDEPROPERTIES ('separatorChar'=',', 'quoteChar'='\"') "
        f"LOCATION 's3://{bucket}/text/quoted/' {{props}}"
    )
    lenient_csv = "TBLPROPERTIES ('use.null.for.invalid.data'='true')"
    _created(world, names, opencsv.format(name="quoted", props=""),
             opencsv.format(name="quoted_lenient", props=lenient_csv))  # fmt: skip
    body = '"Smith, J.",12,2024-03-01\n"say ""hi""",19800,19800\nbroken,,2024-03-02\n'
    _put(world, bucket, "text/quoted/q.csv", body)
    failed = query(world, names, "SELECT * FROM quoted")
    assert failed["Status"]["State"] == "FAILED"
    reason = failed["Status"]["StateChangeReason"]
    assert "HIVE_BAD_DATA" in reason and "q.csv line 3" in reason and "'n'" in reason, reason
    lenient = query(world, names, "SELECT name, n, d FROM quoted_lenient ORDER BY n")
    assert rows(world, lenient)[1:] == [
        ["Smith, J.", "12", "2024-03-01"],
        ['say "hi"', "19800", "2024-03-18"],
        ["broken", None, "2024-03-02"],
    ]

    # JSON lines (OpenX's SerDe): keys in any case, a mapping, nested columns; a line that is
    # no JSON object fails unless ignore.malformed.json is true.
    json_ddl = (
        f"CREATE EXTERNAL TABLE {db}.{{name}} (id bigint, kind string, "
        "info struct<city:string,zip:int>, tags array<string>) "
        "ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe' "
        "WITH SERDEPROPERTIES ('mapping.kind'='Type'{extra}) "
        f"LOCATION 's3://{bucket}/text/events/'"
    )
    lenient_json = ", 'ignore.malformed.json'='true'"
    _created(world, names, json_ddl.format(name="events", extra=""),
             json_ddl.format(name="events_lenient", extra=lenient_json))  # fmt: skip
    _put(
        world,
        bucket,
        "text/events/e.json",
        '{"ID": 1, "TYPE": "click", "Info": {"City": "Oslo", "zip": 150}, "tags": ["a"]}\n'
        '{"id": "2", "type": 7, "extra": true}\n\n'
        "not json\n",
    )
    broken = query(world, names, "SELECT * FROM events")
    assert "HIVE_CURSOR_ERROR" in broken["Status"]["StateChangeReason"]
    assert "e.json line 4" in broken["Status"]["StateChangeReason"]
    events = query(
        world,
        names,
        "SELECT id, kind, info.city, info.zip, cardinality(tags) AS n "
        "FROM events_lenient ORDER BY id",
    )
    assert rows(world, events)[1:] == [
        ["1", "click", "Oslo", "150", "1"],
        ["2", "7", None, None, None],
        [None, None, None, None, None],
    ]
    assert not [
        t for t in glue.get_tables(DatabaseName=db)["TableList"] if t["Name"] in ("t",)
    ]  # nothing refused reached Glue


def test_awswranglers_csv_and_json_tables_and_text_ctas_read_back(staged, monkeypatch) -> None:
    """What awswrangler's to_csv and to_json register, and what the world's own CTAS and
    UNLOAD write as TEXTFILE and JSON, is read back by Athena as it was written."""
    import pandas as pd

    wr, session = _awswrangler(staged, monkeypatch)
    world, _, names = staged
    database, bucket = names["glue_database"], names["buckets"]["athena-results"]
    frame = pd.DataFrame(
        {
            "id": [1, 2, 3],
            "name": ["a", "b", None],
            "v": [1.5, None, 3.0],
            "day": ["2024-01-01", "2024-01-01", "2024-01-02"],
        }
    )
    wr.s3.to_csv(
        frame,
        f"s3://{bucket}/wr/csv/",
        dataset=True,
        database=database,
        table="wr_csv",
        partition_cols=["day"],
        index=False,
        boto3_session=session,
    )
    wr.s3.to_json(
        frame,
        f"s3://{bucket}/wr/json/",
        dataset=True,
        database=database,
        table="wr_json",
        orient="records",
        lines=True,
        index=False,
        boto3_session=session,
    )
    for table in ("wr_csv", "wr_json"):
        for ctas in (True, False):
            back = wr.athena.read_sql_query(
                f"SELECT id, name, v, day FROM {table} ORDER BY id",
                database=database,
                ctas_approach=ctas,
                s3_output=f"s3://{bucket}/wr/results/",
                boto3_session=session,
            )
            assert back["id"].tolist() == [1, 2, 3], (table, ctas)
            assert back["v"].tolist()[0] == 1.5 and pd.isna(back["v"].tolist()[1]), (table, ctas)
            assert back["day"].astype(str).tolist() == frame["day"].tolist(), (table, ctas)
    for fmt in ("TEXTFILE", "JSON"):
        made = query(
            world,
            names,
            f"CREATE TABLE ctas_{fmt.lower()} WITH (format = '{fmt}') AS "
            'SELECT "table" AS t, count(*) AS n, count(*) > 0 AS seen, '
            "CAST(NULL AS varchar) AS nothing FROM staged_cdc GROUP BY 1",
        )
        assert made["Status"]["State"] == "SUCCEEDED", made["Status"]
        both = query(
            world,
            names,
            "SELECT (SELECT count(*) FROM (SELECT t, n, seen, nothing "
            f'FROM ctas_{fmt.lower()} EXCEPT SELECT "table", count(*), true, NULL '
            "FROM staged_cdc GROUP BY 1)) AS missing, (SELECT count(*) FROM "
            f"ctas_{fmt.lower()}) AS total",
        )
        missing, total = rows(world, both)[1]
        assert missing == "0" and int(total) > 0, (fmt, missing, total)


def test_prepared_statements_are_kept_per_workgroup_and_executed(staged, monkeypatch) -> None:
    """The prepared-statement API as Athena answers it, EXECUTE … USING and the SQL forms, and
    awswrangler's own use of them (it asks GetPreparedStatement first: a server error before)."""
    import botocore.exceptions

    world, _, names = staged
    athena = world.client("athena")
    sql = 'SELECT count(*) AS n FROM staged_cdc WHERE "table" = ?'
    with pytest.raises(athena.exceptions.ResourceNotFoundException):
        athena.get_prepared_statement(StatementName="by_table", WorkGroup="primary")
    athena.create_prepared_statement(
        StatementName="by_table",
        WorkGroup="primary",
        QueryStatement=sql,
        Description="rows of a table",
    )
    with pytest.raises(botocore.exceptions.ClientError) as twice:
        athena.create_prepared_statement(
            StatementName="by_table", WorkGroup="primary", QueryStatement=sql
        )
    assert twice.value.response["Error"]["Code"] == "InvalidRequestException"
    got = athena.get_prepared_statement(StatementName="by_table", WorkGroup="primary")
    assert got["PreparedStatement"]["QueryStatement"] == sql
    assert got["PreparedStatement"]["Description"] == "rows of a table"
    expected = rows(
        world, query(world, names, "SELECT count(*) AS n FROM staged_cdc WHERE \"table\" = 'sales'")
    )
    for statement, extra in (
        ("EXECUTE by_table USING 'sales'", {}),
        ('EXECUTE "by_table"', {"ExecutionParameters": ["'sales'"]}),
    ):
        executed = query(world, names, statement, **extra)
        assert executed["Status"]["State"] == "SUCCEEDED", executed["Status"]
        assert rows(world, executed) == expected
    athena.update_prepared_statement(
        StatementName="by_table",
        WorkGroup="primary",
        QueryStatement=sql.replace("count(*)", "count(*) + 1"),
    )
    plus_one = rows(world, query(world, names, "EXECUTE by_table USING 'sales'"))
    assert int(plus_one[1][0]) == int(expected[1][0]) + 1
    made = query(world, names, "PREPARE twice FROM SELECT ? * 2 AS v")
    assert made["Status"]["State"] == "SUCCEEDED", made["Status"]
    assert rows(world, query(world, names, "EXECUTE twice USING 21")) == [["v"], ["42"]]
    listed = athena.list_prepared_statements(WorkGroup="primary", MaxResults=1)
    following = athena.list_prepared_statements(WorkGroup="primary", NextToken=listed["NextToken"])
    assert [
        s["StatementName"] for s in listed["PreparedStatements"] + following["PreparedStatements"]
    ] == ["by_table", "twice"]
    batch = athena.batch_get_prepared_statement(
        PreparedStatementNames=["twice", "nope"], WorkGroup="primary"
    )
    assert [s["StatementName"] for s in batch["PreparedStatements"]] == ["twice"]
    assert batch["UnprocessedPreparedStatementNames"][0]["StatementName"] == "nope"
    assert query(world, names, "DEALLOCATE PREPARE twice")["Status"]["State"] == "SUCCEEDED"
    gone = query(world, names, "EXECUTE twice USING 1")
    assert "NOT_FOUND: Prepared statement not found: twice" in gone["Status"]["StateChangeReason"]
    bad = query(world, names, "EXECUTE by_table USING (SELECT 1)")
    assert "INVALID_PARAMETER" in bad["Status"]["StateChangeReason"]  # a literal, never SQL
    with pytest.raises(botocore.exceptions.ClientError) as elsewhere:
        athena.get_prepared_statement(StatementName="by_table", WorkGroup="no-such-group")
    assert elsewhere.value.response["Error"]["Code"] == "InvalidRequestException"
    athena.delete_prepared_statement(StatementName="by_table", WorkGroup="primary")
    with pytest.raises(athena.exceptions.ResourceNotFoundException):
        athena.delete_prepared_statement(StatementName="by_table", WorkGroup="primary")

    wr, session = _awswrangler(staged, monkeypatch)
    wr.athena.create_prepared_statement(
        sql=sql, statement_name="wr_by_table", boto3_session=session
    )
    frame = wr.athena.read_sql_query(
        'EXECUTE "wr_by_table"',
        database=names["glue_database"],
        params=["'sales'"],
        paramstyle="qmark",
        ctas_approach=False,
        s3_output=f"s3://{names['buckets']['athena-results']}/wr/results/",
        boto3_session=session,
    )
    assert frame["n"].tolist() == [int(expected[1][0])]
    assert "wr_by_table" in [
        s["StatementName"] for s in wr.athena.list_prepared_statements(boto3_session=session)
    ]


def test_show_create_table_of_a_text_table_makes_the_same_table(staged) -> None:
    """The DDL SHOW CREATE TABLE prints carries the SerDe's properties (the delimiter): run
    under another name it registers the same table, which reads the same rows (it lost them,
    and a '|' table came back split on Ctrl-A, every value null)."""
    world, _, names = staged
    db, bucket = names["glue_database"], names["buckets"]["athena-results"]
    glue = world.client("glue")
    made = query(world, names, f"CREATE EXTERNAL TABLE {db}.tabbed (a string, n int) ROW FORMAT "
                 "DELIMITED FIELDS TERMINATED BY '\\t' NULL DEFINED AS '-' LOCATION "
                 f"'s3://{bucket}/text/tabbed/' TBLPROPERTIES ('note'='it''s')")  # fmt: skip
    assert made["Status"]["State"] == "SUCCEEDED", made["Status"]
    _put(world, bucket, "text/tabbed/t.tsv", "x y\t1\n-\t2\n")
    shown = query(world, names, f"SHOW CREATE TABLE {db}.tabbed")
    ddl = "\n".join(r[0] for r in rows(world, shown))
    assert "WITH SERDEPROPERTIES" in ddl
    again = query(world, names, ddl.replace("`tabbed`", "`tabbed_again`"))
    assert again["Status"]["State"] == "SUCCEEDED", (again["Status"], ddl)
    first, second = (glue.get_table(DatabaseName=db, Name=n)["Table"]
                     for n in ("tabbed", "tabbed_again"))  # fmt: skip
    assert second["StorageDescriptor"]["SerdeInfo"] == first["StorageDescriptor"]["SerdeInfo"]
    assert first["StorageDescriptor"]["SerdeInfo"]["Parameters"]["field.delim"] == "\t"
    assert second["Parameters"] == first["Parameters"]
    for name in ("tabbed", "tabbed_again"):
        read = query(world, names, f"SELECT a, n FROM {name} ORDER BY n")
        assert rows(world, read)[1:] == [["x y", "1"], [None, "2"]], name
