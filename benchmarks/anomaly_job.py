"""Benchmark: the anomaly job's throughput after start-up, beside the floors any form of it meets.

Input: the scenario's history sales as DMS ``insert`` messages in time order (commit time = sale
time), written to a file. Each form (``FORMS``, described at ``DRIVER``) runs in a PyFlink
mini-cluster with a bounded file source (``filesystem``, raw lines) instead of Kinesis and
``blackhole`` sinks, once on a small input and once on the full one, each in a fresh process;
throughput after start-up = (records_big − records_small) / (seconds_big − seconds_small), and
the CPU the machine spent per record between the two (busy time from ``/proc/stat``, whatever
process spent it: the JVM, the Python worker). Forms alternate in each of ``--repeat`` rounds and
medians are reported. The pure-Python detector over the same lines in this process is measured
too. The results show where the time goes (see docs/streaming.md, "Throughput"). Results go to
benchmarks/results/.

    .venv/bin/python benchmarks/anomaly_job.py [SCENARIO] [--records 200000] [--small 2000]
        [--repeat 3] [--forms job,sql_only,…]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
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
logger = logging.getLogger(__name__)

# Each form runs in a fresh process over a file of lines: the job as deployed ("job"), and the
# floors a form of it cannot go under: the job's own CDC table (JSON event time, watermarks) into a
# blackhole with no Python ("sql_only"); the same rows through a Python function that does nothing
# ("python_passthrough", and keyed as the job's detection is, "python_keyed_passthrough"); and a
# form that batches records by arrival in SQL (200 ms processing-time windows, JSON_STRING of
# ARRAY_AGG) so that Python sees one element per batch ("batched_by_arrival": the detector over
# each batch in event-time order, drained to the highest watermark its records saw).
DRIVER = """
import heapq, json, sys, time
from pyflink.common import Row, Types
from pyflink.datastream import StreamExecutionEnvironment
from pyflink.datastream.functions import KeyedProcessFunction, ProcessFunction
from pyflink.table import StreamTableEnvironment
from pipeline.anomaly.detector import DetectorConfig
from pipeline.anomaly.main import create_tables, detect, load_profiles
from pipeline.anomaly.step import AnomalyDetection

path, profiles_path, form = sys.argv[1:4]
profiles = load_profiles(profiles_path)
env = StreamExecutionEnvironment.get_execution_environment()
env.set_parallelism(1)
t_env = StreamTableEnvironment.create(env)
create_tables(t_env, f"'connector' = 'filesystem', 'path' = 'file://{path}', 'format' = 'raw'",
              "'connector' = 'blackhole'", "'connector' = 'blackhole'")
t_env.execute_sql("CREATE TABLE counted (`n` BIGINT) WITH ('connector' = 'blackhole')")
COUNT = Types.ROW_NAMED(["n"], [Types.LONG()])
EPOCH = "TIMESTAMP '1970-01-01 00:00:00'"


class Nothing(ProcessFunction):
    def process_element(self, value, ctx):
        if value[0] is None:
            yield Row(0)


class KeyedNothing(KeyedProcessFunction):
    def process_element(self, value, ctx):
        if value[0] is None:
            yield Row(0)


class Batches(KeyedProcessFunction):
    def open(self, runtime_context):
        self.step = AnomalyDetection(profiles, DetectorConfig(), 600)
        self.pending, self.arrivals, self.outliers = [], 0, 0

    def process_element(self, value, ctx):
        for line, stamp in zip(json.loads(value[0]), json.loads(value[1])):
            self.arrivals += 1
            heapq.heappush(self.pending, (stamp, self.arrivals, line))
        end = ctx.timer_service().current_watermark() >= 2**62  # the input has ended
        passed = value[2] if value[2] is not None else -2**62
        while self.pending and (end or self.pending[0][0] <= passed):
            rows = self.step.process(heapq.heappop(self.pending)[2])
            self.outliers += sum(1 for r in rows if r.kind == "outlier")
        yield Row(self.outliers)


began = time.perf_counter()
if form == "job":
    detect(t_env, profiles, DetectorConfig(), 600).execute().wait()
elif form == "sql_only":
    t_env.execute_sql("INSERT INTO counted SELECT CHAR_LENGTH(`line`) FROM cdc "
                      "WHERE `ts` < TIMESTAMP '1971-01-01 00:00:00'").wait()
elif form in ("python_passthrough", "python_keyed_passthrough"):
    lines = t_env.to_data_stream(t_env.from_path("cdc"))
    if form == "python_passthrough":
        out = lines.process(Nothing(), output_type=COUNT)
    else:
        out = lines.key_by(lambda row: 0, key_type=Types.INT()).process(KeyedNothing(), COUNT)
    t_env.from_data_stream(out).execute_insert("counted").wait()
