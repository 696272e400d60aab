"""Pure transforms from staged CDC data to the forecast datasets (Spark DataFrames in and out).

The Glue scripts only parse arguments, read, call these, and write. Semantics:

* **CDC**: for each key the latest version by commit order (full-load rows first, then by DMS
  transaction id); a key whose latest change is a ``delete`` is gone. Duplicate or late copies of
  a change carry the same transaction id and so never count twice (:func:`change_counts` says how
  many copies there were).
* **Rejections**: a staged change that cannot be applied is set aside with its reason, never
  applied and never silently dropped (:func:`reject_reasons`): a table the pipeline does not
  know, a required column missing, a sale whose quantity or unit price is not positive.
* **Target time series** (RETAIL ``item_id, timestamp, demand``): sales summed per item and
  period (``D`` days, ``W`` weeks starting Monday, ``M`` months, ``3M`` quarters, ``Y`` years,
  each labelled by its first day), zero-filled from the item's launch to the end date, for items
  that exist in the product table. The caller chooses an end date that closes a period: a partial
  last period would read as a drop in demand.
* **Related time series** (``item_id, timestamp, price, promotion_applied``): the shelf price of
  the period (current list price less the largest discount of a campaign for all channels that
  covers the item that period) and whether any campaign covered it; from launch to the end of the
  forecast horizon, so it covers the horizon as AWS requires.
* **Item metadata** (``item_id, category, brand, price_tier``).
* **Dimensions** (``store_id``; AutoML V2's ``GroupingAttributeNames``): with them a series is an
  item *at a location*. The series are the item × store pairs that have sold by the end date, at
  stores not closed by then, from the later of the item's launch and the store's opening; the
  related series is per pair too (a local campaign, ``campaigns.store_id``, covers its store
  only); a sale without a store is set aside (``missing field``).
"""

from __future__ import annotations

import re

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from pipeline.contracts.cdc import DIMENSIONS, DMS_OWN_TABLES, PRIMARY_KEYS, TABLES
from pipeline.contracts.periods import FREQUENCIES, PERIOD_LENGTH
from pipeline.contracts.staged import ECOMMERCE_PARTITION, STAGED_CDC_COLUMNS, STAGED_CDC_PARTITIONS


class StagedDataError(ValueError):
    """Staged data violates the contract (names the file and the column)."""


def staged_schema_ddl() -> str:
    """The staged table's schema as Spark DDL, from the contract (names quoted: some have '-')."""

    def quote(hive: str) -> str:
        return re.sub(r"([<,])([A-Za-z_][A-Za-z0-9_-]*):", r"\1`\2`:", hive)

    columns = [f"`{name}` {quote(kind)}" for name, kind in STAGED_CDC_COLUMNS]
    columns += [f"`{name}` {kind}" for name, kind in STAGED_CDC_PARTITIONS]
    return ", ".join(columns)


_CONVERSION_ERROR = re.compile(
    r"Parquet column cannot be converted in file (?P<file>\S+?)\. Column: \[(?P<column>[^\]]+)\], "
    r"Expected: (?P<expected>\S+), Found: (?P<found>\S+)"
)


def _required_columns(table: str) -> list[str]:
    return [f.name for f in TABLES[table] if not f.nullable]


REJECT = "_reject"  # the column :func:`reject_reasons` adds: why a change is set aside, or null
FILE = "_file"  # the column :func:`with_files` adds: the staged object a row was read from


def with_files(staged: DataFrame) -> DataFrame:
    """``staged`` with :data:`FILE`, the object each row came from. Taken before caching: a
    cached frame no longer knows its rows' files, and the rejected changes name them."""
    return staged.withColumn(FILE, F.input_file_name())


def dms_changes(staged: DataFrame) -> DataFrame:
    """The staged changes of the source tables, with the file each came from (:data:`FILE`, kept
    when ``staged`` has it, see :func:`with_files`). Not the web shop's own events, nor DMS's
    own records (its heartbeat and control tables, ``record-type`` other than ``data``): those
    are not changes of the source database."""
    record_type = F.col("metadata.`record-type`")
    changes = (
        staged.where(F.col("table") != ECOMMERCE_PARTITION)
        .where(~F.col("table").startswith(DMS_OWN_TABLES))
        .where(record_type.isNull() | (record_type == "data"))
    )
    return changes if FILE in staged.columns else with_files(changes)


