"""Benchmark: the local forecaster on a scenario's forecast input, against simple alternatives.

Side by side on the same series and the same backtest window (the last ``horizon`` days):

* the local forecaster as the AutoML job runs it (candidates per series, chosen by backtest, then
  the refit and forecast the batch transform does) — wall time of both, and its backtest metrics;
* SeasonalNaive (season 7) for every series;
* a single AutoETS (season 7) for every series (the issue's "one model for all" reference).

Metrics are AWS's (pooled WAPE, Average wQL over p10/p50/p90). The input is the forecast input of
a run (``--run-dir``: its ``forecast/input.csv``); without one it is built from the simulation
the way the ETL builds it (sold units per day, shelf price, promotion flag; items with sales
history, horizon rows with the known price). Results go to benchmarks/results/.

    .venv/bin/python benchmarks/forecast_models.py [SCENARIO] [--horizon 28] [--run-dir DIR]
        [--skip-autoets]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from emulation.sagemaker.forecaster import (
    SEASON,
    ForecastConfig,
    _backtest_export,
    _quantile_frame,
    classify,
    load_dataset,
    predict,
    train,
)
from harness.scenario import load_scenario
from harness.simulation import simulate
from pipeline.contracts.accuracy import accuracy_metrics, summary_metrics

RESULTS = Path(__file__).with_name("results")
QUANTILES = (0.1, 0.5, 0.9)


def input_from_simulation(name: str, horizon: int) -> pd.DataFrame:
    """AutoML's table built like the ETL: demand, shelf price and promotion per item and day."""
    sim = simulate(name)
    truth = sim.world.truth_daily.to_pandas()
    products = sim.world.products.to_pandas().set_index("product_id")
    truth["date"] = pd.to_datetime(truth["date"])
    end = truth["date"].max()
    alive = truth.groupby("product_id")["date"].max()
    keep = alive.index[alive == end]  # items still sold at the end (the ETL zero-fills others)
    truth = truth[truth["product_id"].isin(keep)]
    future = pd.DataFrame(
        [(p, end + pd.Timedelta(days=d)) for p in keep for d in range(1, horizon + 1)],
        columns=["product_id", "date"],
    ).assign(discount=0.0, sold=np.nan)
    frame = pd.concat([truth[["product_id", "date", "sold", "discount"]], future])
    price = frame["product_id"].map(products["list_price"]) * (1 - frame["discount"])
    return pd.DataFrame(
        {
            "item_id": frame["product_id"],
            "timestamp": frame["date"].dt.strftime("%Y-%m-%d"),
            "demand": frame["sold"].map(lambda v: "" if pd.isna(v) else f"{v:g}"),
            "price": price.round(2).map(lambda v: f"{v:.2f}"),
            "promotion_applied": (frame["discount"] > 0).astype(int).astype(str),
            "category": frame["product_id"].map(products["category"]),
        }
    )


def single_model(dataset, config, model, alias: str) -> tuple[dict, float]:
    """One model for every backtestable series: wall time of backtest + forecast, metrics."""
    from statsforecast import StatsForecast

    kinds = classify(dataset.history, config)
    data = dataset.history[dataset.history["unique_id"].isin(kinds.index[kinds != "short"])]
    data = data[["unique_id", "ds", "y"]]
    offset = pd.tseries.frequencies.to_offset(config.pandas_frequency)
    began = time.perf_counter()
    sf = StatsForecast(models=[model], freq=offset, n_jobs=config.n_jobs)
    cv = sf.cross_validation(df=data, h=config.horizon, n_windows=1, step_size=config.horizon,
                             level=[80])  # fmt: skip
    sf.forecast(df=data, h=config.horizon, level=[80])
    seconds = time.perf_counter() - began
    cv = cv.reset_index(drop=True) if "unique_id" in cv.columns else cv.reset_index()
    q = _quantile_frame(cv, alias, config, dataset.clip_at_zero)
    exported = _backtest_export(pd.concat([cv[["unique_id", "ds", "cutoff", "y"]], q], axis=1),
                                config, offset)  # fmt: skip
    history = dataset.history.rename(
        columns={"unique_id": "item_id", "ds": "timestamp", "y": "target_value"}
    )
    return summary_metrics(accuracy_metrics([exported], QUANTILES, history=history)), seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default="standard")
    parser.add_argument("--horizon", type=int, default=28)
    parser.add_argument("--run-dir", type=Path)
    parser.add_argument("--skip-autoets", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    load_scenario(args.scenario)  # refuse an unknown scenario before any work
    if args.run_dir:
        frame = pd.read_csv(args.run_dir / "forecast" / "input.csv", dtype=str,
                            keep_default_na=False)  # fmt: skip
    else:
        frame = input_from_simulation(args.scenario, args.horizon)
    config = ForecastConfig(frequency="D", horizon=args.horizon, quantiles=QUANTILES)
    began = time.perf_counter()
    dataset = load_dataset(frame, config)
    loaded = time.perf_counter() - began
    result = train(dataset, config)
    trained = time.perf_counter() - began
    forecast = predict(dataset, config, result.chosen)
    total = time.perf_counter() - began
    rows: dict[str, dict] = {
        "local_forecaster": {
            "seconds": round(total, 2),
            "load_s": round(loaded, 2),
            "train_s": round(trained - loaded, 2),
            "predict_s": round(total - trained, 2),
            "metrics": summary_metrics(result.metrics),
            "items_per_model": pd.Series(result.chosen).value_counts().to_dict(),
            "forecast_rows": len(forecast),
        }
    }
    from statsforecast.models import AutoETS, SeasonalNaive

    m = SEASON[config.pandas_frequency]
    metrics, seconds = single_model(dataset, config, SeasonalNaive(season_length=m),
                                    "SeasonalNaive")  # fmt: skip
    rows["seasonal_naive"] = {"seconds": round(seconds, 2), "metrics": metrics}
    if not args.skip_autoets:
        metrics, seconds = single_model(dataset, config, AutoETS(season_length=m), "AutoETS")
        rows["auto_ets"] = {"seconds": round(seconds, 2), "metrics": metrics}
    baseline_wape = rows["seasonal_naive"]["metrics"]["WAPE"]
    for row in rows.values():
        row["wape_ratio_to_seasonal_naive"] = round(row["metrics"]["WAPE"] / baseline_wape, 4)
    report = {
        "benchmark": "forecast_models",
        "scenario": args.scenario,
        "series": int(dataset.history["unique_id"].nunique()),
        "history_rows": len(dataset.history),
        "horizon": args.horizon,
        "quantiles": list(QUANTILES),
        "input": str(args.run_dir) if args.run_dir else "built from the simulation",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "results": rows,
        "goal": {"seconds": 120, "wape_ratio_to_seasonal_naive": 0.85},
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"forecast_models-{args.scenario}.json"
    out.write_text(json.dumps(report, indent=2, sort_keys=True, default=float) + "\n")
    for name, row in rows.items():
        print(f"{name:18s} {row['seconds']:8.1f} s  WAPE {row['metrics']['WAPE']:.4f}  "
              f"avg wQL {row['metrics']['AverageWeightedQuantileLoss']:.4f}  "
              f"ratio {row['wape_ratio_to_seasonal_naive']:.3f}")  # fmt: skip
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
