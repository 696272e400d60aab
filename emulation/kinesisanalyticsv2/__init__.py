"""Managed Service for Apache Flink, locally: the Kinesis table connector for now.

The anomaly job declares its Kinesis tables with the options of AWS's connector
``flink-connector-aws-kinesis-streams`` (``'connector' = 'kinesis'``, ``stream.arn``,
``aws.region``, ``source.init.position``, ``format``; ``aws.endpoint`` locally). That connector's
Flink 2.x releases (6.0.x ``-2.0``, and every 5.x/4.x tried) are not obtainable from the package
registry this project builds from — Maven answers "Could not find artifact" — so the local world
supplies its own connector behind the same factory identifier and options
(``connector/``: a FLIP-27 source, one split per shard polled with ``GetRecords``, progress by
sequence number; a Sink V2 writer batching ``PutRecords`` and retrying failed entries). Set-up
builds it with Maven into ``.dfp/jars``; it is never deployed: on AWS the application's
``jarfile`` holds AWS's connector and the job's table definitions are the same.

Set-up also builds the job's detection (``pipeline/anomaly/detection``) into
``.dfp/jars/dfp-anomaly-detection.jar``, which a local application gets beside the connector
(:func:`detection_jar`); on AWS the same classes are compiled into the application's one jar.

Resharding is followed as AWS's connector follows it: new shards are found every
``source.shard.discovery.interval`` (10 s), and a shard born of a split or a merge is handed to a
reader only once its parents have been read to their end (readers report finished shards to the
enumerator; the finished set is in the snapshot), so a key's records are read in order.

Not emulated (by the connector): enhanced fan-out, ``AT_TIMESTAMP`` skew, credential provider
options (the SDK's default chain is used), partition keys from table columns
(``sink.partitioner``: every record gets a random key, the AWS default), metrics such as
``millisBehindLatest``.
"""

from __future__ import annotations

from pathlib import Path

CONNECTOR_VERSION = "1.0.0"
CONNECTOR_JAR = f"local-kinesis-connector-{CONNECTOR_VERSION}.jar"
JARS_DIR = Path(__file__).resolve().parents[2] / ".dfp" / "jars"


DETECTION_JAR = "dfp-anomaly-detection.jar"


class ConnectorMissing(FileNotFoundError):
    """A jar the local Managed Flink needs has not been built (set-up builds it)."""


def _built(name: str, pom: str) -> Path:
    path = JARS_DIR / name
    if not path.is_file():
        raise ConnectorMissing(
            f"{path}: missing; ./bootstrap.sh setup builds it with Maven ({pom})"
        )
    return path


def connector_jar() -> Path:
    """The local Kinesis table connector jar, built by ``./bootstrap.sh setup``."""
    return _built(CONNECTOR_JAR, "emulation/kinesisanalyticsv2/connector/pom.xml")


def detection_jar() -> Path:
    """The anomaly job's detection (``pipeline/anomaly/detection``), built by set-up. On AWS its
    classes are in the application's one dependency jar."""
    return _built(DETECTION_JAR, "pipeline/anomaly/detection/pom.xml")


def flink_classpath() -> str:
    """The detection jar and PyFlink's own jars: what runs the detection without a job
    (``dev.dfpharness.anomaly.Replay``, for checks and benchmarks)."""
    import pyflink

    lib = Path(pyflink.__file__).parent / "lib"
    return ":".join([str(detection_jar()), *sorted(str(j) for j in lib.glob("*.jar"))])