def _is_control_record() -> F.Column:
    return (
        (F.col("table") != ECOMMERCE_PARTITION)
        & ~F.col("table").startswith(DMS_OWN_TABLES)
        & (F.col("metadata.`record-type`") == "control")
    )


def control_records(staged: DataFrame) -> int:
    """How many DMS control records (DDL, with ``IncludeTableAlterOperations``) were staged
    among the source tables' changes: read, and set aside as no change of the data."""
    return staged.where(_is_control_record()).count()


def check_dimensions(dimensions: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The dimensions, each one the contract knows (:data:`DIMENSIONS`), in order, once."""
    unknown = [d for d in dimensions if d not in DIMENSIONS]
    if unknown or len(set(dimensions)) != len(dimensions):
        raise ValueError(f"dimensions {list(dimensions)}: expected distinct names among "
                         f"{', '.join(DIMENSIONS)}")  # fmt: skip
    return tuple(dimensions)


def reject_reasons(changes: DataFrame, dimensions: tuple[str, ...] = ()) -> DataFrame:
    """``changes`` with :data:`REJECT`: the reason a change cannot be applied, or null.

    Reasons start with their class (``unknown table``, ``missing field``, ``not positive``),
    then a colon and the detail, so they can be counted by class. With ``dimensions`` a sale
    must carry each of them (it belongs to no series otherwise).
    """
    reason = F.when(~F.col("table").isin(list(TABLES)),
                    F.concat(F.lit("unknown table: "), F.col("table")))  # fmt: skip
    for table in TABLES:
        required = _required_columns(table) + (list(dimensions) if table == "sales" else [])
        for column in required:
            reason = reason.when(
                (F.col("table") == table) & F.col(f"data.{column}").isNull(),
                F.lit(f"missing field: data.{column} of table {table}"),
            )
    for column in ("quantity", "unit_price"):
        reason = reason.when(
            (F.col("table") == "sales") & (F.col(f"data.{column}") <= 0),
            F.concat(F.lit(f"not positive: data.{column} = "),
                     F.col(f"data.{column}").cast("string")),
        )  # fmt: skip
    return changes.withColumn(REJECT, reason)


def _key(table_column: F.Column) -> F.Column:
    """A change's primary key value as text (null for a table the contract does not know)."""
    return F.coalesce(*[
        F.when(table_column == table, F.col(f"data.{pk}").cast("string"))
        for table, pk in PRIMARY_KEYS.items()
    ])  # fmt: skip


def rejected_changes(checked: DataFrame) -> DataFrame:
    """The changes set aside (``file, table, key, transaction_id, operation, reason``), ordered."""
    return (
        checked.where(F.col(REJECT).isNotNull())
        .select(
            F.col(FILE).alias("file"),
            "table",
            _key(F.col("table")).alias("key"),
            F.col("metadata.`transaction-id`").alias("transaction_id"),
            F.col("metadata.operation").alias("operation"),
            F.col(REJECT).alias("reason"),
        )
        .orderBy("table", "transaction_id", "key", "file")
    )


def change_counts(checked: DataFrame) -> dict[str, object]:
    """How many changes were read, applied (distinct), removed as copies and rejected by class.

    A copy is a change whose table, key, transaction and operation another staged row already
    has: DMS delivered it again, or Firehose staged it twice (both are at-least-once).
    """
    valid = checked.where(F.col(REJECT).isNull())
    # One pass counts what was read, applied and set aside (by class; null: applied).
    by_class = {
        row["reason"]: row["n"]
        for row in checked.groupBy(F.split(F.col(REJECT), ":").getItem(0).alias("reason"))
        .agg(F.count("*").alias("n"))
        .collect()
    }
    read = sum(by_class.values())
    ok = by_class.pop(None, 0)
    applied = valid.select("table", _key(F.col("table")).alias("k"),
                           F.col("metadata.`transaction-id`"), F.col("metadata.operation"),
                           ).distinct().count()  # fmt: skip
    return {"read": read, "applied": applied, "duplicates_removed": ok - applied,
            "rejected": dict(sorted(by_class.items()))}  # fmt: skip


def validate_staged(staged: DataFrame) -> int:
    """Fail naming the file and column when a staged file cannot be read with the contract's
    types (a whole file is wrong: nothing in it can be applied, so the job stops).

    Returns :func:`control_records`, counted in the same pass: each pass over the staged table
    opens every object in it again, and small objects make that cost most of a job's time. The
    jobs call it on the cached table, so that this pass is the one that fills the cache.
    """
    try:
        row = staged.agg(
            F.sum(F.xxhash64("data", "metadata")),  # reads every value
            F.count_if(_is_control_record()).alias("control"),
        ).first()
    except Exception as exc:  # Spark's conversion error, buried in a Java stack trace
        found = _CONVERSION_ERROR.search(str(exc))
        if not found:
            raise
        column = ".".join(part.strip() for part in found["column"].split(","))
        raise StagedDataError(
            f"staged file {found['file']}: column {column} is {found['found'].rstrip('.,')}, "
            f"the contract says {found['expected'].rstrip('.,')}"
        ) from None
    return int(row["control"] or 0)


def current_rows(staged: DataFrame, table: str) -> DataFrame:
    """The table as it stands after applying every change in commit order."""
    pk = PRIMARY_KEYS[table]
    order = Window.partitionBy(F.col(f"data.{pk}")).orderBy(
        F.coalesce(F.col("metadata.`transaction-id`"), F.lit(-1)).desc(),
        F.col("metadata.timestamp").desc(),
    )
    latest = (
        staged.where(F.col("table") == table)
        .withColumn("_rank", F.row_number().over(order))
        .where("_rank = 1")
        .where(F.col("metadata.operation") != "delete")
    )
    return latest.select(*[F.col(f"data.{f.name}").alias(f.name) for f in TABLES[table]])


def _period(column: F.Column, frequency: str) -> F.Column:
    return F.to_date(F.date_trunc(FREQUENCIES[frequency], column))


def series(
    products: DataFrame,
    end: str,
    sales: DataFrame | None = None,
    stores: DataFrame | None = None,
    dimensions: tuple[str, ...] = (),
) -> DataFrame:
    """``item_id, <dimensions…>, launch_date``: the series to forecast and the day each starts.

    Without dimensions, every product launched by ``end``. With ``store_id``, every item × store
    pair that has sold by ``end`` at a store not closed by then, starting when both the item and
    the store were there (a store missing from the stores table counts as always open).
    """
    end_date = F.lit(end).cast("date")
    items = products.where(F.col("launch_date") <= end_date).select(
        F.col("product_id").alias("item_id"), "launch_date"
    )
    if not dimensions:
        return items
    if sales is None or stores is None:
        raise ValueError("series by dimension need the sales and stores tables")
    pairs = (
        sales.where(F.to_date("sold_at") <= end_date)
        .select(F.col("product_id").alias("item_id"), *dimensions)
        .distinct()
    )
    sites = stores.select("store_id", "opened_date", "closed_date")
    return (
        pairs.join(items, "item_id")
        .join(sites, "store_id", "left")
        .where(F.col("closed_date").isNull() | (F.col("closed_date") > end_date))
        .select(
            "item_id", *dimensions,
            F.greatest("launch_date", F.coalesce("opened_date", "launch_date")).alias(
                "launch_date"
            ),
        )
    )  # fmt: skip


def _series_days(keys: DataFrame, start: str, end: F.Column) -> DataFrame:
    """One row per series and day from max(its start, ``start``) to ``end``."""
    first = F.greatest(F.col("launch_date"), F.lit(start).cast("date"))
    return keys.select(
        *[c for c in keys.columns if c != "launch_date"],
        F.explode(F.sequence(first, end, F.expr("interval 1 day"))).alias("day"),
    )


def target_time_series(
    sales: DataFrame,
    products: DataFrame,
    frequency: str,
    start: str,
    end: str,
    stores: DataFrame | None = None,
    dimensions: tuple[str, ...] = (),
) -> DataFrame:
    """``item_id, <dimensions…>, timestamp, demand``: summed per period, zero-filled from the
    series' start to ``end``."""
    keys = ["item_id", *dimensions]
    grid = (
        _series_days(series(products, end, sales, stores, dimensions), start,
                     F.lit(end).cast("date"))
        .select(*keys, _period(F.col("day"), frequency).alias("timestamp"))
        .distinct()
    )  # fmt: skip
    day = F.to_date("sold_at")
    demand = (
        sales.where((day >= F.lit(start).cast("date")) & (day <= F.lit(end).cast("date")))
        .groupBy(
            F.col("product_id").alias("item_id"),
            *dimensions,
            _period(F.col("sold_at"), frequency).alias("timestamp"),
        )
        .agg(F.sum("quantity").cast("double").alias("demand"))
    )
    return (
        grid.join(demand, [*keys, "timestamp"], "left")
        .fillna({"demand": 0.0})
        .select(*keys, "timestamp", "demand")
    )


def _covering(grid: DataFrame, campaigns: DataFrame, day: str,
              dimensions: tuple[str, ...]) -> DataFrame:  # fmt: skip
    """``item_id, <dimensions…>, <day>, discount, channel`` of every campaign covering a grid row
    (``grid`` has ``item_id``, ``category``, the dimensions and ``day``): by product or category;
    a local campaign (``store_id`` set) only at its store."""
    keys = ["item_id", *dimensions]
    covered = campaigns.select(
        "product_id", "category", "discount", "channel", F.col("store_id").alias("_store"),
        F.explode(F.sequence("start_date", "end_date", F.expr("interval 1 day"))).alias(day),
    )  # fmt: skip
    by_product = grid.join(
        covered.where(F.col("product_id").isNotNull())
        .drop("category")
        .withColumnRenamed("product_id", "item_id"),
        ["item_id", day],
    )
    by_category = grid.join(covered.where(F.col("category").isNotNull()).drop("product_id"),
                            ["category", day])  # fmt: skip
    both = by_product.select(*keys, day, "discount", "channel", "_store").unionByName(
        by_category.select(*keys, day, "discount", "channel", "_store")
    )
    here = F.col("_store").isNull()
    if "store_id" in dimensions:
        here = here | (F.col("_store") == F.col("store_id"))
    return both.where(here).drop("_store")


def related_time_series(
    products: DataFrame,
    campaigns: DataFrame,
    frequency: str,
    start: str,
    end: str,
    horizon: int,
    sales: DataFrame | None = None,
    stores: DataFrame | None = None,
    dimensions: tuple[str, ...] = (),
) -> DataFrame:
    """``item_id, <dimensions…>, timestamp, price, promotion_applied`` from the series' start
    through the horizon."""
    keys = ["item_id", *dimensions]
    months, days = PERIOD_LENGTH[frequency]
    end_date = F.lit(end).cast("date")
    last = (
        F.date_add(end_date, horizon * days)
        if days
        else F.date_sub(F.add_months(F.date_add(end_date, 1), horizon * months), 1)
    )
    # Without dimensions the related series also covers items launching in the horizon.
    known = (
        series(products, end, sales, stores, dimensions)
        if dimensions
        else series(products.where(F.col("launch_date") <= last), "9999-12-31")
    )
    grid = _series_days(known, start, last).join(
        products.select(F.col("product_id").alias("item_id"), "category", "list_price"), "item_id"
    )
    promotions = (
        _covering(grid, campaigns, "day", dimensions)
        .groupBy(*keys, "day")
        .agg(
            F.max(F.when(F.col("channel") == "all", F.col("discount")).otherwise(0.0)).alias("d"),
            F.lit(1).alias("promo"),
        )
    )
    daily = (
        grid.join(promotions, [*keys, "day"], "left")
        .fillna({"d": 0.0, "promo": 0})
        .withColumn("price", F.col("list_price") * (1 - F.col("d")))
    )
    return (
        daily.groupBy(*keys, _period(F.col("day"), frequency).alias("timestamp"))
        .agg(
            F.round(F.avg("price"), 2).alias("price"),
            F.max("promo").cast("int").alias("promotion_applied"),
        )
        .select(*keys, "timestamp", "price", "promotion_applied")
    )


def item_metadata(products: DataFrame) -> DataFrame:
    """``item_id, category, brand, price_tier``."""
    return products.select(F.col("product_id").alias("item_id"), "category", "brand", "price_tier")


def store_metadata(stores: DataFrame) -> DataFrame:
    """``store_id, region, store_format``: what the forecaster may relate stores by (a store
    missing either is ``unknown`` there: AutoML needs a value on every row)."""
    return stores.select(
        "store_id",
        F.coalesce("region", F.lit("unknown")).alias("region"),
        F.coalesce("store_format", F.lit("unknown")).alias("store_format"),
    )


def automl_input(target: DataFrame, related: DataFrame, metadata: DataFrame,
                 dimensions: tuple[str, ...] = (),
                 stores: DataFrame | None = None) -> DataFrame:  # fmt: skip
    """SageMaker AutoML V2's single time-series table, one row per series and period.

    ``item_id, <dimensions…>, timestamp, demand, price, promotion_applied, category, brand,
    price_tier[, region, store_format]``: the target with its related values, the item's
    metadata and (by store) the store's; the periods past the end date carry the known future
    price and promotion with an empty ``demand`` (the rows to forecast). Only series that have a
    target are included.
    """
    keys = ["item_id", *dimensions]
    items = target.select(*keys).distinct()
    framed = (
        related.join(items, keys)
        .join(target, [*keys, "timestamp"], "left")
        .join(metadata, "item_id", "left")
    )
    extra: list[str] = []
    if "store_id" in dimensions and stores is not None:
        sites = store_metadata(stores)
        framed = framed.join(sites, "store_id", "left").fillna(
            {"region": "unknown", "store_format": "unknown"}
        )
        extra = [c for c in sites.columns if c != "store_id"]
    return framed.select(
        *keys,
        "timestamp",
        "demand",
        *[c for c in related.columns if c not in (*keys, "timestamp")],
        *[c for c in metadata.columns if c != "item_id"],
        *extra,
    )


_QUANTILE_COLUMN = re.compile(r"^p\d+(\.\d+)?$")


def _dimension_columns(frame: DataFrame, time_column: str) -> list[str]:
    """The columns between ``item_id`` and the time column: a forecast's dimensions."""
    columns = frame.columns
    if "item_id" not in columns or time_column not in columns:
        return []
    return [c for c in columns[columns.index("item_id") + 1 : columns.index(time_column)]
            if not _QUANTILE_COLUMN.match(c) and c != "mean"]  # fmt: skip


def forecast_export(transform_output: DataFrame) -> DataFrame:
    """Batch-transform rows (``item_id, [dimensions…,] timestamp, p10…, mean``) → the Forecast
    export layout.

    ``item_id, [dimensions…,] date, p10, p50, p90``: the dimensions (AutoML's grouping
    attributes) after the item as Amazon Forecast writes them, one column per quantile type in
    the order given, ``date`` as ISO-8601 with ``Z``. The point ``mean`` is not a configured
    forecast type and is left out, as in AWS's export.
    """
    quantiles = [c for c in transform_output.columns if _QUANTILE_COLUMN.match(c)]
    if not quantiles:
        raise ValueError(
            f"transform output has no quantile columns (pNN); columns: {transform_output.columns}"
        )
    for required in ("item_id", "timestamp"):
        if required not in transform_output.columns:
            raise ValueError(f"transform output has no column {required!r}")
    return transform_output.select(
        F.col("item_id").cast("string").alias("item_id"),
        *[
            F.col(c).cast("string").alias(c)
            for c in _dimension_columns(transform_output, "timestamp")
        ],
        F.date_format(F.to_timestamp("timestamp"), "yyyy-MM-dd'T'HH:mm:ss'Z'").alias("date"),
        *[F.col(c).cast("double").alias(c) for c in quantiles],
    )


def read_forecast_export(export: DataFrame) -> DataFrame:
    """The export's CSV columns (strings) → ``item_id, [dimensions…,] date (date), p…``
    (doubles)."""
    quantiles = [c for c in export.columns if _QUANTILE_COLUMN.match(c)]
    for required in ("item_id", "date"):
        if required not in export.columns:
            raise ValueError(f"forecast export has no column {required!r}")
    dimensions = _dimension_columns(export, "date")
    unknown = [d for d in dimensions if d not in DIMENSIONS]
    if unknown:
        raise ValueError(f"forecast export has a dimension {unknown[0]!r} the enrichment does "
                         f"not know (it knows {', '.join(DIMENSIONS)})")  # fmt: skip
    return export.select(
        F.col("item_id").cast("string").alias("item_id"),
        *[F.col(c).cast("string").alias(c) for c in dimensions],
        F.to_date(F.substring("date", 1, 10)).alias("date"),
        *[F.col(c).cast("double").alias(c) for c in quantiles],
    )


def enrich_forecast(
    forecast: DataFrame,
    products: DataFrame,
    campaigns: DataFrame,
    sales: DataFrame,
    recent_days: int,
    stores: DataFrame | None = None,
) -> DataFrame:
    """The forecast joined with product (and store) attributes, active campaigns and recent
    actuals.

    One row per forecast row (``item_id, [store_id,] date``): the product's ``name, category,
    brand, price_tier, list_price``; by store, the store's ``region, store_format``;
    ``campaign_discount`` (the largest all-channel discount of a campaign covering the item that
    day, at that store for a local one, 0 without one) and ``promotion_applied`` (any campaign
    covers it); ``recent_daily_demand`` (units per day over the ``recent_days`` before the first
    forecast date) and ``last_sale_date``, per item or per item and store. Items the product
    table no longer holds keep their forecast with empty attributes rather than vanish.
    """
    dimensions = tuple(_dimension_columns(forecast, "date"))
    keys = ["item_id", *dimensions]
    first = forecast.agg(F.min("date").alias("first")).first()["first"]
    since = F.date_sub(F.lit(first), recent_days)
    day = F.to_date("sold_at")
    by_key = [F.col("product_id").alias("item_id"), *dimensions]
    recent = (
        sales.where((day >= since) & (day < F.lit(first)))
        .groupBy(*by_key)
        .agg((F.sum("quantity") / F.lit(float(recent_days))).alias("recent_daily_demand"))
    )
    last_sale = sales.groupBy(*by_key).agg(F.max(day).alias("last_sale_date"))
    attributes = products.select(
        F.col("product_id").alias("item_id"), "name", "category", "brand", "price_tier",
        "list_price",
    )  # fmt: skip
    keyed = forecast.join(attributes, "item_id", "left")
    if "store_id" in dimensions and stores is not None:
        keyed = keyed.join(stores.select("store_id", "region", "store_format"), "store_id", "left")
    else:
        keyed = keyed.withColumn("region", F.lit(None).cast("string")).withColumn(
            "store_format", F.lit(None).cast("string")
        )
    if "store_id" not in dimensions:
        keyed = keyed.withColumn("store_id", F.lit(None).cast("string"))
    promotions = (
        _covering(keyed, campaigns, "date", dimensions)
        .groupBy(*keys, "date")
        .agg(
            F.max(F.when(F.col("channel") == "all", F.col("discount")).otherwise(0.0)).alias(
                "campaign_discount"
            ),
            F.lit(1).alias("promotion_applied"),
        )
    )
    quantiles = [c for c in forecast.columns if _QUANTILE_COLUMN.match(c)]
    return (
        keyed.join(promotions, [*keys, "date"], "left")
        .join(recent, keys, "left")
        .join(last_sale, keys, "left")
        .fillna({"campaign_discount": 0.0, "promotion_applied": 0, "recent_daily_demand": 0.0})
        .select(
            "item_id", "store_id", "date", *quantiles, "name", "category", "brand", "price_tier",
            "list_price", "region", "store_format", "campaign_discount",
            F.col("promotion_applied").cast("int").alias("promotion_applied"),
            "recent_daily_demand", "last_sale_date",
        )
    )  # fmt: skip
