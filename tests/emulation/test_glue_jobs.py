"""Glue job runs execute the real script in local Spark; failures carry the script's message."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import tempfile
import textwrap
import threading
import time
from pathlib import Path

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

# WRITER, writing only after a pause: long enough for the test to reset the world under it.
SLOW_WRITER = WRITER.replace(
    'job.init(args["JOB_NAME"], args)\n',
    'job.init(args["JOB_NAME"], args)\nimport time\ntime.sleep(3)\n',
)


# WRITER writing CSV (through the S3A committer), failing a task from the tenth row on.
CSV_WRITER = WRITER.replace(
    'frame.write.mode("overwrite").parquet(args["out"])',
    'frame.selectExpr("n", "CAST(assert_true(n < 10) AS STRING) AS ok")'
    '.write.mode("overwrite").csv(args["out"])',
)


# WRITER, its rows first through four tasks of a second each: a stage long enough to watch.
SLOW_TASKS = WRITER.replace(
    'frame = glue.spark_session.range(int(args["rows"])).withColumnRenamed("id", "n")',
    "import time\n"
    'frame = glue.spark_session.range(0, 4, numPartitions=4).withColumnRenamed("id", "n")\n'
    "frame.rdd.foreach(lambda row: time.sleep(1))",
)


def _create_bucket(world: World, name: str):
    """The world's S3 client, after creating ``name`` in the world's region."""
    s3 = world.client("s3")
    location = {} if world.region == "us-east-1" else {"LocationConstraint": world.region}
    s3.create_bucket(Bucket=name, **({"CreateBucketConfiguration": location} if location else {}))
    return s3


def _job(world: World, name: str, script: str, max_retries: int = 0) -> str:
    s3 = _create_bucket(world, "glue-scripts")
    s3.put_object(Bucket="glue-scripts", Key=f"{name}.py", Body=script.encode())
    world.client("glue").create_job(
        Name=name,
        Role=f"arn:aws:iam::{world.account_id}:role/glue",
        Command={"Name": "glueetl", "ScriptLocation": f"s3://glue-scripts/{name}.py"},
        DefaultArguments={"--out": "s3://glue-scripts/out/", "--rows": "5"},
        MaxRetries=max_retries,
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


def _rows_written(world: World) -> int:
    s3 = world.client("s3")
    listed = s3.list_objects_v2(Bucket="glue-scripts", Prefix="out/").get("Contents", [])
    return sum(
        pq.read_table(io.BytesIO(s3.get_object(Bucket="glue-scripts", Key=o["Key"])["Body"].read()))
        .num_rows for o in listed if o["Key"].endswith(".parquet")
    )  # fmt: skip


def test_a_run_failed_after_writing_is_retried_by_glue_as_max_retries_allows(aws: World) -> None:
    embedded_only(aws)
    from emulation.glue.faults import INJECTED_ERROR, fail_runs, failures
    from harness.run.aws import job_run

    name = _job(aws, "writer", WRITER, max_retries=1)
    fail_runs(aws.account_id, aws.region, name, 1)
    last = job_run(aws, name, {"--rows": "4"})
    first, retry = last["Attempts"]
    assert first["state"] == "FAILED" and first["error"] == INJECTED_ERROR
    # Glue's retry: a new run named after the first, with its attempt number and predecessor.
    assert last["Id"] == retry["id"] == f"{first['id']}_attempt_1"
    assert (last["Attempt"], last["PreviousRunId"], last["JobRunState"]) == (
        1, first["id"], "SUCCEEDED")  # fmt: skip
    assert last["Arguments"]["--rows"] == "4"  # the same arguments again
    assert failures(aws.account_id, aws.region) == {name: 1}
    # The failed run had written its output; the retry replaced it: nothing doubled.
    assert _rows_written(aws) == 4
    listed = aws.client("glue").get_job_runs(JobName=name)["JobRuns"]
    assert sorted(r["JobRunState"] for r in listed) == ["FAILED", "SUCCEEDED"]


def test_without_max_retries_a_failed_run_stays_failed_and_nothing_retries(aws: World) -> None:
    embedded_only(aws)
    from emulation.glue.faults import fail_runs
    from harness.run.aws import job_run

    name = _job(aws, "writer", WRITER)
    fail_runs(aws.account_id, aws.region, name, 2)
    last = job_run(aws, name, {"--rows": "3"})
    assert last["JobRunState"] == "FAILED" and len(last["Attempts"]) == 1
    assert len(aws.client("glue").get_job_runs(JobName=name)["JobRuns"]) == 1
    # A second run fails too (2 asked for), a third succeeds: failures are counted per job.
    assert job_run(aws, name, {"--rows": "3"})["JobRunState"] == "FAILED"
    assert job_run(aws, name, {"--rows": "3"})["JobRunState"] == "SUCCEEDED"


def test_failing_runs_on_purpose_refuses_a_negative_count(aws: World) -> None:
    from emulation.glue.faults import fail_runs

    with pytest.raises(ValueError, match="count must be >= 0, got -1"):
        fail_runs(aws.account_id, aws.region, "writer", -1)


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


#: Where these tests' manifests go: not under ``input/``, whose every new object starts a forecast
#: that would outlive the test and leave its jobs in the next one's world.
MANIFESTS = "unwatched-input/"


def _forecast_input(aws, names):
    return run_job(
        aws,
        names.job_name("forecast-input"),
        {"--frequency": "D", "--horizon": "7", "--start_date": "2025-01-01",
         "--end_date": "2025-01-31",
         "--manifest_path": f"s3://{names.bucket('forecast')}/{MANIFESTS}"},
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
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=f"{MANIFESTS}2025-01-31.json")["Body"]
                          .read())  # fmt: skip
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


def test_forecast_input_rerun_on_the_same_input_publishes_nothing(aws) -> None:
    """Glue's retry of a run that failed after publishing (or any rerun on the same input) must
    not rewrite the datasets a forecast may be reading, nor start a second forecast; changed
    input publishes a new manifest."""
    from tests.pipeline.test_etl_transforms import product, sale, staged_rows

    names = provision(aws, load_stack())
    from emulation.glue.spark import spark_session

    spark = spark_session(aws.endpoint_url, aws.region)
    staged = f"s3a://{names.bucket('staged')}/cdc/"
    rows = [("products", product("P1"), "load", None),
            ("sales", sale(1, "P1", 3, dt.datetime(2025, 1, 20, 9)), "load", None)]  # fmt: skip
    staged_rows(spark, rows).write.mode("overwrite").partitionBy("table", "dt").parquet(staged)
    s3 = aws.client("s3")
    bucket = names.bucket("forecast")

    def published() -> dict[str, tuple[str, object]]:
        listed = [
            o
            for prefix in ("datasets/", MANIFESTS)  # what the job writes
            for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        ]
        return {o["Key"]: (o["ETag"], o["LastModified"]) for o in listed}  # fmt: skip

    assert _forecast_input(aws, names).state == "SUCCEEDED"
    first = published()
    manifest = f"{MANIFESTS}2025-01-31.json"
    assert manifest in first
    assert _forecast_input(aws, names).state == "SUCCEEDED"
    assert published() == first  # not one object rewritten

    rows.append(("sales", sale(2, "P1", 5, dt.datetime(2025, 1, 21, 9)), "load", None))
    staged_rows(spark, rows).write.mode("overwrite").partitionBy("table", "dt").parquet(staged)
    assert _forecast_input(aws, names).state == "SUCCEEDED"
    again = published()
    assert again[manifest] != first[manifest]


def test_the_spark_session_logs_errors_only_from_the_start(aws) -> None:
    """Spark's default profile logs at WARN from the JVM's start, before the session can lower
    it: every run's ETL stage printed Hadoop's native-library warning and two lines announcing
    the shell's log level. The session starts with the harness' profile instead, whose PySpark
    gateway logger (the level Spark gives a shell) is configured, so nothing is announced."""
    from emulation.glue.spark import LOG4J2, spark_session

    spark = spark_session(aws.endpoint_url, aws.region)
    context = spark.sparkContext._jvm.org.apache.logging.log4j.LogManager.getContext(False)
    config = context.getConfiguration()
    assert Path(config.getConfigurationSource().getLocation()) == LOG4J2
    native = config.getLoggerConfig("org.apache.hadoop.util.NativeCodeLoader")
    assert native.getLevel().toString() == "ERROR"
    gateway = "org.apache.spark.api.python.PythonGatewayServer"
    assert config.getLoggerConfig(gateway).getName() == gateway  # its own, not the root's
    assert config.getLoggerConfig(gateway).getLevel().toString() == "ERROR"


def test_spark_keeps_its_working_files_in_its_own_folder_not_the_callers(aws) -> None:
    """CSV and text output go through the S3A committer, which stages each job's list of
    uploads under ``tmp/staging`` of the cluster's file system (here the local one, relative to
    the directory the process started in) and its task files under ``/tmp/hadoop-<user>``. A
    job that could not clean up left ``tmp/staging/<user>/<job>/staging-uploads`` in the
    checkout it was run from. Both now go to one folder the session made, removed at exit."""
    embedded_only(aws)
    from emulation.glue.spark import _remove_scratch, scratch_dir, spark_session
    from harness.run.aws import job_run

    spark = spark_session(aws.endpoint_url, aws.region)
    jvm, hadoop = spark.sparkContext._jvm, spark.sparkContext._jsc.hadoopConfiguration()
    folder = scratch_dir()
    assert folder.is_dir() and folder.name.startswith("dfp-spark-")
    # where Hadoop's own committer code puts a job's upload list
    staging = jvm.org.apache.hadoop.fs.s3a.commit.staging.Paths
    uploads = Path(staging.getMultipartUploadCommitsDirectory(hadoop, "a-job").toUri().getPath())
    assert uploads == folder / "staging" / jvm.java.lang.System.getProperty("user.name") / (
        "a-job/staging-uploads")  # fmt: skip
    started_in = Path(jvm.java.lang.System.getProperty("user.dir")) / "tmp" / "staging"
    before = set(started_in.rglob("*")) if started_in.exists() else set()
    name = _job(aws, "csv-writer", CSV_WRITER)
    assert job_run(aws, name, {"--rows": "3"})["JobRunState"] == "SUCCEEDED"
    assert job_run(aws, name, {"--rows": "30"})["JobRunState"] == "FAILED"  # a task failed
    assert (folder / "hadoop" / "s3a").is_dir()  # the committer's task files went here
    assert (set(started_in.rglob("*")) if started_in.exists() else set()) == before
    # Removing it takes the folder the session made, and only that one.
    made, beside = Path(tempfile.mkdtemp(prefix="dfp-spark-")), Path(tempfile.mkdtemp())
    (made / "staging" / "job").mkdir(parents=True)
    _remove_scratch(made)
    assert not made.exists() and beside.is_dir()
    beside.rmdir()


def test_spark_follows_the_world_to_the_next_endpoint(aws) -> None:
    """``dfp run --all`` runs each scenario in a world of its own, in one process with one Spark
    session. Hadoop caches a file system per bucket, built for the endpoint of its time: without
    care, the next world's Glue job reads the previous world's bucket of the same name."""
    import boto3

    from emulation.glue.spark import spark_session
    from tests.conftest import moto_server

    bucket = "same-name-in-both-worlds"
    s3 = _create_bucket(aws, bucket)
    s3.put_object(Bucket=bucket, Key="a.txt", Body=b"first world")
    spark = spark_session(aws.endpoint_url, aws.region)
    assert [r.value for r in spark.read.text(f"s3a://{bucket}/a.txt").collect()] == ["first world"]
    with moto_server() as url:
        other = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                             aws_access_key_id="testing",
                             aws_secret_access_key="testing")  # fmt: skip
        other.create_bucket(Bucket=bucket)
        other.put_object(Bucket=bucket, Key="a.txt", Body=b"second world")
        spark = spark_session(url, "us-east-1")
        read = [r.value for r in spark.read.text(f"s3a://{bucket}/a.txt").collect()]
        assert read == ["second world"]
    spark_session(aws.endpoint_url, aws.region)  # back to this session's world


def test_a_reset_lets_no_run_or_workflow_of_the_last_world_reach_the_next(aws: World) -> None:
    """A run ``--until`` an earlier stage leaves a workflow and a Glue run going. The next run
    provisions buckets and jobs of the same names in the reset world: what the last world left
    running would read and write them. A reset stops the workflows and waits for the runs."""
    embedded_only(aws)
    from moto.stepfunctions.responses import get_backend

    from emulation.glue.jobs import running_jobs

    assert "time.sleep(3)" in SLOW_WRITER  # the pause is in the script
    name = _job(aws, "slow-writer", SLOW_WRITER)
    sfn = aws.client("stepfunctions")
    waiting = {"StartAt": "Long", "States": {"Long": {"Type": "Wait", "Seconds": 600,
                                                      "End": True}}}  # fmt: skip
    machine = sfn.create_state_machine(name="left-running", definition=json.dumps(waiting),
                                       roleArn=f"arn:aws:iam::{aws.account_id}:role/r")  # fmt: skip
    arn = sfn.start_execution(stateMachineArn=machine["stateMachineArn"])["executionArn"]
    execution = next(e for e in get_backend(aws.account_id, aws.region)._get_executions()
                     if e.execution_arn == arn)  # fmt: skip
    aws.client("glue").start_job_run(JobName=name, Arguments={"--rows": "3"})
    assert running_jobs()  # still in its pause
    aws.reset()
    assert running_jobs() == []
    assert execution.status == "ABORTED"
    s3 = _create_bucket(aws, "glue-scripts")  # the next run's bucket, of the same name
    assert s3.list_objects_v2(Bucket="glue-scripts").get("KeyCount", 0) == 0
    # The world goes on: a failed run is retried again, as its job's MaxRetries allows.
    from emulation.glue.faults import fail_runs
    from harness.run.aws import job_run

    name = _job(aws, "writer", WRITER, max_retries=1)
    fail_runs(aws.account_id, aws.region, name, 1)
    assert job_run(aws, name, {"--rows": "2"})["JobRunState"] == "SUCCEEDED"


def test_a_running_job_says_its_name_and_how_far_its_spark_stage_is(aws: World) -> None:
    """What ``dfp run`` shows while the ETL or the enrichment runs (``harness.cli``)."""
    from emulation.glue.jobs import running_job
    from emulation.glue.spark import spark_progress

    name = _job(aws, "watched", SLOW_TASKS)
    outcome = {}
    job = threading.Thread(target=lambda: outcome.update(run=run_job(aws, name)))
    job.start()
    seen = set()
    while job.is_alive():
        seen.add((running_job(), spark_progress()))
        time.sleep(0.05)
    job.join()
    assert outcome["run"].state == "SUCCEEDED", outcome["run"].error
    watched = [
        p for j, p in seen if j == name and re.fullmatch(r"Spark stage \d+: [0-3] of 4 tasks", p)
    ]
    assert watched, seen
    assert running_job() is None and spark_progress() == ""  # nothing left once it ended
