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
from harness.runs import read_run_csv
from pipeline.contracts.periods import (
    DAYS_PER_PERIOD,
    PERIOD_LENGTH,
    next_period_start,
    period_start,
)

STATIC = Path(__file__).with_name("static")
HISTORY_DAYS = 56  # of actuals shown before the forecast at least,
HISTORY_HORIZONS = 3  # and at least this many horizons' periods (a yearly forecast needs years)


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


def _frequency(forecast_dir: Path) -> str:
    """The forecast's period (``D`` … ``Y``) as the ETL's manifest states it (``D`` without one)."""
    manifest = forecast_dir / "manifest.json"
    if manifest.is_file():
        frequency = json.loads(manifest.read_text()).get("frequency", "D")
        if frequency in PERIOD_LENGTH:
            return frequency
    return "D"


def _per_period(truth: pd.DataFrame, frequency: str) -> pd.DataFrame:
    """Daily expected demand summed per forecast period, as the actuals are; a period the truth's
    days do not cover whole (the world's first or last) is left out rather than drawn low."""
    if frequency == "D" or truth.empty:
        return truth
    days = pd.Series(pd.to_datetime(truth["date"].unique())).sort_values()
    start = {d: pd.Timestamp(period_start(d.date(), frequency)) for d in days}
    covered = pd.Series(list(start.values())).value_counts()
    whole = {s for s, n in covered.items()
             if n == (next_period_start(s.date(), frequency) - s.date()).days}  # fmt: skip
    out = truth.assign(date=truth["date"].map(start))
    out = out[out["date"].isin(whole)]
    keys = [c for c in ("item_id", "store_id") if c in out.columns]
    return out.groupby([*keys, "date"], as_index=False, dropna=False)["expected"].sum()


def product_series(run_dir: Path) -> list[dict[str, Any]]:
    """Per product: recent actuals, the ground truth's expected demand, and the forecast.

    Actuals and truth are per forecast period (a monthly forecast's truth is summed per month),
    over the last :data:`HISTORY_DAYS` days or :data:`HISTORY_HORIZONS` horizons, whichever is
    longer. Real data has no expected demand, so no truth line.

    A forecast by store adds ``locations``: the same per store (with its region). The product's
    own series are the sums over its stores; quantiles are summed too, which is exact for the
    P50 only when stores move together (the band is then wider than the total's own).
    """
    forecast_dir = run_dir / "forecast"
    if not (forecast_dir / "export.csv").is_file() or not (forecast_dir / "input.csv").is_file():
        return []
    frequency = _frequency(forecast_dir)
    export = read_run_csv(forecast_dir / "export.csv")
    by_store = "store_id" in export.columns
    keys = ["item_id", "store_id"] if by_store else ["item_id"]
    wanted = [*keys, "timestamp", "demand", *(["region"] if by_store else [])]
    frame = read_run_csv(forecast_dir / "input.csv", usecols=lambda c: c in wanted)
    regions: dict[str, str] = {}
    if by_store and "region" in frame.columns:
        regions = dict(zip(frame["store_id"], frame["region"], strict=False))
    frame = frame[frame["demand"].notna()]
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    horizon = export["date"].nunique()
    shown = max(HISTORY_DAYS, HISTORY_HORIZONS * horizon * DAYS_PER_PERIOD[frequency])
    since = frame["timestamp"].max() - pd.Timedelta(days=shown)
    recent = frame[frame["timestamp"] > since]
    truth_path = RunDir(run_dir).truth_daily
    columns = ["product_id", "store_id", "date", "expected"]
    truth = (
        pd.read_parquet(truth_path, columns=columns)
        if truth_path.is_file()
        else pd.DataFrame(columns=columns)
    )
    truth["date"] = pd.to_datetime(truth["date"])
    truth = truth[truth["expected"].notna()].rename(columns={"product_id": "item_id"})
    truth = _per_period(truth, frequency)
    truth = truth[truth["date"] > since]
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
