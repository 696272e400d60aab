"""A delivery stream's configuration, read back from the endpoint as provisioned.

``DescribeDeliveryStream`` for the source, destination, prefixes, buffering hints, processors and
record format conversion; the Glue Data Catalog for the conversion schema, as Firehose reads it.
A configuration the emulation cannot run is an :class:`InvalidArgumentException`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from emulation.firehose.errors import InvalidArgumentException
from emulation.firehose.jq import parse_jq
from emulation.glue import arrow_schema

if TYPE_CHECKING:
    from emulation.world import World

MIB = 1024 * 1024


@dataclass
class StreamConfig:
    name: str
    source_stream: str | None
    bucket: str
    prefix: str
    error_prefix: str
    size_limit: int
    interval: dt.timedelta
    extension: str
    dynamic: bool
    partition_query: dict[str, tuple[list[str], str | None]] = field(default_factory=dict)
    schema: pa.Schema | None = None
    compression: str = "snappy"
    catalog: dict[str, Any] = field(default_factory=dict)


def read_config(world: World, name: str) -> StreamConfig:
    """The delivery stream ``name`` as the endpoint describes it."""
    description = world.client("firehose").describe_delivery_stream(DeliveryStreamName=name)[
        "DeliveryStreamDescription"
    ]
    source = description.get("Source", {}).get("KinesisStreamSourceDescription")
    destination = description["Destinations"][0]["ExtendedS3DestinationDescription"]
    hints = destination.get("BufferingHints", {})
    dynamic = destination.get("DynamicPartitioningConfiguration", {}).get("Enabled", False)
    partition_query: dict[str, tuple[list[str], str | None]] = {}
    for processor in destination.get("ProcessingConfiguration", {}).get("Processors", []):
        params = {p["ParameterName"]: p["ParameterValue"] for p in processor["Parameters"]}
        if processor["Type"] == "MetadataExtraction":
            partition_query = parse_jq(params["MetadataExtractionQuery"])
        else:
            raise InvalidArgumentException(f"processor {processor['Type']} is not emulated")
    if dynamic and not partition_query:
        raise InvalidArgumentException("dynamic partitioning needs a MetadataExtraction query")
    config = StreamConfig(
        name=name,
        source_stream=source["KinesisStreamARN"].rsplit("/", 1)[1] if source else None,
        bucket=destination["BucketARN"].split(":::", 1)[1],
        prefix=destination.get("Prefix", ""),
        error_prefix=destination.get("ErrorOutputPrefix", ""),
        size_limit=int(hints.get("SizeInMBs", 5)) * MIB,
        interval=dt.timedelta(seconds=int(hints.get("IntervalInSeconds", 300))),
        extension=destination.get("FileExtension", ""),
        dynamic=dynamic,
        partition_query=partition_query,
    )
    conversion = destination.get("DataFormatConversionConfiguration", {})
    if conversion.get("Enabled"):
        catalog = conversion["SchemaConfiguration"]
        config.catalog = catalog
        table = world.client("glue").get_table(
            DatabaseName=catalog["DatabaseName"], Name=catalog["TableName"]
        )["Table"]
        config.schema = arrow_schema(table["StorageDescriptor"]["Columns"])
        serializer = conversion["OutputFormatConfiguration"]["Serializer"]
        if "ParquetSerDe" not in serializer:
            raise InvalidArgumentException("only Parquet output is emulated")
        codec = serializer["ParquetSerDe"].get("Compression", "SNAPPY").upper()
        config.compression = {"UNCOMPRESSED": "none", "GZIP": "gzip"}.get(codec, "snappy")
    return config
