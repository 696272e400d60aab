"""The anomaly job: CDC stream in, anomalous sales out. Runs on Managed Service for Apache Flink
(PyFlink 2.2) and, unchanged, in a local mini-cluster.

Configuration is Managed Flink's ``application_properties.json`` (``/etc/flink/…`` on AWS; a copy
in the working directory when ``IS_LOCAL`` is set, as AWS's samples do). Property groups:

* ``consumer.config.0``: ``input.stream.arn``, ``aws.region``, ``source.init.position``
  (``aws.endpoint`` for a local endpoint);
* ``producer.config.0``: ``output.stream.arn`` (outliers), ``aws.region`` (``aws.endpoint``);
* ``errors.config.0``: ``output.stream.arn`` for records the job cannot read, with the reason;
* ``detector.config.0``: ``profiles.uri`` (``s3://`` JSON of per-product profiles, refreshed from
  history by the batch side) and optional thresholds named like
  :class:`~pipeline.anomaly.detector.DetectorConfig`'s fields.

The CDC table is read as raw text so that a record the job cannot parse is routed to the error
stream with its reason instead of failing the job. Event time is the record's own (DMS commit
time, or the shop's ``sold_at``) with watermarks made per shard in the source, so a shard that
is behind holds event time back. Detection is :mod:`pipeline.anomaly.detector` in one operator
(its state is per product) fed in event-time order once the watermark has passed each record;
days close on event time: when a record more than ``day.close.lateness.seconds`` past midnight is
processed, the previous day's drops are evaluated. After a silence longer than
``day.close.max.gap.days`` (default 7: an outage, or a record stamped far in the future) the
silent days are skipped rather than evaluated one by one.
"""

from __future__ import annotations

import heapq
import json
import logging
import os
from dataclasses import fields
from typing import Any

from pipeline.anomaly.detector import DetectorConfig, Profile, profiles_from_document
from pipeline.anomaly.step import OUTPUT_FIELDS, AnomalyDetection, Held, outliers_columns_sql
from pipeline.contracts.local_guard import aws_client, check_job_endpoint
from pipeline.contracts.staged import OUTLIER_COLUMNS

logger = logging.getLogger(__name__)

APPLICATION_PROPERTIES = "/etc/flink/application_properties.json"
LOCAL_PROPERTIES = "application_properties.json"


def properties() -> dict[str, dict[str, str]]:
    """Property groups by id, from Managed Flink's file (or the local copy)."""
    path = LOCAL_PROPERTIES if os.environ.get("IS_LOCAL") else APPLICATION_PROPERTIES
    with open(path) as handle:
        groups = json.load(handle)
    return {g["PropertyGroupId"]: dict(g["PropertyMap"]) for g in groups}


def load_profiles(uri: str) -> dict[str, Profile]:
    """Per-product profiles from ``s3://bucket/key`` (or a local path) written as JSON."""
    if uri.startswith("s3://"):
        bucket, _, key = uri[5:].partition("/")
        body = aws_client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    else:
        with open(uri, "rb") as handle:
            body = handle.read()
    return profiles_from_document(json.loads(body))


def detector_config(group: dict[str, str]) -> DetectorConfig:
    values: dict[str, Any] = {}
    for f in fields(DetectorConfig):
        if f.name in group:
            values[f.name] = type(getattr(DetectorConfig(), f.name))(group[f.name])
    return DetectorConfig(**values)


def _kinesis(arn: str, group: dict[str, str], extra: str = "") -> str:
    options = {"connector": "kinesis", "stream.arn": arn, "aws.region": group["aws.region"]}
    if group.get("aws.endpoint"):
        options["aws.endpoint"] = group["aws.endpoint"]
    text = ", ".join(f"'{k}' = '{v}'" for k, v in options.items())
    return text + (", " + extra if extra else "")


# The sinks send what they hold at least twice a second (the connector's default is every five
# seconds): an outlier should reach the dashboard within seconds of the sale.
SINK_OPTIONS = "'format' = 'json', 'sink.flush-buffer.timeout' = '500'"

