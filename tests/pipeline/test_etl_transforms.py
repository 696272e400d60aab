"""The forecast-input transforms on small DataFrames: CDC semantics, zero-fill, horizon."""

from __future__ import annotations

import datetime as dt

import pytest

from emulation.glue.spark import spark_session
from pipeline.contracts.periods import (
    last_closed_day,
    next_period_start,
    period_start,
    whole_periods,
)
from pipeline.etl.transforms import (
    REJECT,
    change_counts,
    control_records,
    current_rows,
    dms_changes,
    item_metadata,
    reject_reasons,
    rejected_changes,
    related_time_series,
    staged_schema_ddl,
    target_time_series,
    validate_staged,
    with_files,
)

D = dt.date
T = dt.datetime
# Pure transforms on in-memory DataFrames: the world only configures the Spark session.
pytestmark = pytest.mark.endpoint_free


@pytest.fixture(scope="module")
def spark(world):
    return spark_session(world.endpoint_url, world.region)


def staged_rows(spark, rows):
    """Rows of (table, data dict, operation, transaction-id) in the staged schema."""
    schema = spark.createDataFrame([], staged_schema_ddl()).schema
    data_fields = [f.name for f in schema["data"].dataType.fields]
    meta_fields = [f.name for f in schema["metadata"].dataType.fields]
    out = []
    for table, data, op, txn in rows:
        meta = dict.fromkeys(meta_fields)
        meta.update({"operation": op, "table-name": table, "transaction-id": txn,
                     "timestamp": T(2025, 1, 1)})  # fmt: skip
        if op and op.startswith("control:"):  # a DMS control record (DDL): no data
            meta.update({"record-type": "control", "operation": op.split(":", 1)[1]})
        record = {name: None for name in schema.names}
        record.update(
            data=None if meta.get("record-type") == "control"
            else {f: data.get(f) for f in data_fields},
            metadata=meta, table=table, dt="2025-01-01",
        )  # fmt: skip
        out.append(record)
    return spark.createDataFrame(out, schema)


JAN_1 = D(2025, 1, 1)


def product(pid, launch=JAN_1, price=10.0, category="toys"):
    return {"product_id": pid, "name": pid, "category": category, "brand": "b",
            "price_tier": "standard", "list_price": price, "launch_date": launch}  # fmt: skip


def sale(sid, pid, qty, when):
    return {"sale_id": sid, "product_id": pid, "quantity": qty, "unit_price": 9.0,
            "channel": "web", "sold_at": when}  # fmt: skip


def test_latest_version_wins_deletes_remove_duplicates_count_once(spark) -> None:
    staged = staged_rows(
        spark,
        [
            ("sales", sale(1, "P1", 2, T(2025, 1, 1, 10)), "load", None),
            ("sales", sale(2, "P1", 1, T(2025, 1, 1, 11)), "load", None),
            ("sales", sale(1, "P1", 3, T(2025, 1, 1, 10)), "update", 101),  # correction
            ("sales", sale(2, "P1", 1, T(2025, 1, 1, 11)), "delete", 102),  # cancellation
            ("sales", sale(3, "P1", 5, T(2025, 1, 2, 9)), "insert", 103),
            ("sales", sale(3, "P1", 5, T(2025, 1, 2, 9)), "insert", 103),  # duplicate delivery
            ("sales", sale(4, "P1", 1, T(2025, 1, 2, 9)), "insert", 105),
            ("sales", sale(4, "P1", 7, T(2025, 1, 2, 9)), "update", 104),  # late, older change
        ],
    )
    rows = {r["sale_id"]: r["quantity"] for r in current_rows(staged, "sales").collect()}
    assert rows == {1: 3, 3: 5, 4: 1}


def test_target_is_zero_filled_from_launch_and_sums_per_period(spark) -> None:
    staged = staged_rows(
        spark,
        [
            ("products", product("P1", D(2025, 1, 1)), "load", None),
            ("products", product("P2", D(2025, 1, 3)), "load", None),
            ("sales", sale(1, "P1", 2, T(2025, 1, 1, 10)), "load", None),
            ("sales", sale(2, "P1", 3, T(2025, 1, 1, 18)), "load", None),
            ("sales", sale(3, "P2", 4, T(2025, 1, 4, 9)), "insert", 10),
            ("sales", sale(4, "P2", 9, T(2025, 1, 9, 9)), "insert", 11),  # after the end
        ],
    )
    products, sales = current_rows(staged, "products"), current_rows(staged, "sales")
    daily = {
        (r["item_id"], r["timestamp"]): r["demand"]
        for r in target_time_series(sales, products, "D", "2025-01-01", "2025-01-05").collect()
    }
    assert daily[("P1", D(2025, 1, 1))] == 5.0
    assert daily[("P1", D(2025, 1, 2))] == 0.0
    assert ("P2", D(2025, 1, 2)) not in daily  # not launched yet
    assert daily[("P2", D(2025, 1, 4))] == 4.0
    assert len([k for k in daily if k[0] == "P1"]) == 5
    assert sum(daily.values()) == 9.0
    weekly = target_time_series(sales, products, "W", "2025-01-01", "2025-01-12").collect()
    weeks = {(r["item_id"], r["timestamp"]): r["demand"] for r in weekly}
    assert weeks[("P1", D(2024, 12, 30))] == 5.0  # weeks start on Monday
    assert weeks[("P2", D(2025, 1, 6))] == 9.0


