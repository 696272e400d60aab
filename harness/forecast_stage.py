"""The forecast and enrich stages: wait for the workflows S3 events started, and collect them.

Nothing here starts the forecast: the ETL stage's manifest landing in the forecast bucket is the
S3 event EventBridge turns into a Step Functions execution, as on AWS. This stage finds that
execution, waits for it, and reads what it left (export, backtest metrics, chosen models) into the
summary's ``forecast`` section and the run directory's ``forecast/`` folder. Likewise the export
landing starts the enrichment workflow; the enrich stage waits for it and reads the enriched table
back through Athena.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from typing import TYPE_CHECKING, Any

import pandas as pd

from pipeline.contracts.accuracy import summary_metrics

if TYPE_CHECKING:
    from harness.runner import RunContext

logger = logging.getLogger(__name__)

HOP_FORECAST = "forecast_export"
FORECAST_DIR = "forecast"


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def find_execution(sfn: Any, machine_arn: str, bucket: str, key: str) -> dict[str, Any] | None:
    """The newest execution of ``machine_arn`` whose event names ``s3://bucket/key``."""
    executions = sfn.list_executions(stateMachineArn=machine_arn)["executions"]
    for execution in sorted(executions, key=lambda e: e["startDate"], reverse=True):
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        detail = json.loads(described.get("input") or "{}").get("event", {}).get("detail", {})
        if detail.get("bucket", {}).get("name") == bucket and (
            detail.get("object", {}).get("key") == key
        ):
            return described
    return None


def wait_for_execution(
    ctx: RunContext, bucket: str, key: str, timeout: float = 3600
) -> dict[str, Any]:
    """Wait for the execution the object's S3 event started, then until it ends."""
    world, names = ctx.world, ctx.stack
    assert world is not None and names is not None
    sfn = world.client("stepfunctions")
    machine = names.state_machine_arn("forecast")
    started = world.wait_for(
        lambda: find_execution(sfn, machine, bucket, key),
        what=f"the forecast execution for s3://{bucket}/{key}",
        timeout=60,
    )
    logger.info("forecast execution %s started", started["name"])

    def finished() -> dict[str, Any] | None:
        run = sfn.describe_execution(executionArn=started["executionArn"])
        return run if run["status"] != "RUNNING" else None

    return world.wait_for(finished, what=f"forecast execution {started['name']}", timeout=timeout)


def _read_json(s3: Any, uri: str) -> dict[str, Any]:
    bucket, key = _split(uri)
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def _read_export(s3: Any, uri: str) -> tuple[pd.DataFrame, list[str]]:
    bucket, prefix = _split(uri)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    keys = sorted(o["Key"] for o in listed if o["Key"].endswith(".csv") and "/_" not in o["Key"])
    frames = [pd.read_csv(io.BytesIO(s3.get_object(Bucket=bucket, Key=k)["Body"].read()))
              for k in keys]  # fmt: skip
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), keys


