"""The run report's forecast chart data: per product, and by store with its locations."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from harness.charts import product_series
from harness.report import forecast_section
from harness.run.layout import RunDir


def _run_dir(tmp_path: Path) -> Path:
    """A run directory whose forecast is by store: item P1 at S1 (north) and W01 (online)."""
    forecast = tmp_path / "forecast"
    forecast.mkdir()
    export = pd.DataFrame({
        "item_id": ["P1"] * 4, "store_id": ["S1", "S1", "W01", "W01"],
        "date": ["2025-02-01T00:00:00Z", "2025-02-02T00:00:00Z"] * 2,
        "p10": [1.0, 1.0, 0.5, 0.5], "p50": [2.0, 3.0, 1.0, 1.5], "p90": [4.0, 5.0, 2.0, 2.5],
    })  # fmt: skip
    export.to_csv(forecast / "export.csv", index=False)
    history = pd.DataFrame({
        "item_id": ["P1"] * 4, "store_id": ["S1", "S1", "W01", "W01"],
        "timestamp": ["2025-01-30", "2025-01-31"] * 2, "demand": [2.0, 4.0, 1.0, 1.0],
        "price": 9.5, "region": ["north", "north", "online", "online"],
    })  # fmt: skip
    history.to_csv(forecast / "input.csv", index=False)
    truth = RunDir(tmp_path).truth_daily
    truth.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "product_id": ["P1", "P1"],
            "store_id": ["S1", "W01"],
            "date": [dt.date(2025, 1, 31)] * 2,
            "expected": [3.0, 1.25],
        }
    ).to_parquet(truth)
    return tmp_path


def test_a_forecast_by_store_charts_the_total_and_each_location(tmp_path) -> None:
    (product,) = product_series(_run_dir(tmp_path))
    assert [r["p50"] for r in product["forecast"]] == [3.0, 4.5]  # summed over the stores
    assert product["history"] == [["2025-01-30", 3.0], ["2025-01-31", 5.0]]
    assert product["truth"] == [["2025-01-31", 4.25]]
    at = {loc["store_id"]: loc for loc in product["locations"]}
    assert (at["S1"]["region"], at["W01"]["region"]) == ("north", "online")
    assert [r["p90"] for r in at["W01"]["forecast"]] == [2.0, 2.5]
    assert at["S1"]["truth"] == [["2025-01-31", 3.0]]
    html = forecast_section({"forecast": {"items": 1, "series": 2, "horizon": 2,
                                          "quantiles": [0.1, 0.5, 0.9]}}, tmp_path)  # fmt: skip
    assert "<select id='location'>" in html and "1 items in 2 item × store series" in html
    assert "value='region:north'" in html and "value='store:W01'" in html


def test_a_forecast_without_stores_has_no_location_picker(tmp_path) -> None:
    run = _run_dir(tmp_path)
    export = pd.read_csv(run / "forecast" / "export.csv")
    export[export["store_id"] == "S1"].drop(columns="store_id").to_csv(
        run / "forecast" / "export.csv", index=False
    )
    (product,) = product_series(run)
    assert "locations" not in product
    assert [r["p50"] for r in product["forecast"]] == [2.0, 3.0]
    html = forecast_section({"forecast": {"items": 1, "horizon": 2}}, run)
    assert "id='location'" not in html


@pytest.mark.parametrize("missing", ["export.csv", "input.csv"])
def test_no_chart_data_without_the_forecast_files(tmp_path, missing) -> None:
    run = _run_dir(tmp_path)
    (run / "forecast" / missing).unlink()
    assert product_series(run) == []


def test_a_run_by_store_gives_notebooks_one_series_per_item_and_store(tmp_path) -> None:
    import json

    from harness.runs import load_run

    run = _run_dir(tmp_path)
    RunDir(run).summary.write_text(json.dumps({"status": "succeeded"}))
    (run / "forecast" / "manifest.json").write_text(
        json.dumps({"horizon": 2, "dimensions": ["store_id"]})
    )
    (run / "forecast" / "accuracy-metrics.json").write_text("{}")
    data = load_run(run)
    history = data.history()
    assert sorted(history["unique_id"].unique()) == ["P1|S1", "P1|W01"]
    assert not history.duplicated(["unique_id", "ds"]).any()  # statsforecast's contract
    assert data.related_columns() == ["price"]  # the store is part of the key, not a feature


def test_a_monthly_forecast_charts_months_of_actuals_and_truth_per_month(tmp_path) -> None:
    import json

    forecast = tmp_path / "forecast"
    forecast.mkdir()
    (forecast / "manifest.json").write_text(json.dumps({"frequency": "M", "horizon": 2}))
    pd.DataFrame(
        {
            "item_id": "P1",
            "date": ["2025-03-01T00:00:00Z", "2025-04-01T00:00:00Z"],
            "p10": 1.0,
            "p50": 2.0,
            "p90": 3.0,
        }
    ).to_csv(forecast / "export.csv", index=False)
    months = pd.date_range("2023-01-01", "2025-02-01", freq="MS")
    pd.DataFrame(
        {"item_id": "P1", "timestamp": months.strftime("%Y-%m-%d"), "demand": range(len(months))}
    ).to_csv(forecast / "input.csv", index=False)
    days = pd.date_range("2024-10-15", "2025-03-10", freq="D")  # October and March partial
    truth = RunDir(tmp_path).truth_daily
    truth.parent.mkdir(parents=True)
    frame = pd.DataFrame({"product_id": "P1", "store_id": None, "date": days.date,
                          "expected": 1.0})  # fmt: skip
    frame.to_parquet(truth)
    (product,) = product_series(tmp_path)
    # Three horizons of months (56 days would show one or two), the truth summed per month.
    assert [d for d, _ in product["history"]] == [m.strftime("%Y-%m-%d") for m in months[-6:]]
    assert product["truth"] == [["2024-11-01", 30.0], ["2024-12-01", 31.0],
                                ["2025-01-01", 31.0], ["2025-02-01", 28.0]]  # fmt: skip
    # Real data knows what was sold, not what was expected: no truth line rather than zeros.
    frame.assign(expected=None).to_parquet(truth)
    (product,) = product_series(tmp_path)
    assert product["truth"] == [] and len(product["history"]) == 6


def _figure(product: dict) -> list[dict]:
    """``dfpForecastFigure``'s traces for ``product``, built by Node from ``charts.js``."""
    import json
    import shutil
    import subprocess

    from harness.charts import STATIC

    node = shutil.which("node")
    if node is None:
        pytest.skip("needs Node.js (a prerequisite: the CDK runs on it); the browser test draws "
                    "the daily chart")  # fmt: skip
    call = f"dfpForecastFigure({json.dumps(product)}).data"
    script = f"{(STATIC / 'charts.js').read_text()}\nprocess.stdout.write(JSON.stringify({call}));"
    done = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_recent_daily_demand_is_drawn_in_the_forecasts_own_periods() -> None:
    def forecast(dates: list[str]) -> list[dict]:
        return [{"date": f"{d}T00:00:00Z", "p10": 1, "p50": 2, "p90": 3} for d in dates]

    days = forecast(["2025-03-01", "2025-03-02", "2025-03-03"])
    daily = _figure({"item_id": "P1", "recent_daily_demand": 2.5, "forecast": days})
    (line,) = [t for t in daily if t["name"] == "recent daily demand"]
    assert line["y"] == [2.5, 2.5]
    months = forecast(["2025-01-01", "2025-02-01", "2025-03-01"])
    monthly = _figure({"item_id": "P1", "recent_daily_demand": 2.0, "forecast": months})
    (line,) = [t for t in monthly if t["name"].startswith("recent demand per period")]
    assert line["y"] == [62.0, 56.0, 56.0]  # 31 and 28 days; the last as long as the one before
