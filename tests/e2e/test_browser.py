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
