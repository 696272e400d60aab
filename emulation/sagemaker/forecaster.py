"""The local forecaster behind the AutoML V2 time-series calls: statsforecast, chosen per series.

AutoML trains several candidate algorithms, backtests them and keeps the best; here the candidates
are statsforecast models and the choice is made *per series* by the objective (Average wQL) over
the backtest windows, as an ensemble-per-item would. Series are split first by their demand
pattern: *smooth* series (average demand interval ≤ 1.32) get seasonal candidates, one of which
(a seasonal ARIMA with the related numeric features as regressors) uses price and promotion;
*intermittent* series get Croston-family candidates. Quantiles come from each model's prediction
intervals (native where the model has them, conformal otherwise); a symmetric interval at level
``100·|1−2τ|`` gives the τ and 1−τ quantiles, and the median is the point forecast. Forecasts of a
target that was never negative are clipped at 0.

The data contract is AutoML's single CSV: a header, the item id, timestamp and target columns named
in ``TimeSeriesConfig``, numeric *related* columns (known for the horizon: rows past the last target
value carry them with an empty target), and categorical *item metadata* columns (constant per item).

Not emulated: grouping attributes (dimensions), holiday features, filling configuration other than
"fill missing target with 0", feature specification files, frequencies finer than a day, ensembles
that blend several models of one series, model explainability reports.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipeline.contracts.accuracy import accuracy_metrics, quantile_column

logger = logging.getLogger(__name__)

#: AutoML ``ForecastFrequency`` values the local forecaster supports → pandas frequency.
FREQUENCIES = {"D": "D", "1D": "D", "W": "W-MON", "1W": "W-MON"}
SEASON = {"D": 7, "W-MON": 52}
INTERMITTENT_ADI = 1.32  # Syntetos–Boylan cut-off for the average demand interval


class ForecastInputError(ValueError):
    """The input violates a rule AWS enforces; the message is what the job reports."""


@dataclass(frozen=True)
class ForecastConfig:
    """What ``TimeSeriesForecastingJobConfig`` says, plus the local backtest settings."""

    frequency: str
    horizon: int
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)
    target: str = "demand"
    timestamp: str = "timestamp"
    item_id: str = "item_id"
    backtest_windows: int = 1
    n_jobs: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))

    @property
    def pandas_frequency(self) -> str:
        return FREQUENCIES[self.frequency]


@dataclass
class Dataset:
    """The validated input: target history, future related values, item metadata."""

    history: pd.DataFrame  # unique_id, ds, y, <related…>
    future: pd.DataFrame  # unique_id, ds, <related…> for the horizon
    related: list[str]
    metadata: pd.DataFrame  # unique_id, <categorical…>
    clip_at_zero: bool


# ---------------------------------------------------------------------------------- input
def quantile_label(q: float) -> str:
    """AutoML's ``ForecastQuantiles`` spelling: ``p10``."""
    return quantile_column(q)


def parse_quantiles(labels: list[str] | None) -> tuple[float, ...]:
    if not labels:
        return (0.1, 0.5, 0.9)
    out = []
    for label in labels:
        if label == "mean":
            continue
        try:
            value = float(label.lstrip("p")) / 100
        except ValueError:
            raise ForecastInputError(f"ForecastQuantiles value {label!r} is not pNN") from None
        if not 0.01 <= value <= 0.99:
            raise ForecastInputError(f"ForecastQuantiles value {label!r} is outside p1-p99")
        out.append(value)
    if len(out) > 5:
        raise ForecastInputError("ForecastQuantiles allows at most 5 values")
    return tuple(sorted(set(out)))


