"""The forecast state machine, started by the S3 event of a manifest, end to end in the world."""

from __future__ import annotations

import datetime as dt
import json
import re
import time

import numpy as np
import pandas as pd
import pytest

from emulation import World
from harness.provision import provision
from harness.run.aws import failure_notices, find_execution, find_executions
from tests.emulation.test_sagemaker import HORIZON, automl_frame


def embedded_only(world: World) -> None:
    if not world.in_process:
        pytest.skip("the forecaster runs inside the embedded world only; "
                    "tests/emulation/test_sagemaker.py covers it without an endpoint")  # fmt: skip


def _publish(aws: World, names, frame, manifest_id: str, version: str = "2025-05-01",
             frequency: str = "D", horizon: int = HORIZON) -> str:  # fmt: skip
    s3 = aws.client("s3")
    bucket = names.bucket("forecast")
    prefix = f"datasets/{version}/automl_input/"
    s3.put_object(Bucket=bucket, Key=f"{prefix}part-00000.csv",
                  Body=frame.to_csv(index=False).encode())  # fmt: skip
    manifest = {
        "id": manifest_id,
        "version": version,
        "frequency": frequency,
        "horizon": horizon,
        "quantiles": [0.1, 0.5, 0.9],
        "forecast_quantiles": ["p10", "p50", "p90"],
        "automl": {"input": f"s3://{bucket}/{prefix}",
                   "time_series_config": {"TargetAttributeName": "demand",
                                          "TimestampAttributeName": "timestamp",
                                          "ItemIdentifierAttributeName": "item_id"}},
    }  # fmt: skip
    key = f"input/{version}.json"
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(manifest).encode())
    return key


def _finished(aws: World, names, key: str, after: float = 0.0, timeout: float = 300) -> dict:
    sfn = aws.client("stepfunctions")
    machine = names.state_machine_arn("forecast")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = find_execution(sfn, machine, names.bucket("forecast"), key)
        if found and found["startDate"].timestamp() >= after and found["status"] != "RUNNING":
            return found
        time.sleep(0.5)
    raise AssertionError(f"no finished execution for {key}")


