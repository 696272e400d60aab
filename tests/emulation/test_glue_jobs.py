"""Glue job runs execute the real script in local Spark; failures carry the script's message."""

from __future__ import annotations

import io
import json
import textwrap

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from deploy.stack import load_stack
from emulation import World
from emulation.glue import arrow_schema
from emulation.glue.jobs import run_job
from harness.provision import provision
from pipeline.contracts.staged import STAGED_CDC_COLUMNS

WRITER = textwrap.dedent(
    """
    import sys
    from awsglue.context import GlueContext
    from awsglue.job import Job
    from awsglue.utils import getResolvedOptions
    from pyspark.context import SparkContext

    args = getResolvedOptions(sys.argv, ["out", "rows"])
    glue = GlueContext(SparkContext.getOrCreate())
    job = Job(glue)
    job.init(args["JOB_NAME"], args)
    if int(args["rows"]) < 0:
        raise ValueError(f"--rows must not be negative, got {args['rows']}")
    frame = glue.spark_session.range(int(args["rows"])).withColumnRenamed("id", "n")
    frame.write.mode("overwrite").parquet(args["out"])
    job.commit()
    """
)


def _job(world: World, name: str, script: str) -> str:
    s3 = world.client("s3")
    s3.create_bucket(Bucket="glue-scripts") if world.region == "us-east-1" else s3.create_bucket(
        Bucket="glue-scripts", CreateBucketConfiguration={"LocationConstraint": world.region}
    )
    s3.put_object(Bucket="glue-scripts", Key=f"{name}.py", Body=script.encode())
    world.client("glue").create_job(
        Name=name,
        Role=f"arn:aws:iam::{world.account_id}:role/glue",
        Command={"Name": "glueetl", "ScriptLocation": f"s3://glue-scripts/{name}.py"},
        DefaultArguments={"--out": "s3://glue-scripts/out/", "--rows": "5"},
    )
    return name


def _wait(world: World, name: str, run_id: str) -> dict:
    glue = world.client("glue")

    def done():
        run = glue.get_job_run(JobName=name, RunId=run_id)["JobRun"]
        return run if run["JobRunState"] not in ("STARTING", "RUNNING") else None

    return world.wait_for(done, what="the job run", timeout=300)


def embedded_only(world: World) -> None:
    if world.kind != "embedded":
        pytest.skip("StartJobRun executes scripts in the embedded world only; run_job covers this")


def test_start_job_run_executes_the_script_with_its_arguments(aws: World) -> None:
    embedded_only(aws)
    name = _job(aws, "writer", WRITER)
    run_id = aws.client("glue").start_job_run(JobName=name, Arguments={"--rows": "7"})["JobRunId"]
    run = _wait(aws, name, run_id)
    assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
    listed = aws.client("s3").list_objects_v2(Bucket="glue-scripts", Prefix="out/")["Contents"]
    keys = [o["Key"] for o in listed]
    parts = [k for k in keys if k.endswith(".parquet")]
    rows = sum(
        pq.read_table(io.BytesIO(aws.client("s3").get_object(Bucket="glue-scripts", Key=k)["Body"]
                                 .read())).num_rows
        for k in parts
    )  # fmt: skip
    assert rows == 7


def test_a_failing_script_makes_the_run_failed_with_its_message(aws: World) -> None:
    embedded_only(aws)
    name = _job(aws, "writer", WRITER)
    run_id = aws.client("glue").start_job_run(JobName=name, Arguments={"--rows": "-3"})["JobRunId"]
    run = _wait(aws, name, run_id)
    assert run["JobRunState"] == "FAILED"
    assert run["ErrorMessage"] == "ValueError: --rows must not be negative, got -3"


def test_run_job_works_on_any_endpoint(aws: World) -> None:
    name = _job(aws, "writer", WRITER)
    assert run_job(aws, name, {"--rows": "2"}).state == "SUCCEEDED"
    failed = run_job(aws, name, {"--rows": "-1"})
    assert failed.state == "FAILED" and "must not be negative" in failed.error


