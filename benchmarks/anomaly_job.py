"""Benchmark: the anomaly job's throughput after start-up, and the detector alone, side by side.

Input: the scenario's history sales as DMS ``insert`` messages in time order (commit time = sale
time), written to a file. The job's own tables and detection (``pipeline.anomaly.main``) run in a
PyFlink mini-cluster with a bounded file source (``filesystem``, raw lines) instead of Kinesis and
``blackhole`` sinks, once on a small input and once on the full one, each in a fresh process;
throughput after start-up = (records_big − records_small) / (seconds_big − seconds_small). The
pure-Python detector over the same lines in this process is measured too (the ceiling the Flink
Python operator can approach). A SQL form of the detector is not written (drops and bursts are
stateful per product and per day; see docs/streaming.md). Results go to benchmarks/results/.

    .venv/bin/python benchmarks/anomaly_job.py [SCENARIO] [--records 200000] [--small 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.compute as pc
from _results import save

from harness.scenario import load_scenario
from harness.simulation import simulate
from harness.stages.anomaly import history_profiles
from pipeline.anomaly.detector import DetectorConfig, profiles_from_document
from pipeline.anomaly.step import AnomalyDetection

REPO = Path(__file__).resolve().parent.parent

DRIVER = """
import json, sys, time
from pyflink.datastream import StreamExecutionEnvironment
from pyflink.table import StreamTableEnvironment
from pipeline.anomaly.detector import DetectorConfig
from pipeline.anomaly.main import create_tables, detect, load_profiles

path, profiles_path = sys.argv[1:3]
profiles = load_profiles(profiles_path)
env = StreamExecutionEnvironment.get_execution_environment()
env.set_parallelism(1)
t_env = StreamTableEnvironment.create(env)
create_tables(t_env, f"'connector' = 'filesystem', 'path' = 'file://{path}', 'format' = 'raw'",
              "'connector' = 'blackhole'", "'connector' = 'blackhole'")
began = time.perf_counter()
detect(t_env, profiles, DetectorConfig(), 600).execute().wait()
print(json.dumps({"seconds": time.perf_counter() - began}))
"""


def sale_messages(scenario: str, limit: int) -> tuple[list[str], dict]:
    sim = simulate(scenario)
    sales = sim.world.changes["sales"]
    history = sales.filter(pc.equal(sales["_op"], "load"))
    history = history.sort_by("sold_at").slice(0, limit)
    lines = []
    for row in history.select(
        ["sale_id", "product_id", "quantity", "unit_price", "channel", "sold_at"]
    ).to_pylist():
        stamp = row["sold_at"].strftime("%Y-%m-%dT%H:%M:%SZ")
        data = {**row, "sold_at": stamp}
        lines.append(json.dumps({"data": data, "metadata": {
            "timestamp": stamp, "record-type": "data", "operation": "insert",
            "partition-key-type": "primary-key", "schema-name": "retail",
            "table-name": "sales"}}, separators=(",", ":")))  # fmt: skip
    return lines, history_profiles(sim)


def run_job(lines: list[str], profiles_path: Path, tmp: Path) -> float:
    path = tmp / f"input-{len(lines)}.txt"
    path.write_text("\n".join(lines) + "\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    done = subprocess.run([sys.executable, "-c", DRIVER, str(path), str(profiles_path)], env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"the job failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["seconds"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default="standard")
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--small", type=int, default=2_000)
    args = parser.parse_args()
    load_scenario(args.scenario)
    lines, profiles = sale_messages(args.scenario, args.records)
    step = AnomalyDetection(profiles_from_document(profiles), DetectorConfig(), 600)
    began = time.perf_counter()
    flagged = sum(1 for line in lines for row in step.process(line) if row.kind == "outlier")
    python_seconds = time.perf_counter() - began
    with tempfile.TemporaryDirectory() as tmp:
        profiles_path = Path(tmp) / "profiles.json"
        profiles_path.write_text(json.dumps(profiles))
        small = run_job(lines[: args.small], profiles_path, Path(tmp))
        big = run_job(lines, profiles_path, Path(tmp))
    rate = (len(lines) - args.small) / max(1e-9, big - small)
    report = {
        "benchmark": "anomaly_job",
        "scenario": args.scenario,
        "records": len(lines),
        "small_records": args.small,
        "flink_python_function": {
            "seconds_small": round(small, 2),
            "seconds_big": round(big, 2),
            "records_per_s_after_startup": round(rate),
        },
        "detector_in_process": {
            "seconds": round(python_seconds, 2),
            "records_per_s": round(len(lines) / python_seconds),
            "outliers": flagged,
        },
        "sql_form": "not written",
        "goal": {"records_per_s": 50_000},
    }
    save(f"anomaly_job-{args.scenario}", report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
