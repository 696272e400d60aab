"""Locations: a world with stores keys its sales, campaigns and truth by store, consistently."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pytest

from emulation.dms import DmsSettings, dms_messages
from pipeline.contracts.cdc import PRIMARY_KEYS, TABLES
from simulator.spec import Anomalies, Stores, WorldSpec
from simulator.world import simulate as simulate_world
from tests.simulator.test_world import _render, _replay, small_spec


def stores_spec(seed: int, **stores) -> WorldSpec:
    settings = {"count": 3, "regions": 2, "opening_share": 0.7, "closing_share": 0.34,
                "local_campaign_share": 0.5, **stores}  # fmt: skip
    return small_spec(seed, products=16, history=200, stream=3).model_copy(
        update={"stores": Stores(**settings)}
    )


@pytest.fixture(scope="module", params=[5, 11])
def world(request):
    return simulate_world(stores_spec(request.param))


def test_a_world_without_stores_names_no_location() -> None:
    world = simulate_world(small_spec(5))
    assert not world.has_stores and world.stores.num_rows == 0 and "stores" not in world.changes
    for table in (world.sales, world.campaigns, world.truth_daily, world.truth_anomalies):
        assert table["store_id"].null_count == table.num_rows


def test_every_sale_is_at_a_known_location_open_that_day(world) -> None:
    stores = world.stores.to_pandas().set_index("store_id")
    assert list(stores.index) == ["S001", "S002", "S003", "W01"]
    assert stores.loc["W01", "store_format"] == "online" and stores.loc["W01", "region"] == "online"
    sales = world.sales.to_pandas()
    assert sales["store_id"].isin(stores.index).all()
    day = sales["sold_at"].dt.tz_convert(None).dt.normalize()
    opened = pd.to_datetime(sales["store_id"].map(stores["opened_date"]))
    assert (day >= opened).all()  # nothing sold before a store opened
    closed = pd.to_datetime(sales["store_id"].map(stores["closed_date"]))
    assert not (day >= closed).any()  # nor once it closed
    # The web location sells online only; a store mostly over its counter.
    online = sales[sales["store_id"] == "W01"]["channel"]
    assert set(online) <= {"web", "app"} and len(online)
    counter = sales[sales["store_id"] != "W01"]["channel"].value_counts(normalize=True)
    assert counter["store"] > 0.7


def test_openings_closings_and_local_campaigns_show_in_the_tables(world) -> None:
    stores = world.stores.to_pandas().set_index("store_id")
    start, end = world.start.date(), world.window_end.date()
    opened = stores["opened_date"]
    assert ((opened > start) & (opened < world.window_start.date())).sum() == 1  # a cold start
    assert (opened > end).sum() == 1  # a store to come: its row arrives in the window
    assert stores["closed_date"].notna().sum() == 1
    campaigns = world.campaigns.to_pandas()
    local = campaigns[campaigns["store_id"].notna()]
    assert len(local) and set(local["channel"]) == {"all"}
    assert set(local["store_id"]) <= {"S001", "S002", "S003"}  # one physical store each
    # A store's truth starts at zero before it opens and ramps up after.
    truth = world.truth_daily.to_pandas()
    new = opened[(opened > start) & (opened < world.window_start.date())].index[0]
    at_new = truth[truth["store_id"] == new]
    assert at_new["date"].min() >= opened[new]
    age = (pd.to_datetime(at_new["date"]) - pd.Timestamp(opened[new])).dt.days
    first_days = at_new[age < 10]["expected"].sum()
    later = at_new[(age >= 80) & (age < 90)]["expected"].sum()
    assert later > 3 * first_days


def test_the_truth_adds_up_to_the_sales_per_item_and_store(world) -> None:
    sales = world.sales.to_pandas()
    sales["date"] = sales["sold_at"].dt.tz_convert(None).dt.date
    sold = sales.groupby(["product_id", "store_id", "date"])["quantity"].sum()
    truth = world.truth_daily.to_pandas().set_index(["product_id", "store_id", "date"])["sold"]
    assert truth.sum() == sold.sum()
    assert (truth.reindex(sold.index).fillna(-1) == sold).all()


def test_anomalies_name_their_store_except_drops(world) -> None:
    anomalies = world.truth_anomalies.to_pandas()
    assert len(anomalies)
    drops = anomalies["type"] == "drop"
    assert anomalies.loc[drops, "store_id"].isna().all()
    assert anomalies.loc[~drops, "store_id"].notna().all()


@pytest.mark.parametrize("seed", range(12))
def test_no_other_anomaly_hides_a_drop_in_the_days_total(seed) -> None:
    """A spike at one store on the day its product drops everywhere would fill the hole."""
    world = simulate_world(stores_spec(seed).model_copy(update={"anomalies": Anomalies(rate=0.3)}))
    anomalies = world.truth_anomalies.to_pandas()
    anomalies["day"] = anomalies["start"].dt.date
    drops = anomalies[anomalies["type"] == "drop"]
    others = anomalies[anomalies["type"] != "drop"]
    assert len(drops) and len(others)
    assert others.merge(drops, on=["product_id", "day"]).empty


def test_replaying_the_cdc_reproduces_every_table_with_the_stores(world) -> None:
    messages = dms_messages(world.changes, DmsSettings(), world.start)
    stores_ops = set(
        messages.filter(pc.equal(messages["table"], "stores"))["operation"].to_pylist()
    )
    assert {"load", "insert"} <= stores_ops
    for table in TABLES:
        final = {row[PRIMARY_KEYS[table]]: row for row in _render(getattr(world, table))}
        assert _replay(messages, table) == final, table
    # Commit order is one sequence across the four tables.
    assert np.all(np.diff(messages["seq"].to_numpy()) > 0)


def test_the_same_seed_gives_the_same_world_with_stores() -> None:
    one, two = simulate_world(stores_spec(3)), simulate_world(stores_spec(3))
    for name in ("stores", "sales", "campaigns", "truth_daily", "truth_anomalies"):
        assert getattr(one, name).equals(getattr(two, name)), name
    other = simulate_world(stores_spec(4))
    assert not other.sales.equals(one.sales)
