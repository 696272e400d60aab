"""Benchmark: Athena emulation latency on a scenario's staged data (default: standard).

Stages the scenario (``dfp run --until staging`` in an embedded world), then times, through boto3
from StartQueryExecution to SUCCEEDED, a group-by over all sales rows and a 3-way join
(sales × products × campaigns), each repeated; reports p50 and max per query. Results go to
benchmarks/results/.

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

from emulation import World
from harness.runner import run
from harness.scenario import load_scenario

RESULTS = Path(__file__).with_name("results")
QUERIES = {
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
        results = {}
        for name, sql in QUERIES.items():
            times = [timed(world, names["glue_database"], output, sql) for _ in range(args.repeat)]
            results[name] = {
                "p50_s": round(statistics.median(times), 3),
                "max_s": round(max(times), 3),
                "runs_s": [round(t, 3) for t in times],
            }
            print(name, results[name], file=sys.stderr)
    result = {
        "benchmark": "athena_queries",
        "scenario": scenario.name,
        "sales_rows": sales_rows,
        "repeat": args.repeat,
        "queries": results,
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"athena_queries-{scenario.name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
