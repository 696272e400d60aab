"""Stage ``anomaly``: the PyFlink job in a local Managed Flink over the run's CDC stream.

1. Profiles from the history (the sales of DMS's full load) go to the ``profiles.uri`` the job's
   properties name, as the batch side would refresh them.
2. Two DMS heartbeat records (``awsdms_heartbeat``, as DMS writes with ``HeartbeatEnable``) after
   the window's end move event time past it, so the last day closes.
3. The application runs from the stack description's properties (read from the start of the
   stream locally) until its sink writers have received the heartbeats' watermark and the output
   streams hold every record they received (Flink's operator metrics, through its REST API); then
   it is stopped and its outputs are compared with what the detector computes in-process over
   the same records in event-time order, after keeping one outlier per ``outlier_id`` and one
   rejection per record and reason (the sinks are at-least-once). With ``faults.flink.crashes``
   the job is killed mid-stream and started from its latest snapshot; with
   ``faults.flink.task_failures`` a task fails and Flink restarts the job in place from its
   latest checkpoint (:class:`_CrashDrill`).
4. Its outliers are scored against the ground truth: the summary's ``anomaly`` section; records it
   rejected are counted by reason (hop ``anomaly_job``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.compute as pc

import pipeline
from emulation.firehose import DeliveryStream
from emulation.kinesis import read_stream, stream_positions
from emulation.kinesis.faults import fail_reads, hold_reads
from emulation.kinesisanalyticsv2 import connector_jar, detection_jar
from emulation.kinesisanalyticsv2.application import (
    ApplicationSpec,
    Checkpoints,
    LocalApplication,
    with_endpoint,
)
from harness.run import RunContext, StageSpec, hops
from harness.run.aws import athena_rows, record_delivery, simulated_arrival
from harness.scoring import score
from pipeline.anomaly.detector import (
    Outlier,
    build_profiles,
    profiles_document,
    profiles_from_document,
    with_campaigns,
)
from pipeline.anomaly.main import detector_config
from pipeline.anomaly.step import AnomalyDetection, OutputRow, event_time

logger = logging.getLogger(__name__)

# The job imports only the pipeline package: its workers get the directory holding it (a
# bundle's copy when `dfp validate` runs one).
PIPELINE_ROOT = Path(pipeline.__file__).resolve().parent.parent
HEARTBEAT_TABLE = "awsdms_heartbeat"
INITIAL_HEARTBEATS = 2  # put after the window before the job starts; one more per drilled failure


def history_profiles(sim: Any) -> dict[str, dict[str, Any]]:
    """Per-product profiles (JSON-ready) from the full load (the history): its sales, and the
    products' categories and the campaigns as the load left them (for the price rule)."""

    def loaded(table: str) -> Any:
        changes = sim.world.changes[table]
        return changes.filter(pc.equal(changes["_op"], "load"))

    history = loaded("sales")
    profiles = build_profiles(
        *(history[c].to_numpy() for c in ("product_id", "quantity", "unit_price", "sold_at"))
    )
    products = loaded("products")
    ids = products["product_id"].to_pylist()
    categories = dict(zip(ids, products["category"].to_pylist(), strict=True))
    list_prices = dict(zip(ids, products["list_price"].to_pylist(), strict=True))
    # Campaigns over a week before the window can price no sale the job will see.
    since = (sim.world.window_start - dt.timedelta(days=7)).date()
    running = [c for c in loaded("campaigns").to_pylist() if c["end_date"] >= since]
    return profiles_document(with_campaigns(profiles, categories, running, list_prices))


def heartbeats(schema: str, after: dt.datetime, count: int = 2) -> list[bytes]:
    """DMS heartbeat messages, one a minute from ``after``."""
    out = []
    for i in range(count):
        when = (after + dt.timedelta(minutes=i)).astimezone(dt.UTC)
        stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        message = {
            "data": {"hb_timestamp": stamp},
            "metadata": {"timestamp": stamp, "record-type": "data", "operation": "update",
                         "partition-key-type": "primary-key", "schema-name": schema,
                         "table-name": HEARTBEAT_TABLE},
        }  # fmt: skip
        out.append(json.dumps(message, separators=(",", ":")).encode())
    return out