def load_dataset(frame: pd.DataFrame, config: ForecastConfig) -> Dataset:
    """Validate AutoML's CSV (as strings) and split it into history, future and metadata."""
    key, ts, target = config.item_id, config.timestamp, config.target
    missing = [c for c in (key, ts, target) if c not in frame.columns]
    if missing:
        raise ForecastInputError(
            f"ClientError: the input has no column {missing[0]!r} named in TimeSeriesConfig "
            f"(columns: {', '.join(frame.columns)})"
        )
    if frame.empty:
        raise ForecastInputError("ClientError: the input dataset has no rows")
    frame = frame.copy()
    stamps = pd.to_datetime(frame[ts], format="%Y-%m-%d", errors="coerce")
    if stamps.isna().any():
        bad = frame.loc[stamps.isna(), ts].iloc[0]
        raise ForecastInputError(
            f"ClientError: column {ts!r} has a value {bad!r} that is not a yyyy-MM-dd timestamp"
        )
    frame[ts] = stamps
    values = pd.to_numeric(frame[target].replace("", np.nan), errors="coerce")
    bad_target = values.isna() & frame[target].notna() & (frame[target] != "")
    if bad_target.any():
        raise ForecastInputError(
            f"ClientError: target column {target!r} has a non-numeric value "
            f"{frame.loc[bad_target, target].iloc[0]!r}"
        )
    frame[target] = values
    others = [c for c in frame.columns if c not in (key, ts, target)]
    related, categorical = [], []
    for column in others:
        numeric = pd.to_numeric(frame[column].replace("", np.nan), errors="coerce")
        non_empty = frame[column].notna() & (frame[column] != "")
        if (numeric.notna() == non_empty).all():
            frame[column] = numeric
            related.append(column)
        else:
            categorical.append(column)

    known = frame[frame[target].notna()]
    if known.empty:
        raise ForecastInputError(f"ClientError: target column {target!r} has no values")
    last = known.groupby(key)[ts].max()
    end = last.max()
    unknown = ~frame[key].isin(last.index)
    if unknown.any():  # no history at all: nothing to learn from (AWS skips such items too)
        logger.info("skipping %d items without target values", frame.loc[unknown, key].nunique())
        frame = frame[~unknown]
    frame["_future"] = frame[ts] > frame[key].map(last)
    history = frame[~frame["_future"]]
    future = frame[frame["_future"] & (frame[ts] > end)]

    offset = pd.tseries.frequencies.to_offset(config.pandas_frequency)
    span = len(pd.date_range(known[ts].min(), end, freq=offset))
    if config.horizon > min(500, span // 4):
        raise ForecastInputError(
            f"ClientError: ForecastHorizon {config.horizon} is more than a quarter of the "
            f"target time series length ({span} periods at frequency {config.frequency}); "
            f"the largest allowed is {min(500, span // 4)}"
        )
    wanted = pd.date_range(end + offset, periods=config.horizon, freq=offset)
    items = sorted(known[key].unique())
    for column in related:
        have = future.dropna(subset=[column]).groupby(key)[ts].apply(set)
        for item in items:
            if not set(wanted) <= have.get(item, set()):
                raise ForecastInputError(
                    f"ClientError: related time series {column!r} does not cover the forecast "
                    f"horizon for item {item!r}: it needs values up to {wanted[-1].date()}"
                )
        if history[column].isna().any():
            row = history[history[column].isna()].iloc[0]
            raise ForecastInputError(
                f"ClientError: related time series {column!r} has a missing value for item "
                f"{row[key]!r} at {row[ts].date()}"
            )
    metadata = frame.groupby(key)[categorical].first().reset_index() if categorical else None
    for column in categorical:
        empty = frame[key][(frame[column].isna()) | (frame[column] == "")]
        if not empty.empty:
            raise ForecastInputError(
                f"ClientError: item {empty.iloc[0]!r} has no item metadata value for "
                f"{column!r}; every item of the target time series needs metadata"
            )

    hist = history[[key, ts, target, *related]].rename(
        columns={key: "unique_id", ts: "ds", target: "y"}
    )
    hist = _zero_fill(hist, offset, related, end)
    fut = future[[key, ts, *related]].rename(columns={key: "unique_id", ts: "ds"})
    fut = fut[fut["ds"].isin(wanted)].sort_values(["unique_id", "ds"], ignore_index=True)
    meta = (
        metadata.rename(columns={key: "unique_id"})
        if metadata is not None
        else pd.DataFrame({"unique_id": items})
    )
    return Dataset(
        history=hist,
        future=fut,
        related=related,
        metadata=meta,
        clip_at_zero=bool((hist["y"] >= 0).all()),
    )


def _zero_fill(
    history: pd.DataFrame, offset: Any, related: list[str], end: pd.Timestamp
) -> pd.DataFrame:
    """Missing target values are 0 (AWS's default middle and back filling), from each item's
    first period to the dataset's last; related values carry forward."""
    parts = []
    for item, rows in history.groupby("unique_id", sort=True):
        rows = rows.sort_values("ds").set_index("ds")
        full = pd.date_range(rows.index.min(), end, freq=offset)
        rows = rows.reindex(full)
        rows["unique_id"] = item
        rows["y"] = rows["y"].fillna(0.0)
        for column in related:
            rows[column] = rows[column].ffill().bfill()
        parts.append(rows.rename_axis("ds").reset_index())
    out = pd.concat(parts, ignore_index=True)
    return out[["unique_id", "ds", "y", *related]]


# ------------------------------------------------------------------------------ candidates
def _levels(quantiles: tuple[float, ...]) -> list[int]:
    return sorted({round(abs(1 - 2 * q) * 100) for q in quantiles if abs(q - 0.5) > 1e-9})


def candidates(kind: str, config: ForecastConfig, related: list[str]) -> list[Any]:
    """The statsforecast candidates for each kind of series (see :func:`classify`)."""
    from statsforecast.models import (
        ADIDA,
        ARIMA,
        IMAPA,
        CrostonOptimized,
        HistoricAverage,
        SeasonalExponentialSmoothingOptimized,
        SeasonalNaive,
    )
    from statsforecast.utils import ConformalIntervals

    m = SEASON[config.pandas_frequency]
    conformal = ConformalIntervals(h=config.horizon, n_windows=2)
    if kind == "short":  # native intervals: too short for conformal ones
        return [HistoricAverage()]
    if kind == "intermittent":
        return [
            CrostonOptimized(prediction_intervals=conformal),
            ADIDA(prediction_intervals=conformal),
            IMAPA(prediction_intervals=conformal),
        ]
    models: list[Any] = [
        SeasonalNaive(season_length=m),
        SeasonalExponentialSmoothingOptimized(
            season_length=m, prediction_intervals=conformal, alias="SeasonalESOptimized"
        ),
    ]
    if related:  # the one family here that uses the related series as regressors
        models.append(
            ARIMA(order=(1, 0, 0), season_length=m, seasonal_order=(0, 1, 1), alias="ARIMAX")
        )
    return models


def min_backtest_length(config: ForecastConfig) -> int:
    """Periods a series needs for its backtest windows (each fit also holds out two conformal
    windows and needs two seasons)."""
    return config.horizon * (config.backtest_windows + 2) + 2 * SEASON[config.pandas_frequency]


def classify(history: pd.DataFrame, config: ForecastConfig) -> pd.Series:
    """Per item: ``short`` (too little history to backtest), else ``smooth`` or ``intermittent``
    by the average interval between nonzero demand."""

    def kind(y: pd.Series) -> str:
        if len(y) < min_backtest_length(config):
            return "short"
        nonzero = int((y > 0).sum())
        adi = len(y) / nonzero if nonzero else float("inf")
        return "intermittent" if adi > INTERMITTENT_ADI else "smooth"

    return history.groupby("unique_id")["y"].apply(kind)


# Worker processes for n_jobs > 1 come from a fork server, never from a fork of this process:
# the forecaster runs inside the world's server, among moto's, Spark's and logging's threads, and
# a fork copies whichever locks those threads hold at that instant; a worker then waits forever
# on one (seen: a cross-validation pool hanging a run). A fork server is a clean, single-threaded
# process started once, with statsforecast imported in it.
_POOLS: Any = None


def _pool_context() -> Any:
    global _POOLS
    if _POOLS is None:
        import multiprocessing

        _POOLS = multiprocessing.get_context("forkserver")
        _POOLS.set_forkserver_preload(["statsforecast.core", "statsforecast.models"])
    return _POOLS


def _statsforecast(models: list[Any], freq: Any, n_jobs: int) -> Any:
    """A ``StatsForecast`` whose parallel work runs in fork-server worker processes."""
    from statsforecast import StatsForecast

    class _Forecaster(StatsForecast):
        def _get_pool(self) -> tuple[Any, dict[str, Any]]:
            return _pool_context().Pool, {}

    return _Forecaster(models=models, freq=freq, n_jobs=n_jobs)


# ---------------------------------------------------------------------------- train/predict
def _quiet(function: Callable) -> Callable:
    """statsforecast warns per series (e.g. collinear price and promotion in a regression);
    the job's result already says how each series did, so the warnings are noise here."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        saved = os.environ.get("PYTHONWARNINGS")
        # Worker processes of n_jobs > 1 take their filters from the environment.
        os.environ["PYTHONWARNINGS"] = "ignore:::statsforecast.arima"
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", module=r"statsforecast.*")
                return function(*args, **kwargs)
        finally:
            if saved is None:
                os.environ.pop("PYTHONWARNINGS", None)
            else:
                os.environ["PYTHONWARNINGS"] = saved

    return wrapper


@dataclass
class TrainingResult:
    """What a training job leaves: per-item choice, backtest rows, metrics in AWS's shape."""

    chosen: dict[str, str]  # item → model alias
    backtest: pd.DataFrame  # backtest export columns
    metrics: dict  # GetAccuracyMetrics shape
    candidate_metrics: dict[str, dict]  # model alias → metrics over the items it was tried on
    baseline: dict | None = None  # SeasonalNaive on every backtested item, same windows
    seconds: float = 0.0


def _quantile_frame(
    raw: pd.DataFrame, alias: str, config: ForecastConfig, clip: bool
) -> pd.DataFrame:
    """statsforecast's ``alias``, ``alias-lo-L``, ``alias-hi-L`` columns → ``mean``, ``p10``…"""
    mean = raw[alias].astype(float)
    out = pd.DataFrame({"mean": mean.to_numpy()}, index=raw.index)
    for q in config.quantiles:
        if abs(q - 0.5) < 1e-9:
            values = raw[alias]
        else:
            level = round(abs(1 - 2 * q) * 100)
            side = "lo" if q < 0.5 else "hi"
            values = raw[f"{alias}-{side}-{level}"]
        # A one-point series has no spread: its interval is the point itself.
        out[quantile_column(q)] = values.astype(float).fillna(mean).to_numpy()
    if clip:
        out = out.clip(lower=0.0)
    columns = [quantile_column(q) for q in config.quantiles]
    out[columns] = np.sort(out[columns].to_numpy(), axis=1)  # quantiles never cross
    return out


@_quiet
def train(dataset: Dataset, config: ForecastConfig, progress: Callable[[str], None] | None = None
          ) -> TrainingResult:  # fmt: skip
    """Backtest every candidate, choose per item by Average wQL, compute AWS metrics."""

    started = time.perf_counter()
    levels = _levels(config.quantiles)
    related = dataset.related
    offset = pd.tseries.frequencies.to_offset(config.pandas_frequency)
    rows = []

    def backtest(kind: str, history: pd.DataFrame, models: list[Any]) -> pd.DataFrame:
        if progress:
            progress(f"backtesting {history['unique_id'].nunique()} {kind} series")
        sf = _statsforecast(models, offset, config.n_jobs)
        cv = sf.cross_validation(
            df=history if kind == "smooth" else history[["unique_id", "ds", "y"]],
            h=config.horizon,
            n_windows=config.backtest_windows,
            step_size=config.horizon,
            level=levels or None,
        )
        return cv.reset_index(drop=True) if "unique_id" in cv.columns else cv.reset_index()

    kinds = classify(dataset.history, config)
    frames = [
        backtest(kind, dataset.history[dataset.history["unique_id"].isin(ids)],
                 candidates(kind, config, related))
        for kind in ("smooth", "intermittent")  # "short" series are not backtested
        if len(ids := kinds.index[kinds == kind])
    ]  # fmt: skip
    for cv in frames:
        aliases = [
            c for c in cv.columns
            if c not in ("unique_id", "ds", "cutoff", "y") and "-lo-" not in c and "-hi-" not in c
        ]  # fmt: skip
        for alias in aliases:
            q = _quantile_frame(cv, alias, config, dataset.clip_at_zero)
            part = pd.concat([cv[["unique_id", "ds", "cutoff", "y"]], q], axis=1)
            part["model"] = alias
            rows.append(part)
    if not rows:
        raise ForecastInputError(
            f"ClientError: no item has the {min_backtest_length(config)} periods of history a "
            f"backtest of horizon {config.horizon} needs"
        )
    scored = pd.concat(rows, ignore_index=True)
    scored["loss"] = _pinball(scored, config.quantiles)
    per_item = scored.groupby(["unique_id", "model"])["loss"].sum().reset_index()
    # Ties (e.g. all-zero series) go to the simpler model: candidates are listed simplest first.
    order = {alias: i for i, alias in enumerate(scored["model"].drop_duplicates())}
    per_item["rank"] = per_item["model"].map(order)
    best = per_item.sort_values(["unique_id", "loss", "rank"]).drop_duplicates("unique_id")
    chosen = dict(zip(best["unique_id"], best["model"], strict=True))
    # Items too short to backtest get the simple average and stay out of the metrics, as items
    # without enough data stay out of AWS's backtest windows.
    chosen.update({item: "HistoricAverage" for item in kinds.index[kinds == "short"]})
    chosen = dict(sorted(chosen.items()))

    picked = scored[scored["model"] == scored["unique_id"].map(chosen)]
    backtest_rows = _backtest_export(picked, config, offset)
    history = dataset.history.rename(
        columns={"unique_id": "item_id", "ds": "timestamp", "y": "target_value"}
    )
    windows = [w for _, w in backtest_rows.groupby("backtestwindow_start_time", sort=True)]
    metrics = accuracy_metrics(
        windows, config.quantiles, history=history, frequency=_aws_frequency(config)
    )
    candidate_metrics = {}
    for alias, part in scored.groupby("model"):
        exported = _backtest_export(part, config, offset)
        candidate_metrics[alias] = accuracy_metrics(
            [w for _, w in exported.groupby("backtestwindow_start_time", sort=True)],
            config.quantiles,
            history=history,
            frequency=_aws_frequency(config),
        )
    baseline = _baseline(dataset, config, kinds, history)
    return TrainingResult(
        chosen=chosen,
        backtest=backtest_rows,
        metrics=metrics,
        candidate_metrics=candidate_metrics,
        baseline=baseline,
        seconds=time.perf_counter() - started,
    )


def _baseline(
    dataset: Dataset, config: ForecastConfig, kinds: pd.Series, history: pd.DataFrame
) -> dict:
    """SeasonalNaive over the same items and windows: what "better than naive" is measured by."""
    from statsforecast.models import SeasonalNaive

    offset = pd.tseries.frequencies.to_offset(config.pandas_frequency)
    ids = kinds.index[kinds != "short"]
    data = dataset.history[dataset.history["unique_id"].isin(ids)][["unique_id", "ds", "y"]]
    sf = _statsforecast([SeasonalNaive(season_length=SEASON[config.pandas_frequency])], offset, 1)
    cv = sf.cross_validation(
        df=data,
        h=config.horizon,
        n_windows=config.backtest_windows,
        step_size=config.horizon,
        level=_levels(config.quantiles) or None,
    )
    cv = cv.reset_index(drop=True) if "unique_id" in cv.columns else cv.reset_index()
    q = _quantile_frame(cv, "SeasonalNaive", config, dataset.clip_at_zero)
    part = pd.concat([cv[["unique_id", "ds", "cutoff", "y"]], q], axis=1)
    exported = _backtest_export(part, config, offset)
    return accuracy_metrics(
        [w for _, w in exported.groupby("backtestwindow_start_time", sort=True)],
        config.quantiles,
        history=history,
        frequency=_aws_frequency(config),
        algorithm="SeasonalNaive",
    )


def _aws_frequency(config: ForecastConfig) -> str:
    return "W" if config.pandas_frequency.startswith("W") else "D"


def _pinball(frame: pd.DataFrame, quantiles: tuple[float, ...]) -> pd.Series:
    y = frame["y"].to_numpy(dtype=float)
    total = np.zeros(len(frame))
    for q in quantiles:
        f = frame[quantile_column(q)].to_numpy(dtype=float)
        total += q * np.maximum(y - f, 0) + (1 - q) * np.maximum(f - y, 0)
    return pd.Series(total / max(1, len(quantiles)), index=frame.index)


def _backtest_export(picked: pd.DataFrame, config: ForecastConfig, offset: Any) -> pd.DataFrame:
    """Rows of the backtest export's ``forecasted-values`` (one window per cutoff)."""
    start = picked["cutoff"] + offset
    end = picked["cutoff"] + offset * config.horizon
    out = pd.DataFrame(
        {
            "item_id": picked["unique_id"].to_numpy(),
            "timestamp": picked["ds"].to_numpy(),
            "target_value": picked["y"].to_numpy(dtype=float),
            "backtestwindow_start_time": start.to_numpy(),
            "backtestwindow_end_time": end.to_numpy(),
        }
    )
    for column in ["mean", *[quantile_column(q) for q in config.quantiles]]:
        out[column] = picked[column].to_numpy(dtype=float)
    return out.sort_values(["backtestwindow_start_time", "item_id", "timestamp"], ignore_index=True)


@_quiet
def predict(dataset: Dataset, config: ForecastConfig, chosen: dict[str, str]) -> pd.DataFrame:
    """Refit each item's chosen model on its whole history; forecast the horizon.

    Items the model has not seen get the first candidate of their kind. Returns
    ``item_id, timestamp, <quantile columns…>, mean`` (the batch transform's rows).
    """

    levels = _levels(config.quantiles)
    offset = pd.tseries.frequencies.to_offset(config.pandas_frequency)
    related = dataset.related
    kinds = classify(dataset.history, config)
    models = {
        model.alias: model
        for kind in ("smooth", "intermittent", "short")
        for model in candidates(kind, config, related)
    }
    first = {kind: candidates(kind, config, related)[0].alias for kind in set(kinds)}
    plan = {
        item: chosen[item] if chosen.get(item) in models else first[kind]
        for item, kind in kinds.items()
    }
    outputs = []
    for alias, model in models.items():
        ids = [item for item, picked in plan.items() if picked == alias]
        if not ids:
            continue
        part = dataset.history[dataset.history["unique_id"].isin(ids)]
        uses_x = bool(related) and alias == "ARIMAX"
        sf = _statsforecast([model], offset, config.n_jobs)
        raw = sf.forecast(
            df=part if uses_x else part[["unique_id", "ds", "y"]],
            h=config.horizon,
            X_df=dataset.future[dataset.future["unique_id"].isin(ids)] if uses_x else None,
            level=levels or None,
        )
        raw = raw.reset_index(drop=True) if "unique_id" in raw.columns else raw.reset_index()
        q = _quantile_frame(raw, alias, config, dataset.clip_at_zero)
        outputs.append(pd.concat([raw[["unique_id", "ds"]], q], axis=1))
    out = pd.concat(outputs, ignore_index=True).rename(
        columns={"unique_id": "item_id", "ds": "timestamp"}
    )
    columns = ["item_id", "timestamp", *[quantile_column(q) for q in config.quantiles], "mean"]
    return out[columns].sort_values(["item_id", "timestamp"], ignore_index=True)


def model_document(config: ForecastConfig, result: TrainingResult) -> str:
    """The model artifact: the configuration and each item's chosen candidate (JSON)."""
    return json.dumps(
        {
            "format": "dfp-local-forecaster/1",
            "frequency": config.frequency,
            "horizon": config.horizon,
            "quantiles": list(config.quantiles),
            "target": config.target,
            "timestamp": config.timestamp,
            "item_id": config.item_id,
            "chosen": result.chosen,
        },
        sort_keys=True,
        indent=1,
    )