@pytest.mark.parametrize(
    ("frequency", "periods", "first", "horizon_end"),
    [
        ("M", 12, D(2024, 1, 1), D(2025, 2, 28)),
        ("3M", 4, D(2024, 1, 1), D(2025, 6, 30)),
        ("Y", 1, D(2024, 1, 1), D(2026, 12, 31)),
    ],
)
def test_calendar_periods_sum_daily_sales_and_the_horizon_counts_whole_periods(
    spark, frequency, periods, first, horizon_end
) -> None:
    # One unit a day through 2024 (a leap year): each period's demand is its number of days.
    rows = [("products", product("P1", D(2024, 1, 1)), "load", None)]
    rows += [
        ("sales", sale(i, "P1", 1, T(2024, 1, 1, 12) + dt.timedelta(days=i)), "load", None)
        for i in range(366)
    ]
    staged = staged_rows(spark, rows)
    products, sales = current_rows(staged, "products"), current_rows(staged, "sales")
    target = target_time_series(sales, products, frequency, "2024-01-01", "2024-12-31")
    demand = {r["timestamp"]: r["demand"] for r in target.collect()}
    assert len(demand) == periods and min(demand) == first
    for start, units in demand.items():
        end = next_period_start(start, frequency)
        assert period_start(start, frequency) == start  # labelled by the period's first day
        assert units == (end - start).days
    related = related_time_series(products, current_rows(staged, "campaigns"), frequency,
                                  "2024-01-01", "2024-12-31", 2)  # fmt: skip
    stamps = sorted(r["timestamp"] for r in related.collect())
    assert len(stamps) == periods + 2  # history plus exactly the two horizon periods
    assert next_period_start(stamps[-1], frequency) - dt.timedelta(days=1) == horizon_end


@pytest.mark.parametrize(
    ("frequency", "day", "closed"),
    [
        ("D", D(2024, 3, 5), D(2024, 3, 5)),
        ("W", D(2024, 3, 5), D(2024, 3, 3)),  # Tuesday: the week closed on Sunday
        ("W", D(2024, 3, 10), D(2024, 3, 10)),  # Sunday closes its week
        ("M", D(2024, 2, 28), D(2024, 1, 31)),  # a leap February is not over on the 28th
        ("M", D(2024, 2, 29), D(2024, 2, 29)),
        ("3M", D(2024, 12, 30), D(2024, 9, 30)),
        ("Y", D(2024, 12, 31), D(2024, 12, 31)),
        ("Y", D(2025, 6, 1), D(2024, 12, 31)),
    ],
)
def test_the_last_closed_day_never_cuts_a_period(frequency, day, closed) -> None:
    assert last_closed_day(day, frequency) == closed
    assert next_period_start(closed, frequency) == closed + dt.timedelta(days=1)


@pytest.mark.parametrize(
    ("first", "last", "frequency", "count"),
    [
        (D(2025, 2, 1), D(2025, 3, 1), "W", 3),  # a Saturday to a Saturday: 3 whole weeks
        (D(2025, 2, 3), D(2025, 3, 2), "W", 4),  # a Monday to a Sunday: 4
        (D(2025, 1, 15), D(2025, 4, 10), "M", 2),  # February and March
        (D(2025, 1, 1), D(2025, 1, 1), "D", 1),
        (D(2025, 1, 2), D(2025, 12, 31), "Y", 0),
        (D(2024, 10, 1), D(2025, 6, 30), "3M", 3),
    ],
)
def test_whole_periods_count_what_the_etl_builds(first, last, frequency, count) -> None:
    assert whole_periods(first, last, frequency) == count


