"""Replaying the user's own tables: mapping, defaults, the load/stream split, and errors that name
the file, the column and the row."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from harness.scenario import ScenarioError, load_scenario, parse_scenario
from harness.simulation import simulate
from simulator.source import SourceError

SALES_CSV = """\
order,sku,qty,price,when_day,when_time,shop
1,A,2,3.50,2025-03-01,09:00:00,store
2,B,1,10.00,2025-03-01,10:30:00,web
3,A,1,3.50,2025-03-02,12:00:00,store
4,A,4,3.00,2025-03-09,08:15:00,app
5,B,2,10.00,2025-03-09,18:00:00,web
6,C,1,7.00,2025-03-10,11:00:00,store
"""
MAPPING = """\
  columns:
    sale_id: order
    product_id: sku
    quantity: qty
    unit_price: price
    sold_at: [when_day, when_time]
    channel: shop
"""


def scenario_file(folder: Path, source: str, horizon: int = 1, extra: str = "") -> Path:
    path = folder / "mine.yaml"
    path.write_text(
        "name: mine\nseed: 7\nsource:\n"
        + textwrap.indent(textwrap.dedent(source), "  ")
        + f"forecast: {{frequency: D, horizon: {horizon}}}\n"
        + extra
    )
    return path


def test_a_sales_file_replays_as_full_load_then_a_stream_of_its_last_days(tmp_path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "sales.csv").write_text(SALES_CSV)
    path = scenario_file(tmp_path, "sales:\n  path: data/sales.csv\n" + MAPPING
                         + "stream_days: 2\n")  # fmt: skip
    sim = simulate(load_scenario(str(path)))
    world = sim.world
    assert not world.has_truth and world.origin.endswith("data/sales.csv")
    assert str(world.window_start.date()) == "2025-03-09"  # last day 03-10, two days streamed
    products = {r["product_id"]: r for r in world.products.to_pylist()}
    assert sorted(products) == ["A", "B", "C"]
    # Defaults: list price = median price sold at, launch = first sale, tiers by price thirds.
    assert products["A"]["list_price"] == 3.5 and str(products["A"]["launch_date"]) == "2025-03-01"
    assert products["A"]["category"] == "unknown" and products["A"]["name"] == "A"
    assert [products[p]["price_tier"] for p in "ACB"] == ["budget", "standard", "premium"]
    # C is first sold in the window: the product arrives as an insert, before its sale.
    stream = sim.cdc_stream.to_pylist()
    assert [(r["table"], r["operation"]) for r in stream] == [
        ("sales", "insert"), ("sales", "insert"), ("products", "insert"), ("sales", "insert")
    ]  # fmt: skip
    assert len(sim.cdc_load) == 2 + 3  # products A, B and the three earlier sales
    # The truth is what was sold, per product and day from launch, zeros included.
    truth = world.truth_daily
    assert pc.sum(truth["sold"]).as_py() == 11
    assert truth.num_rows == 10 + 10 + 1
    assert truth.filter(pc.field("in_window"))["date"].to_pylist()[0].isoformat() == "2025-03-09"
    # Same seed, same bytes.
    again = simulate(load_scenario(str(path)))
    assert again.cdc["message"].to_pylist() == sim.cdc["message"].to_pylist()


def test_a_semicolon_or_tab_separated_file_with_a_byte_order_mark_is_read(tmp_path) -> None:
    """Spreadsheets in many locales export ``;`` (and a UTF-8 BOM): the header says which."""
    comma = simulate(load_scenario(str(_with_sales(tmp_path / "comma", SALES_CSV))))
    for name, delimiter in (("semicolon", ";"), ("tab", "\t")):
        text = "\ufeff" + SALES_CSV.replace(",", delimiter)
        sim = simulate(load_scenario(str(_with_sales(tmp_path / name, text))))
        assert sim.cdc_stream.to_pylist() == comma.cdc_stream.to_pylist(), name
        assert sim.world.products.to_pylist() == comma.world.products.to_pylist(), name
    # A decimal comma is no number here: named, with its rows, not guessed.
    text = SALES_CSV.replace(",", ";").replace("3.50", "3,50")
    with pytest.raises(
        SourceError, match=r"column 'price' \(unit_price\) is not a number: row 2: '3,50'"
    ):
        simulate(load_scenario(str(_with_sales(tmp_path / "decimal", text))))


def test_a_file_in_another_encoding_is_read_when_named_and_named_by_row_when_not(tmp_path):
    """Exports from spreadsheets and older systems are often Windows-1252 or UTF-16: the
    scenario names the encoding; a file that is not text in it stops the run at its row."""
    text = SALES_CSV.replace(",A,", ",Crème brûlée,")
    utf8 = simulate(load_scenario(str(_with_sales(tmp_path / "utf8", text))))
    assert "Crème brûlée" in utf8.world.products["product_id"].to_pylist()
    for encoding in ("cp1252", "utf-16"):
        folder = tmp_path / encoding
        folder.mkdir()
        (folder / "sales.csv").write_bytes(text.encode(encoding))
        path = scenario_file(folder, f"sales:\n  path: sales.csv\n  encoding: {encoding}\n"
                             + MAPPING + "stream_days: 2\n")  # fmt: skip
        sim = simulate(load_scenario(str(path)))
        assert sim.world.products.to_pylist() == utf8.world.products.to_pylist(), encoding
        assert sim.cdc_stream.to_pylist() == utf8.cdc_stream.to_pylist(), encoding
        if encoding == "cp1252":  # the same file without its encoding: where it stops being UTF-8
            path = scenario_file(folder, "sales:\n  path: sales.csv\n" + MAPPING)
            with pytest.raises(SourceError, match=r"sales.csv: is not utf-8 text: row 2 has "
                               r"bytes b'\\xe8me .* e.g. encoding: cp1252"):  # fmt: skip
                simulate(load_scenario(str(path)))
    for unknown in ("utf-7.5", "base64"):  # base64 is a codec, but of bytes, not of text
        with pytest.raises(ScenarioError, match=f"unknown text encoding '{unknown}'"):
            parse_scenario(f"seed: 1\nname: x\nsource: {{sales: {{path: a.csv, encoding: "
                           f"{unknown}}}}}\n", "x.yaml")  # fmt: skip


def test_a_replay_of_sales_before_1900_is_refused_naming_the_file(tmp_path) -> None:
    """Spark refuses the Parquet timestamps Firehose would write for them (a stage would fail
    minutes in): the replay stops before anything runs."""
    path = _with_sales(tmp_path / "old", SALES_CSV.replace("2025-", "1895-"))
    with pytest.raises(SourceError, match=r"sales.csv: \d+ days of history: calendar.start: "
                       r"history from 1895-03-01, before 1900-01-01"):  # fmt: skip
        simulate(load_scenario(str(path)))


def _with_sales(folder: Path, text: str) -> Path:
    folder.mkdir()
    (folder / "sales.csv").write_text(text, encoding="utf-8")
    return scenario_file(folder, "sales:\n  path: sales.csv\n" + MAPPING + "stream_days: 2\n")


def test_products_and_campaigns_files_are_used_and_parquet_is_read(tmp_path) -> None:
    when = ["2025-01-01T10:00:00", "2025-01-05T10:00:00", "2025-01-06T10:00:00"]
    sales = pa.table({"sale_id": [1, 2, 3], "product_id": ["A", "A", "B"],
                      "sold_at": pa.array(when).cast(pa.timestamp("s"))})  # fmt: skip
    pq.write_table(sales, tmp_path / "sales.parquet")
    (tmp_path / "items.csv").write_text(
        "id,title,dept,maker,price\nA,Apple,fruit,Orchard,1.25\nB,Bread,bakery,Mill,2.5\n"
    )
    (tmp_path / "promos.csv").write_text(
        "campaign_id,scope,category,start_date,end_date,discount\n"
        "K1,category,fruit,2025-01-03,2025-01-04,0.2\n"
    )
    path = scenario_file(tmp_path, """\
        sales: {path: sales.parquet}
        products:
          path: items.csv
          columns: {product_id: id, name: title, category: dept, brand: maker, list_price: price}
        campaigns: {path: promos.csv}
        stream_days: 1
        """)  # fmt: skip
    world = simulate(load_scenario(str(path))).world
    apple = world.products.to_pylist()[0]
    assert (apple["name"], apple["category"], apple["brand"]) == ("Apple", "fruit", "Orchard")
    assert world.sales["quantity"].to_pylist() == [1, 1, 1]  # one row per unit by default
    assert world.sales["unit_price"].to_pylist() == [1.25, 1.25, 2.5]  # the list price
    assert world.sales["channel"].to_pylist() == ["store"] * 3
    (campaign,) = world.campaigns.to_pylist()
    assert campaign["channel"] == "all" and campaign["product_id"] is None


@pytest.mark.parametrize(
    ("sales_csv", "expected"),
    [
        (
            SALES_CSV.replace("3,A,1,", "3,A,x1,"),
            r"sales.csv: column 'qty' \(quantity\) is not a "
            r"number: row 4: 'x1'",
        ),
        (
            SALES_CSV.replace("2025-03-09,18", "2025-13-09,18"),
            r"column 'when_day \+ when_time' \(sold_at\) is not a date or time: row 6",
        ),
        (
            SALES_CSV.replace(",web\n", ",phone\n"),
            r"column 'shop' \(channel\) is not one of web, store, app: row 3: 'phone', row 6",
        ),
        (SALES_CSV.replace("4,A,4", "4,A,-4"), r"column 'qty' \(quantity\) is below 0: row 5"),
        (
            SALES_CSV.replace("4,A,4,3.00", "4,A,4,0"),
            r"column 'price' \(unit_price\) is not above 0: row 5: '0'",
        ),
        (SALES_CSV.replace("5,B", "1,B"), r"column 'order' \(sale_id\) repeats a sale id .*row 2"),
        (SALES_CSV.replace("6,C,1,", "6,,1,"), r"column 'sku' \(product_id\) is empty: row 7"),
        (SALES_CSV.replace("3,A,1,", "3,A,1e300,"), r"column 'qty' \(quantity\) is above .*row 4"),
        (SALES_CSV.replace("2025-03-10,11", "1925-03-10,11"), r"the sales span 36,525 days"),
        (
            SALES_CSV.replace("3,A,1,", "3,A,1.5,"),
            r"column 'qty' \(quantity\) is not a whole number \(units sold: .*\): row 4: '1.5'",
        ),
        (  # a year pandas cannot hold is a date out of range, not "no date"
            SALES_CSV.replace("2025-03-10,11", "2999-03-10,11"),
            r"\(sold_at\) is a date outside 1677-09-22 to 2262-04-11, the days pandas' "
            r"timestamps hold: row 7",
        ),
        (  # a field more or less: the record named by the line it starts on
            SALES_CSV.replace("3,A,1,3.50,", '3,"A\nA",1,3.50,x,'),
            r"sales.csv: line 4 has 8 fields, the header has 7: '3,\"A\\nA\",1,3.50,x,",
        ),
        (SALES_CSV.replace(",app\n", "\n"), r"sales.csv: line 5 has 6 fields, the header has 7"),
    ],
    ids=[
        "not-a-number",
        "bad-date",
        "unknown-channel",
        "negative",
        "free",
        "duplicate-key",
        "empty-id",
        "huge",
        "century",
        "fraction",
        "beyond-pandas",
        "field-more",
        "field-less",
    ],
)
def test_a_bad_value_is_an_error_naming_file_column_and_row(tmp_path, sales_csv, expected) -> None:
    (tmp_path / "sales.csv").write_text(sales_csv)
    path = scenario_file(tmp_path, "sales:\n  path: sales.csv\n" + MAPPING)
    with pytest.raises(SourceError, match=expected) as caught:
        simulate(load_scenario(str(path)))
    assert str(tmp_path / "sales.csv") in str(caught.value)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_file_naming_a_column_twice_is_refused_naming_it(tmp_path, suffix: str) -> None:
    """Not a traceback from pandas (``Cannot set a DataFrame with multiple columns``), nor a
    guess at which of the two ``qty`` the mapping meant."""
    text = SALES_CSV.replace("shop\n", "qty\n", 1)
    if suffix == ".csv":
        (tmp_path / "sales.csv").write_text(text)
    else:
        rows = [line.split(",") for line in text.splitlines()]
        pq.write_table(pa.table(list(map(list, zip(*rows[1:], strict=True))), names=rows[0]),
                       tmp_path / "sales.parquet")  # fmt: skip
    path = scenario_file(tmp_path, f"sales:\n  path: sales{suffix}\n"
                         + MAPPING.replace("    channel: shop\n", ""))  # fmt: skip
    with pytest.raises(SourceError, match=rf"sales{suffix}: names the column 'qty' twice"):
        simulate(load_scenario(str(path)))


def test_mapping_and_file_mistakes_are_named(tmp_path) -> None:
    (tmp_path / "sales.csv").write_text(SALES_CSV)
    path = scenario_file(tmp_path, "sales:\n  path: sales.csv\n"
                         + MAPPING.replace("quantity: qty", "quantity: amount"))  # fmt: skip
    with pytest.raises(SourceError, match=r"column 'amount' \(mapped to quantity\) is not in the "
                                          r"file; it has order, sku, qty"):  # fmt: skip
        simulate(load_scenario(str(path)))
    path = scenario_file(tmp_path, "sales: {path: missing.csv}\n")
    with pytest.raises(SourceError, match=r"missing.csv: no such file"):
        simulate(load_scenario(str(path)))
    (tmp_path / "sales.xlsx").write_bytes(b"PK")
    path = scenario_file(tmp_path, "sales: {path: sales.xlsx}\n")
    with pytest.raises(SourceError, match=r"sales.xlsx: not a CSV or Parquet file"):
        simulate(load_scenario(str(path)))
    (tmp_path / "products.csv").write_text("product_id\nA\nB\n")
    path = scenario_file(tmp_path, "sales:\n  path: sales.csv\n" + MAPPING
                         + "products: {path: products.csv}\n")  # fmt: skip
    with pytest.raises(SourceError, match=r"column 'sku' \(product_id\) names a product the "
                                          r"products file does not have: row 7: 'C'"):  # fmt: skip
        simulate(load_scenario(str(path)))
    # Rows left out before (quantity 0) do not shift the row named.
    (tmp_path / "sales.csv").write_text(SALES_CSV.replace("1,A,2,", "1,A,0,"))
    with pytest.raises(SourceError, match=r"does not have: row 7: 'C'"):
        simulate(load_scenario(str(path)))
    path = scenario_file(tmp_path, "sales:\n  path: sales.csv\n" + MAPPING, horizon=3)
    with pytest.raises(SourceError, match=r"8 days of history: forecast.horizon: 3 is more than"):
        simulate(load_scenario(str(path)))


@pytest.mark.parametrize(
    ("body", "key", "message"),
    [
        (
            "source: {dataset: pizzaplace}\ncatalog: {products: 30}\n",
            "catalog",
            "a scenario with a source replays real data",
        ),
        ("source: {stream_days: 2}\n", "source", "give either dataset"),
        ("source: {dataset: pizzaplace, sales: {path: a.csv}}\n", "source", "give either"),
        (
            "source: {sales: {path: a.csv, columns: {qty: q}}}\n",
            "source.sales.columns",
            "'qty' is not a column of sales",
        ),
        ("source: {dataset: m5}\n", "source.dataset", "Input should be 'pizzaplace'"),
        (
            "source: {sales: {path: a.csv, date_format: dd/mm/yyyy}}\n",
            "source.sales.date_format",
            "neither a strftime pattern",
        ),
        (
            "source: {sales: {path: a.csv, date_format: '%d/%Q'}}\n",
            "source.sales.date_format",
            "'Q' is a bad directive",
        ),
        (
            "source: {dataset: pizzaplace}\nanomalies: {rate: 0.1}\n",
            "anomalies",
            "only shape a simulated world",
        ),
    ],
)
def test_source_scenarios_are_validated_naming_the_key(body, key, message) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario("seed: 1\nname: x\n" + body,
                       "x.yaml")  # fmt: skip
    ((path, _value, text),) = caught.value.problems
    assert path == key and message in text


def test_the_shipped_real_retail_dataset_replays() -> None:
    sim = simulate("real-retail")
    world = sim.world
    assert world.origin.startswith("dataset pizzaplace")
    assert len(world.products) == 91 and len(world.sales) == 49_574
    assert world.start.date().isoformat() == "2015-01-01"
    assert world.window_end.date().isoformat() == "2016-01-01"
    assert pc.sum(world.truth_daily["sold"]).as_py() == pc.sum(world.sales["quantity"]).as_py()
    categories = set(world.products["category"].to_pylist())
    assert categories == {"chicken", "classic", "supreme", "veggie"}


HOSTILE_SALES = (
    SALES_CSV
    + "7,A,x,3.50,2025-03-03,09:00:00,store\n"  # row 8: quantity not a number
    + "8,A,-2,3.50,2025-03-03,10:00:00,store\n"  # row 9: a return
    + "9,B,1,10.00,2025-13-03,10:00:00,web\n"  # row 10: no such month
    + "10,B,1,10.00,2025-03-04,10:00:00,phone\n"  # row 11: unknown channel
    + "3,A,1,3.50,2025-03-04,11:00:00,store\n"  # row 12: repeats sale 3
    + "11,,1,3.50,2025-03-04,12:00:00,store\n"  # row 13: no product
    + "12,Z,1,1.00,2025-03-05,12:00:00,store\n"  # row 14: not in the products file
)


def test_set_aside_replays_the_rows_that_fit_and_lists_the_others_with_reasons(tmp_path) -> None:
    (tmp_path / "sales.csv").write_text(HOSTILE_SALES)
    (tmp_path / "products.csv").write_text("product_id,list_price\nA,3.5\nB,10\nC,7\n")
    body = ("sales:\n  path: sales.csv\n" + MAPPING
            + "products: {path: products.csv}\nbad_rows: set_aside\n")  # fmt: skip
    world = simulate(load_scenario(str(scenario_file(tmp_path, body)))).world
    assert sorted(world.sales["sale_id"].to_pylist()) == [1, 2, 3, 4, 5, 6]
    assert world.stats["source_rows"] == 13 and world.stats["set_aside"] == 7
    rows = {r["row"]: r for r in world.set_aside.to_pylist()}
    assert {k: (v["column"], v["reason"]) for k, v in rows.items()} == {
        8: ("qty", "quantity is not a number"),
        9: ("qty", "quantity is below 0"),
        10: ("when_day + when_time", "sold_at is not a date or time"),
        11: ("shop", "channel is not one of web, store, app"),
        12: ("order", "sale_id repeats the sale id of an earlier row"),
        13: ("sku", "product_id is empty"),
        14: ("sku", "product_id names a product the products file does not have"),
    }
    assert rows[9]["value"] == "-2" and rows[11]["value"] == "phone"
    assert {r["file"] for r in rows.values()} == {str(tmp_path / "sales.csv")}
    # The rows that fit replay as without the bad ones: same world, byte for byte.
    (tmp_path / "clean.csv").write_text(SALES_CSV)
    clean = scenario_file(tmp_path, body.replace("sales.csv", "clean.csv"))
    assert simulate(load_scenario(str(clean))).world.sales.equals(world.sales)


def test_stop_names_the_option_and_set_aside_refuses_a_file_with_nothing_left(tmp_path) -> None:
    (tmp_path / "sales.csv").write_text(HOSTILE_SALES)
    path = scenario_file(tmp_path, "sales:\n  path: sales.csv\n" + MAPPING)
    with pytest.raises(SourceError, match=r"repeats a sale id .*row 12: '3' \(source\.bad_rows: "
                                          r"set_aside replays the other rows"):  # fmt: skip
        simulate(load_scenario(str(path)))
    header = SALES_CSV.split("\n")[0]
    (tmp_path / "bad.csv").write_text(header + "\n1,A,-1,3,2025-03-01,09:00,store\n")
    path = scenario_file(tmp_path, "sales:\n  path: bad.csv\n" + MAPPING + "bad_rows: set_aside\n")
    with pytest.raises(SourceError, match=r"every one of its 1 sales rows was set aside; the "
                                          r"first, row 2: quantity is below 0"):  # fmt: skip
        simulate(load_scenario(str(path)))
    # Only the sales file's rows can be set aside: a bad product row still stops the replay.
    (tmp_path / "sales.csv").write_text(SALES_CSV)
    (tmp_path / "products.csv").write_text("product_id,list_price\nA,3.5\nB,ten\nC,7\n")
    path = scenario_file(tmp_path, "sales:\n  path: sales.csv\n" + MAPPING
                         + "products: {path: products.csv}\nbad_rows: set_aside\n")  # fmt: skip
    with pytest.raises(SourceError, match=r"products.csv: column 'list_price' is not a number: "
                                          r"row 3: 'ten'$"):  # fmt: skip
        simulate(load_scenario(str(path)))


def test_dfp_simulate_writes_the_set_aside_rows_and_counts_them(tmp_path) -> None:
    from harness.simulation import write_simulation

    (tmp_path / "sales.csv").write_text(HOSTILE_SALES)
    body = "sales:\n  path: sales.csv\n" + MAPPING + "bad_rows: set_aside\n"
    manifest = write_simulation(simulate(load_scenario(str(scenario_file(tmp_path, body)))),
                                tmp_path / "out")  # fmt: skip
    lines = (tmp_path / "out" / "errors" / "source-rows.ndjson").read_text().splitlines()
    # Without a products file, product Z is a product of the replay: six rows set aside.
    assert manifest["records"]["errors/source-rows.ndjson"] == len(lines) == 6
    assert manifest["records"]["world/sales.parquet"] == 7
    assert "errors/source-rows.ndjson" in manifest["files"]


def test_a_column_mixing_timestamp_formats_is_read_value_by_value(tmp_path) -> None:
    (tmp_path / "sales.csv").write_text(
        "sku,p,when\nA,1,2025-03-01 09:00:00\nA,1,2025-03-02T12:00:00+02:00\nA,1,03/14/2025 08:00\n"
    )
    body = "sales:\n  path: sales.csv\n  columns: {product_id: sku, unit_price: p, sold_at: when}\n"
    sales = simulate(load_scenario(str(scenario_file(tmp_path, body)))).world.sales
    assert [t.isoformat() for t in sales["sold_at"].to_pylist()] == [
        "2025-03-01T09:00:00+00:00",
        "2025-03-02T10:00:00+00:00",
        "2025-03-14T08:00:00+00:00",
    ]


DATED = "sales:\n  path: sales.csv\n  columns: {product_id: sku, unit_price: p, sold_at: when}\n"


def _sold_at(folder: Path, rows: list[str], extra: str = "") -> list[str]:
    (folder / "sales.csv").write_text("sku,p,when\n" + "".join(f"A,1,{r}\n" for r in rows))
    sales = simulate(load_scenario(str(scenario_file(folder, DATED + extra)))).world.sales
    return [t.date().isoformat() for t in sales["sold_at"].to_pylist()]


def test_numeric_dates_are_read_in_the_order_the_column_shows(tmp_path) -> None:
    """pandas alone reads 01/03 month-first and 13/03 day-first: a day-first file would have
    every date up to the 12th moved to another month. The column's values decide, for all."""
    day_first = ["01/03/2025 09:00", "02/03/2025 10:00", "13/03/2025 11:00", "14/03/2025 12:00"]
    assert _sold_at(tmp_path, day_first) == ["2025-03-01", "2025-03-02", "2025-03-13",
                                             "2025-03-14"]  # fmt: skip
    month_first = ["3/1/25 9:00", "3/2/25 10:00", "3/13/25 11:00", "3/14/25 12:00"]
    assert _sold_at(tmp_path, month_first) == ["2025-03-01", "2025-03-02", "2025-03-13",
                                               "2025-03-14"]  # fmt: skip
    dotted = ["01.03.2025", "02.03.2025", "13.03.2025", "14.03.2025"]
    assert _sold_at(tmp_path, dotted)[:2] == ["2025-03-01", "2025-03-02"]


