"""Benchmark: Athena emulation latency on a scenario's staged data (default: standard).

Stages the scenario (``dfp run --until staging`` in an embedded world), then times, through boto3
from StartQueryExecution to SUCCEEDED, a plain group-by over all sales rows (the goal: p50
≤ 0.5 s on ``standard``), one with date truncation and a percentile, and a 3-way join
(sales × products × campaigns), each repeated; reports the first (cold: the objects are fetched
and decoded) and p50/max of the repeats. Side by side, in the same process, DuckDB runs the same
SQL over the same Parquet objects copied to a local folder (the floor the emulation is held to);
the ratio of the two p50s is reported. Results go to benchmarks/results/.

    .venv/bin/python benchmarks/athena_queries.py [SCENARIO] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import sqlglot

from emulation import World
from harness.runner import run
from harness.scenario import load_scenario

RESULTS = Path(__file__).with_name("results")
QUERIES = {
    "group_by_plain": "SELECT data.product_id, sum(data.quantity) AS units FROM staged_cdc "
    "WHERE \"table\" = 'sales' GROUP BY 1",
    "group_by_sales": "SELECT data.product_id, date_trunc('month', data.sold_at) AS month, "
    "sum(data.quantity) AS units, approx_percentile(data.unit_price, 0.5) AS p50_price "
    "FROM staged_cdc WHERE \"table\" = 'sales' GROUP BY 1, 2",
    "join_3_way": "WITH s AS (SELECT data.product_id AS pid, data.quantity AS q, "
    "CAST(data.sold_at AS date) AS d FROM staged_cdc WHERE \"table\" = 'sales'), "
    "p AS (SELECT data.product_id AS pid, data.category AS category FROM staged_cdc "
    "WHERE \"table\" = 'products'), c AS (SELECT data.category AS category, data.start_date AS "
    "sd, data.end_date AS ed FROM staged_cdc WHERE \"table\" = 'campaigns' AND "
    "data.scope = 'category') SELECT p.category, count(*) AS lines, sum(s.q) AS units "
    "FROM s JOIN p ON s.pid = p.pid LEFT JOIN c ON c.category = p.category AND s.d BETWEEN "
    "c.sd AND c.ed GROUP BY 1",
}


def timed(world: World, database: str, output: str, sql: str) -> float:
    athena = world.client("athena")
    began = time.perf_counter()
    qid = athena.start_query_execution(
        QueryString=sql,
        QueryExecutionContext={"Database": database},
        ResultConfiguration={"OutputLocation": output},
    )["QueryExecutionId"]
    while True:
        status = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]
        if status["State"] == "SUCCEEDED":
            return time.perf_counter() - began
        if status["State"] == "FAILED":
            raise RuntimeError(status.get("StateChangeReason"))
        time.sleep(0.02)


def local_copy(world: World, names: dict, folder: Path) -> tuple[str, list[str]]:
    """The staged table's objects copied to ``folder``; its location glob and partition keys."""
    glue = world.client("glue").get_table(DatabaseName=names["glue_database"], Name="staged_cdc")
    location = glue["Table"]["StorageDescriptor"]["Location"]
    bucket, _, prefix = location[len("s3://") :].partition("/")
    s3 = world.client("s3")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            target = folder / item["Key"][len(prefix) :].lstrip("/")
            if target.name.startswith(("_", ".")):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
    return f"{folder}/**/*", [k["Name"] for k in glue["Table"]["PartitionKeys"]]


def duckdb_direct(glob: str, keys: list[str], sql: str, repeat: int) -> list[float]:
    """The same query in DuckDB over local Parquet files, the table as a view over them."""
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    types = ", ".join(f"'{k}': 'VARCHAR'" for k in keys)
    con.execute(
        f"CREATE VIEW staged_cdc AS SELECT * FROM read_parquet('{glob}', hive_partitioning = true"
        f", union_by_name = true, hive_types = {{{types}}})"
    )
    translated = sqlglot.transpile(sql, read="trino", write="duckdb")[0]
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        con.execute(translated).fetchall()
        times.append(time.perf_counter() - began)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default="standard")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    scenario = load_scenario(args.scenario)
    with World(region="us-east-1") as world, tempfile.TemporaryDirectory() as tmp:
        summary = run(scenario, Path(tmp) / "r", world=world, until="staging").summary
        names = json.loads((Path(tmp) / "r" / "stack.json").read_text())
        output = f"s3://{names['buckets']['athena-results']}/bench/"
        sales_rows = summary["staging"]["rows"]["sales"]
        glob, keys = local_copy(world, names, Path(tmp) / "local")
        results = {}
        for name, sql in QUERIES.items():
            first = timed(world, names["glue_database"], output, sql)
            times = [timed(world, names["glue_database"], output, sql) for _ in range(args.repeat)]
            direct = duckdb_direct(glob, keys, sql, args.repeat)
            results[name] = {
                "athena_first_s": round(first, 3),
                "athena_p50_s": round(statistics.median(times), 3),
                "athena_max_s": round(max(times), 3),
                "athena_runs_s": [round(t, 3) for t in times],
                "duckdb_local_p50_s": round(statistics.median(direct), 3),
                "ratio_p50": round(statistics.median(times) / statistics.median(direct), 2),
            }
            print(name, results[name], file=sys.stderr)
    result = {
        "benchmark": "athena_queries",
        "scenario": scenario.name,
        "sales_rows": sales_rows,
        "repeat": args.repeat,
        "goal": "group_by_plain athena_p50_s <= 0.5",
        "goal_met": results["group_by_plain"]["athena_p50_s"] <= 0.5,
        "queries": results,
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"athena_queries-{scenario.name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
