"""The forecast API handler against the world's DynamoDB and Athena (no mocks)."""

from __future__ import annotations

import datetime as dt
import io
import json
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from emulation import World
from emulation.glue import arrow_schema
from harness.provision import provision
from pipeline.contracts.staged import FORECAST_ENRICHED_COLUMNS
from pipeline.serving.handler import Settings, make_handler


@pytest.fixture
def api(aws: World, stack):
    if aws.kind != "embedded":
        pytest.skip("Athena queries execute in the embedded world only; the handler's "
                    "validation is covered by test_bad_ids_never_reach_a_query")  # fmt: skip
    rows = [
        {"item_id": item, "date": dt.date(2025, 2, day), "p10": 1.0, "p50": 2.0 + day,
         "p90": 3.0 + day, "name": name, "category": "toys", "brand": "b",
         "price_tier": "standard", "list_price": 9.5, "campaign_discount": 0.0,
         "promotion_applied": int(day == 2), "recent_daily_demand": 1.5,
         "last_sale_date": dt.date(2025, 1, 31)}
        for item, name in (("P1", "Red kite"), ("P2", "Blue kite"), ("Q7", "Garden hose"))
        for day in (1, 2, 3)
    ]  # fmt: skip
    return _serving(aws, stack, rows, cache_ttl_seconds=600)


def _serving(aws: World, stack, rows: list[dict], **settings):
    """The handler over a world holding ``rows`` as the enriched table's one version."""
    names = provision(aws, stack)
    schema = arrow_schema([{"Name": n, "Type": t} for n, t in FORECAST_ENRICHED_COLUMNS])
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), buffer)
    aws.client("s3").put_object(
        Bucket=names.bucket("analysis"),
        Key="forecast/version=2025-01-31/part-00000.parquet",
        Body=buffer.getvalue(),
    )
    config = Settings(
        table=names.table_name("forecast-cache"),
        database=stack.glue.database,
        output=f"s3://{names.bucket('athena-results')}/api/",
        **settings,
    )
    return make_handler(aws.client("dynamodb"), aws.client("athena"), config), names, aws


def get(handler, path: str, **query) -> tuple[int, dict]:
    response = handler({"httpMethod": "GET", "path": path, "queryStringParameters": query}, None)
    return response["statusCode"], json.loads(response["body"])


def test_forecast_is_read_from_athena_then_served_from_the_cache(api) -> None:
    handler, names, aws = api
    status, body = get(handler, "/forecast/P1")
    assert status == 200 and body["source"] == "athena"
    assert body["name"] == "Red kite" and body["version"] == "2025-01-31"
    assert [r["date"] for r in body["forecast"]] == ["2025-02-01", "2025-02-02", "2025-02-03"]
    assert [r["p50"] for r in body["forecast"]] == [3.0, 4.0, 5.0]
    assert [r["promotion"] for r in body["forecast"]] == [False, True, False]
    assert body["stores"] == 0 and body["store_id"] is None  # a forecast without locations
    cached = aws.client("dynamodb").get_item(
        TableName=names.table_name("forecast-cache"),
        Key={"item_id": {"S": "P1"}, "location": {"S": "all"}},
    )["Item"]
    assert int(cached["expires_at"]["N"]) > time.time() + 500  # the TTL attribute
    again_status, again = get(handler, "/forecast/P1")
    assert again_status == 200 and again["source"] == "cache"
    assert again["forecast"] == body["forecast"]


def test_an_expired_cache_entry_is_read_again(api) -> None:
    handler, names, aws = api
    aws.client("dynamodb").put_item(
        TableName=names.table_name("forecast-cache"),
        Item={"item_id": {"S": "P2"}, "location": {"S": "all"},
              "body": {"S": json.dumps({"stale": True})},
              "expires_at": {"N": str(int(time.time()) - 1)}},
    )  # fmt: skip
    status, body = get(handler, "/forecast/P2")
    assert status == 200 and body["source"] == "athena" and "stale" not in body


def test_unknown_product_is_404(api) -> None:
    handler, _, _ = api
    status, body = get(handler, "/forecast/P404")
    assert status == 404 and "P404" in body["error"]


def test_search_by_id_or_name(api) -> None:
    handler, _, _ = api
    assert [i["item_id"] for i in get(handler, "/products", q="kite")[1]["items"]] == ["P1", "P2"]
    assert [i["item_id"] for i in get(handler, "/products", q="q7")[1]["items"]] == ["Q7"]
    # Text that looks like SQL is a bound value: it matches nothing, it runs nothing.
    status, body = get(handler, "/products", q="kite union select 1")
    assert status == 200 and body["items"] == []
    assert get(handler, "/products", q="_")[1]["items"] == []  # LIKE wildcards are escaped