def test_manifest_event_runs_the_workflow_to_an_export(aws: World, stack) -> None:
    embedded_only(aws)
    names = provision(aws, stack)
    key = _publish(aws, names, automl_frame(), "a1b2c3d4e5f6a1b2c3d4e5f6")
    execution = _finished(aws, names, key)
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    output = json.loads(execution["output"])
    assert output["automl_job"] == "dfp-a1b2c3d4e5f6a1b2c3d4e5f6"
    assert {m["MetricName"] for m in output["metrics"]} >= {"AverageWeightedQuantileLoss", "WAPE"}

    s3 = aws.client("s3")
    bucket = names.bucket("forecast")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="exports/2025-05-01/")["Contents"]
    keys = [o["Key"] for o in listed]
    assert len(keys) == 1, keys  # nothing but the finished export (no staging leftovers)
    assert re.fullmatch(
        r"exports/2025-05-01/dfp_2025-05-01_\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ_part0\.csv", keys[0]
    )
    lines = s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read().decode().splitlines()
    assert lines[0] == "item_id,date,p10,p50,p90"
    assert len(lines) == 1 + 4 * HORIZON
    assert lines[1].split(",")[1] == "2025-05-01T00:00:00Z"

    # The same manifest again: the rerun attaches to the jobs it started, trains nothing new.
    began = time.time()
    s3.put_object(Bucket=bucket, Key=key, Body=s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    again = _finished(aws, names, key, after=began - 1)
    assert again["executionArn"] != execution["executionArn"]
    assert again["status"] == "SUCCEEDED", again.get("cause")
    jobs = aws.client("sagemaker").list_auto_ml_jobs()["AutoMLJobSummaries"]
    assert [j["AutoMLJobName"] for j in jobs] == ["dfp-a1b2c3d4e5f6a1b2c3d4e5f6"]


def _export_lines(aws: World, names, version: str) -> list[str]:
    s3 = aws.client("s3")
    bucket = names.bucket("forecast")
    (key,) = [o["Key"] for o in s3.list_objects_v2(
        Bucket=bucket, Prefix=f"exports/{version}/")["Contents"]]  # fmt: skip
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()


def test_monthly_demand_goes_from_staged_sales_through_the_glue_job_and_the_workflow(
    aws: World, stack
) -> None:
    """Daily sales → the Glue job at ``M`` → the manifest's event → AutoML V2 at ``M`` → export."""
    embedded_only(aws)
    from emulation.glue.spark import spark_session
    from harness.run.aws import job_run
    from tests.pipeline.test_etl_transforms import product, sale, staged_rows

    names = provision(aws, stack)
    spark = spark_session(aws.endpoint_url, aws.region)
    rng = np.random.default_rng(5)
    days = pd.date_range("2021-01-01", "2024-12-31", freq="D")
    rows = [("products", product(f"P{i}", dt.date(2021, 1, 1)), "load", None) for i in range(3)]
    sale_id = 0
    for i in range(3):
        yearly = 1 + 0.5 * np.sin(2 * np.pi * (days.month - 1) / 12)  # a yearly cycle by month
        for day, units in zip(days, rng.poisson(4 * (i + 1) * yearly), strict=True):
            if units:
                sale_id += 1
                rows.append(("sales", sale(sale_id, f"P{i}", int(units), day.to_pydatetime()),
                             "load", None))  # fmt: skip
    staged_rows(spark, rows).write.mode("overwrite").partitionBy("table", "dt").parquet(
        f"s3a://{names.bucket('staged')}/cdc/"
    )
    run = job_run(aws, names.job_name("forecast-input"), {
        "--frequency": "M", "--horizon": "6", "--start_date": "2021-01-01",
        "--end_date": "2024-12-31", "--quantiles": "0.1,0.5,0.9"})  # fmt: skip
    assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
    execution = _finished(aws, names, "input/2024-12-31.json")
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    output = json.loads(execution["output"])
    assert output["manifest"]["frequency"] == "M"
    lines = _export_lines(aws, names, "2024-12-31")
    assert lines[0] == "item_id,date,p10,p50,p90"
    dates = sorted({line.split(",")[1] for line in lines[1:]})
    assert dates == [f"2025-{m:02d}-01T00:00:00Z" for m in range(1, 7)]  # six month starts
    p50 = {(r.split(",")[0], r.split(",")[1][:7]): float(r.split(",")[3]) for r in lines[1:]}
    # Monthly totals are ~30 days of sales: a daily-scale forecast would be 30 times smaller.
    assert 60 < p50[("P0", "2025-04")] < 250 and p50[("P2", "2025-04")] > 2 * p50[("P0", "2025-04")]


@pytest.mark.parametrize(("frequency", "periods", "step"), [("3M", 40, "3MS"), ("Y", 24, "YS")])
def test_quarterly_and_yearly_input_forecasts_through_the_workflow(
    aws: World, stack, frequency: str, periods: int, step: str
) -> None:
    embedded_only(aws)
    names = provision(aws, stack)
    horizon = 2
    stamps = pd.date_range("2000-01-01", periods=periods + horizon, freq=step)
    rng = np.random.default_rng(11)
    rows = []
    for item in ("A", "B"):
        level = 100 + 3 * np.arange(len(stamps)) + rng.normal(0, 5, len(stamps))
        rows += [{"item_id": item, "timestamp": stamp.strftime("%Y-%m-%d"),
                  "demand": "" if t >= periods else f"{level[t]:.1f}"}
                 for t, stamp in enumerate(stamps)]  # fmt: skip
    version = f"2030-0{1 + len(frequency)}-01"
    key = _publish(aws, names, pd.DataFrame(rows), f"{periods:0>24}", version=version,
                   frequency=frequency, horizon=horizon)  # fmt: skip
    execution = _finished(aws, names, key)
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    lines = _export_lines(aws, names, version)
    dates = sorted({line.split(",")[1][:10] for line in lines[1:]})
    assert dates == [s.strftime("%Y-%m-%d") for s in stamps[periods:]]
    last = {
        r.split(",")[0]: float(r.split(",")[3])
        for r in lines[1:]
        if r.split(",")[1][:10] == dates[-1]
    }
    # A trending series: the forecast carries the trend on instead of averaging the history.
    assert last["A"] > 100 + 3 * periods - 20


def test_broken_input_fails_the_execution_with_the_cause(aws: World, stack) -> None:
    embedded_only(aws)
    names = provision(aws, stack)
    frame = automl_frame()
    frame = frame[~((frame["item_id"] == "I1") & (frame["demand"] == ""))]  # no future prices
    key = _publish(aws, names, frame, "badbadbadbadbadbadbadbad", version="2025-05-02")
    execution = _finished(aws, names, key)
    assert execution["status"] == "FAILED"
    assert execution["error"] == "AutoMLJobFailed"
    assert "does not cover the forecast horizon for item 'I1'" in execution["cause"]
    # Before failing, the workflow told the alarm topic's subscribers what failed and why.
    uri = f"s3://{names.bucket('forecast')}/{key}"
    (notice,) = failure_notices(aws, names, "forecast", uri, expect=True)
    assert notice["subject"] == "Forecast workflow failed"
    assert (notice["error"], notice["cause"]) == (execution["error"], execution["cause"])
    assert notice["execution"] == execution["executionArn"]
    assert failure_notices(aws, names, "forecast", uri) == []  # read once
    listed = aws.client("s3").list_objects_v2(
        Bucket=names.bucket("forecast"), Prefix="exports/2025-05-02/"
    )
    assert listed.get("KeyCount", 0) == 0  # no half-written export


def test_an_export_starts_the_enrichment_and_reruns_do_not_duplicate(aws: World, stack) -> None:
    embedded_only(aws)
    from emulation.glue.spark import spark_session
    from harness.run.aws import athena_rows
    from tests.pipeline.test_etl_transforms import product, sale, staged_rows

    names = provision(aws, stack)
    spark = spark_session(aws.endpoint_url, aws.region)
    staged = staged_rows(
        spark,
        [
            ("products", product("P1"), "load", None),
            ("products", product("P2"), "load", None),
            ("sales", sale(1, "P1", 14, dt.datetime(2025, 1, 25, 9)), "load", None),
        ],
    )
    staged.write.mode("overwrite").partitionBy("table", "dt").parquet(
        f"s3a://{names.bucket('staged')}/cdc/"
    )
    export = "item_id,date,p10,p50,p90\n" + "".join(
        f"{item},2025-02-0{day}T00:00:00Z,1.0,2.0,3.0\n" for item in ("P1", "P2", "P3")
        for day in (1, 2)
    )  # fmt: skip
    key = "exports/2025-01-31/dfp_2025-01-31_2026-01-01T00-00-00Z_part0.csv"
    s3 = aws.client("s3")
    query = (
        "SELECT count(*) AS n, count_if(name IS NULL) AS unknown, "
        "max(recent_daily_demand) AS recent FROM forecast_enriched WHERE version = ?"
    )
    sfn = aws.client("stepfunctions")
    machine = names.state_machine_arn("enrich")
    for attempt in range(2):  # the same export twice: the partition is replaced, not appended
        began = time.time()
        s3.put_object(Bucket=names.bucket("forecast"), Key=key, Body=export.encode())

        def finished(after=began):
            found = find_execution(sfn, machine, names.bucket("forecast"), key)
            ok = found and found["startDate"].timestamp() >= after - 1
            return found if ok and found["status"] != "RUNNING" else None

        execution = aws.wait_for(finished, what=f"enrichment run {attempt}", timeout=300)
        assert execution["status"] == "SUCCEEDED", execution.get("cause")
        (row,) = athena_rows(aws, names, query, ["'2025-01-31'"])
        assert int(row["n"]) == 6, row  # every export row, once
        assert int(row["unknown"]) == 2  # P3 is not in the product table: kept, no attributes
        assert float(row["recent"]) == pytest.approx(14 / 28)


def test_an_export_run_that_fails_after_writing_is_started_once_more(aws: World, stack) -> None:
    """The export job's run fails after it wrote the export (a lost executor); the workflow
    starts it again, the second run writes the same object, and the execution succeeds."""
    embedded_only(aws)
    from emulation.glue.faults import INJECTED_ERROR, fail_runs

    names = provision(aws, stack)
    job = names.job_name("forecast-export")
    fail_runs(aws.account_id, aws.region, job, 1)
    key = _publish(aws, names, automl_frame(), "feedfacefeedfacefeedface", version="2025-05-03")
    execution = _finished(aws, names, key)
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    runs = aws.client("glue").get_job_runs(JobName=job)["JobRuns"]
    assert sorted(r["JobRunState"] for r in runs) == ["FAILED", "SUCCEEDED"]
    assert [r["ErrorMessage"] for r in runs if r["JobRunState"] == "FAILED"] == [INJECTED_ERROR]
    lines = _export_lines(aws, names, "2025-05-03")  # one export object, not two
    assert len(lines) == 1 + 4 * HORIZON
    # The second run found the same bytes in place and left the object alone: no second event,
    # so the export started one enrichment, not two.
    bucket = names.bucket("forecast")
    (export,) = aws.client("s3").list_objects_v2(Bucket=bucket, Prefix="exports/2025-05-03/")[
        "Contents"]  # fmt: skip
    machine = names.state_machine_arn("enrich")
    started = find_executions(aws.client("stepfunctions"), machine, bucket, export["Key"])
    assert len(started) == 1

    # Twice in a row is beyond one retry: the execution fails with the run's error.
    fail_runs(aws.account_id, aws.region, job, 2)
    key = _publish(aws, names, automl_frame(), "facadefacadefacadefacade", version="2025-05-04")
    execution = _finished(aws, names, key)
    assert execution["status"] == "FAILED"
    assert (execution["error"], execution["cause"]) == ("ExportJobFailed", INJECTED_ERROR)
    (notice,) = failure_notices(aws, names, "forecast", f"s3://{bucket}/{key}", expect=True)
    assert (notice["error"], notice["cause"]) == ("ExportJobFailed", INJECTED_ERROR)
    assert len(aws.client("glue").get_job_runs(JobName=job)["JobRuns"]) == 4


def test_a_training_failed_on_an_internal_error_is_started_once_more(aws: World, stack) -> None:
    """SageMaker's internal error: one more job, named '<name>-r1', and the forecast completes;
    a second internal error fails the execution with its notice. (A failure the data causes is
    not retried: test_broken_input_fails_the_execution_with_the_cause.)"""
    embedded_only(aws)
    from emulation.sagemaker import INJECTED_FAILURE, settings

    names = provision(aws, stack)
    local = settings(aws.account_id, aws.region)
    local.fail_automl_jobs = 1
    key = _publish(aws, names, automl_frame(), "0123456789abcdef01234567", version="2025-05-05")
    execution = _finished(aws, names, key)
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    assert json.loads(execution["output"])["automl_job"] == "dfp-0123456789abcdef01234567-r1"
    sagemaker = aws.client("sagemaker")
    listed = [j["AutoMLJobName"] for j in sagemaker.list_auto_ml_jobs()["AutoMLJobSummaries"]]
    jobs = {n: sagemaker.describe_auto_ml_job_v2(AutoMLJobName=n)["AutoMLJobStatus"]
            for n in listed}  # fmt: skip
    assert jobs == {"dfp-0123456789abcdef01234567": "Failed",
                    "dfp-0123456789abcdef01234567-r1": "Completed"}  # fmt: skip
    assert len(_export_lines(aws, names, "2025-05-05")) == 1 + 4 * HORIZON

    local.fail_automl_jobs = 2
    key = _publish(aws, names, automl_frame(), "89abcdef0123456789abcdef", version="2025-05-06")
    execution = _finished(aws, names, key)
    assert (execution["status"], execution["error"]) == ("FAILED", "AutoMLJobFailed")
    assert execution["cause"] == INJECTED_FAILURE
    (notice,) = failure_notices(aws, names, "forecast", f"s3://{names.bucket('forecast')}/{key}",
                                expect=True)  # fmt: skip
    assert notice["cause"] == INJECTED_FAILURE
    assert local.failed_on_purpose == 3
