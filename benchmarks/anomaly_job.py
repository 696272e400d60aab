"""Benchmark: the anomaly job's throughput after start-up, beside the floors any form of it meets.

Input: the scenario's history sales as DMS ``insert`` messages in time order (commit time = sale
time), written to a file. Each form (``FORMS``, described at ``DRIVER``) runs in a PyFlink
mini-cluster with a bounded file source (``filesystem``, raw lines) instead of Kinesis and
``blackhole`` sinks (the job and the Python operator count their outliers through a collect
sink), once on a small input and once on the full one, each in a fresh process; throughput after
start-up = (records_big − records_small) / (seconds_big − seconds_small), and the CPU the machine
spent per record between the two (busy time from ``/proc/stat``, whatever process spent it: the
JVM, the Python worker). The small input is 200,000 records by default, so that start-up includes
the JIT compiling the job's code (the first 200,000 records run at half speed); the job is also
measured from a 2,000-record run (``records_per_s_from_tiny_run``). Forms alternate in each of
``--repeat`` rounds and medians are reported. The detector alone over the same lines, in this
Python process and in a JVM (``Replay``, no Flink), is measured too. The results show where the
time goes (see docs/streaming.md, "Throughput"). Results go to benchmarks/results/.

    .venv/bin/python benchmarks/anomaly_job.py [SCENARIO] [--records 800000] [--small 200000]
        [--tiny 2000] [--repeat 3] [--forms job,python_operator,sql_only,…]
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

from emulation.kinesisanalyticsv2 import detection_jar, flink_classpath
from harness.scenario import load_scenario
from harness.simulation import simulate
from harness.stages.anomaly import history_profiles
from pipeline.anomaly.detector import DetectorConfig, profiles_from_document
from pipeline.anomaly.step import AnomalyDetection

REPO = Path(__file__).resolve().parent.parent
logger = logging.getLogger(__name__)

# Each form runs in a fresh process over a file of lines: the job as deployed ("job": the detection
# in the JVM, loaded from its jar through ``pipeline.jars`` as Managed Flink loads the
# application's jar), the job's previous form with the detection in a keyed Python operator, a
# record at a time ("python_operator"), and the floors a Python form cannot go under: the job's
# own CDC table (JSON event time, watermarks) into a blackhole with no Python ("sql_only"); the
# same rows through a Python function that does nothing
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
from pipeline.anomaly.detector import DetectorConfig, profiles_from_document
from pipeline.anomaly.main import create_tables, detect, load_profiles
from pipeline.anomaly.step import OUTPUT_FIELDS, AnomalyDetection, Held

path, profiles_path, form, jar = sys.argv[1:5]
document = load_profiles(profiles_path)
profiles = profiles_from_document(json.loads(document))
env = StreamExecutionEnvironment.get_execution_environment()
env.set_parallelism(1)
env.add_jars(f"file://{jar}")  # before the table environment, whose class loader it shapes
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


class PythonDetect(KeyedProcessFunction):
    # The detection as the job ran it before it moved to the JVM: records held in keyed state
    # until the watermark passes them, then the detector in event-time order.

    def open(self, runtime_context):
        from pyflink.datastream.state import ValueStateDescriptor
        self.held = runtime_context.get_state(
            ValueStateDescriptor("detection", Types.PICKLED_BYTE_ARRAY()))

    def _held(self):
        held = self.held.value()
        if held is None:
            return Held(AnomalyDetection(profiles, DetectorConfig(), 600))
        held.step.detector.attach(profiles, DetectorConfig())
        return held

    def process_element(self, value, ctx):
        held = self._held()
        stamp = ctx.timestamp() or 0
        held.arrivals += 1
        heapq.heappush(held.pending, (stamp, held.arrivals, value[0]))
        if held.timer is None or stamp < held.timer:
            ctx.timer_service().register_event_time_timer(stamp)
            held.timer = stamp
        self.held.update(held)

    def on_timer(self, timestamp, ctx):
        held = self._held()
        if timestamp != held.timer:
            return
        passed = max(timestamp, ctx.timer_service().current_watermark())
        out = []
        while held.pending and held.pending[0][0] <= passed:
            out += held.step.process(heapq.heappop(held.pending)[2])
        held.timer = None
        if held.pending:
            held.timer = held.pending[0][0]
            ctx.timer_service().register_event_time_timer(held.timer)
        self.held.update(held)
        for row in out:
            yield Row(*row)


began = time.perf_counter()
if form == "job":
    detect(t_env, document, DetectorConfig(), 600)
    rows = t_env.sql_query("SELECT `outlier_id` FROM detected WHERE `kind` = 'outlier'").execute()
    with rows.collect() as found:
        outliers = sum(1 for _ in found)
    print(json.dumps({"seconds": time.perf_counter() - began, "outliers": outliers}))
    sys.exit(0)
elif form == "python_operator":
    t_env.get_config().set("python.fn-execution.bundle.time", "200")
    row_type = Types.ROW_NAMED(OUTPUT_FIELDS, [
        Types.STRING(), Types.STRING(), Types.LONG(), Types.INT(), Types.DOUBLE(), Types.STRING(),
        Types.STRING(), Types.STRING(), Types.DOUBLE(), Types.STRING(), Types.STRING(),
        Types.STRING()])
    lines = t_env.to_data_stream(t_env.from_path("cdc"))
    out = lines.key_by(lambda row: 0, key_type=Types.INT()).process(PythonDetect(), row_type)
    with out.execute_and_collect() as found:
        outliers = sum(1 for row in found if row[0] == "outlier")
    print(json.dumps({"seconds": time.perf_counter() - began, "outliers": outliers}))
    sys.exit(0)
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


FORMS = (
    "job",
    "python_operator",
    "sql_only",
    "python_passthrough",
    "python_keyed_passthrough",
    "batched_by_arrival",
)


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
    done = subprocess.run([sys.executable, "-c", DRIVER, str(path), str(profiles_path), form,
                           str(detection_jar())],
                          env=env, capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"the {form} form failed:\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return {**report, "busy_cpu_s": busy_cpu_seconds() - cpu}


def detector_in_jvm(lines: list[str], profiles: dict, rounds: int = 3) -> dict:
    """The JVM detection alone over the same lines (``Replay``: no Flink), its last of
    ``rounds`` passes once the JIT has compiled it."""
    with tempfile.TemporaryDirectory() as tmp:
        source, result = Path(tmp) / "in.json", Path(tmp) / "out.json"
        source.write_text(json.dumps({"profiles": profiles, "lines": lines, "rounds": rounds}))
        subprocess.run(["java", "-cp", flink_classpath(), "dev.dfpharness.anomaly.Replay",
                        str(source), str(result)], check=True)  # fmt: skip
        report = json.loads(result.read_text())
    seconds = report["seconds"]
    return {"seconds": round(seconds, 2), "records_per_s": round(len(lines) / seconds),
            "outliers": sum(1 for row in report["rows"] if row[0] == "outlier")}  # fmt: skip


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
    parser.add_argument("--records", type=int, default=800_000)
    parser.add_argument("--small", type=int, default=200_000)
    parser.add_argument("--tiny", type=int, default=2_000, help="the job's cold-start run")
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
    jvm = detector_in_jvm(lines, profiles)
    delta = len(lines) - args.small
    measured: dict[str, list[dict]] = {form: [] for form in forms}
    outliers: dict[str, int] = {}
    cold: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        profiles_path = Path(tmp) / "profiles.json"
        profiles_path.write_text(json.dumps(profiles))
        # Forms alternate within each round, so a noisy minute hits them alike.
        for k in range(args.repeat):
            for form in forms:
                small = run_job(lines[: args.small], profiles_path, Path(tmp), form)
                big = run_job(lines, profiles_path, Path(tmp), form)
                measured[form].append(after_startup(small, big, delta))
                if form == "job":  # the same from a cold JVM: start-up and JIT warm-up included
                    tiny = run_job(lines[: args.tiny], profiles_path, Path(tmp), form)
                    cold.append(after_startup(tiny, big, len(lines) - args.tiny))
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
    if cold:
        results["job"]["records_per_s_from_tiny_run"] = round(statistics.median(
            m["records_per_s"] for m in cold))  # fmt: skip
    report = {
        "benchmark": "anomaly_job",
        "scenario": args.scenario,
        "records": len(lines),
        "small_records": args.small,
        "tiny_records": args.tiny,
        "forms": results,
        "detector_in_process": {
            "seconds": round(python_seconds, 2),
            "records_per_s": round(len(lines) / python_seconds),
            "outliers": flagged,
        },
        "detector_in_jvm": jvm,
        "goal": {"records_per_s": 50_000},
    }
    save(f"anomaly_job-{args.scenario}", report)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    raise SystemExit(main())