def test_dates_that_read_either_way_are_refused_until_date_format_says(tmp_path) -> None:
    # Monthly data dated on the 1st: no day past the 12th to tell the order by.
    monthly = [f"01/{m:02d}/2024" for m in range(1, 13)] + ["01/01/2025", "01/02/2025"]
    with pytest.raises(SourceError, match=r"sales.csv: column 'when' \(sold_at\) has dates that "
                       r"read day-first or month-first alike \(row 2: '01/01/2024'\).*"
                       r"date_format"):  # fmt: skip
        _sold_at(tmp_path, monthly)
    read = _sold_at(tmp_path, monthly, "  date_format: '%d/%m/%Y'\n")
    assert read[:3] == ["2024-01-01", "2024-02-01", "2024-03-01"]
    # Both orders in one column: named by a row of each.
    with pytest.raises(SourceError, match=r"day first \(row 3: '13/03/2025'\) and dates with "
                       r"the month first \(row 4: '03/14/2025'\)"):  # fmt: skip
        _sold_at(tmp_path, ["01/03/2025", "13/03/2025", "03/14/2025"])
    with pytest.raises(SourceError, match=r"does not match date_format '%d/%m/%Y': row 3: "
                       r"'2025-03-02'"):  # fmt: skip
        _sold_at(tmp_path, ["01/03/2025", "2025-03-02"], "  date_format: '%d/%m/%Y'\n")


