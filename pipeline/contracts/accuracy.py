"""Forecast accuracy metrics exactly as AWS defines them (Amazon Forecast / SageMaker AutoML).

AWS *pools* every metric over all items and time points of one backtest window and then averages
the windows; common libraries compute per-series metrics and average those, which weights a
slow mover's bad week like a best seller's. Both the emulated forecaster and ``dfp parity`` must
report what AWS would, so the definitions live here, in the contracts both sides may import.

For one window, with ``y`` the actual, ``q_τ`` the τ-quantile forecast and ``ŷ`` the mean forecast:

* ``wQL[τ] = 2·Σ[τ·max(y−q_τ, 0) + (1−τ)·max(q_τ−y, 0)] / Σ|y|``; Average wQL = mean over τ;
* ``WAPE = Σ|y−ŷ| / Σ|y|``; ``RMSE = sqrt(mean (y−ŷ)²)``;
  ``MAPE = mean |(y−ŷ)/y|`` over points with ``y ≠ 0``;
* ``MASE = mean |y−ŷ| / mean |y_t − y_{t−m}|``, the denominator pooled over the training series of
  the items in the window, ``m`` the seasonality of the frequency.

If ``Σ|y|`` is 0 in a window the unweighted loss (the numerator) is reported, for wQL and WAPE
alike. Items whose window contains filled (missing) actuals are left out of that window. Error
metrics are given for the mean forecast and for each quantile (so ``wQL[0.5]`` equals the WAPE of
the ``0.5`` type, as it must).

Frames use the backtest export's columns: ``item_id, timestamp, target_value`` plus one column
per forecast type (``mean``, ``p10``, ``p50``…; see :func:`quantile_column`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

#: Seasonality ``m`` used by MASE for each forecast frequency (AWS: 7 for daily, 52 weekly …).
SEASONALITY = {"D": 7, "W": 52, "M": 12, "3M": 4, "Y": 1, "H": 24}


def _season_of(frequency: str) -> int:
    """MASE's seasonal lag for a frequency of :data:`SEASONALITY` (``1M`` as ``M``). Any other
    frequency needs an explicit ``season_length``: a guessed lag of 1 would be a MASE on another
    scale, wrong without a sign."""
    code = frequency[1:] if len(frequency) == 2 and frequency[0] == "1" else frequency
    if code not in SEASONALITY:
        raise ValueError(
            f"no MASE season known for frequency {frequency!r} ({', '.join(SEASONALITY)}): "
            "pass season_length"
        )
    return SEASONALITY[code]


def quantile_column(quantile: float) -> str:
    """``0.1`` → ``p10``, ``0.025`` → ``p2.5``: the export column of a quantile forecast type."""
    return f"p{round(quantile * 100, 6):g}"


def forecast_type(quantile: float) -> str:
    """``0.1`` → ``"0.1"``: the ``ForecastType`` / ``Quantile`` label AWS reports."""
    return f"{quantile:g}"


def weighted_quantile_loss(actual: np.ndarray, forecast: np.ndarray, quantile: float) -> float:
    """Pooled wQL[τ] of one window (the numerator alone when Σ|y| is 0)."""
    y = np.asarray(actual, dtype=float)
    q = np.asarray(forecast, dtype=float)
    loss = 2.0 * np.sum(quantile * np.maximum(y - q, 0) + (1 - quantile) * np.maximum(q - y, 0))
    scale = np.sum(np.abs(y))
    return float(loss / scale) if scale > 0 else float(loss)


def wape(actual: np.ndarray, forecast: np.ndarray) -> float:
    y = np.asarray(actual, dtype=float)
    error = np.sum(np.abs(y - np.asarray(forecast, dtype=float)))
    scale = np.sum(np.abs(y))
    return float(error / scale) if scale > 0 else float(error)


def rmse(actual: np.ndarray, forecast: np.ndarray) -> float:
    y = np.asarray(actual, dtype=float)
    return float(np.sqrt(np.mean((y - np.asarray(forecast, dtype=float)) ** 2))) if y.size else 0.0


def mape(actual: np.ndarray, forecast: np.ndarray) -> float | None:
    y = np.asarray(actual, dtype=float)
    nonzero = y != 0
    if not nonzero.any():
        return None
    f = np.asarray(forecast, dtype=float)
    return float(np.mean(np.abs((y[nonzero] - f[nonzero]) / y[nonzero])))


def mase_scale(train: pd.DataFrame, season_length: int) -> float | None:
    """Pooled mean |y_t − y_{t−m}| over training series (``item_id, timestamp, target_value``)."""
    ordered = train.sort_values(["item_id", "timestamp"])
    diffs = ordered.groupby("item_id", sort=False)["target_value"].diff(season_length).abs()
    diffs = diffs.dropna()
    if diffs.empty:
        return None
    scale = float(diffs.mean())
    return scale if scale > 0 else None


def mase(actual: np.ndarray, forecast: np.ndarray, scale: float | None) -> float | None:
    if scale is None:
        return None
    y = np.asarray(actual, dtype=float)
    return float(np.mean(np.abs(y - np.asarray(forecast, dtype=float))) / scale)


def _clean(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def window_metrics(
    window: pd.DataFrame,
    quantiles: Sequence[float],
    *,
    train: pd.DataFrame | None = None,
    frequency: str = "D",
    season_length: int | None = None,
) -> dict:
    """One ``TestWindows`` entry's ``Metrics`` for a backtest window's rows.

    ``window`` may carry a boolean ``filled`` column: items with any filled actual are left out.
    ``train`` (``item_id, timestamp, target_value``) is the history before the window, for MASE.
    """
    if "filled" in window.columns:
        dirty = set(window.loc[window["filled"].astype(bool), "item_id"])
        window = window[~window["item_id"].isin(dirty)]
    y = window["target_value"].to_numpy(dtype=float)
    scale = None
    if train is not None:
        kept = train[train["item_id"].isin(set(window["item_id"]))]
        m = season_length or _season_of(frequency)
        scale = mase_scale(kept, m)
    losses = [
        {
            "Quantile": float(q),
            "LossValue": weighted_quantile_loss(y, window[quantile_column(q)].to_numpy(), q),
        }
        for q in quantiles
    ]
    types = (["mean"] if "mean" in window.columns else []) + [forecast_type(q) for q in quantiles]
    errors = []
    for kind in types:
        column = "mean" if kind == "mean" else quantile_column(float(kind))
        f = window[column].to_numpy(dtype=float)
        errors.append(
            {
                "ForecastType": kind,
                "WAPE": wape(y, f),
                "RMSE": rmse(y, f),
                "MASE": _clean(mase(y, f, scale)),
                "MAPE": _clean(mape(y, f)),
            }
        )
    return {
        "RMSE": errors[0]["RMSE"] if errors else None,
        "WeightedQuantileLosses": losses,
        "ErrorMetrics": errors,
        "AverageWeightedQuantileLoss": float(np.mean([loss["LossValue"] for loss in losses])),
    }


def _average(metrics: list[dict]) -> dict:
    """The ``Summary`` window: each metric averaged over the test windows."""

    def mean(values: list[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return float(np.mean(present)) if present else None

    first = metrics[0]
    losses = [
        {
            "Quantile": loss["Quantile"],
            "LossValue": mean([m["WeightedQuantileLosses"][i]["LossValue"] for m in metrics]),
        }
        for i, loss in enumerate(first["WeightedQuantileLosses"])
    ]
    errors = [
        {
            "ForecastType": error["ForecastType"],
            **{
                name: mean([m["ErrorMetrics"][i][name] for m in metrics])
                for name in ("WAPE", "RMSE", "MASE", "MAPE")
            },
        }
        for i, error in enumerate(first["ErrorMetrics"])
    ]
    return {
        "RMSE": errors[0]["RMSE"] if errors else None,
        "WeightedQuantileLosses": losses,
        "ErrorMetrics": errors,
        "AverageWeightedQuantileLoss": mean([m["AverageWeightedQuantileLoss"] for m in metrics]),
    }


def accuracy_metrics(
    windows: Sequence[pd.DataFrame],
    quantiles: Sequence[float],
    *,
    history: pd.DataFrame | None = None,
    frequency: str = "D",
    algorithm: str | None = None,
    season_length: int | None = None,
) -> dict:
    """Metrics of all backtest windows in the ``GetAccuracyMetrics`` response shape.

    ``history`` (``item_id, timestamp, target_value``) is the full target series; the part before
    each window's first timestamp is that window's training data for MASE, whose seasonal lag is
    ``season_length`` (default: the frequency's, :data:`SEASONALITY`).
    """
    if not windows:
        raise ValueError("accuracy_metrics needs at least one backtest window")
    test_windows = []
    per_window = []
    for window in windows:
        start, end = window["timestamp"].min(), window["timestamp"].max()
        train = history[history["timestamp"] < start] if history is not None else None
        metrics = window_metrics(
            window, quantiles, train=train, frequency=frequency, season_length=season_length
        )
        per_window.append(metrics)
        test_windows.append(
            {
                "TestWindowStart": pd.Timestamp(start).isoformat(),
                "TestWindowEnd": pd.Timestamp(end).isoformat(),
                "ItemCount": int(window["item_id"].nunique()),
                "EvaluationType": "COMPUTED",
                "Metrics": metrics,
            }
        )
    summary = {"EvaluationType": "SUMMARY", "Metrics": _average(per_window)}
    result: dict = {"TestWindows": [summary, *test_windows]}
    if algorithm:
        result["AlgorithmArn"] = algorithm
    return {"PredictorEvaluationResults": [result], "IsAutoPredictor": True}


def summary_metrics(response: dict) -> dict:
    """Flatten a ``GetAccuracyMetrics`` response's summary window: the numbers a report shows."""
    windows = response["PredictorEvaluationResults"][0]["TestWindows"]
    metrics = next(w for w in windows if w["EvaluationType"] == "SUMMARY")["Metrics"]
    flat: dict = {"AverageWeightedQuantileLoss": metrics["AverageWeightedQuantileLoss"]}
    for loss in metrics["WeightedQuantileLosses"]:
        flat[f"wQL[{forecast_type(loss['Quantile'])}]"] = loss["LossValue"]
    # The point forecast: the mean where there is one (AWS's definition), else the median.
    by_type = {e["ForecastType"]: e for e in metrics["ErrorMetrics"]}
    point = by_type.get("mean") or by_type.get("0.5") or next(iter(by_type.values()), {})
    for name in ("WAPE", "RMSE", "MASE", "MAPE"):
        flat[name] = point.get(name)
    flat["point_forecast_type"] = point.get("ForecastType")
    return flat