EVENT_TIME = (
    "TO_TIMESTAMP(REPLACE(SUBSTRING(COALESCE(JSON_VALUE(`line`, '$.metadata.timestamp'), "
    "JSON_VALUE(`line`, '$.sold_at'), '1970-01-01T00:00:00') FROM 1 FOR 19), 'T', ' '))"
)


def create_tables(t_env: Any, source: str, outliers: str, rejected: str) -> None:
    """The job's three tables; each argument is the table's ``WITH`` options (connector)."""
    # Event time: DMS's commit timestamp, or the shop event's sold_at; records that have neither
    # (unreadable ones) get the epoch, so they pass straight through to the error output.
    t_env.execute_sql(
        f"CREATE TABLE cdc (`line` STRING, `ts` AS COALESCE({EVENT_TIME}, "
        "TIMESTAMP '1970-01-01 00:00:00'), WATERMARK FOR `ts` AS `ts` - INTERVAL '1' SECOND) "
        f"WITH ({source})"
    )
    t_env.execute_sql(f"CREATE TABLE outliers ({outliers_columns_sql()}) WITH ({outliers})")
    t_env.execute_sql(
        f"CREATE TABLE rejected (`reason` STRING, `raw` STRING, `job` STRING) WITH ({rejected})"
    )


def detect(
    t_env: Any,
    profiles: dict[str, Profile],
    config: DetectorConfig,
    lateness: int,
    max_gap_days: int = 7,
):
    """cdc → detection in event-time order → outliers / rejected; returns the statement set."""
    from pyflink.common import Row, Types
    from pyflink.datastream.functions import KeyedProcessFunction
    from pyflink.table import Schema

    class Detect(KeyedProcessFunction):
        """Holds records until event time has passed them on every shard, then detects in
        event-time order: the same answer as the detector over the time-ordered stream.

        Everything it holds (the detector, the records waiting for the watermark, the timer it
        set) is one value in Flink's keyed state, so a checkpoint or snapshot has it and a
        restored job goes on where the snapshot was taken. PyFlink caches the value in the
        worker and serialises it when a bundle ends (a checkpoint ends one), not per record."""

        def open(self, runtime_context: Any) -> None:
            from pyflink.datastream.state import ValueStateDescriptor

            self.held = runtime_context.get_state(
                ValueStateDescriptor("detection", Types.PICKLED_BYTE_ARRAY())
            )

        def _held(self) -> Held:
            held = self.held.value()
            if held is None:
                return Held(AnomalyDetection(profiles, config, lateness, max_gap_days))
            held.step.detector.attach(profiles, config)  # a snapshot holds no profiles
            return held

        def process_element(self, value: Any, ctx: Any):
            held = self._held()
            stamp = ctx.timestamp() or 0
            held.arrivals += 1
            heapq.heappush(held.pending, (stamp, held.arrivals, value[0]))
            # One timer at a time, at the earliest pending record: a timer per record would
            # cost a round trip to the JVM for each.
            if held.timer is None or stamp < held.timer:
                ctx.timer_service().register_event_time_timer(stamp)
                held.timer = stamp
            self.held.update(held)

        def on_timer(self, timestamp: int, ctx: Any):
            held = self._held()
            if timestamp != held.timer:
                return  # superseded by an earlier one, which already drained this far
            # Event time has passed the watermark: everything up to it is complete.
            passed = max(timestamp, ctx.timer_service().current_watermark())
            out = []
            while held.pending and held.pending[0][0] <= passed:
                _, _, line = heapq.heappop(held.pending)
                out += held.step.process(line)
            held.timer = None
            if held.pending:
                held.timer = held.pending[0][0]
                ctx.timer_service().register_event_time_timer(held.timer)
            self.held.update(held)
            for row in out:
                yield Row(*row)

    # The Python worker hands its results back every 200 ms (PyFlink's default bundle time is a
    # second, which alone made an outlier 2 to 4 s late). Measured on this machine: latency p50
    # 3.9 s -> 1.8-2.0 s (benchmarks/anomaly_latency.py) for about a fifth of the throughput
    # (9.6k -> 7.3k records/s on `standard`, benchmarks/anomaly_job.py, one run after the other).
    t_env.get_config().set("python.fn-execution.bundle.time", "200")
    row_type = Types.ROW_NAMED(
        OUTPUT_FIELDS,
        [Types.STRING(), Types.STRING(), Types.LONG(), Types.INT(), Types.DOUBLE(),
         Types.STRING(), Types.STRING(), Types.STRING(), Types.DOUBLE(), Types.STRING(),
         Types.STRING(), Types.STRING()],
    )  # fmt: skip
    lines = t_env.to_data_stream(t_env.from_path("cdc"))  # (line, ts): ts is the record time
    # One detector sees every sale: day-level drops need all products, bursts need order.
    detected = (
        lines.key_by(lambda row: 0, key_type=Types.INT())
        .process(Detect(), output_type=row_type)
        .uid("anomaly-detection")  # its state is found by this id when a snapshot is restored
        .name("anomaly-detection")
        .set_parallelism(1)
    )
    # The detected rows keep the stream's event time and watermarks (the timers' times), so the
    # sinks see event time advance: Flink's metrics then show how far the job has got, and
    # anything that windows its outputs has a clock.
    with_time = (
        Schema.new_builder()
        .column_by_metadata("rowtime", "TIMESTAMP_LTZ(3)")
        .watermark("rowtime", "SOURCE_WATERMARK()")
        .build()
    )
    t_env.create_temporary_view("detected", t_env.from_data_stream(detected, with_time))
    statements = t_env.create_statement_set()
    columns = ", ".join(f"`{name}`" for name, _ in OUTLIER_COLUMNS)
    statements.add_insert_sql(
        f"INSERT INTO outliers SELECT {columns} FROM detected WHERE `kind` = 'outlier'"
    )
    statements.add_insert_sql(
        "INSERT INTO rejected SELECT `reason`, `raw`, 'anomaly' FROM detected "
        "WHERE `kind` = 'rejected'"
    )
    return statements


