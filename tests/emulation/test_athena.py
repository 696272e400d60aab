"""Athena queries execute over the catalog's S3 data: Trino dialect, results, pagination, errors."""

from __future__ import annotations

import json
from pathlib import Path

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
    assert rows(world, execution) == [["rows"], [str(len(expected))]]
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
    assert "HIVE_PATH_ALREADY_EXISTS" in repeat["Status"]["StateChangeReason"]


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


def test_awswrangler_reads_with_its_defaults(staged, monkeypatch: pytest.MonkeyPatch) -> None:
    """awswrangler's read_sql_query as a notebook calls it: CTAS, the manifest, the Parquet
    files, the temporary table dropped; and without CTAS, the CSV results."""
    import boto3

    wr = pytest.importorskip("awswrangler", reason="awswrangler is a dev dependency")
    world, _, names = staged
    for name, value in world.environment().items():
        if name.startswith("AWS_") or name == "DFP_LOCAL_RUN":
            monkeypatch.setenv(name, value)
    session = boto3.Session(region_name=world.region)
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
