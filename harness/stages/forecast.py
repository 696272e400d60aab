"""Stage ``forecast``: wait for the workflow the manifest's S3 event started, and collect it.

Nothing here starts the forecast: the ETL stage's manifest landing in the forecast bucket is the
S3 event EventBridge turns into a Step Functions execution, as on AWS. This stage finds that
execution, waits for it, and reads what it left (export, backtest metrics, chosen models) into the
summary's ``forecast`` section and the run directory's ``forecast/`` folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import pandas as pd

from harness.run import RunContext, StageSpec, StageUnavailable, hops
from harness.run.aws import failure_notices, split_uri, wait_for_execution
from harness.runs import read_run_csv
from pipeline.contracts.accuracy import summary_metrics

logger = logging.getLogger(__name__)


def _read_json(s3: Any, uri: str) -> dict[str, Any]:
    bucket, key = split_uri(uri)
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def _read_export(s3: Any, uri: str) -> tuple[pd.DataFrame, list[str]]:
    bucket, prefix = split_uri(uri)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    keys = sorted(o["Key"] for o in listed if o["Key"].endswith(".csv") and "/_" not in o["Key"])
    # item ids and stores as written (007 is not 7, NA is an id, not a gap)
    frames = [read_run_csv(s3.get_object(Bucket=bucket, Key=k)["Body"].read()) for k in keys]
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), keys


def run(ctx: RunContext) -> None:
    """Wait for the forecast workflow and collect its export, metrics and chosen models."""
    if not ctx.world.in_process:
        raise StageUnavailable(
            f"the local forecaster runs inside the embedded moto; endpoint kind "
            f"{ctx.world.kind!r} has no SageMaker AutoML behind it"
        )
    manifest_key = ctx.manifest_key
    bucket = ctx.stack.bucket("forecast")
    execution = wait_for_execution(
        ctx.world, ctx.stack.state_machine_arn("forecast"), bucket, manifest_key
    )
    uri = f"s3://{bucket}/{manifest_key}"
    failed = execution["status"] != "SUCCEEDED"
    notices = failure_notices(ctx.world, ctx.stack, "forecast", uri, expect=failed)
    if failed:
        _failed(ctx, execution, notices)
        return
    logger.info("forecast execution %s succeeded", execution["name"])
    output = json.loads(execution["output"])
    s3 = ctx.world.client("s3")
    accuracy = _read_json(s3, f"{output['backtest_results'].rstrip('/')}/accuracy-metrics.json")
    insights = _read_json(s3, f"{output['model_insights'].rstrip('/')}/candidates.json")
    export, keys = _read_export(s3, output["export_path"])

    out = ctx.out.forecast
    out.mkdir(parents=True, exist_ok=True)
    export.to_csv(out / "export.csv", index=False, float_format="%.6g")
    # The input the forecaster saw, for notebooks and parity checks after the world is gone.
    (out / "manifest.json").write_text(json.dumps(output["manifest"], indent=1, sort_keys=True))
    bucket_in, prefix_in = split_uri(output["manifest"]["automl"]["input"])
    parts = s3.list_objects_v2(Bucket=bucket_in, Prefix=prefix_in).get("Contents", [])
    csv_keys = sorted(o["Key"] for o in parts if o["Key"].rsplit("/", 1)[-1].startswith("part-"))
    (out / "input.csv").write_bytes(
        b"".join(s3.get_object(Bucket=bucket_in, Key=k)["Body"].read() for k in csv_keys[:1])
    )
    (out / "accuracy-metrics.json").write_text(json.dumps(accuracy, indent=1, sort_keys=True))
    (out / "candidates.json").write_text(json.dumps(insights, indent=1, sort_keys=True))

    ctx.export_key = keys[-1] if keys else None
    ctx.export_p50_total = float(export["p50"].sum()) if "p50" in export else 0.0
    dimensions = list(output["manifest"].get("dimensions") or [])
    series_in = int(ctx.summary.get("etl", {}).get("target_series") or 0)
    series_out = len(export.groupby(["item_id", *dimensions])) if not export.empty else 0
    items_out = int(export["item_id"].nunique()) if not export.empty else 0
    hop = ctx.ledger.hop(hops.FORECAST_EXPORT)
    hop.add(received=series_in, written=series_out)
    skipped = len(insights.get("skipped_items") or [])
    if skipped:  # the forecaster's own report of what it could not forecast
        hop.reject("series with no target value and no item metadata", skipped)
    metrics = summary_metrics(accuracy)
    baseline = insights.get("baseline", {}).get("metrics", {})
    horizon = int(output["manifest"]["horizon"])
    ctx.summary["forecast"] = {
        # The execution's name is EventBridge's random id: in the log, not in the summary, which
        # must be the same for the same scenario and seed.
        "execution": {"status": execution["status"]},
        # Every execution the S3 event started, by how it ended (several when EventBridge
        # delivered the event more than once): each must have succeeded.
        "executions": execution["executions"],
        "notices": len(notices),
        "automl_job": output["automl_job"],
        "horizon": horizon,
        "quantiles": output["manifest"]["quantiles"],
        "items": items_out,
        "dimensions": dimensions,
        "series": series_out,
        "export": {
            "objects": len(keys),
            "rows": len(export),
            "sha256": hashlib.sha256((out / "export.csv").read_bytes()).hexdigest(),
        },
        "export_complete": bool(series_out) and len(export) == series_out * horizon,
        "models": insights.get("items_per_model", {}),
        # Held-out windows (nothing was learned on them) and the selection windows the per-item
        # ensembles were learned on (optimistic by construction): both, so the gap shows.
        "metrics": metrics,
        "selection_metrics": insights.get("selection"),
        "selection_windows": insights.get("selection_windows"),
        "unaligned_series": len(insights.get("unaligned_series") or {}),
        "not_backtested": len(insights.get("not_backtested") or []),
        "skipped_items": skipped,
        "baseline": {"model": "SeasonalNaive", "metrics": baseline},
        "wape_ratio_to_baseline": (
            metrics["WAPE"] / baseline["WAPE"]
            if baseline.get("WAPE") and metrics.get("WAPE") is not None
            else None
        ),
    }


def _failed(ctx: RunContext, execution: dict[str, Any], notices: list[dict[str, Any]]) -> None:
    """The workflow failed: recorded with its failure notices. When the scenario's faults made
    it fail, that is the drill's expected outcome: the stage ends and gives no export (so the
    enrichment has nothing to do). Otherwise the run fails here."""
    error, cause = execution.get("error"), execution.get("cause")
    ctx.summary["forecast"] = {
        "execution": {"status": execution["status"], "error": error, "cause": cause},
        "executions": execution["executions"],
        # What the alarm topic's subscribers were sent about this input (the execution's
        # name is EventBridge's random id: left out, so the summary is the same run to run).
        "notices": len(notices),
        "notice": {k: v for k, v in notices[0].items() if k != "execution"} if notices else None,
        "outcome": f"the forecast workflow failed: {error}",
    }
    if not ctx.scenario.faults.sagemaker.active:
        raise RuntimeError(
            f"forecast execution {execution['name']} {execution['status']}: {error}: {cause}"
        )
    logger.info("forecast execution %s failed as the scenario's faults asked: %s: %s",
                execution["name"], error, cause)  # fmt: skip


STAGE = StageSpec(
    "forecast", run, needs=("manifest_key",), gives=("export_key", "export_p50_total")
)
