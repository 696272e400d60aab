"""Benchmark: the forecast-input Glue job on a scenario's staged data, and the same in DuckDB SQL.

Stages the scenario (``dfp run --until staging`` in an embedded world), then, side by side on the
same staged Parquet in the world's S3:

* the Glue job through ``run_job`` (the real script in the local Spark session): the first run
  *cold* (the JVM and Spark session start inside it) and ``--repeat`` *warm* runs;
* the same transform written in DuckDB SQL (CDC latest-per-key, zero-filled daily target,
  related series through the horizon, item metadata), reading the same objects through httpfs
  and writing the same three CSV datasets to a local directory.

Reports medians and the warm Spark / DuckDB ratio, and checks both give the same total demand.
Results go to benchmarks/results/.

    .venv/bin/python benchmarks/etl_forecast_input.py [SCENARIO] [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import tempfile
import time
from pathlib import Path

from _results import save

from emulation import World
from emulation.athena import connect
from emulation.glue.jobs import run_job
from harness.runner import run
from harness.scenario import load_scenario

SQL = """
CREATE OR REPLACE TEMP VIEW staged AS
  SELECT * FROM read_parquet('{staged}**/[!_.]*', hive_partitioning = true,
                             union_by_name = true);
CREATE OR REPLACE TEMP VIEW latest AS
  SELECT "table", data, metadata.operation AS op,
         row_number() OVER (
           PARTITION BY "table",
             coalesce(data.product_id || '', '') || '|' || coalesce(data.campaign_id, '')
               || '|' || coalesce(CAST(data.sale_id AS VARCHAR), '')
           ORDER BY coalesce(metadata."transaction-id", -1) DESC, metadata."timestamp" DESC
         ) AS rn
  FROM staged WHERE "table" IN ('products', 'campaigns', 'sales');
CREATE OR REPLACE TEMP TABLE products AS
  SELECT data.product_id, data.category, data.brand, data.price_tier, data.list_price,
         data.launch_date
  FROM latest WHERE "table" = 'products' AND rn = 1 AND op <> 'delete';
CREATE OR REPLACE TEMP TABLE campaigns AS
  SELECT data.product_id, data.category, data.discount, data.channel, data.start_date,
         data.end_date
  FROM latest WHERE "table" = 'campaigns' AND rn = 1 AND op <> 'delete';
CREATE OR REPLACE TEMP TABLE sales AS
  SELECT data.product_id, data.quantity, CAST(data.sold_at AS DATE) AS day
  FROM latest WHERE "table" = 'sales' AND rn = 1 AND op <> 'delete';
CREATE OR REPLACE TEMP TABLE target AS
  WITH grid AS (
    SELECT product_id AS item_id,
           unnest(generate_series(greatest(launch_date, DATE '{start}'), DATE '{end}',
                                  INTERVAL 1 DAY))::DATE AS timestamp
    FROM products WHERE launch_date <= DATE '{end}'
  ), demand AS (
    SELECT product_id AS item_id, day AS timestamp, sum(quantity)::DOUBLE AS demand
    FROM sales WHERE day BETWEEN DATE '{start}' AND DATE '{end}' GROUP BY ALL
  )
  SELECT g.item_id, g.timestamp, coalesce(d.demand, 0.0) AS demand
  FROM grid g LEFT JOIN demand d USING (item_id, timestamp);
CREATE OR REPLACE TEMP TABLE related AS
  WITH grid AS (
    SELECT product_id AS item_id, category, list_price,
           unnest(generate_series(greatest(launch_date, DATE '{start}'), DATE '{last}',
                                  INTERVAL 1 DAY))::DATE AS timestamp
    FROM products WHERE launch_date <= DATE '{last}'
  ), covered AS (
    SELECT product_id, category, discount, channel,
           unnest(generate_series(start_date, end_date, INTERVAL 1 DAY))::DATE AS day
    FROM campaigns
  ), promos AS (
    SELECT g.item_id, g.timestamp,
           max(CASE WHEN c.channel = 'all' THEN c.discount ELSE 0 END) AS d
    FROM grid g JOIN covered c
      ON c.day = g.timestamp
     AND (c.product_id = g.item_id OR (c.product_id IS NULL AND c.category = g.category))
    GROUP BY ALL
  )
  SELECT g.item_id, g.timestamp, round(g.list_price * (1 - coalesce(p.d, 0)), 2) AS price,
         CASE WHEN p.item_id IS NULL THEN 0 ELSE 1 END AS promotion_applied
  FROM grid g LEFT JOIN promos p USING (item_id, timestamp);
