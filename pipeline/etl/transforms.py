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
"""

from __future__ import annotations

import re

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from pipeline.contracts.cdc import DMS_OWN_TABLES, PRIMARY_KEYS, TABLES
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


def dms_changes(staged: DataFrame) -> DataFrame:
    """The staged changes of the source tables, with the file each came from (``_file``; taken
    here, since a cached frame no longer knows it). Not the web shop's own events, nor DMS's own
    records (its heartbeat and control tables, ``record-type`` other than ``data``): those are
    not changes of the source database."""
    record_type = F.col("metadata.`record-type`")
    return (
        staged.where(F.col("table") != ECOMMERCE_PARTITION)
        .where(~F.col("table").startswith(DMS_OWN_TABLES))
        .where(record_type.isNull() | (record_type == "data"))
        .withColumn("_file", F.input_file_name())
    )


def control_records(staged: DataFrame) -> int:
    """How many DMS control records (DDL, with ``IncludeTableAlterOperations``) were staged
    among the source tables' changes: read, and set aside as no change of the data."""
    return (
        staged.where(F.col("table") != ECOMMERCE_PARTITION)
        .where(~F.col("table").startswith(DMS_OWN_TABLES))
        .where(F.col("metadata.`record-type`") == "control")
        .count()
    )


def reject_reasons(changes: DataFrame) -> DataFrame:
    """``changes`` with :data:`REJECT`: the reason a change cannot be applied, or null.

    Reasons start with their class (``unknown table``, ``missing field``, ``not positive``),
    then a colon and the detail, so they can be counted by class.
    """
    reason = F.when(~F.col("table").isin(list(TABLES)),
                    F.concat(F.lit("unknown table: "), F.col("table")))  # fmt: skip
    for table in TABLES:
        for column in _required_columns(table):
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
            F.col("_file").alias("file"),
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
    read = checked.count()
    ok = valid.count()
    applied = valid.select("table", _key(F.col("table")).alias("k"),
                           F.col("metadata.`transaction-id`"), F.col("metadata.operation"),
                           ).distinct().count()  # fmt: skip
    rejected = {
        row["reason"]: row["n"]
        for row in checked.where(F.col(REJECT).isNotNull())
        .groupBy(F.split(F.col(REJECT), ":").getItem(0).alias("reason"))
        .agg(F.count("*").alias("n"))
        .collect()
    }
    return {"read": read, "applied": applied, "duplicates_removed": ok - applied,
            "rejected": dict(sorted(rejected.items()))}  # fmt: skip


def validate_staged(staged: DataFrame) -> None:
    """Fail naming the file and column when a staged file cannot be read with the contract's
    types (a whole file is wrong: nothing in it can be applied, so the job stops)."""
    try:
        staged.agg(F.sum(F.xxhash64("data", "metadata"))).collect()  # reads every value
    except Exception as exc:  # Spark's conversion error, buried in a Java stack trace
        found = _CONVERSION_ERROR.search(str(exc))
        if not found:
            raise
        column = ".".join(part.strip() for part in found["column"].split(","))
        raise StagedDataError(
            f"staged file {found['file']}: column {column} is {found['found'].rstrip('.,')}, "
            f"the contract says {found['expected'].rstrip('.,')}"
        ) from None


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


def _days(products: DataFrame, start: str, end: F.Column) -> DataFrame:
    """One row per item and day from max(launch, start) to ``end``."""
    first = F.greatest(F.col("launch_date"), F.lit(start).cast("date"))
    return products.select(
        F.col("product_id").alias("item_id"),
        F.explode(F.sequence(first, end, F.expr("interval 1 day"))).alias("day"),
    )


