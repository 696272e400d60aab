"""Stage ``enrich``: wait for the enrichment the export's S3 event started; read it back.

The export landing in the forecast bucket starts the enrichment workflow (an S3 event through
EventBridge, as on AWS); this stage waits for it, reads the enriched table back through the
Athena API, and keeps the enriched partition in the run directory for ``dfp serve``. For a
forecast by store it also asks the forecast API (the handler AWS runs) for one item at every
store, every region and in total, and checks the answers add up (``enrich.api``).
"""

from __future__ import annotations

import json
import logging

from harness.run import RunContext, StageSpec, StageUnavailable, hops
from harness.run.aws import athena_rows, failure_notices, wait_for_execution
from pipeline.serving.handler import Settings, make_handler

logger = logging.getLogger(__name__)


def run(ctx: RunContext) -> None:
    """Wait for the enrichment the export's S3 event started; check the table through Athena."""
    if ctx.summary.get("forecast") is None or ctx.export_key is None:
        raise StageUnavailable("no forecast export in this run")
    bucket = ctx.stack.bucket("forecast")
    export_key = ctx.export_key
    execution = wait_for_execution(
        ctx.world, ctx.stack.state_machine_arn("enrich"), bucket, export_key, timeout=1800
    )
    failed = execution["status"] != "SUCCEEDED"
    notices = failure_notices(ctx.world, ctx.stack, "enrich", f"s3://{bucket}/{export_key}",
                              expect=failed)  # fmt: skip
    if failed:
        raise RuntimeError(
            f"enrichment execution {execution['status']}: {execution.get('error')}: "
            f"{execution.get('cause')} ({len(notices)} failure notice(s) sent)"
        )
    version = export_key.split("/")[-2]
    _keep_enriched(ctx, version)
    (row,) = athena_rows(
        ctx.world,
        ctx.stack,
        "SELECT count(*) AS n, count(DISTINCT item_id) AS items, sum(p50) AS p50, "
        "count_if(name IS NULL) AS unknown_items, count_if(promotion_applied = 1) AS promoted, "
        "count(DISTINCT store_id) AS stores, "
        "count_if(store_id IS NOT NULL AND region IS NULL) AS unknown_stores "
        "FROM forecast_enriched WHERE version = ?",
        [f"'{version}'"],
    )
    rows = int(row["n"] or 0)
    export_rows = int(ctx.summary["forecast"]["export"]["rows"])
    ctx.ledger.hop(hops.FORECAST_ENRICHED).add(received=export_rows, written=rows)
    p50_total = float(row["p50"] or 0.0)
    by_region = {}
    if int(row["stores"] or 0):  # by store: roll the P50 up store → region → total in Athena
        by_region = {
            r["region"] or "": round(float(r["p50"] or 0.0), 6)
            for r in athena_rows(
                ctx.world,
                ctx.stack,
                "SELECT region, sum(p50) AS p50 FROM forecast_enriched "
                "WHERE version = ? GROUP BY region ORDER BY region",
                [f"'{version}'"],
            )
        }
    ctx.summary["enrich"] = {
        "execution": {"status": execution["status"]},
        # Every execution the S3 event started, by how it ended (several when EventBridge
        # delivered the event more than once): each must have succeeded.
        "executions": execution["executions"],
        "notices": len(notices),
        "version": version,
        "rows": rows,
        "items": int(row["items"] or 0),
        "unknown_items": int(row["unknown_items"] or 0),
        # By store: the stores forecast, and rows whose store the stores table lacks.
        "stores": int(row["stores"] or 0),
        "unknown_stores": int(row["unknown_stores"] or 0),
        "promoted_rows": int(row["promoted"] or 0),
        "p50_total": round(p50_total, 6),
        # By store: the P50 summed per region; the regions add up to the total.
        "p50_by_region": by_region,
        "rollup_matches_total": (
            abs(sum(by_region.values()) - p50_total) <= 1e-6 * max(1.0, p50_total)
            if by_region
            else None
        ),
        "matches_export": rows == export_rows
        and abs(p50_total - ctx.export_p50_total) <= 1e-6 * max(1.0, p50_total),
    }
    if by_region and ctx.stack.stack.api is not None:
        ctx.summary["enrich"]["api"] = _api_by_location(ctx, version)


def _api_by_location(ctx: RunContext, version: str) -> dict:
    """The forecast API on the run's table: the item sold at the most stores, asked for at each
    store, each region and in total. Its stores add up to each region and to the total (P50 per
    date), and the total's second request comes from the DynamoDB cache."""
    (pick,) = athena_rows(
        ctx.world,
        ctx.stack,
        "SELECT item_id, count(DISTINCT store_id) AS stores FROM forecast_enriched "
        "WHERE version = ? GROUP BY item_id ORDER BY count(DISTINCT store_id) DESC, item_id "
        "LIMIT 1",
        [f"'{version}'"],
    )
    item = pick["item_id"]
    api = make_handler(ctx.world.client("dynamodb"), ctx.world.client("athena"),
                       Settings.from_environment(ctx.stack.api_environment()))  # fmt: skip

    def p50(**where: str) -> dict[str, float]:
        event = {"httpMethod": "GET", "path": f"/forecast/{item}", "queryStringParameters": where}
        response = api(event, None)
        if response["statusCode"] == 404 and where:  # the item is not sold there
            return {}
        if response["statusCode"] != 200:
            raise RuntimeError(f"forecast API {where or 'total'} for {item}: {response['body']}")
        body = json.loads(response["body"])
        sources.append(body["source"])
        return {row["date"]: row["p50"] for row in body["forecast"]}

    sources: list[str] = []
    stores = json.loads(api({"httpMethod": "GET", "path": "/stores"}, None)["body"])["stores"]
    total = p50()
    by_store = {s["store_id"]: p50(store_id=s["store_id"]) for s in stores}
    by_region = {r: p50(region=r) for r in sorted({s["region"] for s in stores if s["region"]})}
    cached = p50()

    def adds_up(parts: list[dict[str, float]], whole: dict[str, float]) -> bool:
        return all(abs(sum(p.get(d, 0.0) for p in parts) - v) <= 1e-4 * max(1.0, v)
                   for d, v in whole.items())  # fmt: skip

    region_of = {s["store_id"]: s["region"] for s in stores}
    return {
        "item": item,
        "stores": len([s for s in by_store.values() if s]),
        "regions": len(by_region),
        "stores_add_up_to_total": adds_up(list(by_store.values()), total),
        "stores_add_up_to_regions": all(
            adds_up([v for s, v in by_store.items() if region_of[s] == r], whole)
            for r, whole in by_region.items()
        ),
        "cache_hit": sources[-1] == "cache" and cached == total,
    }


def _keep_enriched(ctx: RunContext, version: str) -> None:
    """Copy the enriched partition into the run directory (``dfp serve RUN_DIR`` loads it)."""
    s3 = ctx.world.client("s3")
    bucket = ctx.stack.bucket("analysis")
    prefix = f"forecast/version={version}/"
    target = ctx.out.enriched / f"version={version}"
    target.mkdir(parents=True, exist_ok=True)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    keys = sorted(
        o["Key"] for o in listed if not o["Key"].rsplit("/", 1)[-1].startswith(("_", "."))
    )
    for index, key in enumerate(keys):  # Spark's part names carry a random id: renumber them
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        (target / f"part-{index:05d}.parquet").write_bytes(body)


STAGE = StageSpec("enrich", run, needs=("export_key", "export_p50_total"))