def test_quarter_and_iso_week_labels_are_read_as_their_periods_first_day(tmp_path) -> None:
    # As R's yearqtr and tsibble print quarters, as pandas' Period does, quarter first; ISO weeks.
    for labels in (["1990 Q1", "1990 Q2", "1991 Q4"], ["1990Q1", "1990-Q2", "1991q4"],
                   ["Q1 1990", "Q2 1990", "Q4 1991"]):  # fmt: skip
        assert _sold_at(tmp_path, labels) == ["1990-01-01", "1990-04-01", "1991-10-01"]
    assert _sold_at(tmp_path, ["2020-W53", "2021 W01", "2021W02"]) == ["2020-12-28", "2021-01-04",
                                                                       "2021-01-11"]  # fmt: skip
    # A label naming no period is refused by row, as any value that is not a date.
    with pytest.raises(SourceError, match=r"\(sold_at\) is not a date or time: row 3: '2021-W53'"):
        _sold_at(tmp_path, ["2020-W53", "2021-W53"])
    with pytest.raises(SourceError, match=r"is not a date or time: row 3: '1990 Q5'"):
        _sold_at(tmp_path, ["1990 Q1", "1990 Q5"])


def test_unix_times_are_read_when_date_format_names_them(tmp_path) -> None:
    seconds = ["1740819600", "1740906000", "1741597200"]  # 2025-03-01, 03-02, 03-10 09:00 UTC
    with pytest.raises(SourceError, match=r"is not a date or time \(numbers since 1970: "
                       r"date_format unix for seconds"):  # fmt: skip
        _sold_at(tmp_path, seconds)
    assert _sold_at(tmp_path, seconds, "  date_format: unix\n") == ["2025-03-01", "2025-03-02",
                                                                     "2025-03-10"]  # fmt: skip
    millis = [f"{s}000" for s in seconds]
    assert _sold_at(tmp_path, millis, "  date_format: unix_ms\n")[-1] == "2025-03-10"


