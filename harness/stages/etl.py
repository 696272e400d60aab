"""Stage ``etl``: the forecast-input Glue job, as its schedule starts it when the window closes."""

from __future__ import annotations

import datetime as dt
import io
import json

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from harness.run import RunContext, StageSpec, hops
from harness.run.aws import job_run, split_uri
from pipeline.contracts.cdc import DMS_OWN_TABLES
from pipeline.contracts.periods import last_closed_day, next_period_start, period_start
from pipeline.contracts.staged import ECOMMERCE_PARTITION


def run(ctx: RunContext) -> None:
    """The forecast-input Glue job, as the schedule would start it when the window closes."""
    sim, scenario = ctx.simulation, ctx.scenario
    frequency = scenario.forecast.frequency
    # Whole periods only: a partial first or last month reads as a fall in demand.
    end = last_closed_day((sim.world.window_end - dt.timedelta(days=1)).date(), frequency)
    start = sim.world.start.date()
    if period_start(start, frequency) != start:
        start = next_period_start(start, frequency)
    arguments = {
        "--frequency": frequency,
        "--horizon": str(scenario.forecast.horizon),
        "--start_date": start.isoformat(),
        "--end_date": end.isoformat(),
        "--quantiles": ",".join(f"{q:g}" for q in scenario.forecast.quantiles),
    }
    if scenario.forecast.dimensions:
        arguments["--dimensions"] = ",".join(scenario.forecast.dimensions)
    job_name = ctx.stack.job_name("forecast-input")
    run = job_run(ctx.world, job_name, arguments)
    if run["JobRunState"] != "SUCCEEDED":
        tried = len(run.get("Attempts") or ()) or 1
        raise RuntimeError(f"Glue job {job_name} {run['JobRunState']} after {tried} run(s): "
                           f"{run.get('ErrorMessage')}")  # fmt: skip
    s3 = ctx.world.client("s3")
    bucket = ctx.stack.bucket("forecast")
    manifest_key = f"input/{end.isoformat()}.json"
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    ctx.manifest_key = manifest_key
    changes = _account_changes(ctx, manifest.get("changes") or {})
    rows: dict[str, int] = {}
    frames: dict[str, pa.Table] = {}
    target = manifest["schemas"]["target_time_series"][-1]
    for name, location in manifest["datasets"].items():
        if name == "automl_input":  # the same rows again, with a header; checked by the forecaster
            continue
        prefix = location.split(f"s3://{bucket}/", 1)[1]
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        parts = [o["Key"] for o in listed if o["Key"].rsplit("/", 1)[-1].startswith("part-")]
        body = b"".join(s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in sorted(parts))
        table = read_dataset(body, manifest["schemas"][name], target)
        frames[name] = table
        rows[name] = table.num_rows
    # The forecast input's demand is what was sold: the ground truth's units for existing items
    # (by store: at stores not closed by the end date, whose series are not forecast).
    truth = sim.truth_daily
    existing = pa.array(sim.products["product_id"].to_pylist())
    in_range = pc.and_(
        pc.and_(
            pc.greater_equal(truth["date"], pa.scalar(start, pa.date32())),
            pc.less_equal(truth["date"], pa.scalar(end, pa.date32())),
        ),
        pc.is_in(truth["product_id"], existing),
    )
    dimensions = list(manifest.get("dimensions") or [])
    if dimensions:
        stores = sim.world.stores
        closed = stores.filter(pc.less_equal(stores["closed_date"], pa.scalar(end, pa.date32())))
        in_range = pc.and_(in_range, pc.invert(pc.is_in(truth["store_id"], closed["store_id"])))
    truth_sold = pc.sum(truth.filter(in_range)["sold"]).as_py() or 0
    target_total = pc.sum(frames["target_time_series"][target]).as_py() or 0
    ctx.ledger.hop(hops.GLUE_FORECAST_INPUT).add(
        received=rows["target_time_series"], written=rows["target_time_series"]
    )
    ctx.summary["etl"] = {
        "job": job_name,
        "state": run["JobRunState"],
        # Runs it took: more than one when a run failed and Glue retried it (MaxRetries).
        "attempts": len(run.get("Attempts") or ()) or 1,
        "version": manifest["version"],
        "rows": rows,
        "items": len(set(frames["item_metadata"]["item_id"].to_pylist())),
        "target_items": len(set(frames["target_time_series"]["item_id"].to_pylist())),
        "dimensions": dimensions,
        # Series: items, or item × store pairs with dimensions.
        "target_series": _distinct(frames["target_time_series"], ["item_id", *dimensions]),
        "target_demand": float(target_total),
        "truth_sold": float(truth_sold),
        "demand_matches_truth": abs(float(target_total) - float(truth_sold)) < 1e-6,
        "changes": changes,
    }