def stage_forecast(ctx: RunContext) -> None:
    """Wait for the forecast workflow and collect its export, metrics and chosen models."""
    from harness.runner import StageUnavailable

    assert ctx.world is not None and ctx.stack is not None
    if ctx.world.kind != "embedded":
        raise StageUnavailable(
            f"the local forecaster runs inside the embedded world; endpoint kind "
            f"{ctx.world.kind!r} has no SageMaker AutoML behind it"
        )
    manifest_key = ctx.scratch["manifest_key"]
    bucket = ctx.stack.bucket("forecast")
    execution = wait_for_execution(ctx, bucket, manifest_key)
    if execution["status"] != "SUCCEEDED":
        raise RuntimeError(
            f"forecast execution {execution['name']} {execution['status']}: "
            f"{execution.get('error')}: {execution.get('cause')}"
        )
    logger.info("forecast execution %s succeeded", execution["name"])
    output = json.loads(execution["output"])
    s3 = ctx.world.client("s3")
    accuracy = _read_json(s3, f"{output['backtest_results'].rstrip('/')}/accuracy-metrics.json")
    insights = _read_json(s3, f"{output['model_insights'].rstrip('/')}/candidates.json")
    export, keys = _read_export(s3, output["export_path"])

    out = ctx.out_dir / FORECAST_DIR
    out.mkdir(parents=True, exist_ok=True)
    export.to_csv(out / "export.csv", index=False, float_format="%.6g")
    # The input the forecaster saw, for notebooks and parity checks after the world is gone.
    (out / "manifest.json").write_text(json.dumps(output["manifest"], indent=1, sort_keys=True))
    bucket_in, prefix_in = _split(output["manifest"]["automl"]["input"])
    parts = s3.list_objects_v2(Bucket=bucket_in, Prefix=prefix_in).get("Contents", [])
    csv_keys = sorted(o["Key"] for o in parts if o["Key"].rsplit("/", 1)[-1].startswith("part-"))
    (out / "input.csv").write_bytes(
        b"".join(s3.get_object(Bucket=bucket_in, Key=k)["Body"].read() for k in csv_keys[:1])
    )
    (out / "accuracy-metrics.json").write_text(json.dumps(accuracy, indent=1, sort_keys=True))
    (out / "candidates.json").write_text(json.dumps(insights, indent=1, sort_keys=True))

    ctx.scratch["export_key"] = keys[-1] if keys else None
    ctx.scratch["export_p50_total"] = float(export["p50"].sum()) if "p50" in export else 0.0
    items_in = int(ctx.extra.get("etl", {}).get("target_items") or 0)
    items_out = int(export["item_id"].nunique()) if not export.empty else 0
    ctx.ledger.hop(HOP_FORECAST).add(received=items_in, written=items_out)
    metrics = summary_metrics(accuracy)
    baseline = insights.get("baseline", {}).get("metrics", {})
    horizon = int(output["manifest"]["horizon"])
    ctx.forecast = {
        # The execution's name is EventBridge's random id: in the log, not in the summary, which
        # must be the same for the same scenario and seed.
        "execution": {"status": execution["status"]},
        "automl_job": output["automl_job"],
        "horizon": horizon,
        "quantiles": output["manifest"]["quantiles"],
        "items": items_out,
        "export": {
            "objects": len(keys),
            "rows": len(export),
            "sha256": hashlib.sha256((out / "export.csv").read_bytes()).hexdigest(),
        },
        "export_complete": bool(items_out) and len(export) == items_out * horizon,
        "models": insights.get("items_per_model", {}),
        "metrics": metrics,
        "baseline": {"model": "SeasonalNaive", "metrics": baseline},
        "wape_ratio_to_baseline": (
            metrics["WAPE"] / baseline["WAPE"]
            if baseline.get("WAPE") and metrics.get("WAPE") is not None
            else None
        ),
    }


HOP_ENRICH = "forecast_enriched"


def athena_rows(
    ctx: RunContext, sql: str, parameters: list[str] | None = None
) -> list[dict[str, str | None]]:
    """Run one query through the Athena API and return its rows (header row dropped)."""
    assert ctx.world is not None and ctx.stack is not None
    athena = ctx.world.client("athena")
    request: dict[str, Any] = {
        "QueryString": sql,
        "QueryExecutionContext": {"Database": ctx.stack.stack.glue.database},
        "ResultConfiguration": {
            "OutputLocation": f"s3://{ctx.stack.bucket('athena-results')}/harness/"
        },
    }
    if parameters:
        request["ExecutionParameters"] = parameters
    query_id = athena.start_query_execution(**request)["QueryExecutionId"]

    def done() -> dict[str, Any] | None:
        status = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]
        return status if status["State"] in ("SUCCEEDED", "FAILED", "CANCELLED") else None

    status = ctx.world.wait_for(done, what=f"Athena query {query_id}", timeout=300)
    if status["State"] != "SUCCEEDED":
        raise RuntimeError(f"Athena query failed: {status.get('StateChangeReason')}: {sql}")
    rows: list[dict[str, str | None]] = []
    header: list[str] | None = None
    for page in athena.get_paginator("get_query_results").paginate(QueryExecutionId=query_id):
        for row in page["ResultSet"]["Rows"]:
            values = [cell.get("VarCharValue") for cell in row["Data"]]
            if header is None:
                header = [v or "" for v in values]
                continue
            rows.append(dict(zip(header, values, strict=True)))
    return rows