def test_related_series_cover_the_horizon_with_campaign_prices(spark) -> None:
    campaign = {"campaign_id": "C1", "scope": "category", "category": "toys",
                "start_date": D(2025, 1, 6), "end_date": D(2025, 1, 7), "discount": 0.25,
                "channel": "all"}  # fmt: skip
    web_only = {"campaign_id": "C2", "scope": "product", "product_id": "P1",
                "start_date": D(2025, 1, 8), "end_date": D(2025, 1, 8), "discount": 0.5,
                "channel": "web"}  # fmt: skip
    staged = staged_rows(
        spark,
        [
            ("products", product("P1", D(2025, 1, 1), price=20.0), "load", None),
            ("campaigns", campaign, "load", None),
            ("campaigns", web_only, "insert", 5),
        ],
    )
    related = related_time_series(
        current_rows(staged, "products"), current_rows(staged, "campaigns"), "D",
        "2025-01-01", "2025-01-05", 4,
    )  # fmt: skip
    rows = {r["timestamp"]: (r["price"], r["promotion_applied"]) for r in related.collect()}
    assert max(rows) == D(2025, 1, 9)  # end + horizon
    assert rows[D(2025, 1, 5)] == (20.0, 0)
    assert rows[D(2025, 1, 6)] == (15.0, 1)
    assert rows[D(2025, 1, 8)] == (20.0, 1)  # a web-only discount is not the shelf price
    meta = item_metadata(current_rows(staged, "products")).collect()
    assert [(r["item_id"], r["category"]) for r in meta] == [("P1", "toys")]


def test_enrichment_joins_attributes_campaigns_and_recent_actuals(spark) -> None:
    from pipeline.etl.transforms import enrich_forecast, forecast_export, read_forecast_export

    staged = staged_rows(
        spark,
        [
            ("products", product("P1", category="toys"), "load", None),
            ("products", product("P2", category="food"), "load", None),
            ("campaigns", {"campaign_id": "C1", "scope": "category", "category": "toys",
                           "start_date": D(2025, 2, 2), "end_date": D(2025, 2, 3),
                           "discount": 0.25, "channel": "all"}, "load", None),
            ("sales", sale(1, "P1", 28, T(2025, 1, 20, 10)), "load", None),
            ("sales", sale(2, "P1", 50, T(2024, 12, 1, 10)), "load", None),  # before the 28 days
        ],
    )  # fmt: skip
    transform_rows = spark.createDataFrame(
        [
            ("P1", "2025-02-01", "1.0", "2.0", "3.0", "2.1"),
            ("P1", "2025-02-02", "1.5", "2.5", "3.5", "2.4"),
            ("P2", "2025-02-01", "0.0", "1.0", "2.0", "1.0"),
            ("P9", "2025-02-01", "0.0", "1.0", "2.0", "1.0"),  # no longer in the product table
        ],
        ["item_id", "timestamp", "p10", "p50", "p90", "mean"],
    )
    export = forecast_export(transform_rows)
    assert export.columns == ["item_id", "date", "p10", "p50", "p90"]  # the mean is not a type
    assert export.orderBy("item_id", "date").first()["date"] == "2025-02-01T00:00:00Z"
    enriched = enrich_forecast(
        read_forecast_export(export.select([export[c].cast("string") for c in export.columns])),
        current_rows(staged, "products"),
        current_rows(staged, "campaigns"),
        current_rows(staged, "sales"),
        recent_days=28,
    )
    rows = {(r["item_id"], r["date"]): r for r in enriched.collect()}
    assert len(rows) == 4  # one row per forecast row, none lost, none doubled
    promoted = rows[("P1", D(2025, 2, 2))]
    assert promoted["promotion_applied"] == 1 and promoted["campaign_discount"] == 0.25
    assert promoted["p50"] == 2.5 and promoted["category"] == "toys"
    plain = rows[("P1", D(2025, 2, 1))]
    assert plain["promotion_applied"] == 0 and plain["campaign_discount"] == 0.0
    assert plain["recent_daily_demand"] == pytest.approx(1.0)  # 28 units over 28 days
    assert plain["last_sale_date"] == D(2025, 1, 20)
    assert rows[("P2", D(2025, 2, 1))]["promotion_applied"] == 0  # the campaign is for toys
    unknown = rows[("P9", D(2025, 2, 1))]
    assert unknown["name"] is None and unknown["p50"] == 1.0


