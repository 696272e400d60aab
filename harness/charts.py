"""Chart data and scripts shared by the run report and the forecast page.

The figures themselves are built in one place, ``harness/static/charts.js`` (``dfpForecastFigure``),
which both pages embed; this module prepares the data it takes and inlines the scripts, so pages
open offline (no CDN).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

from harness.run.layout import RunDir

STATIC = Path(__file__).with_name("static")
HISTORY_DAYS = 56  # of actuals shown before the forecast


@cache
def plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


@cache
def charts_js() -> str:
    return (STATIC / "charts.js").read_text()


def inline_scripts() -> str:
    """``<script>`` tags with plotly.js and the chart builder, inline."""
    return f"<script>{plotly_js()}</script><script>{charts_js()}</script>"


def product_series(run_dir: Path) -> list[dict[str, Any]]:
    """Per product: recent actuals, the ground truth's expected demand, and the forecast."""
    forecast_dir = run_dir / "forecast"
    if not (forecast_dir / "export.csv").is_file() or not (forecast_dir / "input.csv").is_file():
        return []
    export = pd.read_csv(forecast_dir / "export.csv")
    frame = pd.read_csv(forecast_dir / "input.csv", usecols=["item_id", "timestamp", "demand"])
    frame = frame[frame["demand"].notna()]
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    since = frame["timestamp"].max() - pd.Timedelta(days=HISTORY_DAYS)
    recent = frame[frame["timestamp"] > since]
    truth_path = RunDir(run_dir).truth_daily
    truth = (
        pd.read_parquet(truth_path, columns=["product_id", "date", "expected"])
        if truth_path.is_file()
        else pd.DataFrame(columns=["product_id", "date", "expected"])
    )
    truth["date"] = pd.to_datetime(truth["date"])
    truth = truth[truth["date"] > since]
    names: dict[str, str] = {}
    products_path = run_dir / "forecast" / "enriched"
    if products_path.is_dir():
        files = sorted(products_path.rglob("*.parquet"))
        if files:
            enriched = pd.concat(pd.read_parquet(f, columns=["item_id", "name"]) for f in files)
            names = dict(zip(enriched["item_id"], enriched["name"], strict=False))
    history = {k: g for k, g in recent.groupby("item_id")}
    truths = {k: g for k, g in truth.groupby("product_id")}
    out = []
    for item, rows in export.groupby("item_id", sort=True):
        past = history.get(item)
        expected = truths.get(item)
        out.append(
            {
                "item_id": item,
                "name": names.get(item),
                "forecast": rows[["date", "p10", "p50", "p90"]].round(4).to_dict("records"),
                "history": []
                if past is None
                else [
                    [d.strftime("%Y-%m-%d"), float(v)]
                    for d, v in zip(past["timestamp"], past["demand"], strict=True)
                ],
                "truth": []
                if expected is None
                else [
                    [d.strftime("%Y-%m-%d"), round(float(v), 4)]
                    for d, v in zip(expected["date"], expected["expected"], strict=True)
                ],
            }
        )
    return out


def json_for_script(value: Any) -> str:
    """JSON safe to place inside a ``<script>`` element."""
    return json.dumps(value, separators=(",", ":")).replace("</", "<\\/")
