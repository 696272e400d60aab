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
is behind holds event time back. Detection is :mod:`pipeline.anomaly.detector`'s rules, run in the
JVM (``pipeline/anomaly/detection``, in the application's jar) by one operator (its state is per
product) fed in event-time order once the watermark has passed each record;
days close on event time: when a record more than ``day.close.lateness.seconds`` past midnight is
processed, the previous day's drops are evaluated. After a silence longer than
``day.close.max.gap.days`` (default 7: an outage, or a record stamped far in the future) the
silent days are skipped rather than evaluated one by one.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import asdict, fields
from typing import Any

from pipeline.anomaly.detector import DetectorConfig, profiles_from_document
from pipeline.anomaly.step import outliers_columns_sql
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


def load_profiles(uri: str) -> str:
    """The per-product profiles document (JSON text) from ``s3://bucket/key`` or a local path;
    read here so that a missing or unreadable document fails the job before it starts."""
    if uri.startswith("s3://"):
        bucket, _, key = uri[5:].partition("/")
        body = aws_client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    else:
        with open(uri, "rb") as handle:
            body = handle.read()
    document = body.decode()
    profiles_from_document(json.loads(document))  # refuses a document that is not profiles
    return document


GROUP = "detector.config.0"


def option(group: dict[str, str], name: str, kind: type, default: Any) -> Any:
    """A number from the detector's property group: a value that is not one (or is negative,
    or not finite) fails the job naming the property, before anything is read."""
    text = group.get(name)
    if text is None:
        return default
    try:
        value = kind(str(text).strip())
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or value < 0:
        raise ValueError(f"{GROUP} {name}: {text!r} is not a non-negative "
                         f"{'whole number' if kind is int else 'number'}")  # fmt: skip
    return value


def detector_config(group: dict[str, str]) -> DetectorConfig:
    defaults = DetectorConfig()
    values = {f.name: option(group, f.name, type(getattr(defaults, f.name)),
                             getattr(defaults, f.name))
              for f in fields(DetectorConfig)}  # fmt: skip
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

# Event time of a record: DMS's commit timestamp, or the shop event's sold_at, in whole seconds
# (``dev.dfpharness.anomaly.EventTime``, in the application's jar, as the reference reads it);
# records that have neither (unreadable ones) get the epoch, so they pass straight through to the
# error output.
EVENT_TIME_FUNCTION = ("dfp_event_time", "dev.dfpharness.anomaly.EventTime")


def create_tables(t_env: Any, source: str, outliers: str, rejected: str) -> None:
    """The job's three tables; each argument is the table's ``WITH`` options (connector)."""
    name, class_name = EVENT_TIME_FUNCTION
    java_class(class_name)  # a missing jar is named before Flink's planner fails on it
    t_env.create_java_temporary_system_function(name, class_name)
    t_env.execute_sql(
        f"CREATE TABLE cdc (`line` STRING, `ts` AS {name}(`line`), "
        f"WATERMARK FOR `ts` AS `ts` - INTERVAL '1' SECOND) WITH ({source})"
    )
    t_env.execute_sql(f"CREATE TABLE outliers ({outliers_columns_sql()}) WITH ({outliers})")
    t_env.execute_sql(
        f"CREATE TABLE rejected (`reason` STRING, `raw` STRING, `job` STRING) WITH ({rejected})"
    )


DETECTION_CLASS = "dev.dfpharness.anomaly.DetectionJob"


def java_class(name: str) -> Any:
    """A class of the job's Java code, through PyFlink's gateway; a clear error when the
    application's jar does not hold it (py4j would only say a package is not callable)."""
    from pyflink.java_gateway import get_gateway

    found = get_gateway().jvm
    for part in name.split("."):
        found = getattr(found, part)
    if type(found).__name__ != "JavaClass":
        raise RuntimeError(
            f"{name} is not on the job's classpath: the application's jar must hold "
            "pipeline/anomaly/detection (Managed Flink: the dependency jar built from "
            "pipeline/anomaly/pom.xml; locally: .dfp/jars/dfp-anomaly-detection.jar, built by "
            "set-up)"
        )
    return found


def detect(
    t_env: Any,
    profiles: str,
    config: DetectorConfig,
    lateness: int,
    max_gap_days: int = 7,
):
    """cdc → detection in event-time order → outliers / rejected; returns the statement set.

    ``profiles`` is the profiles document (JSON text). The detection runs in the JVM
    (``pipeline/anomaly/detection``: the rules of :mod:`pipeline.anomaly.detector`, checked
    against it record for record), in one keyed operator that holds records until the watermark
    has passed them and then detects in event-time order. Records never cross into Python: a
    Python operator costs 35-70 µs of CPU per record before any work is done, five times the
    detection itself."""
    job = java_class(DETECTION_CLASS)
    job.register(t_env._j_tenv, "cdc", "detected", profiles, json.dumps(asdict(config)),
                 lateness, max_gap_days)  # fmt: skip
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
    detection = groups.get(GROUP, {})
    # A local run's job must reach only the local world: the Java connector's endpoint is out
    # of reach of any Python hook, so it is checked before a table is declared.
    for name in ("consumer.config.0", "producer.config.0", "errors.config.0"):
        check_job_endpoint(groups[name].get("aws.endpoint"), f"{name} aws.endpoint")
    profiles = load_profiles(detection["profiles.uri"])
    config = detector_config(detection)
    lateness = option(detection, "day.close.lateness.seconds", int, 600)
    max_gap_days = option(detection, "day.close.max.gap.days", int, 7)
    logger.info("anomaly job: %d product profiles, %s", len(json.loads(profiles)), config)

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
