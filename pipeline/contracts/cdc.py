"""The source tables replicated by DMS, and the two message shapes on the CDC stream.

Every stage agrees on these: the simulator produces rows of these tables, DMS turns them into
messages, the Flink job and the Glue jobs read them. Column order is the table's order in the
source database (and so in DMS messages).

Direct e-commerce events (:data:`ECOMMERCE_EVENT_FIELDS`) are the web shop's own JSON shape for an
order line, put on the stream by the shop itself, not by DMS::

    {"event_type": "order_line", "schema_version": 1, "event_id": "web-000000000042",
     "sale_id": 42, "product_id": "P00017", "quantity": 2, "unit_price": 19.99,
     "channel": "web", "sold_at": "2025-02-04T10:11:12Z"}
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_NAME_DEFAULT = "retail"

PRODUCTS = pa.schema(
    [
        pa.field("product_id", pa.string(), nullable=False),
        pa.field("name", pa.string(), nullable=False),
        pa.field("category", pa.string(), nullable=False),
        pa.field("brand", pa.string(), nullable=False),
        pa.field("price_tier", pa.string(), nullable=False),
        pa.field("list_price", pa.float64(), nullable=False),
        pa.field("launch_date", pa.date32(), nullable=False),
        pa.field("discontinued_date", pa.date32()),
    ]
)

CAMPAIGNS = pa.schema(
    [
        pa.field("campaign_id", pa.string(), nullable=False),
        pa.field("scope", pa.string(), nullable=False),  # "product" or "category"
        pa.field("product_id", pa.string()),  # set when scope = product
        pa.field("category", pa.string()),  # set when scope = category
        pa.field("start_date", pa.date32(), nullable=False),
        pa.field("end_date", pa.date32(), nullable=False),  # inclusive
        pa.field("discount", pa.float64(), nullable=False),  # 0.25 = 25 % off
        pa.field("channel", pa.string(), nullable=False),  # all, web, store, app
        pa.field("store_id", pa.string()),  # a local promotion's one store; null: every store
    ]
)

SALES = pa.schema(
    [
        pa.field("sale_id", pa.int64(), nullable=False),
        pa.field("product_id", pa.string(), nullable=False),
        pa.field("quantity", pa.int32(), nullable=False),
        pa.field("unit_price", pa.float64(), nullable=False),
        pa.field("channel", pa.string(), nullable=False),
        pa.field("sold_at", pa.timestamp("s", tz="UTC"), nullable=False),
        # Where the line was sold: the store, or for an online order the store that fulfilled
        # it or the web location. Null in a world without locations.
        pa.field("store_id", pa.string()),
    ]
)

# Locations: physical stores and web locations. Only ``store_id`` is required, so a replay of
# data that names its stores and nothing else about them still fits.
STORES = pa.schema(
    [
        pa.field("store_id", pa.string(), nullable=False),
        pa.field("region", pa.string()),
        pa.field("store_format", pa.string()),  # hypermarket, supermarket, express, online
        pa.field("opened_date", pa.date32()),
        pa.field("closed_date", pa.date32()),  # set once a closing is announced
    ]
)

TABLES: dict[str, pa.Schema] = {
    "products": PRODUCTS,
    "campaigns": CAMPAIGNS,
    "sales": SALES,
    "stores": STORES,
}
PRIMARY_KEYS: dict[str, str] = {
    "products": "product_id",
    "campaigns": "campaign_id",
    "sales": "sale_id",
    "stores": "store_id",
}
#: The forecast dimensions a scenario may name (AutoML V2's ``GroupingAttributeNames``, Amazon
#: Forecast's forecast dimensions): columns of ``sales`` that, with the item, key a series.
DIMENSIONS = ("store_id",)
CHANNELS = ("web", "store", "app")
CAMPAIGN_CHANNELS = ("all", *CHANNELS)

# DMS message metadata (Kinesis target, JSON message format), in message order, with types.
# partition-key-value appears with IncludePartitionValue; the transaction fields after table-name
# with IncludeTransactionDetails (transaction-id is on every CDC record).
DMS_METADATA_FIELDS: dict[str, pa.DataType] = {
    "timestamp": pa.timestamp("us", tz="UTC"),
    "record-type": pa.string(),
    "operation": pa.string(),
    "partition-key-type": pa.string(),
    "partition-key-value": pa.string(),
    "schema-name": pa.string(),
    "table-name": pa.string(),
    "transaction-id": pa.int64(),
    "transaction-record-id": pa.int64(),
    "prev-transaction-id": pa.int64(),
    "prev-transaction-record-id": pa.int64(),
    "commit-timestamp": pa.timestamp("us", tz="UTC"),
    "stream-position": pa.string(),
}

#: Prefix of DMS's own tables (``awsdms_heartbeat``, ``awsdms_apply_exceptions``): records DMS
#: writes about itself, never changes of the source database.
DMS_OWN_TABLES = "awsdms_"

ECOMMERCE_EVENT_TYPE = "order_line"
ECOMMERCE_SCHEMA_VERSION = 1
# The shop event versions readers understand; others are rejected with the version as reason.
ECOMMERCE_SCHEMA_VERSIONS = frozenset({ECOMMERCE_SCHEMA_VERSION})
ECOMMERCE_EVENT_FIELDS = (
    "event_type",
    "schema_version",
    "event_id",
    "sale_id",
    "product_id",
    "quantity",
    "unit_price",
    "channel",
    "sold_at",
)
