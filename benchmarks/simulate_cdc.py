"""Benchmark: generate a scenario and serialise its DMS CDC messages to NDJSON.

Reports, per repetition and as medians: world generation seconds, DMS rendering + NDJSON write
seconds, CDC records per second, and, measured side by side in the same process on the same rows,
pyarrow writing the change tables as CSV (the plain-write practical limit), with the ratio. Peak
resident memory of the process is reported too. Results go to benchmarks/results/.

    .venv/bin/python benchmarks/simulate_cdc.py [SCENARIO] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.csv as pacsv

from emulation.dms import dms_messages, write_ndjson
from harness.scenario import load_scenario
from simulator.world import simulate

RESULTS = Path(__file__).with_name("results")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default="standard")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    scenario = load_scenario(args.scenario)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            t0 = time.perf_counter()
            world = simulate(scenario.world_spec())
            t1 = time.perf_counter()
            messages = dms_messages(world.changes, scenario.dms, world.start)
            count = write_ndjson(messages["message"], Path(tmp) / f"cdc-{i}.ndjson")
            t2 = time.perf_counter()
            for name, table in world.changes.items():
                pacsv.write_csv(table, Path(tmp) / f"{name}-{i}.csv")
            t3 = time.perf_counter()
            size = (Path(tmp) / f"cdc-{i}.ndjson").stat().st_size
            runs.append(
                {
                    "generate_s": round(t1 - t0, 3),
                    "cdc_serialise_s": round(t2 - t1, 3),
                    "cdc_records": count,
                    "cdc_bytes": size,
                    "cdc_records_per_s": round(count / (t2 - t1)),
                    "plain_csv_write_s": round(t3 - t2, 3),
                    "plain_csv_records_per_s": round(count / (t3 - t2)),
                }
            )
            print(json.dumps(runs[-1]), file=sys.stderr)
    median = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    median["ratio_cdc_to_plain_write"] = round(
        median["cdc_records_per_s"] / median["plain_csv_records_per_s"], 3
    )
    result = {
        "benchmark": "simulate_cdc",
        "scenario": scenario.name,
        "repeat": args.repeat,
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "median": median,
        "runs": runs,
        "goals": {"cdc_records_per_s": 500_000, "ratio_cdc_to_plain_write": 0.5},
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"simulate_cdc-{scenario.name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["median"], indent=2))
    print(f"peak RSS {result['peak_rss_mib']} MiB → {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