else:
    t_env.create_temporary_view("tagged", t_env.sql_query(
        "SELECT `line`, `ts`, PROCTIME() AS `pt`, CURRENT_WATERMARK(`ts`) AS `wm` FROM cdc"))
    batches = t_env.sql_query(
        f"SELECT JSON_STRING(ARRAY_AGG(`line`)) AS `lines`, "
        f"JSON_STRING(ARRAY_AGG(TIMESTAMPDIFF(SECOND, {EPOCH}, `ts`))) AS `stamps`, "
        f"TIMESTAMPDIFF(SECOND, {EPOCH}, MAX(`wm`)) AS `passed` FROM TABLE(TUMBLE(TABLE tagged, "
        "DESCRIPTOR(`pt`), INTERVAL '0.2' SECOND)) GROUP BY window_start, window_end")
    out = (t_env.to_data_stream(batches).key_by(lambda row: 0, key_type=Types.INT())
           .process(Batches(), COUNT))
    with out.execute_and_collect() as counts:
        outliers = max((row[0] for row in counts), default=0)
    print(json.dumps({"seconds": time.perf_counter() - began, "outliers": outliers}))
    sys.exit(0)
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


FORMS = ("job", "sql_only", "python_passthrough", "python_keyed_passthrough", "batched_by_arrival")


def busy_cpu_seconds() -> float:
    """CPU time the whole machine spent busy so far (Linux ``/proc/stat``): a form's cost per
    record is the busy time its big run adds over its small one, whatever process spent it."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def run_job(lines: list[str], profiles_path: Path, tmp: Path, form: str = "job") -> dict:
    """One fresh process running ``form`` over ``lines``: its seconds (job start to end, from
    inside), the machine's busy CPU seconds meanwhile, and what the form reports."""
    path = tmp / f"input-{len(lines)}.txt"
    if not path.exists():
        path.write_text("\n".join(lines) + "\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    cpu = busy_cpu_seconds()
    done = subprocess.run([sys.executable, "-c", DRIVER, str(path), str(profiles_path), form],
                          env=env, capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"the {form} form failed:\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return {**report, "busy_cpu_s": busy_cpu_seconds() - cpu}


def after_startup(small: dict, big: dict, records: int) -> dict:
    """Records/s and CPU µs per record between a small and a big run of one form."""
    seconds = max(1e-9, big["seconds"] - small["seconds"])
    return {
        "records_per_s": records / seconds,
        "cpu_us_per_record": 1e6 * (big["busy_cpu_s"] - small["busy_cpu_s"]) / records,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default="standard")
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--small", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each form (medians)")
    parser.add_argument("--forms", default=",".join(FORMS), help="comma-separated subset")
    args = parser.parse_args()
    forms = [f.strip() for f in args.forms.split(",") if f.strip()]
    unknown = sorted(set(forms) - set(FORMS))
    if unknown:
        parser.error(f"--forms: unknown {', '.join(unknown)} (known: {', '.join(FORMS)})")
    load_scenario(args.scenario)
    lines, profiles = sale_messages(args.scenario, args.records)
    step = AnomalyDetection(profiles_from_document(profiles), DetectorConfig(), 600)
    began = time.perf_counter()
    flagged = sum(1 for line in lines for row in step.process(line) if row.kind == "outlier")
    python_seconds = time.perf_counter() - began
    delta = len(lines) - args.small
    measured: dict[str, list[dict]] = {form: [] for form in forms}
    outliers: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        profiles_path = Path(tmp) / "profiles.json"
        profiles_path.write_text(json.dumps(profiles))
        # Forms alternate within each round, so a noisy minute hits them alike.
        for k in range(args.repeat):
            for form in forms:
                small = run_job(lines[: args.small], profiles_path, Path(tmp), form)
                big = run_job(lines, profiles_path, Path(tmp), form)
                measured[form].append(after_startup(small, big, delta))
                if "outliers" in big:
                    outliers[form] = big["outliers"]
                logger.info("round %d/%d %s: %.0f records/s", k + 1, args.repeat, form,
                            measured[form][-1]["records_per_s"])  # fmt: skip
    results = {
        form: {
            "records_per_s_after_startup": round(statistics.median(
                m["records_per_s"] for m in runs)),
            "cpu_us_per_record": round(statistics.median(m["cpu_us_per_record"] for m in runs), 1),
            "runs": len(runs),
        }
        for form, runs in measured.items()
    }  # fmt: skip
    for form, count in outliers.items():
        results[form]["outliers"] = count
    report = {
        "benchmark": "anomaly_job",
        "scenario": args.scenario,
        "records": len(lines),
        "small_records": args.small,
        "forms": results,
        "detector_in_process": {
            "seconds": round(python_seconds, 2),
            "records_per_s": round(len(lines) / python_seconds),
            "outliers": flagged,
        },
        "goal": {"records_per_s": 50_000},
    }
    save(f"anomaly_job-{args.scenario}", report)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    raise SystemExit(main())