CACHING_COUNTER = textwrap.dedent(
    """
    import sys
    from awsglue.context import GlueContext
    from awsglue.utils import getResolvedOptions
    from pyspark.context import SparkContext

    args = getResolvedOptions(sys.argv, ["out"])
    spark = GlueContext(SparkContext.getOrCreate()).spark_session
    rows = spark.read.parquet("s3a://glue-scripts/in/").cache()
    spark.createDataFrame([(str(rows.count()),)], ["n"]).coalesce(1).write.mode(
        "overwrite").text(args["out"])
    """
)


def test_a_run_never_sees_rows_an_earlier_run_cached(aws: World) -> None:
    """Each Glue run is its own Spark application: the same path read again gives today's data."""
    name = _job(aws, "counter", CACHING_COUNTER)
    s3 = aws.client("s3")
    counts = []
    for rows in (3, 8):
        sink = io.BytesIO()
        pq.write_table(pa.table({"n": list(range(rows))}), sink)
        s3.put_object(Bucket="glue-scripts", Key="in/part-0.parquet", Body=sink.getvalue())
        assert run_job(aws, name, {"--out": f"s3a://glue-scripts/count-{rows}/"}).state == (
            "SUCCEEDED"
        )
        listed = s3.list_objects_v2(Bucket="glue-scripts", Prefix=f"count-{rows}/part-")
        key = listed["Contents"][0]["Key"]
        counts.append(int(s3.get_object(Bucket="glue-scripts", Key=key)["Body"].read()))
    assert counts == [3, 8]


def _staged_file(world: World, names, key: str, data_type: pa.DataType) -> None:
    schema = arrow_schema([{"Name": n, "Type": t} for n, t in STAGED_CDC_COLUMNS])
    fields = list(schema)
    fields[0] = pa.field("data", data_type)
    table = pa.Table.from_pylist(
        [{"data": {"sale_id": 1, "product_id": "P1", "quantity": "2"}, "metadata": None}],
        schema=pa.schema(fields),
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    world.client("s3").put_object(Bucket=names.bucket("staged"), Key=key, Body=sink.getvalue())


def _forecast_input(aws, names):
    return run_job(
        aws,
        names.job_name("forecast-input"),
        {"--frequency": "D", "--horizon": "7", "--start_date": "2025-01-01",
         "--end_date": "2025-01-31"},
    )  # fmt: skip


def test_forecast_input_job_names_the_file_whose_column_has_the_wrong_type(aws) -> None:
    names = provision(aws, load_stack())
    data = [pa.field("sale_id", pa.int64()), pa.field("product_id", pa.string()),
            pa.field("quantity", pa.string())]  # fmt: skip
    _staged_file(aws, names, "cdc/table=sales/dt=2025-01-01/broken-file", pa.struct(data))
    outcome = _forecast_input(aws, names)
    assert outcome.state == "FAILED"  # nothing in such a file can be read, so nothing applied
    assert "broken-file" in outcome.error and "data.quantity" in outcome.error, outcome.error


def test_forecast_input_job_sets_aside_rows_missing_a_column_naming_file_and_column(aws) -> None:
    names = provision(aws, load_stack())
    data = [pa.field("sale_id", pa.int64()), pa.field("product_id", pa.string())]
    _staged_file(aws, names, "cdc/table=sales/dt=2025-01-01/broken-file", pa.struct(data))
    outcome = _forecast_input(aws, names)
    assert outcome.state == "SUCCEEDED", outcome.error
    s3 = aws.client("s3")
    bucket = names.bucket("forecast")
    manifest = json.loads(s3.get_object(Bucket=bucket, Key="input/2025-01-31.json")["Body"].read())
    assert manifest["changes"]["rejected"] == {"missing field": 1}
    location = manifest["changes"]["rejected_location"]
    prefix = location.split(f"s3://{bucket}/", 1)[1]
    parts = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]
             if o["Key"].rsplit("/", 1)[-1].startswith("part-")]  # fmt: skip
    rows = [json.loads(line) for key in parts
            for line in s3.get_object(Bucket=bucket, Key=key)["Body"].iter_lines()]  # fmt: skip
    assert len(rows) == 1
    assert rows[0]["file"].endswith("broken-file") and rows[0]["key"] == "1"
    assert rows[0]["reason"] == "missing field: data.quantity of table sales"