COPY (SELECT * FROM target ORDER BY item_id, timestamp) TO '{out}/target.csv' (HEADER false);
COPY (SELECT * FROM related ORDER BY item_id, timestamp) TO '{out}/related.csv' (HEADER false);
COPY (SELECT product_id AS item_id, category, brand, price_tier FROM products ORDER BY 1)
  TO '{out}/metadata.csv' (HEADER false);
"""


def duckdb_transform(world: World, staged: str, start: str, end: str, horizon: int, out: Path
                     ) -> tuple[float, float]:  # fmt: skip
    con = connect(world.endpoint_url, world.region)
    last = (dt.date.fromisoformat(end) + dt.timedelta(days=horizon)).isoformat()
    began = time.perf_counter()
    con.execute(SQL.format(staged=staged, start=start, end=end, last=last, out=out))
    seconds = time.perf_counter() - began
    total = con.execute("SELECT sum(demand) FROM target").fetchone()[0]
    con.close()
    return seconds, float(total or 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default="standard")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    scenario = load_scenario(args.scenario)
    with World(region="us-east-1") as world, tempfile.TemporaryDirectory() as tmp:
        staged_run = run(scenario, Path(tmp) / "run", world=world, until="staging")
        window_end = dt.date.fromisoformat(staged_run.summary["simulation"]["window"]["end"][:10])
        end = (window_end - dt.timedelta(days=1)).isoformat()
        start = scenario.calendar.start.isoformat()
        stack = json.loads((Path(tmp) / "run" / "stack.json").read_text())
        for rule in stack["rules"].values():  # measure the job alone: no forecast behind it
            world.client("events").disable_rule(Name=rule)
        job = stack["glue_jobs"]["forecast-input"]
        arguments = {
            "--frequency": scenario.forecast.frequency,
            "--horizon": str(scenario.forecast.horizon),
            "--start_date": start,
            "--end_date": end,
            "--quantiles": ",".join(f"{q:g}" for q in scenario.forecast.quantiles),
        }
        spark_runs = []
        for _ in range(args.repeat + 1):
            began = time.perf_counter()
            outcome = run_job(world, job, arguments)
            spark_runs.append(time.perf_counter() - began)
            if outcome.state != "SUCCEEDED":
                raise SystemExit(f"the Glue job {outcome.state}: {outcome.error}")
        staged = f"s3://{stack['buckets']['staged']}/cdc/"
        duck_runs, totals = [], []
        for i in range(args.repeat):
            out = Path(tmp) / f"duck-{i}"
            out.mkdir()
            seconds, total = duckdb_transform(
                world, staged, start, end, scenario.forecast.horizon, out
            )
            duck_runs.append(seconds)
            totals.append(total)
        s3 = world.client("s3")
        bucket = stack["buckets"]["forecast"]
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"datasets/{end}/target_time_series/")[
            "Contents"
        ]
        key = next(o["Key"] for o in listed if o["Key"].rsplit("/", 1)[-1].startswith("part-"))
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        spark_total = sum(float(line.rsplit(",", 1)[1]) for line in body.splitlines() if line)
    warm = statistics.median(spark_runs[1:])
    duck = statistics.median(duck_runs)
    report = {
        "benchmark": "etl_forecast_input",
        "scenario": args.scenario,
        "staged_records": staged_run.summary["counts"]["s3_staged"]["in"],
        "spark_cold_s": round(spark_runs[0], 2),
        "spark_warm_s": [round(s, 2) for s in spark_runs[1:]],
        "spark_warm_median_s": round(warm, 2),
        "duckdb_s": [round(s, 2) for s in duck_runs],
        "duckdb_median_s": round(duck, 2),
        "ratio_spark_warm_to_duckdb": round(warm / duck, 2),
        "total_demand": {"spark": spark_total, "duckdb": totals[0]},
        "same_total_demand": abs(spark_total - totals[0]) < 1e-6,
        "goal": {"spark_warm_s": 60},
    }
    save(f"etl_forecast_input-{args.scenario}", report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