def put_heartbeat(kinesis: Any, stream: str, beat: bytes) -> None:
    kinesis.put_record(StreamName=stream, Data=beat, PartitionKey=HEARTBEAT_TABLE)


def _second(line: str) -> float:
    when = event_time(line, None)
    if when is None:
        return 0.0
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return float(int(when.timestamp()))  # the job's event time has whole seconds


def reference(lines: list[str], profiles: dict, properties: dict[str, str]) -> list[OutputRow]:
    """What the job must output: the detector over the records in event-time order."""
    step = AnomalyDetection(
        profiles_from_document(profiles),
        detector_config(properties),
        int(properties.get("day.close.lateness.seconds", "600")),
    )
    ordered = sorted(enumerate(lines), key=lambda item: (_second(item[1]), item[0]))
    return [row for _, line in ordered for row in step.process(line)]


def comparable_reason(reason: str) -> str:
    """A rejection's reason as the job and the reference must agree on it: a record that is not
    JSON is rejected by both, but the parser's own words after ``malformed JSON:`` are Jackson's
    in the job and Python's in the reference. Every other reason is compared in full."""
    return "malformed JSON" if reason.startswith("malformed JSON") else reason


def _outlier(row: dict[str, Any]) -> Outlier:
    return Outlier(
        product_id=row["product_id"],
        reason=row["reason"],
        score=float(row["score"]),
        sold_at=dt.datetime.fromisoformat(row["sold_at"].replace("Z", "+00:00")),
        sale_id=row.get("sale_id"),
        quantity=row.get("quantity"),
        unit_price=row.get("unit_price"),
        channel=row.get("channel"),
        source=row.get("source"),
    )


def _key(kind: str, product: Any, sale: Any, reason: Any) -> tuple[str, str, str, str]:
    return (kind, str(product), str(sale), str(reason))