def test_demand_data_without_prices_and_with_zero_rows_replays(tmp_path) -> None:
    # Forecasting datasets often list every item and day, unsold ones with 0, and carry no price.
    rows = [f"{sku},2025-03-{day:02d},{(day * n) % 3}" for sku, n in (("A", 1), ("B", 2))
            for day in range(1, 15)]  # fmt: skip
    (tmp_path / "demand.csv").write_text("item,date,units\n" + "\n".join(rows) + "\n")
    columns = "{product_id: item, sold_at: date, quantity: units}"
    body = f"sales:\n  path: demand.csv\n  columns: {columns}\n"
    world = simulate(load_scenario(str(scenario_file(tmp_path, body)))).world
    zeros = sum(1 for row in rows if row.endswith(",0"))
    assert zeros and len(world.sales) == len(rows) - zeros
    assert min(world.sales["quantity"].to_pylist()) > 0
    assert world.stats["filtered: quantity 0 (nothing sold)"] == zeros
    assert set(world.products["list_price"].to_pylist()) == {1.0}
    assert set(world.sales["unit_price"].to_pylist()) == {1.0}
    sold = pc.sum(world.truth_daily["sold"]).as_py()
    assert sold == sum(int(row.rsplit(",", 1)[1]) for row in rows)


def test_decades_of_yearly_sales_replay_and_too_many_product_days_are_refused(tmp_path) -> None:
    # Yearly data needs decades: 30 years of three states' sales, one row a year.
    rows = [f"{state},{year},{100 + year % 7}" for state in ("AL", "AR", "AZ")
            for year in range(1963, 1993)]  # fmt: skip
    (tmp_path / "yearly.csv").write_text("state,year,packs\n" + "\n".join(rows) + "\n")
    columns = "{product_id: state, sold_at: year, quantity: packs}"
    path = tmp_path / "yearly.yaml"
    path.write_text(
        "name: yearly\nseed: 3\nsource:\n  sales: {path: yearly.csv, "
        f"columns: {columns}}}\n  stream_days: 2\nforecast: {{frequency: 1Y, horizon: 4}}\n"
    )
    scenario = load_scenario(str(path))
    assert scenario.forecast.frequency == "Y"
    sim = simulate(scenario)
    world = sim.world
    assert str(world.start.date()) == "1963-01-01"
    assert str(world.window_start.date()) == "1991-12-31"  # the last two days
    assert len(world.sales) == 90 and len(sim.cdc_stream) == 3  # 1992's sales are streamed
    sold = sum(100 + year % 7 for year in range(1963, 1993)) * 3
    assert pc.sum(world.truth_daily["sold"]).as_py() == sold
    # The truth's daily grid is built in memory: products x days is capped, naming the way out.
    wide = [f"P{i},{day}" for i in range(2_300) for day in ("1980-01-01", "2029-12-31")]
    (tmp_path / "wide.csv").write_text("sku,day\n" + "\n".join(wide) + "\n")
    body = "sales:\n  path: wide.csv\n  columns: {product_id: sku, sold_at: day}\n"
    refusal = r"2,300 products over 18,263 days .*\(source\.max_items\)"
    with pytest.raises(SourceError, match=refusal):
        simulate(load_scenario(str(scenario_file(tmp_path, body))))