def target_time_series(
    sales: DataFrame, products: DataFrame, frequency: str, start: str, end: str
) -> DataFrame:
    """``item_id, timestamp, demand``: summed per period, zero-filled from launch to ``end``."""
    grid = (
        _days(products.where(F.col("launch_date") <= F.lit(end).cast("date")), start,
              F.lit(end).cast("date"))
        .select("item_id", _period(F.col("day"), frequency).alias("timestamp"))
        .distinct()
    )  # fmt: skip
    day = F.to_date("sold_at")
    demand = (
        sales.where((day >= F.lit(start).cast("date")) & (day <= F.lit(end).cast("date")))
        .groupBy(
            F.col("product_id").alias("item_id"),
            _period(F.col("sold_at"), frequency).alias("timestamp"),
        )
        .agg(F.sum("quantity").cast("double").alias("demand"))
    )
    return (
        grid.join(demand, ["item_id", "timestamp"], "left")
        .fillna({"demand": 0.0})
        .select("item_id", "timestamp", "demand")
    )


def related_time_series(
    products: DataFrame,
    campaigns: DataFrame,
    frequency: str,
    start: str,
    end: str,
    horizon: int,
) -> DataFrame:
    """``item_id, timestamp, price, promotion_applied`` from launch through the horizon."""
    months, days = PERIOD_LENGTH[frequency]
    end_date = F.lit(end).cast("date")
    last = (
        F.date_add(end_date, horizon * days)
        if days
        else F.date_sub(F.add_months(F.date_add(end_date, 1), horizon * months), 1)
    )
    grid = _days(products.where(F.col("launch_date") <= last), start, last).join(
        products.select(F.col("product_id").alias("item_id"), "category", "list_price"), "item_id"
    )
    covered = campaigns.select(
        "product_id",
        "category",
        "discount",
        "channel",
        F.explode(F.sequence("start_date", "end_date", F.expr("interval 1 day"))).alias("day"),
    )
    by_product = grid.join(
        covered.where(F.col("product_id").isNotNull())
        .drop("category")
        .withColumnRenamed("product_id", "item_id"),
        ["item_id", "day"],
    )
    by_category = grid.join(covered.where(F.col("category").isNotNull()).drop("product_id"),
                            ["category", "day"])  # fmt: skip
    promotions = (
        by_product.select("item_id", "day", "discount", "channel")
        .unionByName(by_category.select("item_id", "day", "discount", "channel"))
        .groupBy("item_id", "day")
        .agg(
            F.max(F.when(F.col("channel") == "all", F.col("discount")).otherwise(0.0)).alias("d"),
            F.lit(1).alias("promo"),
        )
    )
    daily = (
        grid.join(promotions, ["item_id", "day"], "left")
        .fillna({"d": 0.0, "promo": 0})
        .withColumn("price", F.col("list_price") * (1 - F.col("d")))
    )
    return (
        daily.groupBy("item_id", _period(F.col("day"), frequency).alias("timestamp"))
        .agg(
            F.round(F.avg("price"), 2).alias("price"),
            F.max("promo").cast("int").alias("promotion_applied"),
        )
        .select("item_id", "timestamp", "price", "promotion_applied")
    )


def item_metadata(products: DataFrame) -> DataFrame:
    """``item_id, category, brand, price_tier``."""
    return products.select(F.col("product_id").alias("item_id"), "category", "brand", "price_tier")


def automl_input(target: DataFrame, related: DataFrame, metadata: DataFrame) -> DataFrame:
    """SageMaker AutoML V2's single time-series table, one row per item and period.

    ``item_id, timestamp, demand, price, promotion_applied, category, brand, price_tier``: the
    target with its related values and the item's metadata; the periods past the end date carry
    the known future price and promotion with an empty ``demand`` (the rows to forecast). Only
    items that have a target series are included.
    """
    items = target.select("item_id").distinct()
    return (
        related.join(items, "item_id")
        .join(target, ["item_id", "timestamp"], "left")
        .join(metadata, "item_id", "left")
        .select(
            "item_id",
            "timestamp",
            "demand",
            *[c for c in related.columns if c not in ("item_id", "timestamp")],
            *[c for c in metadata.columns if c != "item_id"],
        )
    )


_QUANTILE_COLUMN = re.compile(r"^p\d+(\.\d+)?$")


