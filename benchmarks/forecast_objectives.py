"""Benchmark: what each ``AutoMLJobObjective`` buys on the metric it names, held out.

The same job trained with each time-series objective AWS offers (``AverageWeightedQuantileLoss``,
the default, ``MASE``, ``WAPE``, ``RMSE``, ``MAPE``) on real data from
``benchmarks/forecast_models.py`` (the last horizon of each series cut off before training, never
seen by the forecaster), and every metric scored on that horizon. The objective changes what the
ensemble learns to lower (``training.row_losses``), not the candidates; the question is whether a
job asked to lower a metric does so on data it has not seen, against the default objective.

Per dataset and objective: WAPE, RMSE and MAPE pooled over every point of the horizon (the
contract's own functions, ``pipeline.contracts.accuracy``), MASE (per series, averaged) and
Average wQL, all of the ``mean`` forecast (AWS scores the mean where there is one; wQL scores the
quantiles), the ensemble method the job chose and its seconds. ``own_metric`` sets each
objective's own metric beside the default objective's value (the relative change; negative is
better). One origin: a window of a few dozen series, so a change of a few per cent is within
chance (``forecast_models.py``'s paired intervals show how wide).

    .venv/bin/python benchmarks/forecast_objectives.py [DATASET ...]   (default: the five below)

Results: benchmarks/results/forecast_objectives.json (datasets not run keep their last results).
"""

from __future__ import annotations

import argparse
import json
import warnings

import forecast_models as fm
import pandas as pd
from _results import RESULTS, save

from emulation.sagemaker.forecaster import ForecastConfig
from emulation.sagemaker.forecaster.training import DEFAULT_OBJECTIVE, OBJECTIVES
from pipeline.contracts.accuracy import mape, rmse, wape

#: Real sets of different kinds: quarterly tourism, single textbook series of many scales, counts
#: (homes sold), a shop's intermittent daily sales, weekly rides.
DATASETS = ("tourism-quarterly", "textbook-monthly", "txhousing-monthly", "pizza-daily",
            "chicago-weekly")  # fmt: skip
METRIC_OF = {"AverageWeightedQuantileLoss": "wQL", "MASE": "MASE", "WAPE": "WAPE",
             "RMSE": "RMSE", "MAPE": "MAPE"}  # fmt: skip


def score(forecast: pd.DataFrame, test: pd.DataFrame, history: pd.DataFrame,
          season: int) -> dict[str, float]:  # fmt: skip
    """Every metric of ``forecast`` (``unique_id, ds, p…, mean``) on the held-out ``test``."""
    joined = forecast.merge(test, on=["unique_id", "ds"], how="inner")
    y, f = joined["y"].to_numpy(dtype=float), joined["mean"].to_numpy(dtype=float)
    pooled = fm.metrics_of(fm.per_series(forecast, test, history, season, point="mean"))
    return {"WAPE": wape(y, f), "RMSE": rmse(y, f), "MAPE": mape(y, f),
            "MASE": float(pooled["MASE"]), "wQL": float(pooled["wQL"]),
            "points": len(joined)}  # fmt: skip


def own_metric(objectives: dict[str, dict]) -> dict[str, dict]:
    """Each objective's own metric against the default objective's value on it."""
    out = {}
    for objective, metric in METRIC_OF.items():
        if objective == DEFAULT_OBJECTIVE or objective not in objectives:
            continue
        base = objectives[DEFAULT_OBJECTIVE][metric]
        value = objectives[objective][metric]
        change = (value - base) / base if base and value is not None else None
        out[objective] = {"metric": metric, "default_objective": base, "this_objective": value,
                          "change": None if change is None else round(change, 4)}  # fmt: skip
    return out


def run(name: str) -> dict:
    frame, frequency, horizon = fm.DATASETS[name]()
    plain, test = fm.split(frame, horizon)
    csv = fm.automl_csv(plain)
    history = plain[["unique_id", "ds", "y"]].dropna()
    objectives = {}
    for objective in OBJECTIVES:
        config = ForecastConfig(frequency=frequency, horizon=horizon, quantiles=fm.QUANTILES,
                                objective=objective)  # fmt: skip
        forecast, result, _, seconds = fm.local_forecast(csv, config)
        row = score(forecast, test, history, config.freq.mase_season)
        objectives[objective] = {**{k: v if v is None else round(v, 6) for k, v in row.items()},
                                 "ensemble": result.document["ensemble"]["method"],
                                 "seconds": round(seconds, 1)}  # fmt: skip
        print(f"{name} {objective}: {objectives[objective]}", flush=True)
    series = int(history["unique_id"].nunique())
    return {"frequency": frequency, "horizon": horizon, "series": series,
            "objectives": objectives, "own_metric": own_metric(objectives)}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "datasets",
        nargs="*",
        help=f"any of {', '.join(fm.DATASETS)} (default: {', '.join(DATASETS)})",
    )
    args = parser.parse_args()
    unknown = [name for name in args.datasets if name not in fm.DATASETS]
    if unknown:
        parser.error(f"unknown dataset {unknown[0]!r}; choose from {', '.join(fm.DATASETS)}")
    warnings.filterwarnings("ignore")
    previous = RESULTS / "forecast_objectives.json"
    kept = json.loads(previous.read_text()).get("datasets", {}) if previous.exists() else {}
    report = {"benchmark": "forecast_objectives", "held_out": "the last horizon of each series",
              "datasets": kept}  # fmt: skip
    for name in args.datasets or DATASETS:  # saved after each dataset: a long run keeps its part
        report["datasets"][name] = run(name)
        report["tally"] = tally(report["datasets"])
        save("forecast_objectives", report)
    return 0


def tally(datasets: dict[str, dict]) -> dict[str, dict[str, int]]:
    """Per objective, on how many datasets its own metric came out lower, equal or higher
    than with the default objective."""
    out: dict[str, dict[str, int]] = {}
    for entry in datasets.values():
        for objective, row in entry["own_metric"].items():
            counts = out.setdefault(objective, {"lower": 0, "equal": 0, "higher": 0})
            change = row["change"] or 0.0
            counts["lower" if change < 0 else "higher" if change > 0 else "equal"] += 1
    return out


if __name__ == "__main__":
    raise SystemExit(main())