def run(ctx: RunContext) -> None:
    """Run the anomaly job over the window and score what it flags."""
    world, names, sim = ctx.world, ctx.stack, ctx.simulation
    app = names.stack.applications["anomaly"]
    groups = with_endpoint(names.application_properties("anomaly", local=True), world.endpoint_url)
    by_id = {g["PropertyGroupId"]: g["PropertyMap"] for g in groups}
    detection = by_id["detector.config.0"]

    profiles = history_profiles(sim)
    bucket, _, key = detection["profiles.uri"][5:].partition("/")
    world.client("s3").put_object(
        Bucket=bucket, Key=key, Body=json.dumps(profiles, sort_keys=True).encode()
    )

    kinesis = world.client("kinesis")
    stream = names.stream_name("cdc")
    lateness = int(detection.get("day.close.lateness.seconds", "600"))
    # Two heartbeats now, and one more after each failure the drill makes the job recover from,
    # as DMS keeps writing them: a job restored from a checkpoint taken after it had read to
    # the end of the stream (a periodic one can come after the drill's) reads nothing more, and
    # a restored job's watermark starts again from what it reads.
    beats = heartbeats(
        ctx.scenario.dms.schema_name,
        sim.world.window_end + dt.timedelta(seconds=lateness + 60),
        count=INITIAL_HEARTBEATS + ctx.scenario.faults.flink.failures,
    )
    for beat in beats[:INITIAL_HEARTBEATS]:
        put_heartbeat(kinesis, stream, beat)
    records = [data.decode() for data in [*ctx.cdc_window, *beats]]
    expected = reference(records, profiles, detection)
    want_outliers = {r.outlier_id: _key(r.kind, r.product_id, r.sale_id, r.reason)
                     for r in expected if r.kind == "outlier"}  # fmt: skip
    want_rejected = {(comparable_reason(r.reason), r.raw) for r in expected if r.kind == "rejected"}

    outliers_stream = names.stream_name("outliers")
    errors_stream = names.stream_name("anomaly-errors")
    out_start = stream_positions(kinesis, outliers_stream)
    err_start = stream_positions(kinesis, errors_stream)
    spec = ApplicationSpec(
        name=names.stack.name("anomaly"),
        entry=app.entry_path(),
        property_groups=groups,
        jar=connector_jar(),
        parallelism=app.parallelism,
        python_path=[PIPELINE_ROOT],
        checkpoints=application_checkpoints(app),
        libraries=[detection_jar()],
    )
    job = LocalApplication(spec, ctx.out.flink, world.environment())
    # Event time reaches the last heartbeat's second less the job's one-second watermark delay;
    # once the sink writers have that watermark, every record before it has been processed.
    final_watermark = int(_second(beats[-1].decode()) * 1000) - 1000
    drill = _CrashDrill(ctx, stream, beats[INITIAL_HEARTBEATS:])
    began = time.monotonic()
    since = (out_start, err_start)  # where the running job's own outputs begin
    job.start()
    try:
        deadline = began + 900
        while True:
            job.check()
            progress = job.sink_progress()
            written = _written_since(kinesis, outliers_stream, errors_stream, since)
            if drill.step(job, progress, written):  # killed: it starts again from a snapshot
                since = (stream_positions(kinesis, outliers_stream),
                         stream_positions(kinesis, errors_stream))  # fmt: skip
                job.start("RESTORE_FROM_LATEST_SNAPSHOT")
                continue
            if (
                drill.done
                and progress is not None
                and progress.watermark >= final_watermark
                and written >= progress.records
            ):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the anomaly job did not finish the window in time: it wrote {written} "
                    f"records since it last started (the reference: {len(want_outliers)} "
                    f"outliers, {len(want_rejected)} rejections); its sinks: {progress}; "
                    f"its log ends:\n{job.log_tail()}"
                )
            time.sleep(drill.poll_seconds)
    finally:
        drill.release()
        job.stop()
    seconds = time.monotonic() - began
    flagged = [json.loads(r["data"]) for r in read_stream(kinesis, outliers_stream,
                                                          after=out_start)]  # fmt: skip
    rejected = [json.loads(r["data"]) for r in read_stream(kinesis, errors_stream,
                                                           after=err_start)]  # fmt: skip
    # The job's sinks are at-least-once: after a restore from a snapshot, what it had emitted
    # since the snapshot comes again. Consumers keep one outlier per id and one rejection per
    # record and reason.
    unique: dict[str, dict[str, Any]] = {}
    for o in flagged:
        unique.setdefault(o["outlier_id"], o)
    unique_rejected: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rejected:
        unique_rejected.setdefault((str(r["reason"]), str(r.get("raw"))), r)
    duplicates = {"outliers": len(flagged) - len(unique),
                  "rejected": len(rejected) - len(unique_rejected)}  # fmt: skip
    flagged, rejected = list(unique.values()), list(unique_rejected.values())
    ctx.out.outliers.parent.mkdir(parents=True, exist_ok=True)
    ctx.out.outliers.write_text(json.dumps(sorted(
        flagged, key=lambda o: (o["sold_at"], str(o.get("sale_id")), o["product_id"], o["reason"])
    ), indent=1, sort_keys=True) + "\n")  # fmt: skip
    got = {o["outlier_id"]: _key("outlier", o["product_id"], o.get("sale_id"), o["reason"])
           for o in flagged}  # fmt: skip
    hop = ctx.ledger.hop(hops.ANOMALY_JOB)
    hop.add(received=len(records), written=len(records) - len(rejected))
    for row in rejected:
        hop.reject(str(row["reason"]).split(":")[0])
        if ctx.faults is not None:
            ctx.faults.caught(hops.ANOMALY_JOB, str(row["reason"]),
                              data=str(row.get("raw") or "").encode())  # fmt: skip
    if ctx.faults is not None and drill.failures:
        ctx.faults.flink = drill.summary(duplicates)
        ctx.faults.duplicates_removed[hops.ANOMALY_JOB] = sum(duplicates.values())
    if sim.world.has_truth:
        scores = score([_outlier(o) for o in flagged], sim.truth_anomalies, sim.truth_daily)
    else:  # replayed real data: nobody knows which sales were anomalies
        scores = {"precision": None, "recall": None, "f1": None, "flagged": len(flagged),
                  "injected": None, "scored": False}  # fmt: skip
    per_day = Counter(o["sold_at"][:10] for o in flagged)
    ctx.summary["anomaly"] = {
        **scores,
        "rejected": len(rejected),
        # The wait ends when the job's sinks have seen event time pass the window and written
        # what they received, so this verdict holds even when the reference expects nothing.
        "matches_reference": got == want_outliers
        and {(comparable_reason(str(r["reason"])), str(r.get("raw"))) for r in rejected}
        == want_rejected,
        "duplicates_removed": duplicates,
        "records": len(records),
        "heartbeats": len(beats),
        "flagged_per_day": dict(sorted(per_day.items())),
        "reasons": dict(sorted(Counter(o["reason"] for o in flagged).items())),
    }
    if ctx.faults is not None and ctx.faults.late:
        ctx.faults.late_cost = _late_cost(ctx, expected, beats, profiles, detection)
    _stage_outliers(ctx, out_start)
    ctx.summary["alerts"] = evaluate_alerts(ctx)
    logger.info("anomaly job: %d outliers, %d rejected in %.1f s", len(flagged), len(rejected),
                seconds)  # fmt: skip