def test_changes_that_cannot_be_applied_are_set_aside_with_their_reason(spark) -> None:
    staged = staged_rows(spark, [
        ("products", product("P1"), "load", None),
        ("sales", sale(1, "P1", 2, T(2025, 1, 2)), "insert", 10),
        ("sales", sale(1, "P1", 2, T(2025, 1, 2)), "insert", 10),  # DMS delivered it again
        ("sales", sale(2, "P1", -3, T(2025, 1, 2)), "insert", 11),
        ("sales", {**sale(3, "P1", 1, T(2025, 1, 2)), "quantity": None}, "insert", 12),
        ("coupons", {"sale_id": 4}, "insert", 13),
        ("ecommerce_events", {}, None, None),  # the shop's events: not this job's input
        ("awsdms_heartbeat", {}, "update", None),  # DMS's own table: not a source change
        ("sales", {}, "control:add-column", None),  # DDL: counted apart, never applied
    ])  # fmt: skip
    assert control_records(staged) == 1
    assert validate_staged(staged) == 1  # the same count, from the pass that reads every value
    checked = reject_reasons(dms_changes(staged)).cache()
    counts = change_counts(checked)
    assert counts == {
        "read": 6,
        "applied": 2,
        "duplicates_removed": 1,
        "rejected": {"missing field": 1, "not positive": 1, "unknown table": 1},
    }
    rejected = {(r["table"], r["transaction_id"]): r["reason"]
                for r in rejected_changes(checked).collect()}  # fmt: skip
    assert rejected == {
        ("sales", 11): "not positive: data.quantity = -3",
        ("sales", 12): "missing field: data.quantity of table sales",
        ("coupons", 13): "unknown table: coupons",
    }
    valid = checked.where(checked[REJECT].isNull())
    assert [r["sale_id"] for r in current_rows(valid, "sales").collect()] == [1]


def test_rejected_changes_name_their_file_when_read_from_the_cached_staged_table(
    spark, tmp_path
) -> None:
    """The jobs cache the staged table as they validate it (one pass over its objects); the
    file each change came from is taken before the cache, which no longer knows it."""
    staged_rows(spark, [
        ("products", product("P1"), "load", None),
        ("sales", sale(2, "P1", -3, T(2025, 1, 2)), "insert", 11),
    ]).write.partitionBy("table", "dt").parquet(str(tmp_path / "cdc"))  # fmt: skip
    read = spark.read.schema(staged_schema_ddl()).parquet(str(tmp_path / "cdc"))
    staged = with_files(read).cache()
    try:
        assert validate_staged(staged) == 0
        assert staged.is_cached and staged.storageLevel.useMemory
        checked = reject_reasons(dms_changes(staged))
        (row,) = rejected_changes(checked).collect()
        assert row["reason"] == "not positive: data.quantity = -3"
        assert "/cdc/table=sales/dt=2025-01-01/part-" in row["file"]
        files = {r["_file"] for r in dms_changes(staged).collect()}
        assert len(files) == 2 and all(f.endswith(".parquet") for f in files)
    finally:
        staged.unpersist()


LONG_AGO = D(2020, 1, 1)


def store(sid, region, opened=LONG_AGO, closed=None):
    return {"store_id": sid, "region": region, "store_format": "supermarket",
            "opened_date": opened, "closed_date": closed}  # fmt: skip