def main() -> None:
    from pyflink.datastream import StreamExecutionEnvironment
    from pyflink.table import StreamTableEnvironment

    groups = properties()
    consumer = groups["consumer.config.0"]
    producer = groups["producer.config.0"]
    errors = groups["errors.config.0"]
    detection = groups.get("detector.config.0", {})
    # A local run's job must reach only the local world: the Java connector's endpoint is out
    # of reach of any Python hook, so it is checked before a table is declared.
    for name in ("consumer.config.0", "producer.config.0", "errors.config.0"):
        check_job_endpoint(groups[name].get("aws.endpoint"), f"{name} aws.endpoint")
    profiles = load_profiles(detection["profiles.uri"])
    config = detector_config(detection)
    lateness = int(detection.get("day.close.lateness.seconds", "600"))
    max_gap_days = int(detection.get("day.close.max.gap.days", "7"))
    logger.info("anomaly job: %d product profiles, %s", len(profiles), config)

    env = StreamExecutionEnvironment.get_execution_environment()
    t_env = StreamTableEnvironment.create(env)
    # A shard with nothing new must not hold event time back for the others.
    t_env.get_config().set(
        "table.exec.source.idle-timeout", detection.get("source.idle.timeout", "5 s")
    )
    position = consumer.get("source.init.position", "LATEST")
    create_tables(
        t_env,
        _kinesis(consumer["input.stream.arn"], consumer,
                 f"'source.init.position' = '{position}', 'format' = 'raw'"),
        _kinesis(producer["output.stream.arn"], producer, SINK_OPTIONS),
        _kinesis(errors["output.stream.arn"], errors, SINK_OPTIONS),
    )  # fmt: skip
    result = detect(t_env, profiles, config, lateness, max_gap_days).execute()
    if os.environ.get("IS_LOCAL"):  # on AWS main returns once the job is submitted
        result.wait()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