def by_store(path: Path) -> Path:
    """The scenario file with a forecast by store."""
    text = path.read_text().replace("horizon: 1}", "horizon: 1, dimensions: [store_id]}")
    path.write_text(text)
    return path


def test_a_sales_file_naming_its_stores_replays_them_for_a_forecast_by_store(tmp_path) -> None:
    (tmp_path / "data").mkdir()
    lines = SALES_CSV.splitlines()
    stores = ["branch", "B-1", "B-2", "B-1", "B-2", "", "B-1"]  # one row names none
    text = "\n".join(f"{line},{store}" for line, store in zip(lines, stores, strict=True)) + "\n"
    (tmp_path / "data" / "sales.csv").write_text(text)
    mapping = MAPPING + "    store_id: branch\n"
    path = by_store(scenario_file(tmp_path, "sales:\n  path: data/sales.csv\n" + mapping))
    scenario = load_scenario(str(path))
    assert scenario.forecast.dimensions == ["store_id"]
    world = simulate(scenario).world
    assert world.stores["store_id"].to_pylist() == ["B-1", "B-2"]
    assert world.sales["store_id"].to_pylist().count(None) == 1  # set aside by the ETL, named
    assert set(world.changes["stores"]["_op"].to_pylist()) == {"load"}
    # Without the mapping a forecast by store is refused up front, naming the key.
    unmapped = by_store(scenario_file(tmp_path, "sales:\n  path: data/sales.csv\n" + MAPPING))
    with pytest.raises(ScenarioError, match=r"forecast.dimensions = .*: store_id needs source"):
        load_scenario(str(unmapped))