def test_series_by_store_start_with_the_store_and_see_only_its_local_campaigns(spark) -> None:
    from pipeline.etl.transforms import automl_input, check_dimensions

    local = {"campaign_id": "L1", "scope": "product", "product_id": "P1", "store_id": "S1",
             "start_date": D(2025, 1, 6), "end_date": D(2025, 1, 6), "discount": 0.5,
             "channel": "all"}  # fmt: skip
    staged = staged_rows(
        spark,
        [
            ("products", product("P1", D(2025, 1, 1), price=20.0), "load", None),
            ("products", product("P2", D(2025, 1, 1)), "load", None),
            ("stores", store("S1", "north"), "load", None),
            ("stores", store("S2", "south", opened=D(2025, 1, 3)), "load", None),  # a new store
            ("stores", store("S3", "south", closed=D(2025, 1, 4)), "load", None),  # closed
            ("campaigns", local, "load", None),
            ("sales", {**sale(1, "P1", 2, T(2025, 1, 2, 10)), "store_id": "S1"}, "load", None),
            ("sales", {**sale(2, "P1", 3, T(2025, 1, 4, 10)), "store_id": "S2"}, "load", None),
            ("sales", {**sale(3, "P1", 4, T(2025, 1, 2, 10)), "store_id": "S3"}, "load", None),
            ("sales", {**sale(4, "P2", 1, T(2025, 1, 5, 10)), "store_id": "S1"}, "load", None),
            ("sales", sale(5, "P2", 7, T(2025, 1, 5, 11)), "insert", 9),  # no store
        ],
    )  # fmt: skip
    dims = check_dimensions(["store_id"])
    checked = reject_reasons(dms_changes(staged), dims)
    reasons = [r[REJECT] for r in checked.where(checked[REJECT].isNotNull()).collect()]
    assert reasons == ["missing field: data.store_id of table sales"]
    valid = checked.where(checked[REJECT].isNull())
    products, sales, stores = (current_rows(valid, t) for t in ("products", "sales", "stores"))
    target = target_time_series(sales, products, "D", "2025-01-01", "2025-01-05", stores, dims)
    assert target.columns == ["item_id", "store_id", "timestamp", "demand"]
    days = {}
    for r in target.collect():
        days.setdefault((r["item_id"], r["store_id"]), {})[r["timestamp"]] = r["demand"]
    # Pairs that sold, at stores open at the end; each from when both item and store were there.
    assert set(days) == {("P1", "S1"), ("P1", "S2"), ("P2", "S1")}
    assert min(days[("P1", "S2")]) == D(2025, 1, 3) and days[("P1", "S2")][D(2025, 1, 4)] == 3
    assert sorted(days[("P1", "S1")].values()) == [0, 0, 0, 0, 2]  # zero-filled
    related = related_time_series(products, current_rows(valid, "campaigns"), "D", "2025-01-01",
                                  "2025-01-05", 2, sales, stores, dims)  # fmt: skip
    price = {(r["store_id"], r["timestamp"]): (r["price"], r["promotion_applied"])
             for r in related.where("item_id = 'P1'").collect()}  # fmt: skip
    assert price[("S1", D(2025, 1, 6))] == (10.0, 1)  # the local campaign, in the horizon
    assert price[("S2", D(2025, 1, 6))] == (20.0, 0)  # not at the other store
    automl = automl_input(target, related, item_metadata(products), dims, stores)
    assert automl.columns[:4] == ["item_id", "store_id", "timestamp", "demand"]
    assert automl.columns[-2:] == ["region", "store_format"]
    regions = {r["store_id"]: r["region"] for r in automl.select("store_id", "region").collect()}
    assert regions == {"S1": "north", "S2": "south"}
    with pytest.raises(ValueError, match="store_id"):
        check_dimensions(["region"])


def test_an_export_by_store_keeps_the_store_after_the_item_and_enriches_per_store(spark) -> None:
    from pipeline.etl.transforms import enrich_forecast, forecast_export, read_forecast_export

    staged = staged_rows(
        spark,
        [
            ("products", product("P1"), "load", None),
            ("stores", store("S1", "north"), "load", None),
            ("stores", store("S2", "south"), "load", None),
            ("campaigns", {"campaign_id": "L1", "scope": "product", "product_id": "P1",
                           "store_id": "S2", "start_date": D(2025, 2, 1),
                           "end_date": D(2025, 2, 1), "discount": 0.3, "channel": "all"},
             "load", None),
            ("sales", {**sale(1, "P1", 28, T(2025, 1, 20, 10)), "store_id": "S1"}, "load", None),
            ("sales", {**sale(2, "P1", 56, T(2025, 1, 21, 10)), "store_id": "S2"}, "load", None),
        ],
    )  # fmt: skip
    transform_rows = spark.createDataFrame(
        [("P1", "S1", "2025-02-01", "1.0", "2.0", "3.0", "2.1"),
         ("P1", "S2", "2025-02-01", "2.0", "4.0", "6.0", "4.2")],
        ["item_id", "store_id", "timestamp", "p10", "p50", "p90", "mean"],
    )  # fmt: skip
    export = forecast_export(transform_rows)
    assert export.columns == ["item_id", "store_id", "date", "p10", "p50", "p90"]
    forecast = read_forecast_export(export.select([export[c].cast("string")
                                                   for c in export.columns]))  # fmt: skip
    enriched = enrich_forecast(forecast, current_rows(staged, "products"),
                               current_rows(staged, "campaigns"), current_rows(staged, "sales"),
                               28, current_rows(staged, "stores"))  # fmt: skip
    rows = {r["store_id"]: r for r in enriched.collect()}
    assert set(rows) == {"S1", "S2"}
    assert rows["S1"]["recent_daily_demand"] == pytest.approx(1.0)  # its own 28 units
    assert rows["S2"]["recent_daily_demand"] == pytest.approx(2.0)
    assert (rows["S2"]["campaign_discount"], rows["S1"]["campaign_discount"]) == (0.3, 0.0)
    assert (rows["S1"]["region"], rows["S2"]["region"]) == ("north", "south")
    unknown = spark.createDataFrame([("P1", "X", "2025-02-01", "1")],
                                    ["item_id", "shelf", "date", "p50"])  # fmt: skip
    with pytest.raises(ValueError, match="dimension 'shelf'"):
        read_forecast_export(unknown)