def forecast_export(transform_output: DataFrame) -> DataFrame:
    """Batch-transform rows (``item_id, timestamp, p10…, mean``) → the Forecast export layout.

    ``item_id, date, p10, p50, p90``: one column per quantile type in the order given, ``date``
    as ISO-8601 with ``Z`` as Amazon Forecast writes it. The point ``mean`` is not a configured
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
        F.date_format(F.to_timestamp("timestamp"), "yyyy-MM-dd'T'HH:mm:ss'Z'").alias("date"),
        *[F.col(c).cast("double").alias(c) for c in quantiles],
    )


def read_forecast_export(export: DataFrame) -> DataFrame:
    """The export's CSV columns (strings) → ``item_id, date (date), p…`` (doubles)."""
    quantiles = [c for c in export.columns if _QUANTILE_COLUMN.match(c)]
    for required in ("item_id", "date"):
        if required not in export.columns:
            raise ValueError(f"forecast export has no column {required!r}")
    return export.select(
        F.col("item_id").cast("string").alias("item_id"),
        F.to_date(F.substring("date", 1, 10)).alias("date"),
        *[F.col(c).cast("double").alias(c) for c in quantiles],
    )


def enrich_forecast(
    forecast: DataFrame,
    products: DataFrame,
    campaigns: DataFrame,
    sales: DataFrame,
    recent_days: int,
) -> DataFrame:
    """The forecast joined with product attributes, active campaigns and recent actuals.

    One row per forecast row (``item_id, date``): the product's ``name, category, brand,
    price_tier, list_price``; ``campaign_discount`` (the largest all-channel discount of a
    campaign covering the item that day, 0 without one) and ``promotion_applied`` (any campaign
    covers it); ``recent_daily_demand`` (units per day over the ``recent_days`` before the first
    forecast date) and ``last_sale_date``. Items the product table no longer holds keep their
    forecast with empty attributes rather than vanish.
    """
    first = forecast.agg(F.min("date").alias("first")).first()["first"]
    since = F.date_sub(F.lit(first), recent_days)
    day = F.to_date("sold_at")
    recent = (
        sales.where((day >= since) & (day < F.lit(first)))
        .groupBy(F.col("product_id").alias("item_id"))
        .agg((F.sum("quantity") / F.lit(float(recent_days))).alias("recent_daily_demand"))
    )
    last_sale = sales.groupBy(F.col("product_id").alias("item_id")).agg(
        F.max(day).alias("last_sale_date")
    )
    attributes = products.select(
        F.col("product_id").alias("item_id"), "name", "category", "brand", "price_tier",
        "list_price",
    )  # fmt: skip
    covered = campaigns.select(
        "product_id", "category", "discount", "channel",
        F.explode(F.sequence("start_date", "end_date", F.expr("interval 1 day"))).alias("date"),
    )  # fmt: skip
    keyed = forecast.join(attributes, "item_id", "left")
    by_product = keyed.join(
        covered.where(F.col("product_id").isNotNull())
        .drop("category")
        .withColumnRenamed("product_id", "item_id"),
        ["item_id", "date"],
    ).select("item_id", "date", "discount", "channel")
    by_category = keyed.join(
        covered.where(F.col("category").isNotNull()).drop("product_id"), ["category", "date"]
    ).select("item_id", "date", "discount", "channel")
    promotions = (
        by_product.unionByName(by_category)
        .groupBy("item_id", "date")
        .agg(
            F.max(F.when(F.col("channel") == "all", F.col("discount")).otherwise(0.0)).alias(
                "campaign_discount"
            ),
            F.lit(1).alias("promotion_applied"),
        )
    )
    quantiles = [c for c in forecast.columns if _QUANTILE_COLUMN.match(c)]
    return (
        keyed.join(promotions, ["item_id", "date"], "left")
        .join(recent, "item_id", "left")
        .join(last_sale, "item_id", "left")
        .fillna({"campaign_discount": 0.0, "promotion_applied": 0, "recent_daily_demand": 0.0})
        .select(
            "item_id", "date", *quantiles, "name", "category", "brand", "price_tier",
            "list_price", "campaign_discount",
            F.col("promotion_applied").cast("int").alias("promotion_applied"),
            "recent_daily_demand", "last_sale_date",
        )
    )  # fmt: skip
