"""Tables in the staged and analysis buckets, as Glue Data Catalog columns (Hive types).

Firehose converts the CDC stream's JSON to Parquet with the schema of the Glue table
:data:`STAGED_CDC_TABLE`, as AWS does: one table whose ``data`` struct is the union of the source
tables' columns (a record fills the fields of its own table), whose ``metadata`` struct holds every
DMS metadata field, and whose top-level event columns carry the web shop's direct events. Objects
are partitioned by the DMS ``table-name`` (``ecommerce_events`` for the shop's events) and by day.
"""

from __future__ import annotations

import pyarrow as pa

from pipeline.contracts.cdc import DMS_METADATA_FIELDS, TABLES

STAGED_CDC_TABLE = "staged_cdc"
OUTLIERS_TABLE = "outliers"
FORECAST_ENRICHED_TABLE = "forecast_enriched"
ECOMMERCE_PARTITION = "ecommerce_events"


def hive_type(arrow_type: pa.DataType) -> str:
    """The Hive/Glue type name of an Arrow type used by the contracts."""
    if pa.types.is_string(arrow_type):
        return "string"
    if pa.types.is_int32(arrow_type):
        return "int"
    if pa.types.is_int64(arrow_type):
        return "bigint"
    if pa.types.is_float64(arrow_type):
        return "double"
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_date32(arrow_type):
        return "date"
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    raise TypeError(f"no Hive type for {arrow_type}")


def _data_struct() -> str:
    seen: dict[str, str] = {}
    for schema in TABLES.values():
        for field in schema:
            kind = hive_type(field.type)
            if seen.setdefault(field.name, kind) != kind:
                raise TypeError(f"column {field.name} has two types across source tables")
    return "struct<" + ",".join(f"{name}:{kind}" for name, kind in seen.items()) + ">"


METADATA_STRUCT = (
    "struct<"
    + ",".join(f"{name}:{hive_type(kind)}" for name, kind in DMS_METADATA_FIELDS.items())
    + ">"
)

STAGED_CDC_COLUMNS: list[tuple[str, str]] = [
    ("data", _data_struct()),
    ("metadata", METADATA_STRUCT),
    ("event_type", "string"),
    ("schema_version", "int"),
    ("event_id", "string"),
    ("sale_id", "bigint"),
    ("product_id", "string"),
    ("quantity", "int"),
    ("unit_price", "double"),
    ("channel", "string"),
    ("sold_at", "timestamp"),
]
STAGED_CDC_PARTITIONS: list[tuple[str, str]] = [("table", "string"), ("dt", "string")]

OUTLIER_COLUMNS: list[tuple[str, str]] = [
    # The finding's stable name (``spike:<sale_id>``, ``drop:<product>:<day>``): the streaming
    # job's sink is at-least-once, so after a restart the same outlier may arrive twice; readers
    # keep one row per id.
    ("outlier_id", "string"),
    ("sale_id", "bigint"),
    ("product_id", "string"),
    ("quantity", "int"),
    ("unit_price", "double"),
    ("channel", "string"),
    ("sold_at", "timestamp"),
    ("reason", "string"),
    ("score", "double"),
    ("source", "string"),
]
OUTLIER_PARTITIONS: list[tuple[str, str]] = [("dt", "string")]

# The forecast joined with what the business knows about each item (and store), for Athena and
# the web page: one row per item (per item and store when the forecast is by store) and forecast
# date, partitioned by the forecast version (the input's end date). ``store_id``, ``region`` and
# ``store_format`` are null in a forecast without locations.
FORECAST_ENRICHED_COLUMNS: list[tuple[str, str]] = [
    ("item_id", "string"),
    ("store_id", "string"),
    ("date", "date"),
    ("p10", "double"),
    ("p50", "double"),
    ("p90", "double"),
    ("name", "string"),
    ("category", "string"),
    ("brand", "string"),
    ("price_tier", "string"),
    ("list_price", "double"),
    ("region", "string"),
    ("store_format", "string"),
    ("campaign_discount", "double"),
    ("promotion_applied", "int"),
    ("recent_daily_demand", "double"),
    ("last_sale_date", "date"),
]
FORECAST_ENRICHED_PARTITIONS: list[tuple[str, str]] = [("version", "string")]

GLUE_TABLES: dict[str, tuple[list[tuple[str, str]], list[tuple[str, str]]]] = {
    STAGED_CDC_TABLE: (STAGED_CDC_COLUMNS, STAGED_CDC_PARTITIONS),
    OUTLIERS_TABLE: (OUTLIER_COLUMNS, OUTLIER_PARTITIONS),
    FORECAST_ENRICHED_TABLE: (FORECAST_ENRICHED_COLUMNS, FORECAST_ENRICHED_PARTITIONS),
}