def read_dataset(body: bytes, columns: list[str], target: str) -> pa.Table:
    """One of the job's headerless CSV datasets, its keys as written: Arrow would infer the item
    ids 007 and 7 as one number, and a store 0012 as 12. Only ``target`` (the target series' last
    column: item, dimensions, timestamp, target) is summed, so every other column stays text."""
    types = {c: pa.float64() if c == target else pa.string() for c in columns}
    if not body:
        return pa.table({c: pa.array([], types[c]) for c in columns})
    return pacsv.read_csv(
        io.BytesIO(body),
        read_options=pacsv.ReadOptions(column_names=columns),
        convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=False,
                                             quoted_strings_can_be_null=False),
    )  # fmt: skip


def _distinct(table: pa.Table, columns: list[str]) -> int:
    """How many distinct combinations of ``columns`` the table holds."""
    return table.select(columns).group_by(columns).aggregate([]).num_rows


def _account_changes(ctx: RunContext, changes: dict) -> dict:
    """The job's staged-change counts as a hop, and its rejected changes traced to the faults
    that produced them."""
    hop = ctx.ledger.hop(hops.GLUE_CDC_APPLY)
    control = int(changes.get("control_records", 0))  # DDL: read, and no change of the data
    hop.add(received=int(changes.get("read", 0)) + control,
            written=int(changes.get("applied", 0)),
            duplicates_removed=int(changes.get("duplicates_removed", 0)),
            consumed=control)  # fmt: skip
    for reason, count in (changes.get("rejected") or {}).items():
        hop.reject(reason, int(count))
    staged = ctx.summary.get("staging", {}).get("rows")
    if staged is not None:  # the job reads what staging delivered (the shop's events aside)
        dms_rows = sum(
            n for table, n in staged.items()
            if table != ECOMMERCE_PARTITION and not table.startswith(DMS_OWN_TABLES)
        )  # fmt: skip
        if dms_rows != hop.received:
            ctx.ledger.discrepancy(
                f"{hops.GLUE_CDC_APPLY}: read {hop.received} staged changes, staging delivered "
                f"{dms_rows}",
                lost=max(0, dms_rows - hop.received),
                duplicated=max(0, hop.received - dms_rows),
            )
    if ctx.faults is not None:
        ctx.faults.duplicates_removed[hops.GLUE_CDC_APPLY] = hop.duplicates_removed
    location = changes.get("rejected_location")
    if location and ctx.faults is not None:
        s3 = ctx.world.client("s3")
        bucket, prefix = split_uri(location)
        for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
            if not item["Key"].rsplit("/", 1)[-1].startswith("part-"):
                continue
            for line in s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].iter_lines():
                row = json.loads(line)
                ctx.faults.caught(hops.GLUE_CDC_APPLY, row["reason"], table=row["table"],
                                  transaction_id=row.get("transaction_id"))  # fmt: skip
    return {k: v for k, v in changes.items() if k != "rejected_location"}


STAGE = StageSpec("etl", run, needs=("simulation",), gives=("manifest_key",))
