"""Firehose delivery streams with a Kinesis stream as source, which moto stores but never runs.

:class:`DeliveryStream` reads a delivery stream's configuration from the endpoint
(``DescribeDeliveryStream``, so what was provisioned is what runs) and does what Firehose does:

* reads the source Kinesis stream shard by shard, remembering its position;
* **dynamic partitioning** with a ``MetadataExtraction`` JQ query (the subset
  ``{key: .path."quoted-key" // "default", …}``);
* **buffering hints**: a buffer per partition is delivered when its input reaches ``SizeInMBs``
  or when ``IntervalInSeconds`` has passed since its first record, in *event time*: the arrival
  time of each record comes from a clock the caller gives (the simulated clock), not the wall;
* **record format conversion** JSON → Parquet (OpenX JSON SerDe semantics: unknown fields ignored,
  missing fields null) with the schema of the Glue Data Catalog table the configuration names,
  read from the catalog as AWS does;
* **S3 keys**: ``Prefix`` with ``!{timestamp:…}``, ``!{partitionKeyFromQuery:…}`` and
  ``!{firehose:random-string}`` expressions, the default ``YYYY/MM/DD/HH/`` time path when the
  prefix has no timestamp expression and dynamic partitioning is off, and object names
  ``<stream>-1-<yyyy-MM-dd-HH-mm-ss>-<uuid>`` (plus ``FileExtension`` when configured);
* **error output**: records that fail partitioning or conversion go, with the reason, to
  ``ErrorOutputPrefix`` (``!{firehose:error-output-type}`` = ``partitioning-failed`` or
  ``format-conversion-failed``) as JSON lines shaped like Firehose's.

Object names use deterministic UUIDs (derived from the stream, the partition and the first record's
sequence number), so the same input gives the same keys and bytes.

Not emulated: Lambda processors, ``AppendDelimiterToRecord``/``RecordDeAggregation`` processors,
ORC output, OpenX options (case-insensitivity, dots in keys), Hive JSON SerDe, retries and backups,
server-side encryption settings, CloudWatch metrics, delivery to targets other than S3.
"""

from emulation.firehose.config import MIB, StreamConfig, read_config
from emulation.firehose.convert import convert
from emulation.firehose.delivery import DeliveryStats, DeliveryStream, Record
from emulation.firehose.errors import InvalidArgumentException
from emulation.firehose.jq import parse_jq

__all__ = [
    "MIB",
    "DeliveryStats",
    "DeliveryStream",
    "InvalidArgumentException",
    "Record",
    "StreamConfig",
    "convert",
    "parse_jq",
    "read_config",
]