def application_checkpoints(app: Any) -> Checkpoints:
    """The local Managed Flink's checkpointing from the stack description's application (the
    service's ``DEFAULT`` when it names none)."""
    spec = app.checkpoints
    if spec is None:
        return Checkpoints(snapshots=app.snapshots)
    return Checkpoints(enabled=spec.enabled, interval_ms=spec.interval_ms,
                       min_pause_ms=spec.min_pause_ms, snapshots=app.snapshots)  # fmt: skip


def _written_since(kinesis: Any, outliers: str, errors: str, since: tuple[dict, dict]) -> int:
    return len(read_stream(kinesis, outliers, after=since[0])) + len(
        read_stream(kinesis, errors, after=since[1])
    )


class _CrashDrill:
    """The job's failures (``faults.flink``): ``crashes`` kills, then ``task_failures`` failed
    tasks, n in all. The job reads the CDC stream in n + 1 parts (each shard's records split by
    count; the local Kinesis holds back the rest as if it had not arrived, see
    :func:`emulation.kinesis.faults.hold_reads`). For failure k: once the job has received part
    k, a snapshot (``CreateApplicationSnapshot``) before a crash, a checkpoint before a task
    failure; then part k + 1 arrives (the last part brings the heartbeats); once the job has
    received it and its outputs have settled, either the job is killed and started from its
    latest snapshot, or Kinesis fails its reads (``InternalFailure``) until the source gives up,
    the task fails and Flink restarts the job in place from its latest checkpoint. Either way it
    reads part k + 1 again and emits again what that part produced (its sinks are
    at-least-once). Which records are read twice is the same every run; how many outputs come
    twice can vary by a few at the parts' edges (Flink's watermark over shards going idle).

    Flink's periodic checkpoints go on meanwhile (Managed Flink's every 60 s, the first after a
    random delay), so one can complete between the drill's checkpoint and the failure; Flink then
    restores that one, as Managed Flink would, and reads again only what came after it. The
    drill records which checkpoint was restored, and then waits for the restarted job to stop
    receiving (its source idle) rather than for a count. After each recovery one more DMS
    heartbeat arrives (``later_beats``, as DMS keeps writing them), so a job restored past the
    end of what it may read still sees event time pass the window."""

    SETTLE_SECONDS = 6.0  # the source's idle timeout (5 s) and a metrics refresh

    def __init__(self, ctx: RunContext, stream: str, later_beats: list[bytes]) -> None:
        spec = ctx.scenario.faults.flink
        self.kinds = ["crash"] * spec.crashes + ["task_failure"] * spec.task_failures
        self.failures = len(self.kinds)
        self.world = ctx.world
        self.stream = stream
        self.later_beats = list(later_beats)
        self.done_failures = 0
        self.events: list[dict[str, Any]] = []
        self.poll_seconds = 0.5 if self.kinds else 1.0
        self.snapshot: Any = None  # the snapshot or checkpoint taken for the current failure
        self.failing: int | None = None  # restarts seen before reads began to fail
        self.restored_before: int | None = None  # what the job had restored before that
        # Records the running start receives before its next move; None: unknown (restored
        # from a later checkpoint than the drill's), wait until they stop coming.
        self.expect: int | None = 0
        self.receiving: tuple[int, float] | None = None
        self.settled: tuple[Any, float] | None = None
        if not self.kinds:
            return
        count = self.failures
        by_shard: dict[str, list[str]] = {}
        for record in read_stream(ctx.world.client("kinesis"), stream):
            by_shard.setdefault(record["shard_id"], []).append(record["sequence_number"])
        # holds[k]: the last record of each shard the job may read while part k is the latest.
        self.holds: list[dict[str, str | None]] = []
        self.sizes: list[int] = []  # records visible up to part k
        for k in range(1, count + 1):
            visible = {shard: (seqs[n - 1] if (n := len(seqs) * k // (count + 1)) else None)
                       for shard, seqs in by_shard.items()}  # fmt: skip
            self.holds.append(visible)
            self.sizes.append(sum(len(seqs) * k // (count + 1) for seqs in by_shard.values()))
        self.sizes.append(sum(len(seqs) for seqs in by_shard.values()))
        self._hold(self.holds[0])
        self.expect = self.sizes[0]

    def _hold(self, visible: dict[str, str | None] | None) -> None:
        hold_reads(self.world.account_id, self.world.region, self.stream, visible)

    def _fail_reads(self, failing: bool) -> int:
        return fail_reads(self.world.account_id, self.world.region, self.stream, failing)

    def release(self) -> None:
        if self.kinds:
            self._hold(None)
            self._fail_reads(False)

    @property
    def done(self) -> bool:
        return self.done_failures >= self.failures

    def step(self, job: LocalApplication, progress: Any, written: int) -> bool:
        """Take the next snapshot or checkpoint, let the next part arrive, or make the job fail
        when due; True when the job was killed (the caller starts it again from its latest
        snapshot)."""
        if self.done:
            return False
        k = self.done_failures
        kind = self.kinds[k]
        if self.failing is not None:  # reads fail until Flink has restarted the job in place
            event = self.events[-1]
            if "restarts" not in event:
                restarts = job.restarts()
                if restarts is None or restarts <= self.failing:
                    return False
                event.update(failed_reads=self._fail_reads(False), restarts=restarts)
            # Then which checkpoint the restarted job restored (REST has it once it runs).
            restored = job.restored_checkpoint()
            if restored is None or restored == self.restored_before:
                return False
            event["restored_checkpoint"] = restored
            self._next_failure(k)
            if restored != event["checkpoint"]:  # a periodic one came after the drill's
                event.pop("records_read_again", None)  # what came after it, not the part
                self.expect = None
            return False
        received = job.records_received("anomaly-detection")
        if not self._received_all(received):
            return False
        if self.snapshot is None:
            if kind == "crash":
                self.snapshot = job.create_snapshot(f"drill-{k + 1}")
                self.events.append({"kind": kind, "snapshot": self.snapshot.name,
                                    "records_before": received})  # fmt: skip
            else:
                self.snapshot = job.trigger_checkpoint()
                self.events.append({"kind": kind, "checkpoint": self.snapshot,
                                    "records_before": received})  # fmt: skip
            self._hold(self.holds[k + 1] if k + 1 < self.failures else None)
            self.expect = received + self.sizes[k + 1] - self.sizes[k]
            self.settled = None
            return False
        # All of the next part received; fail once the outputs have stopped changing.
        state = (progress.records if progress else None, written)
        if self.settled is None or self.settled[0] != state:
            self.settled = (state, time.monotonic())
            return False
        if time.monotonic() - self.settled[1] < self.SETTLE_SECONDS or (
            progress is None or written < progress.records
        ):
            return False
        self.events[-1].update(records_read_again=self.sizes[k + 1] - self.sizes[k],
                               outputs_before_failure=written)  # fmt: skip
        if kind == "task_failure":
            self.failing = job.restarts() or 0
            self.restored_before = job.restored_checkpoint()  # a snapshot this start restored
            self._fail_reads(True)
            self.poll_seconds = 0.2  # call the failure off as soon as Flink has restarted
            return False
        job.kill()
        self._next_failure(k)
        return True

    def _received_all(self, received: int | None) -> bool:
        """Whether the running start has received what it may read before the drill's next
        move: the known count, or (``expect`` None) nothing new for :data:`SETTLE_SECONDS`."""
        if received is None:
            return False
        if self.expect is not None:
            return received >= self.expect
        if self.receiving is None or self.receiving[0] != received:
            self.receiving = (received, time.monotonic())
            return False
        return time.monotonic() - self.receiving[1] >= self.SETTLE_SECONDS

    def _next_failure(self, k: int) -> None:
        self.done_failures += 1
        self.snapshot = None
        self.failing = None
        self.poll_seconds = 0.5
        self.expect = self.sizes[k + 1] - self.sizes[k]  # what the next start reads again
        self.receiving = None
        put_heartbeat(self.world.client("kinesis"), self.stream, self.later_beats.pop(0))

    def summary(self, duplicates: dict[str, int]) -> dict[str, Any]:
        done = self.kinds[: self.done_failures]
        crashes, in_place = done.count("crash"), done.count("task_failure")
        return {"crashes": crashes, "restored_from_snapshot": crashes,
                "task_failures": in_place, "restarted_in_place": in_place,
                "drills": self.events, "duplicates_removed": duplicates}  # fmt: skip


def _late_cost(ctx: RunContext, expected: list[OutputRow], beats: list[bytes],
               profiles: dict, detection: dict[str, str]) -> dict[str, int]:  # fmt: skip
    """What late changes cost the streaming verdicts: the reference over the stream as it came,
    against the reference had every change arrived on time."""
    assert ctx.faults is not None and ctx.cdc_window is not None
    on_time = [ctx.faults.late.get(data, data).decode() for data in [*ctx.cdc_window, *beats]]

    def outliers(rows: list[OutputRow]) -> Counter:
        return Counter(_key(r.kind, r.product_id, r.sale_id, r.reason)
                       for r in rows if r.kind == "outlier")  # fmt: skip

    came, would = outliers(expected), outliers(reference(on_time, profiles, detection))
    return {"outliers_added": sum((came - would).values()),
            "outliers_missed": sum((would - came).values())}  # fmt: skip


hops.FIREHOSE_OUTLIERS = "firehose_outliers"


def _stage_outliers(ctx: RunContext, positions: dict[str, str | None]) -> None:
    """Firehose delivers the job's outliers to the analysis bucket (Parquet, the catalog schema)."""
    delivery = DeliveryStream(
        ctx.world,
        ctx.stack.delivery_stream_name("outliers-analysis"),
        arrival_time=simulated_arrival,
    )
    delivery.start_from(positions)
    delivery.poll()
    delivery.drain()
    record_delivery(ctx.ledger, hops.FIREHOSE_OUTLIERS, delivery)


def evaluate_alerts(ctx: RunContext) -> list[dict[str, Any]]:
    """The stack's alert rules over the analysis data, through Athena: one record per firing."""
    alerts = []
    for name, rule in sorted(ctx.stack.stack.alerts.items()):
        if rule.kind != "outliers_per_product_day":  # the one kind so far
            continue
        rows = athena_rows(
            ctx.world,
            ctx.stack,
            # One row per outlier id: the stream delivers at least once.
            "SELECT product_id, CAST(date(sold_at) AS varchar) AS day, "
            "count(DISTINCT outlier_id) AS n FROM outliers GROUP BY 1, 2 "
            "HAVING count(DISTINCT outlier_id) >= ? ORDER BY 2, 1",
            [str(int(rule.threshold))],
        )
        alerts += [
            {"rule": name, "product_id": r["product_id"], "date": r["day"],
             "value": int(r["n"] or 0), "threshold": rule.threshold}
            for r in rows
        ]  # fmt: skip
    return alerts


STAGE = StageSpec("anomaly", run, needs=("simulation", "cdc_window"), side_branch=True)