def test_a_bad_parquet_value_is_shown_as_its_value(tmp_path) -> None:
    """A Parquet column's values are numpy scalars; the message shows 1.5, not np.float64(1.5)."""
    table = pa.table({"sku": ["A", "A"], "qty": [2.0, 1.5], "p": [1.0, 1.0],
                      "when": ["2025-03-01", "2025-03-02"]})  # fmt: skip
    pq.write_table(table, tmp_path / "s.parquet")
    body = ("sales:\n  path: s.parquet\n  columns: {product_id: sku, quantity: qty, unit_price: p,"
            " sold_at: when}\n")  # fmt: skip
    with pytest.raises(SourceError, match=r"s.parquet: column 'qty' \(quantity\) is not a whole "
                       r"number .*: row 2: 1.5 \("):  # fmt: skip
        simulate(load_scenario(str(scenario_file(tmp_path, body))))


def test_ids_keep_the_text_they_were_written_with(tmp_path) -> None:
    """Product codes are text: ``007`` and ``7`` are two products (UPC and EAN codes begin with
    zeros), ``1e3`` is no thousand, and a price written ``NaN`` is named as written. A CSV
    reader inferring numbers would have merged the two products and renamed the third."""
    (tmp_path / "sales.csv").write_text(
        "order,sku,qty,price,when_day,when_time,shop\n"
        "0001,007,2,3.50,2025-03-01,09:00:00,store\n"
        "0002,7,1,10.00,2025-03-01,10:30:00,web\n"
        "0003,1e3,1,7.00,2025-03-02,12:00:00,store\n"
        "0004,007,4,3.00,2025-03-09,08:15:00,app\n"
    )
    path = scenario_file(tmp_path, "sales:\n  path: sales.csv\n" + MAPPING + "stream_days: 1\n")
    world = simulate(load_scenario(str(path))).world
    assert sorted(world.products["product_id"].to_pylist()) == ["007", "1e3", "7"]
    sold = pc.sum(world.truth_daily.filter(pc.field("product_id") == "007")["sold"]).as_py()
    assert sold == 6
    (tmp_path / "sales.csv").write_text(
        (tmp_path / "sales.csv").read_text().replace("10.00", "NaN")
    )
    with pytest.raises(SourceError, match=r"column 'price' \(unit_price\) is not a number: "
                       r"row 3: 'NaN'"):  # fmt: skip
        simulate(load_scenario(str(path)))