@pytest.fixture
def by_store(aws: World, stack):
    """A forecast by store: item K1 at three stores in two regions, K2 at one."""
    if aws.kind != "embedded":
        pytest.skip(
            "Athena queries execute in the embedded world only; the handler's "
            "checks are covered by test_bad_store_or_region_never_reach_a_query"
        )
    sites = {"S1": ("north", "supermarket", 1.0), "S2": ("north", "express", 2.0),
             "S3": ("south", "hypermarket", 4.0)}  # fmt: skip
    rows = [
        {"item_id": item, "store_id": store, "date": dt.date(2025, 2, day), "p10": 0.5 * size,
         "p50": size * day, "p90": 2.0 * size * day, "name": "Kite", "category": "toys",
         "brand": "b", "price_tier": "standard", "list_price": 9.5, "region": sites[store][0],
         "store_format": sites[store][1], "campaign_discount": 0.0,
         "promotion_applied": int(store == "S3" and day == 2), "recent_daily_demand": size,
         "last_sale_date": dt.date(2025, 1, 31)}
        for item, stores in (("K1", ("S1", "S2", "S3")), ("K2", ("S2",)))
        for store in stores
        for size in (sites[store][2],)
        for day in (1, 2)
    ]  # fmt: skip
    return _serving(aws, stack, rows)


def test_a_forecast_by_store_is_served_per_store_region_and_in_total(by_store) -> None:
    handler, names, aws = by_store
    status, one = get(handler, "/forecast/K1", store_id="S2")
    assert status == 200 and one["store_id"] == "S2" and one["stores"] == 1
    assert [r["p50"] for r in one["forecast"]] == [2.0, 4.0]
    _, north = get(handler, "/forecast/K1", region="north")  # S1 + S2
    assert north["stores"] == 2 and [r["p50"] for r in north["forecast"]] == [3.0, 6.0]
    assert [r["p90"] for r in north["forecast"]] == [6.0, 12.0]
    _, total = get(handler, "/forecast/K1")  # every store
    assert total["stores"] == 3 and [r["p50"] for r in total["forecast"]] == [7.0, 14.0]
    assert [r["promotion"] for r in total["forecast"]] == [False, True]  # at S3 only
    assert total["recent_daily_demand"] == 7.0
    # Each location is its own cache entry.
    table = names.table_name("forecast-cache")
    locations = sorted(
        item["location"]["S"] for item in aws.client("dynamodb").scan(TableName=table)["Items"]
        if item["item_id"]["S"] == "K1"
    )  # fmt: skip
    assert locations == ["all", "region#north", "store#S2"]
    assert get(handler, "/forecast/K1", store_id="S2")[1]["source"] == "cache"
    status, body = get(handler, "/forecast/K2", store_id="S3")
    assert status == 404 and "K2 at store S3" in body["error"]
    status, stores = get(handler, "/stores")
    assert status == 200 and [s["store_id"] for s in stores["stores"]] == ["S1", "S2", "S3"]
    assert {s["store_id"]: s["items"] for s in stores["stores"]} == {"S1": 1, "S2": 2, "S3": 1}
    assert stores["stores"][2]["region"] == "south"


def test_bad_store_or_region_never_reach_a_query() -> None:
    class Refuse:
        def __getattr__(self, name):
            raise AssertionError(f"{name} called for a bad value")

    handler = make_handler(Refuse(), Refuse(), Settings(table="t", database="d", output="s3://o/"))
    for query, word in (({"store_id": "S1' OR '1'='1"}, "store_id"),
                        ({"region": "north'; DROP"}, "region"), ({"region": "x" * 65}, "region"),
                        ({"store_id": "S1", "region": "north"}, "not both")):  # fmt: skip
        status, body = get(handler, "/forecast/K1", **query)
        assert status == 400 and word in body["error"], (query, body)


@pytest.mark.parametrize(
    "bad",
    ["P1' OR '1'='1", "P1;DROP TABLE x", "../../etc/passwd", "P1%27", "x" * 65, "P 1"],
)
def test_bad_ids_never_reach_a_query(bad) -> None:
    class Refuse:
        def __getattr__(self, name):
            raise AssertionError(f"{name} called for a bad id")

    handler = make_handler(Refuse(), Refuse(), Settings(table="t", database="d", output="s3://o/"))
    status, body = get(handler, f"/forecast/{bad}")
    # A "/" in the id makes another path (404); everything else fails the id pattern (400).
    assert (status, "/" in bad) in ((400, False), (404, True)), (status, body)
    if bad != "P 1":  # a space is fine in a search
        status, body = get(handler, "/products", q=bad)
        assert status == 400 and "search text" in body["error"]


def test_failures_are_500_without_a_traceback(api) -> None:
    _, names, aws = api
    broken = make_handler(
        aws.client("dynamodb"),
        aws.client("athena"),
        Settings(table=names.table_name("forecast-cache"), database="no_such_database",
                 output=f"s3://{names.bucket('athena-results')}/api/"),
    )  # fmt: skip
    status, body = get(broken, "/forecast/P1")
    assert status == 500
    assert body == {"error": "internal error; the service log has the details"}
    assert get(broken, "/nowhere")[0] == 404