def stage_enrich(ctx: RunContext) -> None:
    """Wait for the enrichment the export's S3 event started; check the table through Athena."""
    from harness.runner import StageUnavailable

    assert ctx.world is not None and ctx.stack is not None
    if ctx.forecast is None:
        raise StageUnavailable("no forecast export in this run")
    bucket = ctx.stack.bucket("forecast")
    export_key = ctx.scratch["export_key"]
    sfn = ctx.world.client("stepfunctions")
    machine = ctx.stack.state_machine_arn("enrich")
    started = ctx.world.wait_for(
        lambda: find_execution(sfn, machine, bucket, export_key),
        what=f"the enrichment execution for s3://{bucket}/{export_key}",
        timeout=60,
    )
    execution = ctx.world.wait_for(
        lambda: (
            run
            if (run := sfn.describe_execution(executionArn=started["executionArn"]))["status"]
            != "RUNNING"
            else None
        ),
        what=f"enrichment execution {started['name']}",
        timeout=1800,
    )
    if execution["status"] != "SUCCEEDED":
        raise RuntimeError(
            f"enrichment execution {execution['status']}: {execution.get('error')}: "
            f"{execution.get('cause')}"
        )
    version = export_key.split("/")[-2]
    _keep_enriched(ctx, version)
    (row,) = athena_rows(
        ctx,
        "SELECT count(*) AS n, count(DISTINCT item_id) AS items, sum(p50) AS p50, "
        "count_if(name IS NULL) AS unknown_items, count_if(promotion_applied = 1) AS promoted "
        "FROM forecast_enriched WHERE version = ?",
        [f"'{version}'"],
    )
    rows = int(row["n"] or 0)
    export_rows = int(ctx.forecast["export"]["rows"])
    ctx.ledger.hop(HOP_ENRICH).add(received=export_rows, written=rows)
    p50_total = float(row["p50"] or 0.0)
    ctx.extra["enrich"] = {
        "execution": {"status": execution["status"]},
        "version": version,
        "rows": rows,
        "items": int(row["items"] or 0),
        "unknown_items": int(row["unknown_items"] or 0),
        "promoted_rows": int(row["promoted"] or 0),
        "p50_total": round(p50_total, 6),
        "matches_export": rows == export_rows
        and abs(p50_total - ctx.scratch["export_p50_total"]) <= 1e-6 * max(1.0, p50_total),
    }


ENRICHED_DIR = "enriched"


def _keep_enriched(ctx: RunContext, version: str) -> None:
    """Copy the enriched partition into the run directory (``dfp serve RUN_DIR`` loads it)."""
    assert ctx.world is not None and ctx.stack is not None
    s3 = ctx.world.client("s3")
    bucket = ctx.stack.bucket("analysis")
    prefix = f"forecast/version={version}/"
    target = ctx.out_dir / FORECAST_DIR / ENRICHED_DIR / f"version={version}"
    target.mkdir(parents=True, exist_ok=True)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    keys = sorted(
        o["Key"] for o in listed if not o["Key"].rsplit("/", 1)[-1].startswith(("_", "."))
    )
    for index, key in enumerate(keys):  # Spark's part names carry a random id: renumber them
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        (target / f"part-{index:05d}.parquet").write_bytes(body)
