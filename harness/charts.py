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


def _points(frame: pd.DataFrame, date: str, value: str, digits: int | None = None) -> list:
    """``[[yyyy-mm-dd, value]…]`` of a frame's rows, summed per date (stores roll up)."""
    if frame is None or frame.empty:
        return []
    summed = frame.groupby(date, sort=True)[value].sum()
    return [[d.strftime("%Y-%m-%d"), float(v) if digits is None else round(float(v), digits)]
            for d, v in summed.items()]  # fmt: skip


def _forecast_rows(rows: pd.DataFrame) -> list[dict[str, Any]]:
    summed = rows.groupby("date", sort=True)[["p10", "p50", "p90"]].sum().reset_index()
    return summed.round(4).to_dict("records")


def product_series(run_dir: Path) -> list[dict[str, Any]]:
    """Per product: recent actuals, the ground truth's expected demand, and the forecast.

    A forecast by store adds ``locations``: the same per store (with its region). The product's
    own series are the sums over its stores; quantiles are summed too, which is exact for the
    P50 only when stores move together (the band is then wider than the total's own).
    """
    forecast_dir = run_dir / "forecast"
    if not (forecast_dir / "export.csv").is_file() or not (forecast_dir / "input.csv").is_file():
        return []
    export = pd.read_csv(forecast_dir / "export.csv", dtype={"item_id": str})
    by_store = "store_id" in export.columns
    keys = ["item_id", "store_id"] if by_store else ["item_id"]
    wanted = [*keys, "timestamp", "demand", *(["region"] if by_store else [])]
    frame = pd.read_csv(forecast_dir / "input.csv", dtype={"item_id": str},
                        usecols=lambda c: c in wanted)  # fmt: skip
    regions: dict[str, str] = {}
    if by_store and "region" in frame.columns:
        regions = dict(zip(frame["store_id"], frame["region"], strict=False))
    frame = frame[frame["demand"].notna()]
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    since = frame["timestamp"].max() - pd.Timedelta(days=HISTORY_DAYS)
    recent = frame[frame["timestamp"] > since]
    truth_path = RunDir(run_dir).truth_daily
    columns = ["product_id", "store_id", "date", "expected"]
    truth = (
        pd.read_parquet(truth_path, columns=columns)
        if truth_path.is_file()
        else pd.DataFrame(columns=columns)
    )
    truth["date"] = pd.to_datetime(truth["date"])
    truth = truth[truth["date"] > since].rename(columns={"product_id": "item_id"})
    names: dict[str, str] = {}
    products_path = run_dir / "forecast" / "enriched"
    if products_path.is_dir():
        files = sorted(products_path.rglob("*.parquet"))
        if files:
            enriched = pd.concat(pd.read_parquet(f, columns=["item_id", "name"]) for f in files)
            names = dict(zip(enriched["item_id"], enriched["name"], strict=False))
    history = {k: g for k, g in recent.groupby("item_id")}
    truths = {k: g for k, g in truth.groupby("item_id")}
    out = []
    for item, rows in export.groupby("item_id", sort=True):
        past, expected = history.get(item), truths.get(item)
        entry = {
            "item_id": item,
            "name": names.get(item),
            "forecast": _forecast_rows(rows),
            "history": _points(past, "timestamp", "demand"),
            "truth": _points(expected, "date", "expected", 4),
        }
        if by_store:
            past_at = {} if past is None else {k: g for k, g in past.groupby("store_id")}
            truth_at = {} if expected is None else {k: g for k, g in expected.groupby("store_id")}
            entry["locations"] = [
                {"store_id": store, "region": regions.get(store),
                 "forecast": _forecast_rows(at),
                 "history": _points(past_at.get(store), "timestamp", "demand"),
                 "truth": _points(truth_at.get(store), "date", "expected", 4)}
                for store, at in rows.groupby("store_id", sort=True)
            ]  # fmt: skip
        out.append(entry)
    return out


def json_for_script(value: Any) -> str:
    """JSON safe to place inside a ``<script>`` element."""
    return json.dumps(value, separators=(",", ":")).replace("</", "<\\/")
