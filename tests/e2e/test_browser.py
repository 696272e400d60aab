"""The forecast page and the run report in headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("needs Debian's chromium (/usr/bin/chromium; set-up installs it where apt "
                    "works); tests/serving covers the API without a browser")  # fmt: skip
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


def test_page_finds_a_product_shows_its_chart_and_caches_it(browser, smoke_run, world) -> None:
    from harness.serve import ForecastServer, ForecastSite

    world.reset()
    site = ForecastSite(world, smoke_run.out_dir)
    server = ForecastServer(site).start()
    try:
        assert server.url.startswith("http://127.0.0.1:")
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url)
        page.fill("#search", "P0000")
        page.click("button[type=submit]")
        first = page.locator("button.result").first
        first.wait_for(timeout=30_000)
        item = first.get_attribute("data-item")
        first.click()
        page.wait_for_selector("#chart .main-svg", timeout=30_000)
        traces = page.evaluate("document.getElementById('chart').data")
        assert {t["name"] for t in traces} >= {"P10–P90", "forecast P50"}
        assert all(len(t["x"]) > 0 for t in traces)
        horizon = smoke_run.summary["forecast"]["horizon"]
        assert page.locator("#numbers tr").count() == horizon + 1
        assert not errors
        cached = world.client("dynamodb").get_item(
            TableName=site.names.table_name("forecast-cache"),
            Key={"item_id": {"S": item}, "location": {"S": "all"}},
        )
        assert "Item" in cached and int(cached["Item"]["expires_at"]["N"]) > 0
        # An unknown id is answered with a message, not a stack trace.
        response = page.request.get(f"{server.url}/api/forecast/NOPE1")
        assert response.status == 404 and "Traceback" not in response.text()
        assert page.request.get(f"{server.url}/api/forecast/a'b").status == 400
        dashboard = page.request.get(f"{server.url}/dashboard/forecasts")
        assert dashboard.status == 200 and "forecast-chart" in dashboard.text()
    finally:
        server.stop()


def test_report_renders_offline_with_charts_that_carry_data(browser, smoke_run) -> None:
    context = browser.new_context(offline=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto((smoke_run.out_dir / "report.html").as_uri())
    page.wait_for_selector("#forecast-chart .main-svg", timeout=30_000)
    for chart in ("forecast-chart", "metrics-chart", "anomaly-chart"):
        traces = page.evaluate(f"document.getElementById('{chart}').data")
        assert traces and all(len(t["x"]) > 0 for t in traces), chart
    options = page.locator("#product option")
    assert options.count() == smoke_run.summary["forecast"]["items"]
    last = options.nth(options.count() - 1)
    page.select_option("#product", index=options.count() - 1)
    title = page.evaluate("document.getElementById('forecast-chart').layout.title.text")
    assert title.split(" · ")[0] == last.inner_text().split(" · ")[0]
    assert not errors
    context.close()


def test_the_report_rolls_a_forecast_by_store_up_to_the_location_picked(browser, tmp_path) -> None:
    from harness.report import forecast_section, page
    from tests.harness.test_charts import _run_dir

    run = _run_dir(tmp_path)
    summary = {"forecast": {"items": 1, "series": 2, "horizon": 2, "quantiles": [0.1, 0.5, 0.9]}}
    report = run / "report.html"
    report.write_text(page("stores", forecast_section(summary, run), charts=True))
    context = browser.new_context(offline=True)
    view = context.new_page()
    errors: list[str] = []
    view.on("pageerror", lambda e: errors.append(str(e)))
    view.goto(report.as_uri())
    view.wait_for_selector("#forecast-chart .main-svg", timeout=30_000)

    def p50() -> tuple[str, list[float]]:
        chart = "document.getElementById('forecast-chart')"
        traces = view.evaluate(f"{chart}.data")
        line = next(t for t in traces if t["name"] == "forecast P50")
        return view.evaluate(f"{chart}.layout.title.text"), line["y"]

    assert p50()[1] == [3.0, 4.5]  # every store
    view.select_option("#location", "region:north")
    title, values = p50()
    assert values == [2.0, 3.0] and title.endswith("region north")
    view.select_option("#location", "store:W01")
    title, values = p50()
    assert values == [1.0, 1.5] and title.endswith("store W01")
    assert not errors
    context.close()


def test_the_page_shows_an_item_at_the_location_picked(browser, world, tmp_path) -> None:
    """A forecast by store: the page lists the stores and regions, and each pick asks the API
    for that location (one store, a region's sum, every store)."""
    import datetime as dt
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from emulation.glue import arrow_schema
    from harness.run.layout import RunDir
    from harness.serve import ForecastServer, ForecastSite
    from pipeline.contracts.staged import FORECAST_ENRICHED_COLUMNS

    sites = {"S1": ("north", 1.0), "S2": ("north", 2.0), "S3": ("south", 4.0)}
    rows = [
        {"item_id": "K1", "store_id": store, "date": dt.date(2025, 2, day), "p10": size,
         "p50": size * day, "p90": 3 * size * day, "name": "Kite", "category": "toys",
         "region": region, "store_format": "supermarket", "promotion_applied": 0,
         "recent_daily_demand": size}
        for store, (region, size) in sites.items()
        for day in (1, 2)
    ]  # fmt: skip
    schema = arrow_schema([{"Name": n, "Type": t} for n, t in FORECAST_ENRICHED_COLUMNS])
    part = RunDir(tmp_path).enriched / "version=2025-01-31" / "part-00000.parquet"
    part.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), part)
    RunDir(tmp_path).summary.write_text(json.dumps({"status": "succeeded"}))
    world.reset()
    server = ForecastServer(ForecastSite(world, tmp_path)).start()
    try:
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url)
        page.wait_for_selector("#where:not([hidden])", timeout=30_000)
        labels = page.locator("#location option").all_inner_texts()
        assert labels == ["All stores", "Region north", "Region south", "Store S1 · north",
                          "Store S2 · north", "Store S3 · south"]  # fmt: skip

        def shown(location: str | None) -> list[float]:
            if location is not None:
                page.select_option("#location", label=location)
            page.fill("#search", "kite")
            page.click("button[type=submit]")
            page.locator("button.result").first.click()
            page.wait_for_function(
                "document.getElementById('message').textContent.includes('version')"
            )
            return [float(v) for v in page.locator("#numbers td:nth-child(3)").all_inner_texts()]

        assert shown(None) == [7.0, 14.0]  # every store
        assert "all 3 stores" in page.locator("#message").inner_text()
        assert shown("Region north") == [3.0, 6.0]
        assert shown("Store S3 · south") == [4.0, 8.0]
        assert "store S3" in page.locator("#message").inner_text()
        assert not errors
    finally:
        server.stop()