def test_a_parquet_column_holding_no_single_value_is_refused_and_binary_text_read(tmp_path):
    """A struct or list column mapped to one of ours is refused naming it (pandas showed a struct
    as ``{'a': 'A'}`` and that became the product id); a binary column holding UTF-8 is text, as
    writers without Parquet's string annotation store it; one that is not UTF-8 is refused."""
    when = ["2025-03-01", "2025-03-02", "2025-03-09"]
    body = ("sales:\n  path: s.parquet\n  columns: {product_id: sku, quantity: qty, sold_at: when}"
            "\nstream_days: 1\n")  # fmt: skip
    path = scenario_file(tmp_path, body)
    cases = [
        (pa.array([{"a": "A"}, {"a": "B"}, {"a": "A"}]), r"holds struct<a: string>"),
        (pa.array([["A"], ["B"], ["A"]]), r"holds list<element: string>"),
        (pa.array([b"A", b"\xff\xfe", b"A"], pa.binary()), r"holds binary values that are not"),
    ]
    for sku, message in cases:
        pq.write_table(pa.table({"sku": sku, "qty": [1, 2, 3], "when": when}),
                       tmp_path / "s.parquet")  # fmt: skip
        with pytest.raises(SourceError, match=rf"s.parquet: column 'sku' \(mapped to "
                           rf"product_id\) {message}"):  # fmt: skip
            simulate(load_scenario(str(path)))
    # An unmapped nested column is no concern of the replay; binary UTF-8 ids are their text.
    pq.write_table(pa.table({"sku": pa.array([b"007", b"7", b"007"], pa.binary()),
                             "qty": [1, 2, 3], "when": when, "tags": [[1], [2], [3]]}),
                   tmp_path / "s.parquet")  # fmt: skip
    world = simulate(load_scenario(str(path))).world
    assert sorted(world.products["product_id"].to_pylist()) == ["007", "7"]


def test_sale_ids_from_zero_are_keys_and_text_ids_are_refused_with_the_way_out(tmp_path):
    """The sales table's key is a bigint: 0 is one (pandas' ``to_csv`` numbers rows from 0); an
    invoice line's text is not, and the error says how to replay without it."""
    numbered = "\n".join(
        f"{i - 1}," + line.split(",", 1)[1] if i else line
        for i, line in enumerate(SALES_CSV.splitlines())
    )
    (tmp_path / "sales.csv").write_text(numbered + "\n")
    path = scenario_file(tmp_path, "sales:\n  path: sales.csv\n" + MAPPING + "stream_days: 1\n")
    world = simulate(load_scenario(str(path))).world
    assert sorted(world.sales["sale_id"].to_pylist()) == [0, 1, 2, 3, 4, 5]
    (tmp_path / "sales.csv").write_text(numbered.replace("\n2,", "\nINV-7/2,") + "\n")
    with pytest.raises(SourceError, match=r"column 'order' \(sale_id\) is not a number \(the "
                       r"sales table's key is a bigint; leave sale_id unmapped .*row 4: "
                       r"'INV-7/2'"):  # fmt: skip
        simulate(load_scenario(str(path)))


def test_a_folder_of_parquet_files_is_read_as_spark_and_pandas_write_one(tmp_path) -> None:
    """Spark, Glue and pandas' ``partition_cols`` write a table as a folder: its part files
    (``_SUCCESS`` and ``.crc`` files beside them), Hive partition folders as columns."""
    sales = pd.DataFrame({"sku": ["007", "7", "007", "B"], "qty": [1, 2, 3, 4],
                          "when": ["2025-03-01", "2025-03-02", "2025-03-09", "2025-03-09"],
                          "shop": ["web", "store", "store", "app"]})  # fmt: skip
    sales["when"] = sales["when"] + " 09:30:00"  # partitioned by it too: written URI-encoded
    sales.to_parquet(tmp_path / "sales.parquet", partition_cols=["shop", "when"])
    assert (tmp_path / "sales.parquet" / "shop=web" / "when=2025-03-01%2009%3A30%3A00").is_dir()
    (tmp_path / "sales.parquet" / "_SUCCESS").write_text("")
    (tmp_path / "sales.parquet" / ".part.crc").write_bytes(b"\x00\x01")
    body = ("sales:\n  path: sales.parquet\n  columns: {product_id: sku, quantity: qty, "
            "sold_at: when, channel: shop}\nstream_days: 1\n")  # fmt: skip
    path = scenario_file(tmp_path, body)
    world = simulate(load_scenario(str(path))).world
    replayed = sorted(zip(world.sales["product_id"].to_pylist(), world.sales["channel"].to_pylist(),
                          world.sales["quantity"].to_pylist(), strict=True))  # fmt: skip
    assert replayed == [("007", "store", 3), ("007", "web", 1), ("7", "store", 2),
                        ("B", "app", 4)]  # fmt: skip
    assert sorted(set(world.sales["sold_at"].to_pylist()))[0].isoformat() == (
        "2025-03-01T09:30:00+00:00"
    )
    # parts whose columns disagree, and a folder with no Parquet file, are refused naming it
    pq.write_table(pa.table({"sku": [1], "qty": ["x"], "when": ["2025-03-01"]}),
                   tmp_path / "sales.parquet" / "shop=web" / "other.parquet")  # fmt: skip
    with pytest.raises(SourceError, match=r"sales.parquet: its Parquet files do not share one "
                       r"schema"):  # fmt: skip
        simulate(load_scenario(str(path)))
    (tmp_path / "sales.parquet" / "shop=web" / "other.parquet").write_bytes(b"PAR1 not")
    with pytest.raises(SourceError, match=r"shop=web/other.parquet: cannot read"):
        simulate(load_scenario(str(path)))
    (tmp_path / "empty.parquet").mkdir()
    path.write_text(path.read_text().replace("path: sales.parquet", "path: empty.parquet"))
    with pytest.raises(SourceError, match=r"empty.parquet: is a folder without Parquet files"):
        simulate(load_scenario(str(path)))
