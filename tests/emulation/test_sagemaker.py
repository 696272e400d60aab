"""The local forecaster behind SageMaker AutoML V2: input rules, model choice, AWS outputs."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import threading
import time
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from botocore.exceptions import ClientError

from emulation import World
from emulation.sagemaker.forecaster import (
    AlgorithmError,
    ForecastConfig,
    ForecastInputError,
    FrequencyError,
    TrainingResult,
    check_algorithms,
    check_completion_criteria,
    check_objective,
    global_model,
    load_dataset,
    models,
    parse_frequency,
    parse_quantiles,
    predict,
    train,
    training,
)
from emulation.sagemaker.forecaster.dataset import check_transformations
from emulation.sagemaker.forecaster.models import (
    FOURIER_PAIRS,
    alias,
    candidates,
    fourier_terms,
)
from emulation.sagemaker.forecaster.training import (
    ENSEMBLES,
    MAX_SELECTION_WINDOWS,
    MIN_SELECTION_WINDOWS,
    TOP_K,
    WEIGHT_WINDOWS,
    WINDOW_BUDGET,
    apply_quantiles,
    backtest_batches,
    calibrate,
    classify,
    fit_dispersion,
    is_count_data,
    learn_width,
    lift,
    plan,
    row_losses,
    shrink,
    size_at,
    stacked_weights,
    weights_from,
    with_holidays,
)
from tests.conftest import hand_made_request

HORIZON = 7


def automl_frame(
    items: int = 4, days: int = 120, horizon: int = HORIZON, seed: int = 3, sparse: int = 1
) -> pd.DataFrame:
    """AutoML's single CSV (as strings): weekly pattern, promotions lift demand; future rows."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2025-01-01", periods=days + horizon, freq="D")
    rows = []
    for i in range(items):
        level = 2.0 if i < sparse else 20.0 + 5 * i
        weekly = 1 + 0.4 * np.sin(2 * np.pi * np.arange(len(dates)) / 7)
        promo = (np.arange(len(dates)) % 30 < 5).astype(int)
        mean = level * weekly * (1 + 0.8 * promo) * (0.1 if i < sparse else 1)
        demand = rng.poisson(mean).astype(float)
        for t, day in enumerate(dates):
            rows.append(
                {
                    "item_id": f"I{i}",
                    "timestamp": day.strftime("%Y-%m-%d"),
                    "demand": "" if t >= days else f"{demand[t]:g}",
                    "price": f"{10 * (1 - 0.2 * promo[t]):.2f}",
                    "promotion_applied": str(promo[t]),
                    "category": f"C{i % 2}",
                }
            )
    return pd.DataFrame(rows)


CONFIG = ForecastConfig(frequency="D", horizon=HORIZON, n_jobs=1)
INTERMITTENT = {"CrostonOptimized", "ADIDA", "IMAPA", "SeasonalNaive"}


def series_frame(frequency: str, periods: int, items: int = 3, start: str = "2000-01-01",
                 seed: int = 5, season: int = 1) -> pd.DataFrame:  # fmt: skip
    """Trending (seasonal when ``season`` > 1) positive series on ``frequency``'s labels."""
    rng = np.random.default_rng(seed)
    stamps = pd.date_range(start, periods=periods, freq=frequency)
    rows = []
    for i in range(items):
        t = np.arange(periods)
        level = 100 + 10 * i + 0.8 * t + (8 * np.sin(2 * np.pi * t / season) if season > 1 else 0)
        y = level + rng.normal(0, 2, periods)
        fmt = "%Y-%m-%d %H:%M:%S" if stamps[0].hour or stamps[1].hour else "%Y-%m-%d"
        rows += [{"item_id": f"S{i}", "timestamp": d.strftime(fmt), "demand": f"{v:.3f}"}
                 for d, v in zip(stamps, y, strict=True)]  # fmt: skip
    return pd.DataFrame(rows)


def test_training_learns_per_item_ensembles_and_reports_held_out_and_selection_metrics() -> None:
    dataset = load_dataset(automl_frame(), CONFIG)
    assert dataset.related == ["price", "promotion_applied"]
    result = train(dataset, CONFIG)
    assert set(result.weights) == {"I0", "I1", "I2", "I3"}
    for weights in result.weights.values():
        # its own best three and its peers' best three
        assert sum(weights.values()) == pytest.approx(1.0) and 1 <= len(weights) <= 2 * TOP_K
    assert result.document["kinds"] == {"I0": "intermittent", "I1": "smooth", "I2": "smooth",
                                        "I3": "smooth"}  # fmt: skip
    assert set(result.weights["I0"]) <= INTERMITTENT | {"ARIMAX"}  # intermittent candidates
    assert {"AutoETS", "AutoTheta", "AutoARIMA", "ARIMAX"} & set(result.weights["I2"])
    windows = result.metrics["PredictorEvaluationResults"][0]["TestWindows"]
    assert windows[0]["EvaluationType"] == "SUMMARY" and len(windows) == 2  # 1 held-out window
    assert {"mean", "0.1", "0.5", "0.9"} == {
        e["ForecastType"] for e in windows[0]["Metrics"]["ErrorMetrics"]
    }
    selection = result.selection_metrics["PredictorEvaluationResults"][0]["TestWindows"]
    # four small series afford the most selection windows: summary + 4, before the held-out one
    assert result.document["selection_windows"] == MAX_SELECTION_WINDOWS
    assert len(selection) == 1 + MAX_SELECTION_WINDOWS
    assert max(w["TestWindowEnd"] for w in selection[1:]) < windows[1]["TestWindowStart"]
    assert set(result.backtest.columns) >= {
        "item_id", "timestamp", "target_value", "backtestwindow_start_time",
        "backtestwindow_end_time", "p10", "p50", "p90", "mean",
    }  # fmt: skip
    assert len(result.backtest) == 4 * HORIZON
    assert result.baseline is not None
    # the way of combining is chosen like a candidate, on the latest selection window
    ensemble = result.document["ensemble"]
    assert set(ensemble["selection_errors"]) == set(ENSEMBLES)
    assert ensemble["method"] == min(ensemble["selection_errors"],
                                     key=ensemble["selection_errors"].get)  # fmt: skip


def test_stacking_finds_the_combination_that_made_the_target() -> None:
    rng = np.random.default_rng(7)
    a, b, noise = rng.normal(50, 10, 400), rng.normal(20, 5, 400), rng.normal(0, 30, 400)
    rows = pd.DataFrame({"unique_id": np.repeat(["X", "Y"], 200), "y": 0.7 * a + 0.3 * b,
                         "A": a, "B": b, "C": 0.7 * a + 0.3 * b + noise})  # fmt: skip
    weights = stacked_weights(rows, ["A", "B", "C"], {"X": 1.0, "Y": 2.0})
    assert weights["A"] == pytest.approx(0.7, abs=1e-6)
    assert weights["B"] == pytest.approx(0.3, abs=1e-6)
    assert "C" not in weights  # a noisy copy earns nothing


@pytest.mark.parametrize("objective", ["AverageWeightedQuantileLoss", "WAPE", "MAPE"])
@pytest.mark.parametrize("unit", [1e-9, 1e15])
def test_stacking_finds_the_same_combination_in_any_unit(objective: str, unit: float) -> None:
    """HiGHS refuses a coefficient of 10¹⁵ or more: the programme is solved in each item's
    scale, so series of that size are stacked as any others (they got equal weights)."""
    rng = np.random.default_rng(7)
    a, b, noise = rng.normal(50, 10, 400), rng.normal(20, 5, 400), rng.normal(0, 30, 400)
    rows = pd.DataFrame({"unique_id": np.repeat(["X", "Y"], 200), "y": 0.7 * a + 0.3 * b,
                         "A": a, "B": b, "C": 0.7 * a + 0.3 * b + noise})  # fmt: skip
    values = ["y", "A", "B", "C"]
    scaled = rows.assign(**{c: rows[c] * unit for c in values})
    scales = {"X": 4.0 * unit, "Y": 9.0 * unit}
    weights = stacked_weights(scaled, ["A", "B", "C"], scales, objective)
    assert weights["A"] == pytest.approx(0.7, abs=1e-6)
    assert weights["B"] == pytest.approx(0.3, abs=1e-6)
    assert "C" not in weights


def test_an_items_weights_lean_on_its_peers_the_less_evidence_it_has() -> None:
    own, peers = {"AutoETS": 1.0}, {"AutoTheta": 0.75, "AutoETS": 0.25}
    little = shrink(own, peers, points=7, prior_points=70)
    much = shrink(own, peers, points=700, prior_points=70)
    for blend in (little, much):
        assert sum(blend.values()) == pytest.approx(1.0)
    assert little["AutoTheta"] > 0.6 > much["AutoTheta"] > 0.0
    assert much["AutoETS"] > little["AutoETS"]
    assert shrink(own, peers, points=0, prior_points=0) == peers


def test_held_out_forecasts_do_not_depend_on_the_held_out_actuals() -> None:
    """Honest backtests: what is reported on the held-out window was learned without it."""
    frame = automl_frame()
    result = train(load_dataset(frame, CONFIG), CONFIG)
    held = frame["demand"] != ""
    last = frame[held].groupby("item_id")["timestamp"].transform(lambda s: s.isin(
        sorted(s)[-HORIZON:]))  # fmt: skip
    changed = frame.copy()
    rows = held & last.reindex(frame.index, fill_value=False)
    changed.loc[rows, "demand"] = (changed.loc[rows, "demand"].astype(float) * 3).map("{:g}".format)
    other = train(load_dataset(changed, CONFIG), CONFIG)
    columns = ["mean", "p10", "p50", "p90"]
    pd.testing.assert_frame_equal(result.backtest[columns], other.backtest[columns])
    assert not result.backtest["target_value"].equals(other.backtest["target_value"])


def test_forecast_covers_the_horizon_with_ordered_non_negative_quantiles() -> None:
    dataset = load_dataset(automl_frame(), CONFIG)
    forecast = predict(dataset, CONFIG, train(dataset, CONFIG).document)
    assert list(forecast.columns) == ["item_id", "timestamp", "p10", "p50", "p90", "mean"]
    assert len(forecast) == 4 * HORIZON
    assert forecast["timestamp"].min() == pd.Timestamp("2025-05-01")  # day after the history
    assert (forecast[["p10", "p50", "p90"]] >= 0).all().all()
    assert (forecast["p10"] <= forecast["p50"]).all() and (forecast["p50"] <= forecast["p90"]).all()
    assert (forecast["mean"] != forecast["p50"]).any()  # calibrated median, not the point


def test_intermittent_quantiles_are_asymmetric() -> None:
    dataset = load_dataset(automl_frame(items=3, sparse=3, days=200), CONFIG)
    forecast = predict(dataset, CONFIG, train(dataset, CONFIG).document)
    upper = (forecast["p90"] - forecast["p50"]).mean()
    lower = (forecast["p50"] - forecast["p10"]).mean()
    assert upper > 1.5 * lower  # skewed demand: a long upper tail


def test_a_shops_closed_hours_do_not_make_its_demand_intermittent() -> None:
    """Sales every open hour and none at night: more than half the hours are 0, but the average
    interval between sales while the shop is open is one hour, smooth demand. Sales at random
    hours, as many, stay intermittent, season or not; so does a shop that sells in few of its
    open hours."""
    rng = np.random.default_rng(3)
    hours = pd.date_range("2025-03-01", periods=24 * 28, freq="h")
    is_open = (hours.hour >= 11) & (hours.hour <= 22)  # half the day
    series = {
        "open-all-day": np.where(is_open, rng.poisson(4, len(hours)) + 1, 0),
        "open-rarely": np.where(is_open & (rng.random(len(hours)) < 0.3), 1, 0),
        "at-random": np.where(rng.random(len(hours)) < 0.5, rng.poisson(4, len(hours)) + 1, 0),
    }
    history = pd.concat([pd.DataFrame({"unique_id": k, "ds": hours, "y": v.astype(float)})
                         for k, v in series.items()])  # fmt: skip
    seasons = pd.Series(24, index=list(series))
    assert classify(history, seasons).to_dict() == {
        "open-all-day": "smooth",
        "open-rarely": "intermittent",
        "at-random": "intermittent",
    }
    # without its season the closed hours count, as in the Syntetos–Boylan test itself
    assert classify(history)["open-all-day"] == "intermittent"
    # and the plan gives the series the season it is classified with
    config = ForecastConfig(frequency="1H", horizon=24)
    assert plan(history, config).kinds.to_dict() == classify(history, seasons).to_dict()


def test_the_drift_candidate_of_a_seasonal_series_keeps_the_season() -> None:
    """The random walk with drift repeats the last value. From a shop's cutoff at closing time
    that is 0 for two days, a candidate the stacking used as a brake. On a seasonal series the
    candidate is the walk on the seasonally adjusted values: the day's shape at the last days'
    level, with their drift."""
    from statsforecast import StatsForecast

    assert [alias(m) for m in candidates("smooth", 1, ("npts",), False, 6)] == ["Naive", "RWD"]
    seasonal = {alias(m): m for m in candidates("smooth", 24, ("npts",), False, 48)}
    assert set(seasonal) == {"SeasonalNaive", "SeasonalRWD"}

    rng = np.random.default_rng(5)
    hours = pd.date_range("2025-03-01", periods=24 * 21, freq="h")  # ends at 23:00, closed
    is_open = (hours.hour >= 11) & (hours.hour <= 22)
    level = 6 + np.arange(len(hours)) / len(hours)  # a slow rise, 6 to 7 an open hour
    history = pd.DataFrame(
        {
            "unique_id": "shop",
            "ds": hours,
            "y": np.where(is_open, rng.poisson(level), 0).astype(float),
        }
    )
    assert history["y"].iloc[-1] == 0
    future = pd.date_range(hours[-1], periods=49, freq="h")[1:]
    forecast = (
        StatsForecast(models=[seasonal["SeasonalRWD"]], freq="h")
        .forecast(df=history, h=48)["SeasonalRWD"]
        .to_numpy()
    )
    opens = (future.hour >= 11) & (future.hour <= 22)
    assert 6 < forecast[opens].mean() < 8
    assert np.abs(forecast[~opens]).mean() < 1.5


def test_count_data_gets_whole_number_quantiles_and_a_median_of_zero_where_sales_are_rare() -> None:
    dataset = load_dataset(automl_frame(items=4, sparse=2, days=200), CONFIG)
    assert is_count_data(dataset.history)
    result = train(dataset, CONFIG)
    assert set(result.document["calibration"]["dispersion"]) >= {"intermittent", "smooth"}
    forecast = predict(dataset, CONFIG, result.document)
    quantiles = forecast[["p10", "p50", "p90"]].to_numpy()
    assert (quantiles == np.round(quantiles)).all()  # counts, not fractions of a unit
    rare = forecast[forecast["item_id"] == "I0"]  # about 0.2 units a day
    assert (rare["p50"] == 0).all() and (rare["mean"] > 0).all()
    assert (rare["p90"] >= 1).any()  # a sale is still within the range
    busy = forecast[forecast["item_id"] == "I3"]
    assert (busy["p10"] < busy["mean"]).all() and (busy["mean"] < busy["p90"]).all()


def test_counts_that_belie_the_binomials_zero_medians_keep_conformal_quantiles() -> None:
    """A level shift from 10 to 1,000 units a period inside the backtest windows: the errors
    straddling it made the fitted size tiny, and its binomial's median was 0 (``p50`` 0 at
    1,000). Counts that never were 0 keep the conformal quantiles instead."""
    config = ForecastConfig(frequency="1M", horizon=6, n_jobs=1)
    months = pd.date_range("2015-01-01", periods=60, freq="MS").strftime("%Y-%m-%d")
    rows = [{"item_id": item, "timestamp": stamp, "demand": "10" if t < 30 else "1000"}
            for item in ("I0", "I1", "I2") for t, stamp in enumerate(months)]  # fmt: skip
    dataset = load_dataset(pd.DataFrame(rows), config)
    assert is_count_data(dataset.history)
    result = train(dataset, config)
    assert result.document["calibration"]["dispersion"] == {}
    forecast = predict(dataset, config, result.document)
    assert forecast["p50"].between(900, 1100).all()
    assert (forecast["p10"] < forecast["p90"]).all()


def test_the_dispersion_fitted_is_the_one_the_counts_were_drawn_with() -> None:
    rng = np.random.default_rng(11)
    mu = rng.uniform(0.5, 40, 20_000)
    for size in (0.8, 3.0, 20.0):
        y = rng.negative_binomial(size, size / (size + mu)).astype(float)
        fitted, power = fit_dispersion(y, mu)
        assert fitted == pytest.approx(size, rel=0.1)
        assert power == 0.0  # one size drawn: none growing with the level


def test_the_dispersion_fitted_is_the_same_at_any_level() -> None:
    """Whole numbers of any size are counts here (a turnover in cents): errors of 3 % of the
    level must give one size however large the level. The log-gamma form of the likelihood lost
    it: on these errors 1,071 at 10⁹, but 2.7 at 10¹⁵ (a band more than half as wide as the
    level) and 1,375 at 10¹⁷."""
    rng = np.random.default_rng(5)
    unit = rng.uniform(1, 2, 2_000)
    noise = 1 + 0.03 * rng.standard_normal(2_000)
    sizes = {}
    for level in (1e9, 1e15, 1e17):
        mu = level * unit
        size, power = fit_dispersion(np.round(mu * noise), mu)
        assert power == 0.0
        sizes[level] = size
    assert sizes[1e9] == pytest.approx(1 / 0.03**2, rel=0.1)  # variance (3 % of μ)²
    assert sizes[1e15] == pytest.approx(sizes[1e9], rel=0.02)
    assert sizes[1e17] == pytest.approx(sizes[1e9], rel=0.02)


def test_a_size_growing_with_the_level_is_kept_only_where_the_counts_bear_it_out() -> None:
    """120 counts drawn with one size: what a second parameter gains on them is chance
    (unchecked, three of these eight samples got a power of 0.10 to 0.26)."""
    for seed in range(8):
        rng = np.random.default_rng(seed)
        mu = rng.uniform(5, 500, 120)
        y = rng.negative_binomial(5.0, 5.0 / (5.0 + mu)).astype(float)
        size, power = fit_dispersion(y, mu)
        assert power == 0.0
        assert 2.5 < size < 10


def test_large_series_steadier_in_proportion_get_a_size_growing_with_their_level() -> None:
    """Counts whose size grows with the level (a city selling 5,000 homes a month is steadier, in
    proportion, than one selling 20): one size for all would make the large ones' band too wide
    and their median too low."""
    rng = np.random.default_rng(12)
    mu = np.exp(rng.uniform(np.log(5), np.log(5_000), 20_000))
    drawn = 2.0 * mu**0.5
    y = rng.negative_binomial(drawn, drawn / (drawn + mu)).astype(float)
    size, power = fit_dispersion(y, mu)
    assert power == pytest.approx(0.5, abs=0.05)
    assert size_at([size, power], np.array([4_000.0])) == pytest.approx(2.0 * 4_000**0.5, rel=0.2)
    rows = pd.DataFrame({"unique_id": np.repeat([f"S{i}" for i in range(2_000)], 10),
                         "step": np.tile(np.arange(1, 11), 2_000), "y": y})  # fmt: skip
    items = rows["unique_id"].unique()
    scales, kinds = dict.fromkeys(items, 1.0), pd.Series("smooth", index=items)
    table = calibrate(rows, mu, scales, kinds, (0.1, 0.5, 0.9), 10, counts=True)
    out = apply_quantiles(np.array([4_000.0]), items[:1], np.array([1]), scales, kinds.to_dict(),
                          table, (0.1, 0.5, 0.9), clip=True)  # fmt: skip
    # the binomial drawn at 4,000 (size 126): p10 3,544, p50 3,989, p90 4,469; one size for
    # every level (34 here) gives 3,142, 3,960 and 4,909
    assert 800 < out.loc[0, "p90"] - out.loc[0, "p10"] < 1_100
    assert out.loc[0, "p50"] > 3_975


def test_other_data_gets_a_mean_corrected_by_its_backtest_bias_and_conformal_quantiles() -> None:
    rng = np.random.default_rng(5)
    steps = np.tile(np.arange(1, 4), 40)
    frame = pd.DataFrame({"unique_id": np.repeat([f"S{i}" for i in range(10)], 12),
                          "step": steps, "y": 100.0})  # fmt: skip
    # the point forecast ran 2 scale units too high at step 1 and 4 at steps 2-3, ± noise
    point = 100.0 + np.where(steps == 1, 2.0, 4.0) + rng.normal(0, 0.5, len(frame))
    scales = {f"S{i}": 1.0 for i in range(10)}
    kinds = pd.Series("smooth", index=list(scales))
    table = calibrate(frame, point, scales, kinds, (0.1, 0.5, 0.9), 3, counts=False)
    assert table["dispersion"] == {}
    assert table["mean"]["smooth"] == pytest.approx([-2.0, -4.0, -4.0], abs=0.3)
    out = apply_quantiles(
        np.full(3, 50.0),
        np.array(["S0"] * 3),
        np.arange(1, 4),
        scales,
        dict.fromkeys(scales, "smooth"),
        table,
        (0.1, 0.5, 0.9),
        clip=True,
    )
    assert out["mean"].to_numpy() == pytest.approx([48.0, 46.0, 46.0], abs=0.3)
    assert (out["p10"] < out["p50"]).all() and (out["p50"] < out["p90"]).all()
    assert not is_count_data(pd.DataFrame({"y": [1.0, 2.5, 3.0]}))
    assert not is_count_data(pd.DataFrame({"y": [1.0, -2.0, 3.0]}))


def test_a_bias_is_kept_as_far_as_it_held_from_window_to_window() -> None:
    rng = np.random.default_rng(11)
    windows, items, h = 4, 60, 3
    frame = pd.DataFrame({
        "unique_id": np.tile(np.repeat([f"S{i}" for i in range(items)], h), windows),
        "step": np.tile(np.arange(1, h + 1), items * windows),
        "window": np.repeat(np.arange(1, windows + 1), items * h),
    })  # fmt: skip
    scales = {f"S{i}": 1.0 for i in range(items)}
    kinds = pd.Series("smooth", index=list(scales))
    noise = rng.normal(0, 1.0, len(frame))
    quantiles = (0.1, 0.5, 0.9)

    def table(bias_per_window: list[float]) -> dict:
        bias = np.array(bias_per_window)[frame["window"].to_numpy() - 1]
        # y − point = bias + noise: the point ran ``bias`` scale units too low
        frame["y"] = 100.0 + bias + noise
        return calibrate(frame, np.full(len(frame), 100.0), scales, kinds, quantiles, h)

    steady, flipping = table([2.0, 2.0, 2.0, 2.0]), table([3.0, -1.5, 3.0, -1.5])
    # the same bias in every window: kept in the median and the mean
    assert np.array(steady["quantiles"]["smooth"])[:, 1] == pytest.approx([2.0] * h, abs=0.35)
    assert steady["mean"]["smooth"] == pytest.approx([2.0] * h, abs=0.35)
    # a bias of +0.75 on average that swings by 4.5 between windows: none is kept, the spread is
    flip = np.array(flipping["quantiles"]["smooth"])
    assert flip[:, 1] == pytest.approx([0.0] * h, abs=1e-9)
    assert flipping["mean"]["smooth"] == pytest.approx([0.0] * h, abs=1e-9)
    assert (flip[:, 2] - flip[:, 0] > 4.0).all()  # p10–p90 spans both windows' errors
    # without windows enough to judge by (two, or none named), the pooled bias stays
    frame["window"] = (frame["window"] - 1) % 2 + 1  # two windows: +3 and -1.5, median +0.75
    two = np.array(table([3.0, -1.5, 0.0, 0.0])["quantiles"]["smooth"])
    assert two[:, 1] == pytest.approx([0.75] * h, abs=0.5)
    frame["window"] = 1
    one = table([3.0] * windows)
    unnamed = calibrate(frame.drop(columns="window"), np.full(len(frame), 100.0), scales, kinds,
                        quantiles, h)  # fmt: skip
    assert np.array(unnamed["quantiles"]["smooth"])[:, 1] == pytest.approx([3.0] * h, abs=0.35)
    # a bias seen in one window only has not been seen to last: none is kept, the spread is
    single = np.array(one["quantiles"]["smooth"])
    assert single[:, 1] == pytest.approx([0.0] * h, abs=1e-9)
    assert one["mean"]["smooth"] == pytest.approx([0.0] * h, abs=1e-9)
    assert (single[:, 2] - single[:, 0] > 2.0).all()


def _history(series: int, periods: int) -> pd.DataFrame:
    days = pd.date_range("2024-01-01", periods=periods, freq="D")
    return pd.DataFrame({"unique_id": np.repeat([f"S{i}" for i in range(series)], periods),
                         "ds": np.tile(days, series), "y": 10.0})  # fmt: skip


def test_a_job_takes_as_many_selection_windows_as_its_series_afford_within_the_budget() -> None:
    """More windows judge an item's weights and errors better, and each costs a fit of every
    candidate on every series: a small job takes up to eight selection windows, a large one two."""
    few = plan(_history(3, 120), CONFIG)  # each affords 14 windows of 7 days
    assert few.selection == MAX_SELECTION_WINDOWS
    assert set(few.windows) == {MAX_SELECTION_WINDOWS + CONFIG.backtest_windows}
    short = plan(_history(3, 40), CONFIG)  # (40 - 18) // 7: three windows, all it affords
    assert set(short.windows) == {3} and set(short.held_out) == {1}
    # The budget counts every series' windows: 5 a series is too many for this many series,
    # 4 (three selection windows and the held-out one) is not.
    middling = WINDOW_BUDGET // 4
    assert plan(_history(middling, 120), CONFIG).selection == 3
    many = plan(_history(WINDOW_BUDGET // 2, 120), CONFIG)
    assert many.selection == MIN_SELECTION_WINDOWS
    assert set(many.windows) == {MIN_SELECTION_WINDOWS + CONFIG.backtest_windows}
    fixed = replace(CONFIG, selection_windows=1)  # a configuration that says, is followed
    assert set(plan(_history(3, 120), fixed).windows) == {2}


def test_weights_learned_in_one_window_lean_on_the_fixed_combination(monkeypatch) -> None:
    """Short yearly series that afford one backtest window each: that window is the same years
    for every series, and here they all levelled off in it, so naive fits it best for all of
    them. Their pooled weights count as one window against the fixed combination's
    ONE_WINDOW_PRIOR (two), so ETS, Theta and ARIMA keep most of each item's weight. The job takes
    no bias from that one window either (:func:`persistence`)."""
    rng = np.random.default_rng(3)
    stamps = pd.date_range("2000-01-01", periods=14, freq="YS")
    rows = []
    for i in range(12):
        growth = 5.0 + i
        y = 100 + growth * np.minimum(np.arange(14), 10) + rng.normal(0, 0.3, 14)
        rows += [{"item_id": f"S{i}", "timestamp": d.strftime("%Y-%m-%d"), "demand": f"{v:.3f}"}
                 for d, v in zip(stamps, y, strict=True)]  # fmt: skip
    config = ForecastConfig(frequency="1Y", horizon=3, quantiles=(0.1, 0.5, 0.9))
    dataset = load_dataset(pd.DataFrame(rows), config)
    assert set(plan(dataset.history, config).windows) == {1}
    fixed = set(models.DEFAULT_COMBINATION["smooth"])

    def share_of_fixed(result: TrainingResult) -> float:
        return min(sum(w for name, w in weights.items() if name in fixed)
                   for weights in result.weights.values())  # fmt: skip

    result = train(dataset, config)
    # an item's own window counts 1 against its peers' SHRINK_WINDOWS; theirs 1 against 2
    pooled = 1 - 1 / (1 + training.SHRINK_WINDOWS)
    assert share_of_fixed(result) >= pooled * 2 / 3 - 1e-9
    monkeypatch.setattr(training, "ONE_WINDOW_PRIOR", 0)  # the window's own verdict: naive
    assert share_of_fixed(train(dataset, config)) < 0.5
    assert result.document["calibration"]["mean"]["smooth"] == pytest.approx([0.0] * 3)


def test_a_candidate_that_breaks_down_on_a_positive_series_leaves_the_combination() -> None:
    """A candidate whose path reaches 0 or below, on an item that was always above 0 in a job
    that was never negative, gives its weight to the item's other candidates for that path:
    here Drift's first window on P (its last step at -5) and not its second, nor item Z, whose
    history had a 0. A path on which every candidate broke keeps its weights."""
    frame = pd.DataFrame({
        "unique_id": ["P"] * 6 + ["Z"] * 6,
        "cutoff": np.repeat([1, 2, 1, 2], 3),
        "Drift": [20.0, 5.0, -5.0, 30.0, 25.0, 20.0, 20.0, 5.0, -5.0, 30.0, 25.0, 20.0],
        "Naive": 40.0,
    })  # fmt: skip
    weights = {"P": {"Drift": 0.75, "Naive": 0.25}, "Z": {"Drift": 0.75, "Naive": 0.25}}
    history = pd.DataFrame({"unique_id": ["P", "P", "Z", "Z"], "y": [40.0, 35.0, 0.0, 40.0]})
    positive = training.positive_items(history, clip_at_zero=True)
    assert positive == {"P"}
    assert training.positive_items(history, clip_at_zero=False) == set()
    point = training._combine(frame, weights, positive)
    blended = 0.75 * frame["Drift"] + 0.25 * frame["Naive"]
    guarded = np.where((frame["unique_id"] == "P") & (frame["cutoff"] == 1), 40.0, blended)
    np.testing.assert_allclose(point, guarded)
    np.testing.assert_allclose(training._combine(frame, weights), blended)
    # every candidate broken on that path: the combination as it was (clipped later)
    both = frame.assign(Naive=frame["Drift"])
    np.testing.assert_allclose(training._combine(both, weights, positive), both["Drift"])


def test_training_and_forecasting_guard_the_items_that_were_always_positive(monkeypatch) -> None:
    """Every combination the job makes (choosing the ensemble, the backtests it calibrates on,
    the forecast) is guarded for the items whose history was above 0, and for none of a target
    that was sometimes negative."""
    seen: list[frozenset[str]] = []
    combine = training._combine

    def spy(frame, weights, positive=frozenset()):
        seen.append(positive)
        return combine(frame, weights, positive)

    monkeypatch.setattr(training, "_combine", spy)
    config = ForecastConfig(frequency="1M", horizon=6, quantiles=(0.1, 0.5, 0.9))
    frame = series_frame("MS", 48)
    dataset = load_dataset(frame, config)
    predict(dataset, config, train(dataset, config).document)
    assert len(seen) >= 3 and set(seen) == {frozenset({"S0", "S1", "S2"})}
    seen.clear()
    shifted = frame.assign(demand=(frame["demand"].astype(float) - 150).map("{:.3f}".format))
    dataset = load_dataset(shifted, config)
    predict(dataset, config, train(dataset, config).document)
    assert seen and set(seen) == {frozenset()}


def test_weights_come_from_the_latest_selection_windows_and_quantiles_from_all() -> None:
    """Which model suits an item is judged on recent windows; the forecast's errors on all.
    A job taking every window its series afford learns the same weights as one told to take
    only the latest WEIGHT_WINDOWS (each window's fits depend on its cut-off only), and another
    calibration."""
    frame = series_frame("D", 120, seed=11, season=7)
    dataset = load_dataset(frame, CONFIG)
    every = train(dataset, CONFIG)
    latest = train(dataset, replace(CONFIG, selection_windows=WEIGHT_WINDOWS))
    assert every.document["selection_windows"] == MAX_SELECTION_WINDOWS > WEIGHT_WINDOWS
    assert latest.document["selection_windows"] == WEIGHT_WINDOWS
    chosen, alone = every.document["ensemble"], latest.document["ensemble"]
    assert chosen["method"] == alone["method"]
    assert chosen["selection_errors"] == pytest.approx(alone["selection_errors"])
    for item, weights in every.weights.items():
        assert weights == pytest.approx(latest.weights[item])
    assert every.document["calibration"]["quantiles"] != latest.document["calibration"]["quantiles"]
    # the same held-out window, forecast with other quantiles
    pd.testing.assert_series_equal(every.backtest["target_value"], latest.backtest["target_value"])
    assert not np.allclose(every.backtest["p90"], latest.backtest["p90"])


def _windows(items: list[str]) -> pd.DataFrame:
    """Backtest rows: windows 3 and 2 are selection windows (2 the latest), 1 is held out."""
    return pd.DataFrame({"unique_id": np.repeat(items, 6), "window": np.tile([3, 3, 3, 2, 2, 2],
                         len(items)), "step": np.tile([1, 2, 3], 2 * len(items))})  # fmt: skip


@pytest.mark.parametrize("spread", [0.5, 2.0])
def test_the_quantiles_widen_as_much_as_the_next_windows_errors_did(spread) -> None:
    """Calibrated on the earlier window, stretched to fit the latest one's errors."""
    rng = np.random.default_rng(2)
    items = [f"S{i}" for i in range(60)]
    rows = _windows(items).assign(y=100.0)
    point = 100.0 + rng.normal(0, 1, len(rows)) * np.where(rows["window"] == 2, spread, 1.0)
    args = (dict.fromkeys(items, 1.0), pd.Series("smooth", index=items), (0.1, 0.5, 0.9), 3,
            pd.Series(1, index=items))  # fmt: skip
    assert learn_width(rows, point, *args)["smooth"] == pytest.approx(spread, abs=0.35)
    latest = (rows["window"] == 2).to_numpy()
    assert learn_width(rows[latest], point[latest], *args) == {}  # one window: nothing to learn


def test_one_calm_window_does_not_narrow_the_quantiles(monkeypatch) -> None:
    """The stretch is learned on the latest WIDTH_WINDOWS selection windows, each forecast with
    the quantiles calibrated on the windows before it: the latest window spread half as much as
    every earlier one, by chance. Judged on it alone the quantiles would shrink to half (what
    an hourly weather set's stretch did at one origin and undid at the next); judged on three,
    two of which spread as before, they narrow a little."""
    rng = np.random.default_rng(3)
    items = [f"S{i}" for i in range(60)]
    windows = [7, 6, 5, 4, 3, 2]  # all selection windows, 2 the latest; 1 is held out
    rows = pd.DataFrame({"unique_id": np.repeat(items, 18),
                         "window": np.tile(np.repeat(windows, 3), len(items)),
                         "step": np.tile([1, 2, 3], len(windows) * len(items)),
                         "y": 100.0})  # fmt: skip
    point = 100.0 + rng.normal(0, 1, len(rows)) * np.where(rows["window"] == 2, 0.5, 1.0)
    args = (dict.fromkeys(items, 1.0), pd.Series("smooth", index=items), (0.1, 0.5, 0.9), 3,
            pd.Series(1, index=items))  # fmt: skip
    assert 0.75 <= learn_width(rows, point, *args)["smooth"] <= 0.95
    monkeypatch.setattr(training, "WIDTH_WINDOWS", 1)
    assert learn_width(rows, point, *args)["smooth"] == pytest.approx(0.5)


def test_the_stretch_is_the_spreads_growth_not_the_bias_shrinkage() -> None:
    """Four earlier windows whose bias swings (+3, −1.5, +3, −1.5: the forecast's centre drops
    it, :func:`persistence`) and a latest window whose errors spread exactly as theirs did, half
    its items +3 and half −1.5: the spread did not grow, so no stretch. Learned around the
    shrunk centre, the stretch would take up the bias's shift as if it were spread."""
    rng = np.random.default_rng(5)
    items = [f"S{i}" for i in range(60)]
    rows = pd.DataFrame({"unique_id": np.repeat(items, 15),
                         "window": np.tile(np.repeat([6, 5, 4, 3, 2], 3), len(items)),
                         "step": np.tile([1, 2, 3], 5 * len(items))})  # fmt: skip
    by_window = rows["window"].map({6: 3.0, 5: -1.5, 4: 3.0, 3: -1.5}).to_numpy()
    by_item = np.where(rows["unique_id"].str[1:].astype(int) % 2 == 0, 3.0, -1.5)
    bias = np.where(rows["window"] == 2, by_item, by_window)
    rows["y"] = 100.0 + bias + rng.normal(0, 0.5, len(rows))
    point = np.full(len(rows), 100.0)
    args = (dict.fromkeys(items, 1.0), pd.Series("smooth", index=items), (0.1, 0.5, 0.9), 3,
            pd.Series(1, index=items))  # fmt: skip
    assert learn_width(rows, point, *args)["smooth"] == pytest.approx(1.0, abs=0.15)


def test_counts_steadier_than_a_poisson_keep_conformal_quantiles() -> None:
    rng = np.random.default_rng(4)
    slow, big = [f"A{i}" for i in range(40)], [f"B{i}" for i in range(40)]
    rows = _windows(slow + big)
    mu = np.where(rows["unique_id"].str.startswith("A"), 0.6, 1000.0)
    # slow items: Poisson sales; big ones: steadier than any Poisson count (± 5 around 1000)
    y = np.where(mu < 1, rng.poisson(0.6, len(rows)), np.round(1000 + rng.normal(0, 5, len(rows))))
    kinds = pd.Series(["intermittent"] * 40 + ["smooth"] * 40, index=slow + big)
    scales = {**dict.fromkeys(slow, 1.0), **dict.fromkeys(big, 7.0)}
    table = calibrate(rows.assign(y=y.astype(float)), mu, scales, kinds, (0.1, 0.5, 0.9), 3,
                      counts=True)  # fmt: skip
    assert set(table["dispersion"]) == {"intermittent"}
    out = apply_quantiles(np.array([0.6, 1000.0]), np.array(["A0", "B0"]), np.array([1, 1]),
                          scales, kinds.to_dict(), table, (0.1, 0.5, 0.9), clip=True)  # fmt: skip
    assert out.loc[0, "p50"] == 0  # Poisson(0.6): no sale is likelier
    assert 980 < out.loc[1, "p10"] < 1000 < out.loc[1, "p90"] < 1020  # ± 5, not Poisson's ± 40


def test_the_promotion_regressor_lifts_forecasts_on_promotion_days() -> None:
    frame = automl_frame(items=2, days=180, sparse=0)
    dataset = load_dataset(frame, CONFIG)
    document = train(dataset, CONFIG).document
    document["weights"] = {"I0": {"ARIMAX": 1.0}, "I1": {"ARIMAX": 1.0}}
    forecast = predict(dataset, CONFIG, document)
    future = frame[frame["demand"] == ""][["item_id", "timestamp", "promotion_applied"]]
    joined = forecast.assign(timestamp=forecast["timestamp"].dt.strftime("%Y-%m-%d")).merge(
        future, on=["item_id", "timestamp"]
    )
    lifted = joined.groupby("promotion_applied")["mean"].mean()
    assert lifted["1"] > 1.3 * lifted["0"]


@pytest.mark.parametrize(
    ("frequency", "pandas", "periods", "season", "first_label"),
    [
        ("1Y", "YS", 40, 1, "2040-01-01"),
        ("3M", "QS", 60, 4, "2015-01-01"),
        ("M", "MS", 96, 12, "2008-01-01"),
        ("M", "ME", 96, 12, "2008-01-31"),  # month-end labels stay month ends
        ("3M", "QE", 60, 4, "2015-03-31"),  # and quarter ends, quarter ends
        ("2W", "2W-MON", 80, 26, "2003-01-27"),
        ("1H", "h", 24 * 20, 24, "2000-01-21 00:00:00"),
    ],
)  # fmt: skip
def test_every_kind_of_frequency_forecasts_end_to_end(frequency, pandas, periods, season,
                                                      first_label) -> None:  # fmt: skip
    start = "2000-01-03" if pandas.startswith("2W") else "2000-01-01"
    frame = series_frame(pandas, periods, season=season, start=start)
    config = ForecastConfig(frequency=frequency, horizon=4, n_jobs=1)
    dataset = load_dataset(frame, config)
    result = train(dataset, config)
    assert result.metrics["PredictorEvaluationResults"][0]["TestWindows"][1]["ItemCount"] == 3
    forecast = predict(dataset, config, result.document)
    assert len(forecast) == 3 * 4
    assert forecast["timestamp"].min() == pd.Timestamp(first_label)
    # a trend is followed, not flattened: the forecast continues above the last values
    last = frame.groupby("item_id")["demand"].apply(lambda s: float(s.iloc[-1]))
    assert (forecast.groupby("item_id")["mean"].mean() > last - 10).all()


@pytest.mark.parametrize(
    ("frequency", "pandas", "start"),
    [("3M", "QE", "2000-03-31"), ("3M", "QE-JAN", "2000-01-31"), ("2M", "2ME", "2000-02-29"),
     ("6M", "6ME", "2000-06-30"), ("3M", "3MS", "2000-02-01")],
)  # fmt: skip
def test_a_series_labelled_by_its_periods_last_days_keeps_its_labels(frequency, pandas,
                                                                     start) -> None:  # fmt: skip
    # A month-end stamp names the period it ends: quarter ends (03-31, 06-30…) are quarters
    # January-March, April-June…, not periods starting in the first stamp's month, which
    # relabelled every quarter two months later (03-31 → 05-31) and the forecast with them.
    frame = series_frame(pandas, 24, items=2, start=start)
    config = ForecastConfig(frequency=frequency, horizon=3, n_jobs=1)
    dataset = load_dataset(frame, config)
    stamps = pd.to_datetime(frame["timestamp"])
    assert dataset.grid.bucket(stamps).equals(stamps)  # each period is its own label
    forecast = predict(dataset, config, train(dataset, config).document)
    expected = pd.date_range(stamps.max(), periods=4, freq=pandas)[1:]
    assert sorted(forecast["timestamp"].unique()) == list(expected)


def test_small_series_forecast_alike_whatever_their_power_of_ten() -> None:
    # Rates of a few hundredths and the same rates ×10: the auto models fit both lifted into
    # [100, 1000), so the forecasts differ by the factor alone. AutoTheta fitted the raw
    # hundredths differently (its tolerances are absolute), and the ensembles differed with it.
    rng = np.random.default_rng(11)
    t = np.arange(20)
    rows = []
    for i in range(6):
        y = 0.03 + 0.002 * i - 0.0006 * t + rng.normal(0, 0.002, 20).cumsum() / 3
        rows += [{"item_id": f"R{i}", "timestamp": f"{1990 + k}-01-01", "demand": v}
                 for k, v in enumerate(np.round(y, 6))]  # fmt: skip
    small = pd.DataFrame(rows)
    config = ForecastConfig(frequency="1Y", horizon=3, n_jobs=1)
    out = []
    for factor in (1, 10):
        frame = small.assign(demand=(small["demand"] * factor).map("{:.6g}".format))
        dataset = load_dataset(frame, config)
        result = train(dataset, config)
        out.append((result.weights, predict(dataset, config, result.document)))
    (weights, forecast), (weights_10, forecast_10) = out
    assert weights.keys() == weights_10.keys()
    for item in weights:
        assert weights[item].keys() == weights_10[item].keys(), item
        np.testing.assert_allclose(list(weights[item].values()),
                                   list(weights_10[item].values()), rtol=1e-6)  # fmt: skip
    assert any("AutoTheta" in w for w in weights.values())
    for column in ("p10", "p50", "p90", "mean"):
        np.testing.assert_allclose(forecast_10[column], 10 * forecast[column], rtol=1e-6)
    # the backtest's windows do not choose the power: held-out values 10⁴ times larger leave it
    plain = small.rename(columns={"item_id": "unique_id", "demand": "y"})
    tail = plain.groupby("unique_id").cumcount() >= 17
    bigger = plain.assign(y=np.where(tail, plain["y"] * 1e4, plain["y"]))
    assert lift(bigger, held=3).equals(lift(plain, held=3))
    assert (lift(plain) == 1e4).all() and not (lift(bigger) == 1e4).all()


def test_a_series_with_two_cycles_but_no_window_beyond_them_keeps_its_season() -> None:
    # 30 months, horizon 12: two whole years, but no backtest window whose training part holds
    # two. Its season is what its history shows, not what a window would: it is forecast by the
    # seasonal fixed combination (untested), where it used to get season 1 and a flat forecast
    # that missed December's peak (mean error 5.2 on this series, against 0.7-1.0 now).
    rng = np.random.default_rng(0)
    peaks = np.array([0, 0, -6, 0, 0, 10, 0, 0, 0, 4, 0, 25.0])  # by month, December's peak
    t = np.arange(30)
    short = pd.DataFrame({
        "item_id": "NEW",
        "timestamp": pd.date_range("2005-07-01", periods=30, freq="MS").strftime("%Y-%m-%d"),
        "demand": [f"{v:.3f}" for v in 50 + peaks[t % 12] + rng.normal(0, 1.5, 30)],
    })  # fmt: skip
    frame = pd.concat([series_frame("MS", 96, season=12), short], ignore_index=True)
    config = ForecastConfig(frequency="M", horizon=12, n_jobs=1)
    dataset = load_dataset(frame, config)
    result = train(dataset, config)
    assert result.document["seasons"]["NEW"] == 12
    assert "NEW" in result.untested
    forecast = predict(dataset, config, result.document)
    mine = forecast[forecast["item_id"] == "NEW"]["mean"].to_numpy()
    assert np.abs(mine - (50 + peaks[np.arange(30, 42) % 12])).mean() < 2


def test_minute_data_is_seasonal_by_the_day() -> None:
    # Half-hourly load with an evening peak: its season is the day (48 periods), not the hour
    # (2), which used to come first and gave a forecast without the peak.
    rng = np.random.default_rng(3)
    stamps = pd.date_range("2024-03-04", periods=48 * 8, freq="30min")
    evening = (stamps.hour >= 17) & (stamps.hour < 21)
    frame = pd.concat([
        pd.DataFrame({"item_id": f"L{i}", "timestamp": stamps.strftime("%Y-%m-%d %H:%M:%S"),
                      "demand": np.round(50 + 10 * i + 40 * evening
                                         + rng.normal(0, 2, len(stamps)), 2).astype(str)})
        for i in range(2)
    ], ignore_index=True)  # fmt: skip
    known = frame.groupby("item_id").head(48 * 7)
    config = ForecastConfig(frequency="30min", horizon=48, n_jobs=1)
    assert config.freq.seasons() == (48, 336)
    dataset = load_dataset(known, config)
    result = train(dataset, config)
    assert set(result.document["seasons"].values()) == {48}
    forecast = predict(dataset, config, result.document)
    truth = frame.groupby("item_id").tail(48)["demand"].astype(float).to_numpy()
    # the peak is forecast where it falls: mean error 1.7, within the noise (8.6 with season 2)
    assert np.abs(forecast["p50"].to_numpy() - truth).mean() < 4


def median_loss(result: TrainingResult, name: str) -> float:
    """A candidate's held-out p50 quantile loss, from the job's per-candidate metrics."""
    window = result.candidate_metrics[name]["PredictorEvaluationResults"][0]["TestWindows"][0]
    losses = window["Metrics"]["WeightedQuantileLosses"]
    return next(entry["LossValue"] for entry in losses if entry["Quantile"] == 0.5)


def test_weekly_data_gets_an_arima_that_models_the_year_without_fitting_it() -> None:
    # A season of 52 weeks is beyond what AutoARIMA fits at a bearable cost (1.7 s a fit): the
    # ARIMA family's member there is STL-ARIMA, which takes the year out by STL and fits the rest.
    assert "AutoARIMA" in [alias(m) for m in candidates("smooth", 12, ("arima",), False, 6)]
    weekly = [alias(m) for m in candidates("smooth", 52, ("arima",), False, 13)]
    assert weekly == ["STLARIMA"]
    periods = 52 * 4 + 13
    rng = np.random.default_rng(7)
    stamps = pd.date_range("2019-01-07", periods=periods, freq="W-MON")
    year = np.sin(2 * np.pi * np.arange(periods) / 52)
    frame = pd.concat([
        pd.DataFrame({"item_id": f"W{i}", "timestamp": stamps.strftime("%Y-%m-%d"),
                      "demand": np.round(200 + 20 * i + 40 * year
                                         + rng.normal(0, 2, periods), 3).astype(str)})
        for i in range(3)
    ], ignore_index=True)  # fmt: skip
    known = frame.groupby("item_id").head(periods - 13)
    config = ForecastConfig(frequency="W", horizon=13, n_jobs=1)
    dataset = load_dataset(known, config)
    result = train(dataset, config)
    assert set(result.document["seasons"].values()) == {52}

    # on the held-out windows it forecasts the year that ETS (no season beyond 24) misses
    assert median_loss(result, "STLARIMA") < 0.5 * median_loss(result, "AutoETS")
    forecast = predict(dataset, config, result.document)
    truth = frame.groupby("item_id").tail(13)["demand"].astype(float).to_numpy()
    assert np.abs(forecast["p50"].to_numpy() - truth).mean() < 6  # noise sd 2, the year ±40


def test_weekly_data_with_related_series_regresses_on_them_and_the_years_harmonics() -> None:
    # With a related series the ARIMA family's member is the regression with ARIMA errors; at a
    # 52-week season the year is among its regressors as sine and cosine pairs, estimated with
    # the promotions in one fit. Fitted on STL's remainder instead (as STL-ARIMA), the year took
    # part of the promotions' lift with it (p50 loss 0.040); the seasonal ARIMA errors it had
    # before scored 0.012 at twenty-five times the cost, the harmonics 0.009.
    (model,) = candidates("smooth", 52, ("arima",), True, 13)
    assert (alias(model), type(model).__name__, model.season_length) == ("ARIMAX", "ARIMA", 1)
    stamps = pd.Series(pd.date_range("2024-03-04", periods=96, freq="30min"))
    terms = fourier_terms(stamps, parse_frequency("30min"), 48)
    assert terms.shape == (96, 2 * FOURIER_PAIRS)
    # a function of the timestamp alone: the same a cycle (a day) later, and the same for a
    # series' future as for its history
    np.testing.assert_allclose(terms.iloc[:48].to_numpy(), terms.iloc[48:].to_numpy(), atol=1e-9)
    later = fourier_terms(stamps.iloc[60:], parse_frequency("30min"), 48)
    np.testing.assert_allclose(later.to_numpy(), terms.iloc[60:].to_numpy())
    periods, horizon = 52 * 4 + 13, 13
    rng = np.random.default_rng(11)
    stamps = pd.date_range("2019-01-07", periods=periods, freq="W-MON")
    year = np.sin(2 * np.pi * np.arange(periods) / 52)
    frames = []
    for i in range(3):
        promo = (rng.random(periods) < 0.25).astype(int)
        y = 200 + 20 * i + 40 * year + 30 * promo + rng.normal(0, 2, periods)
        demand = [f"{v:.3f}" for v in y[: periods - horizon]] + [""] * horizon
        frames.append(pd.DataFrame({"item_id": f"W{i}", "timestamp": stamps.strftime("%Y-%m-%d"),
                                    "demand": demand, "promotion_applied": promo.astype(str),
                                    "truth": y}))  # fmt: skip
    frame = pd.concat(frames, ignore_index=True)
    config = ForecastConfig(frequency="W", horizon=horizon, n_jobs=1)
    dataset = load_dataset(frame.drop(columns="truth"), config)
    assert dataset.related == ["promotion_applied"]
    result = train(dataset, config)

    # the promotions the seasonal naive forecast cannot know, the regression forecasts:
    # measured 0.009 against 0.069
    assert median_loss(result, "ARIMAX") < 0.2 * median_loss(result, "SeasonalNaive")
    forecast = predict(dataset, config, result.document)
    future = frame[frame["demand"] == ""].reset_index(drop=True)
    assert np.abs(forecast["p50"].to_numpy() - future["truth"].to_numpy()).mean() < 8


def test_a_job_of_only_short_series_is_backtested_on_what_there_is() -> None:
    # Nine yearly points, horizon 2: within AWS's quarter rule, but no series affords the ten
    # periods the full candidate set trains on (the job used to be refused). It trains on what
    # there is, reports held-out metrics and forecasts.
    frame = series_frame("YS", 9)
    config = ForecastConfig(frequency="1Y", horizon=2, n_jobs=1)
    dataset = load_dataset(frame, config)
    result = train(dataset, config)
    windows = result.metrics["PredictorEvaluationResults"][0]["TestWindows"]
    assert windows[1]["ItemCount"] == 3
    forecast = predict(dataset, config, result.document)
    assert len(forecast) == 3 * 2 and forecast["mean"].notna().all()
    last = frame.groupby("item_id")["demand"].apply(lambda s: float(s.iloc[-1]))
    assert (forecast.groupby("item_id")["mean"].mean() > last - 20).all()


@pytest.mark.parametrize("value", ["Q", "60min", "5W", "2Y", "0D", "12M", "", "1d"])
def test_a_frequency_aws_refuses_is_refused_with_its_pattern(value) -> None:
    with pytest.raises(FrequencyError, match="Member must satisfy regular expression pattern"):
        parse_frequency(value)


def test_rows_finer_than_the_frequency_are_aggregated_as_configured() -> None:
    daily = series_frame("D", 400, items=1)
    for method, expected in (("sum", "sum"), ("avg", "mean"), ("max", "max")):
        config = ForecastConfig(frequency="M", horizon=2, n_jobs=1,
                                transformations={"Aggregation": {"demand": method}})  # fmt: skip
        history = load_dataset(daily, config).history
        stamps = pd.to_datetime(daily["timestamp"])
        truth = daily["demand"].astype(float).groupby(stamps.dt.to_period("M")).agg(expected)
        assert history["y"].to_numpy() == pytest.approx(truth.to_numpy())


def test_a_series_that_ends_early_is_forecast_from_its_own_end_unless_backfilled() -> None:
    frame = series_frame("MS", 60, items=2)
    early = frame[~((frame["item_id"] == "S1") & (frame["timestamp"] >= "2004-01-01"))]
    config = ForecastConfig(frequency="M", horizon=3, n_jobs=1)
    dataset = load_dataset(early, config)
    assert dataset.unaligned == {"S1": "2003-12-01T00:00:00"}
    forecast = predict(dataset, config, train(dataset, config).document)
    s1 = forecast[forecast["item_id"] == "S1"]
    assert s1["timestamp"].min() == pd.Timestamp("2004-01-01")
    assert (s1["mean"] > 50).all()  # no run of zeros pulled it down
    padded = ForecastConfig(
        frequency="M",
        horizon=3,
        n_jobs=1,
        transformations={"Filling": {"demand": {"backfill": "zero"}}},
    )
    filled = load_dataset(early, padded)
    assert filled.unaligned == {}
    tail = filled.history[filled.history["unique_id"] == "S1"].tail(12)
    assert (tail["y"] == 0).all()


def test_a_cold_start_item_gets_the_forecast_of_items_like_it() -> None:
    frame = automl_frame(items=4, sparse=0)
    newcomer = frame[frame["item_id"] == "I1"].assign(item_id="NEW", demand="")
    frame = pd.concat([frame, newcomer], ignore_index=True)
    dataset = load_dataset(frame, CONFIG)
    assert dataset.cold == ["NEW"]
    forecast = predict(dataset, CONFIG, train(dataset, CONFIG).document)
    new = forecast[forecast["item_id"] == "NEW"].reset_index(drop=True)
    assert len(new) == HORIZON
    peers = forecast[forecast["item_id"].isin(["I1", "I3"])]  # category C1, like I1
    expected = peers.groupby("timestamp")["mean"].median().to_numpy()
    assert new["mean"].to_numpy() == pytest.approx(expected)


def test_holidays_become_a_regressor_for_the_configured_country() -> None:
    config = ForecastConfig(frequency="D", horizon=HORIZON, n_jobs=1, holiday_country="US")
    frame = automl_frame(days=200)
    dataset = load_dataset(frame, config)
    history = with_holidays(dataset.history, config)
    marked = history.loc[history["holiday"] > 0, "ds"].dt.strftime("%m-%d").unique()
    assert "07-04" in marked and "01-01" in marked and "03-01" not in marked
    assert "ARIMAX" in {alias(m) for m in candidates("smooth", 7, ("arima",), True, HORIZON)}
    result = train(dataset, config)
    assert result.document["holiday_country"] == "US"


def test_options_the_local_forecaster_cannot_honour_are_refused() -> None:
    with pytest.raises(AlgorithmError, match="'prophet' has no local counterpart"):
        check_algorithms({"AlgorithmsConfig": [{"AutoMLAlgorithms": ["ets", "prophet"]}]})
    with pytest.raises(AlgorithmError, match=r"\['deepar'\] are only global models"):
        check_algorithms({"AlgorithmsConfig": [{"AutoMLAlgorithms": ["deepar"]}]})
    assert check_algorithms({"AlgorithmsConfig": [{"AutoMLAlgorithms": ["ets"]}]}) == ("ets",)
    assert check_algorithms(
        {"AlgorithmsConfig": [{"AutoMLAlgorithms": ["npts", "cnn-qr", "deepar"]}]}
    ) == ("npts", "cnn-qr", "deepar")
    with pytest.raises(ForecastInputError, match="middlefill='nan' is not one of"):
        check_transformations({"Filling": {"demand": {"middlefill": "nan"}}}, "demand")
    with pytest.raises(ForecastInputError, match="Aggregation is only supported for the target"):
        check_transformations({"Aggregation": {"price": "sum"}}, "demand")


def test_the_global_model_learns_across_series_and_joins_the_ensembles(monkeypatch) -> None:
    """Offered above its data threshold: backtested like every candidate, weighed per item, and
    refitted for the forecast; it reads the related series (promotions lift its forecast)."""
    monkeypatch.setattr(global_model, "MIN_OBSERVATIONS", 100)
    frame = automl_frame(items=6, days=150, sparse=0)
    dataset = load_dataset(frame, CONFIG)
    result = train(dataset, CONFIG)
    assert global_model.ALIAS in result.candidate_metrics
    assert any(global_model.ALIAS in w for w in result.weights.values())
    forecast = predict(dataset, CONFIG, result.document)
    assert len(forecast) == 6 * HORIZON and forecast["mean"].notna().all()

    history = with_holidays(dataset.history, CONFIG)
    regressors = ["price", "promotion_applied"]

    def forecast_with(promotion: int) -> pd.DataFrame:
        future = dataset.future.assign(promotion_applied=float(promotion),
                                       price=10.0 * (1 - 0.2 * promotion))  # fmt: skip
        return global_model.forecast(history, future, regressors, CONFIG.freq, 7,
                                     dataset.grid.offset, HORIZON, 1)  # fmt: skip

    alone, promoted = forecast_with(0), forecast_with(1)
    # the same days with and without a promotion: demand is 1.8 times as high with one
    assert promoted[global_model.ALIAS].sum() > 1.3 * alone[global_model.ALIAS].sum()
    again = forecast_with(0)
    pd.testing.assert_frame_equal(alone, again)  # same data, same forecast


def test_the_global_model_is_backtested_on_the_windows_its_warm_up_leaves(monkeypatch) -> None:
    """Windows are cut from each series' own end: the earliest of many leaves a short series
    nothing past the model's warm-up (its longest rolling window). The model is backtested on
    the latest windows that leave it enough to learn from, not left out of the job."""
    monkeypatch.setattr(global_model, "MIN_OBSERVATIONS", 100)
    warm = global_model.warm_up(7)
    assert warm == 29  # a rolling mean of four weeks of lag 1
    history = pd.DataFrame({"unique_id": ["a"] * 100 + ["b"] * 100})
    # 2 × (100 − 10·w − 29) rows to learn from, at least half of 100: w ≤ 4
    assert global_model.feasible_windows(history, 7, 10, 9) == 4
    assert global_model.feasible_windows(history, 7, 10, 3) == 3
    assert global_model.feasible_windows(history.iloc[:60], 7, 10, 9) == 0  # one series, 60

    # Six series of 80 days afford eight weekly windows; the eighth leaves 80 − 56 = 24 days,
    # fewer than the warm-up. 6 × (80 − 7·w − 29) ≥ 50 holds up to w = 6.
    dataset = load_dataset(automl_frame(items=6, days=80, sparse=0), CONFIG)
    seen: list[int] = []
    backtest = global_model.cross_validate
    monkeypatch.setattr(global_model, "cross_validate",
                        lambda *a, **k: seen.append(a[6]) or backtest(*a, **k))  # fmt: skip
    result = train(dataset, CONFIG)
    assert seen == [6]
    assert global_model.ALIAS in result.candidate_metrics


def test_an_item_the_global_model_cannot_forecast_falls_back_to_its_kind(monkeypatch) -> None:
    dataset = load_dataset(automl_frame(items=2, days=150, sparse=0), CONFIG)
    document = train(dataset, CONFIG).document
    document["weights"] = {"I0": {global_model.ALIAS: 1.0},
                           "I1": {global_model.ALIAS: 0.5, "AutoTheta": 0.5}}  # fmt: skip

    def fails(*args, **kwargs):
        raise ValueError("Input data must be 2 dimensional and non empty.")

    monkeypatch.setattr(global_model, "forecast", fails)
    forecast = predict(dataset, CONFIG, document)
    assert len(forecast) == 2 * HORIZON and forecast["mean"].notna().all()
    assert (forecast["mean"] > 0).all()  # the default combination, not a filled zero
    assert document["weights"]["I0"] == {global_model.ALIAS: 1.0}  # the artifact is not changed


def test_statsforecast_warnings_stay_quiet_outside_the_training_call() -> None:
    """Training may run in a server thread, where a catch_warnings block is not enough: the
    filter holds for the whole process (a child process: pytest resets filters per test). It
    holds after statsforecast's models are imported too (they import statsmodels, whose "always"
    filter for its model warnings once went in front of it: one line per series in a run), and
    for the global model's mlforecast (null lags in a series' first rows: a test session once
    showed 22 of them from its shared smoke run)."""
    script = (
        "import warnings, emulation.sagemaker.forecaster.training\n"
        "import statsforecast.models\n"
        "from statsmodels.tools.sm_exceptions import SingularMatrixWarning\n"
        "with warnings.catch_warnings(record=True) as seen:\n"
        "    warnings.warn_explicit('rank-deficient', SingularMatrixWarning, 'arima.py', 608,"
        " module='statsforecast.arima')\n"
        "    warnings.warn_explicit('null lags', UserWarning, 'core.py', 1383,"
        " module='mlforecast.core')\n"
        "    warnings.warn_explicit('own', UserWarning, 'mine.py', 1, module='mine')\n"
        "print([str(w.message) for w in seen])\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True)  # fmt: skip
    assert out.stdout.strip() == "['own']"


def test_the_global_model_is_offered_only_when_asked_and_with_enough_data() -> None:
    history = load_dataset(automl_frame(items=2, days=150), CONFIG).history
    assert not global_model.offered(history, ("arima", "ets", "npts"), 7, HORIZON)
    assert not global_model.offered(history, ("ets", "deepar"), 7, HORIZON)  # 300 observations
    big = pd.concat([history.assign(unique_id=history["unique_id"] + f"-{k}") for k in range(80)])
    assert global_model.offered(big, ("ets", "deepar"), 7, HORIZON)


def test_only_the_asked_families_are_candidates() -> None:
    config = ForecastConfig(frequency="D", horizon=HORIZON, n_jobs=1, algorithms=("ets",))
    result = train(load_dataset(automl_frame(), config), config)
    used = {name for weights in result.weights.values() for name in weights}
    assert used <= {"AutoETS", "AutoTheta"}
    assert result.baseline is not None  # seasonal naive is still the yardstick


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f[~((f["item_id"] == "I2") & (f["demand"] == "") &
                       (f["timestamp"] == f["timestamp"].max()))],
         "related time series 'price' does not cover the forecast horizon for item 'I2'"),
        (lambda f: f.assign(category=np.where(f["item_id"] == "I1", "", f["category"])),
         "item 'I1' has no item metadata value for 'category'"),
        (lambda f: f.assign(demand=np.where(f.index == 5, "many", f["demand"])),
         "target column 'demand' has a non-numeric value 'many' (data row 6)"),
        (lambda f: f.assign(demand=np.where(f.index == 8, "-inf", f["demand"])),
         "target column 'demand' has an infinite value '-inf' (data row 9)"),
        (lambda f: f.assign(timestamp=np.where(f.index == 3, "2025/01/04", f["timestamp"])),
         "column 'timestamp' has a value that is not a yyyy-MM-dd or yyyy-MM-dd HH:mm:ss "
         "timestamp (data row 4: '2025/01/04')"),
        # each value a valid timestamp, but a dataset has one format (Forecast's TimestampFormat)
        (lambda f: f.assign(timestamp=np.where(f.index == 3, "2025-01-04 00:00:00",
                                               f["timestamp"])),
         "column 'timestamp' mixes yyyy-MM-dd (data row 1: '2025-01-01') and yyyy-MM-dd "
         "HH:mm:ss (data row 4: '2025-01-04 00:00:00') timestamps"),
        # valid in form, but no day (2025-02-30) or a day before pandas' first (1677-09-22):
        # each said as it is, not as a value in the wrong format
        (lambda f: f.assign(timestamp=np.where(f.index == 3, "2025-02-30", f["timestamp"])),
         "column 'timestamp' has a value that is not a day of the calendar, or not a time of "
         "day (data row 4: '2025-02-30')"),
        (lambda f: f.assign(timestamp=np.where(f.index == 0, "1600-01-01", f["timestamp"])),
         "column 'timestamp' has a value that is a timestamp outside 1677-09-22 to 2262-04-11, "
         "the days the local forecaster's timestamps hold (data row 1: '1600-01-01')"),
        (lambda f: f.drop(columns=["demand"]), "no column 'demand' named in TimeSeriesConfig"),
        (lambda f: f.assign(item_id=np.where(f.index % 50 == 7, " ", f["item_id"])),
         "item id column 'item_id' is empty in "),
    ],
    ids=["related-short", "no-metadata", "bad-target", "infinite-target", "bad-timestamp",
         "mixed-timestamps", "no-such-day", "before-pandas", "no-target", "no-item"],
)  # fmt: skip
def test_input_that_breaks_aws_rules_is_refused_with_the_reason(mutate, message) -> None:
    with pytest.raises(ForecastInputError, match=re.escape(message)):
        load_dataset(mutate(automl_frame()), CONFIG)


def test_values_too_large_for_the_models_still_forecast_finite_values() -> None:
    frame = automl_frame()
    frame["demand"] = np.where(frame["demand"] == "", "", "1e308")  # squares overflow
    dataset = load_dataset(frame, CONFIG)
    forecast = predict(dataset, CONFIG, train(dataset, CONFIG).document)
    values = forecast[["p10", "p50", "p90", "mean"]].to_numpy(dtype=float)
    assert len(forecast) and np.isfinite(values).all()


def test_a_horizon_past_the_last_day_pandas_holds_is_refused_saying_so() -> None:
    config = ForecastConfig(frequency="1Y", horizon=4, n_jobs=1)
    frame = series_frame("YS", 40, start="2220-01-01")  # history to 2259, horizon to 2263
    with pytest.raises(ForecastInputError, match="from 2259-01-01 ends after 2262-04-11"):
        load_dataset(frame, config)


def test_items_with_neither_history_nor_metadata_are_reported_skipped() -> None:
    """AWS forecasts no item it has nothing to learn from; the job says which it left out
    (``candidates.json``'s ``skipped_items``, the run's ledger) instead of only logging it."""
    frame = automl_frame().drop(columns=["category"])
    ghost = frame[frame["item_id"] == "I3"].assign(item_id="ghost", demand="")
    dataset = load_dataset(pd.concat([frame, ghost], ignore_index=True), CONFIG)
    assert dataset.skipped == ["ghost"] and dataset.cold == []
    result = train(dataset, CONFIG)
    assert result.skipped == ["ghost"]
    assert "ghost" not in set(predict(dataset, CONFIG, result.document)["item_id"])


def test_horizon_beyond_a_quarter_of_the_history_is_refused() -> None:
    config = ForecastConfig(frequency="D", horizon=40, n_jobs=1)
    with pytest.raises(ForecastInputError, match="more than a quarter"):
        load_dataset(automl_frame(days=120, horizon=40), config)


# ----------------------------------------------------------------------- through the API
def embedded_only(world: World) -> None:
    if world.kind != "embedded":
        pytest.skip("the forecaster runs inside the embedded world only; the unit tests above "
                    "cover it without an endpoint")  # fmt: skip


def _setup(aws: World) -> tuple[str, str]:
    s3, iam = aws.client("s3"), aws.client("iam")
    location = {} if aws.region == "us-east-1" else {"LocationConstraint": aws.region}
    s3.create_bucket(
        Bucket="fc-test", **({"CreateBucketConfiguration": location} if location else {})
    )
    body = automl_frame().to_csv(index=False).encode()
    s3.put_object(Bucket="fc-test", Key="in/part-0.csv", Body=body)
    role = iam.create_role(RoleName="sm", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    return "s3://fc-test/in/", role


def _job_request(name: str, uri: str, role: str, **config) -> dict:
    return {
        "AutoMLJobName": name,
        "AutoMLJobInputDataConfig": [
            {"ChannelType": "training", "ContentType": "text/csv;header=present",
             "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}}}
        ],
        "OutputDataConfig": {"S3OutputPath": "s3://fc-test/out/"},
        "AutoMLProblemTypeConfig": {"TimeSeriesForecastingJobConfig": {
            "ForecastFrequency": "D", "ForecastHorizon": HORIZON,
            "ForecastQuantiles": ["p10", "p50", "p90"],
            "TimeSeriesConfig": {"TargetAttributeName": "demand",
                                 "TimestampAttributeName": "timestamp",
                                 "ItemIdentifierAttributeName": "item_id"},
            **config,
        }},
        "RoleArn": role,
    }  # fmt: skip


def _wait(call, key: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        out = call()
        if out[key] not in ("InProgress", "Stopping"):
            return out
        assert time.monotonic() < deadline, f"still {out[key]}"
        time.sleep(0.2)


def test_automl_job_model_and_transform_through_boto3(aws: World) -> None:
    embedded_only(aws)
    uri, role = _setup(aws)
    sm, s3 = aws.client("sagemaker"), aws.client("s3")
    sm.create_auto_ml_job_v2(**_job_request("fc-job", uri, role))
    job = _wait(lambda: sm.describe_auto_ml_job_v2(AutoMLJobName="fc-job"), "AutoMLJobStatus")
    assert job["AutoMLJobStatus"] == "Completed", job.get("FailureReason")
    assert job["AutoMLProblemTypeConfigName"] == "TimeSeriesForecasting"
    assert "DataSplitConfig" not in job  # must not be set for time series: none to report
    assert "AutoMLJobArtifacts" not in job  # no notebooks, and no placeholder paths to them
    best = job["BestCandidate"]
    names = {m["MetricName"] for m in best["CandidateProperties"]["CandidateMetrics"]}
    assert {"AverageWeightedQuantileLoss", "WAPE", "RMSE", "MASE"} <= names
    backtest = best["CandidateProperties"]["CandidateArtifactLocations"]["BacktestResults"]
    bucket, _, prefix = backtest[5:].partition("/")
    accuracy = json.loads(
        s3.get_object(Bucket=bucket, Key=f"{prefix}/accuracy-metrics.json")["Body"].read()
    )
    objective = best["FinalAutoMLJobObjectiveMetric"]["Value"]
    summary = accuracy["PredictorEvaluationResults"][0]["TestWindows"][0]["Metrics"]
    assert summary["AverageWeightedQuantileLoss"] == pytest.approx(objective)
    # ListCandidatesForAutoMLJob: the one candidate, as the job describes it
    assert sm.list_candidates_for_auto_ml_job(AutoMLJobName="fc-job")["Candidates"] == [best]
    for unmatched in ({"StatusEquals": "Failed"}, {"CandidateNameEquals": "another"}):
        listed = sm.list_candidates_for_auto_ml_job(AutoMLJobName="fc-job", **unmatched)
        assert listed["Candidates"] == []
    with pytest.raises(ClientError) as unknown:
        sm.list_candidates_for_auto_ml_job(AutoMLJobName="fc-none")
    assert unknown.value.response["Error"]["Code"] == "ResourceNotFound"
    # V1's describe: AWS refuses a job CreateAutoMLJobV2 made, and so does the world
    with pytest.raises(ClientError) as v1:
        sm.describe_auto_ml_job(AutoMLJobName="fc-job")
    assert v1.value.response["Error"]["Code"] == "ValidationException"
    assert "cannot be described by DescribeAutoMLJob" in v1.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as unknown:
        sm.describe_auto_ml_job(AutoMLJobName="fc-none")
    assert unknown.value.response["Error"]["Code"] == "ResourceNotFound"

    sm.create_model(
        ModelName="fc-job", ExecutionRoleArn=role, Containers=best["InferenceContainers"]
    )
    model = sm.describe_model(ModelName="fc-job")
    assert model["Containers"] == best["InferenceContainers"]
    # AWS leaves out what the request did: no empty VpcConfig (whose fields are required)
    assert "VpcConfig" not in model and "PrimaryContainer" not in model
    vpc = {"SecurityGroupIds": ["sg-0123456789abcdef0"], "Subnets": ["subnet-0123456789abcdef0"]}
    sm.create_model(ModelName="fc-vpc", ExecutionRoleArn=role, VpcConfig=vpc,
                    PrimaryContainer=best["InferenceContainers"][0])  # fmt: skip
    given = sm.describe_model(ModelName="fc-vpc")
    assert given["VpcConfig"] == vpc and given["PrimaryContainer"] == best["InferenceContainers"][0]
    transform = {
        "TransformJobName": "fc-job",
        "ModelName": "fc-job",
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                            "S3Uri": uri}}},
        "TransformOutput": {"S3OutputPath": "s3://fc-test/transform/"},
        "TransformResources": {"InstanceType": "ml.m5.4xlarge", "InstanceCount": 1},
    }  # fmt: skip
    sm.create_transform_job(**transform)
    done = _wait(lambda: sm.describe_transform_job(TransformJobName="fc-job"),
                 "TransformJobStatus")  # fmt: skip
    assert done["TransformJobStatus"] == "Completed", done.get("FailureReason")
    out = s3.get_object(Bucket="fc-test", Key="transform/part-0.csv.out")["Body"].read()
    rows = pd.read_csv(io.BytesIO(out))
    assert list(rows.columns) == ["item_id", "timestamp", "p10", "p50", "p90", "mean"]
    assert len(rows) == 4 * HORIZON
    with pytest.raises(ClientError) as refused:
        sm.create_transform_job(**transform)
    assert refused.value.response["Error"]["Code"] in ("ResourceInUse", "ResourceInUseException")
    # the same model on a real-time endpoint: the same input gives the same forecast
    sm.create_endpoint_config(EndpointConfigName="fc-job", ProductionVariants=[
        {"VariantName": "forecaster", "ModelName": "fc-job", "InitialInstanceCount": 1,
         "InstanceType": "ml.m5.xlarge"}])  # fmt: skip
    sm.create_endpoint(EndpointName="fc-job", EndpointConfigName="fc-job")
    for described in (sm.describe_endpoint_config(EndpointConfigName="fc-job"),
                      sm.describe_endpoint(EndpointName="fc-job")):  # fmt: skip
        assert "DataCaptureConfig" not in described  # none asked for: no empty placeholder
    runtime = aws.client("sagemaker-runtime")
    history = s3.get_object(Bucket="fc-test", Key="in/part-0.csv")["Body"].read()
    answer = runtime.invoke_endpoint(EndpointName="fc-job", ContentType="text/csv", Body=history)
    assert answer["ContentType"] == "text/csv"
    assert answer["InvokedProductionVariant"] == "forecaster"
    assert answer["Body"].read() == out
    fewer = b"\n".join(line for line in history.splitlines() if not line.startswith(b"I0,"))
    answer = runtime.invoke_endpoint(EndpointName="fc-job", Body=fewer)  # text/csv by default
    assert set(pd.read_csv(answer["Body"])["item_id"]) == set(rows["item_id"]) - {"I0"}
    for call, code, said in (
        ({"EndpointName": "fc-none"}, "ValidationError", "Endpoint fc-none of account "),
        ({"EndpointName": "fc-job", "ContentType": "application/json"}, "ModelError",
         "ContentType 'application/json' is not supported"),
        ({"EndpointName": "fc-job", "Body": b"item_id,timestamp\nI0,2020-01-01\n"},
         "ModelError", "Received client error (400) from primary with message"),
    ):  # fmt: skip
        with pytest.raises(ClientError) as failed:
            runtime.invoke_endpoint(**{"Body": history, **call})
        assert failed.value.response["Error"]["Code"] == code
        assert said in failed.value.response["Error"]["Message"]
    # a model an earlier version trained is refused by name, not misread
    url = next(c["ModelDataUrl"] for c in best["InferenceContainers"] if c.get("ModelDataUrl"))
    bucket, _, key = url[5:].partition("/")
    document = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    document["format"] = "dfp-local-forecaster/3"
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(document).encode())
    sm.create_transform_job(**{**transform, "TransformJobName": "fc-old"})
    old = _wait(lambda: sm.describe_transform_job(TransformJobName="fc-old"), "TransformJobStatus")
    assert old["TransformJobStatus"] == "Failed"
    assert "is a 'dfp-local-forecaster/3' model, this forecaster reads" in old["FailureReason"]


def test_model_deploy_config_deploys_the_best_candidate_to_a_live_endpoint(aws: World) -> None:
    """``ModelDeployConfig``: once trained, the best candidate serves on the endpoint named (or
    ``<job>-endpoint``), which ``ModelDeployResult`` names and ``InvokeEndpoint`` forecasts on.
    What AWS refuses is refused at once, and nothing is created."""
    embedded_only(aws)
    uri, role = _setup(aws)
    sm, runtime = aws.client("sagemaker"), aws.client("sagemaker-runtime")
    for config, said in (
        ({"AutoGenerateEndpointName": True, "EndpointName": "x"}, "if and only if"),
        ({"AutoGenerateEndpointName": False}, "if and only if"),
    ):
        with pytest.raises(ClientError) as refused:
            sm.create_auto_ml_job_v2(**_job_request("fc-nodeploy", uri, role),
                                     ModelDeployConfig=config)  # fmt: skip
        assert refused.value.response["Error"]["Code"] == "ValidationException"
        assert said in refused.value.response["Error"]["Message"]
    names = [j["AutoMLJobName"] for j in sm.list_auto_ml_jobs()["AutoMLJobSummaries"]]
    assert "fc-nodeploy" not in names
    history = aws.client("s3").get_object(Bucket="fc-test", Key="in/part-0.csv")["Body"].read()
    for job, config, endpoint in (
        ("fc-named", {"EndpointName": "fc-live"}, "fc-live"),
        ("fc-auto", {"AutoGenerateEndpointName": True}, "fc-auto-endpoint"),
    ):
        sm.create_auto_ml_job_v2(**_job_request(job, uri, role), ModelDeployConfig=config)
        done = _wait(lambda j=job: sm.describe_auto_ml_job_v2(AutoMLJobName=j), "AutoMLJobStatus")
        assert (done["AutoMLJobStatus"], done["AutoMLJobSecondaryStatus"]) == (
            "Completed", "Completed"), done.get("FailureReason")  # fmt: skip
        assert done["ModelDeployConfig"] == config
        assert done["ModelDeployResult"] == {"EndpointName": endpoint}
        assert sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "InService"
        answer = pd.read_csv(runtime.invoke_endpoint(EndpointName=endpoint, Body=history)["Body"])
        assert list(answer.columns) == ["item_id", "timestamp", "p10", "p50", "p90", "mean"]
        assert len(answer) == answer["item_id"].nunique() * HORIZON
    with pytest.raises(ClientError) as taken:  # the endpoint is there now
        sm.create_auto_ml_job_v2(**_job_request("fc-again", uri, role),
                                 ModelDeployConfig={"EndpointName": "fc-live"})  # fmt: skip
    assert "endpoint 'fc-live' already exists" in taken.value.response["Error"]["Message"]
    # a name the deployment needs is taken by then: the job fails as a deployment error
    other = [{"Image": "another", "ModelDataUrl": "s3://fc-test/x"}]
    sm.create_model(ModelName="fc-clash-model", ExecutionRoleArn=role, Containers=other)
    sm.create_auto_ml_job_v2(**_job_request("fc-clash", uri, role),
                             ModelDeployConfig={"AutoGenerateEndpointName": True})  # fmt: skip
    failed = _wait(lambda: sm.describe_auto_ml_job_v2(AutoMLJobName="fc-clash"), "AutoMLJobStatus")
    assert (failed["AutoMLJobStatus"], failed["AutoMLJobSecondaryStatus"]) == (
        "Failed", "ModelDeploymentError")  # fmt: skip
    assert "the model 'fc-clash-model' already exists" in failed["FailureReason"]
    assert "ModelDeployResult" not in failed and "BestCandidate" in failed


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """:func:`automl_frame`'s text as the types a data frame written to Parquet has."""
    return frame.assign(
        timestamp=pd.to_datetime(frame["timestamp"]),
        demand=pd.to_numeric(frame["demand"]),  # the horizon's rows: NaN
        price=frame["price"].astype(float),
        promotion_applied=frame["promotion_applied"].astype("int64"),
        category=frame["category"].astype("category"),  # a dictionary column
    )


def _put_parquet(s3, key: str, frame: pd.DataFrame) -> None:
    body = io.BytesIO()
    frame.to_parquet(body, index=False)
    s3.put_object(Bucket="fc-test", Key=key, Body=body.getvalue())


def test_a_parquet_input_is_read_as_its_csv_is(aws: World) -> None:
    """AutoML V2 takes a time series as CSV or Parquet (``ContentType``): the same data in
    either is the same dataset, whatever the Parquet types (timestamps, NaN, integers, a
    dictionary column) and however many objects the prefix holds (a writer's ``_SUCCESS``
    marker is not one)."""
    from emulation.sagemaker import PARQUET, read_input

    _setup(aws)
    s3 = aws.client("s3")
    frame = automl_frame()
    half = frame["item_id"].isin(["I0", "I1"])
    _put_parquet(s3, "pq/part-0.parquet", _typed(frame[half]))
    _put_parquet(s3, "pq/part-1.parquet", _typed(frame[~half]))
    s3.put_object(Bucket="fc-test", Key="pq/_SUCCESS", Body=b"")
    text, name = read_input(s3, "s3://fc-test/pq/", PARQUET)
    assert name == "part-0.parquet"
    assert list(text.columns) == list(frame.columns)
    assert text.loc[text["demand"] != "", "timestamp"].iloc[0] == "2025-01-01 00:00:00"
    mine, theirs = load_dataset(text, CONFIG), load_dataset(frame, CONFIG)
    pd.testing.assert_frame_equal(mine.history, theirs.history)
    pd.testing.assert_frame_equal(mine.future, theirs.future)
    pd.testing.assert_frame_equal(mine.metadata, theirs.metadata)


@pytest.mark.parametrize(
    ("column", "message"),
    [
        (
            pd.Series(pd.to_datetime(["2025-01-01"] * 3).tz_localize("Europe/Berlin")),
            "column 'timestamp' holds timestamps in time zone Europe/Berlin",
        ),
        (
            pd.Series(pd.Timestamp("2025-01-01") + pd.to_timedelta([0, 0.5, 86400], unit="s")),
            r"column 'timestamp' has a timestamp with a fraction of a second \(data row 2: "
            r"2025-01-01 00:00:00.500000\)",
        ),
        (pd.Series([[1], [2], [3]]), "column 'timestamp' is of Parquet type list<element: int64>"),
    ],
    ids=["zone", "fraction", "list"],
)
def test_parquet_values_that_have_no_automl_text_are_refused_naming_them(
    aws: World, column: pd.Series, message: str
) -> None:
    from emulation.sagemaker import PARQUET, read_input

    _setup(aws)
    s3 = aws.client("s3")
    frame = pd.DataFrame({"item_id": ["A", "A", "A"], "timestamp": column, "demand": [1, 2, 3]})
    _put_parquet(s3, "bad/part-0.parquet", frame)
    with pytest.raises(ForecastInputError, match=f"s3://fc-test/bad/part-0.parquet: {message}"):
        read_input(s3, "s3://fc-test/bad/", PARQUET)
    # CSV bytes under the Parquet content type: named, not misread
    with pytest.raises(ForecastInputError, match=r"in/part-0.csv is not Parquet"):
        read_input(s3, "s3://fc-test/in/", PARQUET)


def test_a_column_named_twice_is_refused_naming_it(aws: World) -> None:
    """Not renamed ``demand.1`` by pandas and forecast with as a related series."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from emulation.sagemaker import CSV, PARQUET, read_input

    _setup(aws)
    s3 = aws.client("s3")
    text = automl_frame().to_csv(index=False).replace("price,", "demand,", 1)
    s3.put_object(Bucket="fc-test", Key="twice/part-0.csv", Body=text.encode())
    with pytest.raises(ForecastInputError, match=r"twice/part-0.csv names the column 'demand' tw"):
        read_input(s3, "s3://fc-test/twice/", CSV)
    body = io.BytesIO()
    pq.write_table(pa.table([[1], [2]], names=["demand", "demand"]), body)
    s3.put_object(Bucket="fc-test", Key="twice-pq/part-0.parquet", Body=body.getvalue())
    with pytest.raises(ForecastInputError, match=r"part-0.parquet names the column 'demand' tw"):
        read_input(s3, "s3://fc-test/twice-pq/", PARQUET)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # pandas would shift every value one column left (the first field read as a row label)
        (b"item_id,timestamp,demand\nA,2025-01-01,3,4\n",
         "ragged/part-0.csv line 2 has 4 fields, the header has 3: 'A,2025-01-01,3,4'"),
        # ... and read a field short as an empty target, a future row; blank lines are let be
        (b"item_id,timestamp,demand\r\nA,2025-01-01,3\r\n\r\nA,2025-01-02\r\n",
         "ragged/part-0.csv line 4 has 2 fields, the header has 3: 'A,2025-01-02'"),
        # a quoted field over two lines is one record: the line counted is where it ends
        (b'item_id,timestamp,demand\n"A\nB",2025-01-01,3\nA,2025-01-02,3,\n',
         "ragged/part-0.csv line 4 has 4 fields"),
        (b"\xff\xfei\x00t\x00e\x00m\x00", r"ragged/part-0.csv is not UTF-8 text \(byte 0"),
    ],
    ids=["field-more", "field-less", "quoted-newline", "utf-16"],
)  # fmt: skip
def test_a_csv_not_read_as_written_is_refused_naming_object_and_line(aws: World, body,
                                                                     message) -> None:  # fmt: skip
    from emulation.sagemaker import CSV, read_input

    _setup(aws)
    s3 = aws.client("s3")
    s3.put_object(Bucket="fc-test", Key="ragged/part-0.csv", Body=body)
    with pytest.raises(ForecastInputError, match=message):
        read_input(s3, "s3://fc-test/ragged/", CSV)


def test_a_bad_value_is_named_by_its_object_and_data_row(aws: World) -> None:
    """A prefix's objects are one table to the job; an error names the object a user can open
    and the row in it, not a position in the concatenation. A UTF-8 byte-order mark (Excel's
    CSV) is not part of the first column's name."""
    from emulation.sagemaker import CSV, read_input

    _setup(aws)
    s3 = aws.client("s3")
    frame = automl_frame()
    first, second = frame.iloc[:100], frame.iloc[100:].reset_index(drop=True)
    second.loc[7, "demand"] = "n/a"
    s3.put_object(Bucket="fc-test", Key="two/part-0.csv",
                  Body=b"\xef\xbb\xbf" + first.to_csv(index=False).encode())  # fmt: skip
    s3.put_object(Bucket="fc-test", Key="two/part-1.csv", Body=second.to_csv(index=False).encode())
    text, _ = read_input(s3, "s3://fc-test/two/", CSV)
    assert list(text.columns) == list(frame.columns)
    with pytest.raises(ForecastInputError, match=re.escape(
            "non-numeric value 'n/a' (s3://fc-test/two/part-1.csv data row 8)")):  # fmt: skip
        load_dataset(text, CONFIG)


def test_a_parquet_job_forecasts_through_boto3(aws: World) -> None:
    embedded_only(aws)
    _, role = _setup(aws)
    sm, s3 = aws.client("sagemaker"), aws.client("s3")
    _put_parquet(s3, "pq/data.parquet", _typed(automl_frame()))
    request = _job_request("fc-parquet", "s3://fc-test/pq/", role)
    request["AutoMLJobInputDataConfig"][0]["ContentType"] = "x-application/vnd.amazon+parquet"
    sm.create_auto_ml_job_v2(**request)
    job = _wait(lambda: sm.describe_auto_ml_job_v2(AutoMLJobName="fc-parquet"),
                "AutoMLJobStatus")  # fmt: skip
    assert job["AutoMLJobStatus"] == "Completed", job.get("FailureReason")
    forecast = job["BestCandidate"]["CandidateProperties"]["CandidateArtifactLocations"]
    bucket, _, prefix = forecast["BacktestResults"][5:].partition("/")
    key = f"{prefix}/forecasted-values/part-00000.csv"
    backtest = pd.read_csv(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
    assert set(backtest["item_id"]) == {"I0", "I1", "I2", "I3"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ContentType": "text/csv"}, "ContentType 'text/csv' is not one the time-series"),
        ({"ContentType": "application/json"}, "ContentType 'application/json' is not one"),
        ({"CompressionType": "Gzip"}, "CompressionType 'Gzip' is allowed for tabular data only"),
        (
            {
                "DataSource": {
                    "S3DataSource": {"S3DataType": "ManifestFile", "S3Uri": "s3://fc-test/in/"}
                }
            },
            "S3DataType 'ManifestFile' is not supported for the time-series",
        ),
        ({"ChannelType": "validation"}, "a validation channel is not taken"),
        ({"second": True}, "has 2 training channels; a time-series job takes one"),
        ({"split": True}, "DataSplitConfig must not be set for the time-series"),
    ],
    ids=["csv-without-header", "json", "gzip", "manifest", "validation", "two", "split"],
)
def test_an_input_channel_a_time_series_job_cannot_take_is_a_validation_error(
    aws: World, change: dict, message: str
) -> None:
    embedded_only(aws)
    uri, role = _setup(aws)
    request = _job_request("fc-channel", uri, role)
    channel = request["AutoMLJobInputDataConfig"][0]
    if change.pop("second", False):
        request["AutoMLJobInputDataConfig"].append(dict(channel))
    if change.pop("split", False):
        request["DataSplitConfig"] = {"ValidationFraction": 0.2}
    channel.update(change)
    sm = aws.client("sagemaker")
    with pytest.raises(ClientError, match=message) as refused:
        sm.create_auto_ml_job_v2(**request)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert not sm.list_auto_ml_jobs()["AutoMLJobSummaries"]  # nothing was created


def test_a_training_job_says_what_step_it_is_at_until_it_ends(aws: World) -> None:
    """``training_steps``: what a progress display shows of a long forecast."""
    from emulation.sagemaker import training_steps

    embedded_only(aws)
    uri, role = _setup(aws)
    sm = aws.client("sagemaker")
    sm.create_auto_ml_job_v2(**_job_request("fc-steps", uri, role))
    seen = set()
    while sm.describe_auto_ml_job_v2(AutoMLJobName="fc-steps")["AutoMLJobStatus"] == "InProgress":
        seen.add(training_steps().get("fc-steps"))
        time.sleep(0.01)
    assert any(step and step.startswith("backtesting ") for step in seen), seen
    assert "fc-steps" not in training_steps()  # ended: no step left behind


def test_bad_input_fails_the_job_with_the_reason(aws: World) -> None:
    embedded_only(aws)
    uri, role = _setup(aws)
    s3, sm = aws.client("s3"), aws.client("sagemaker")
    broken = automl_frame()
    broken = broken[~((broken["item_id"] == "I3") & (broken["demand"] == ""))]
    s3.put_object(Bucket="fc-test", Key="in/part-0.csv", Body=broken.to_csv(index=False).encode())
    sm.create_auto_ml_job_v2(**_job_request("fc-bad", uri, role))
    job = _wait(lambda: sm.describe_auto_ml_job_v2(AutoMLJobName="fc-bad"), "AutoMLJobStatus")
    assert job["AutoMLJobStatus"] == "Failed"
    assert "does not cover the forecast horizon for item 'I3'" in job["FailureReason"]
    assert "BestCandidate" not in job


def test_unknown_frequency_is_a_validation_error(aws: World) -> None:
    embedded_only(aws)
    uri, role = _setup(aws)
    request = _job_request("fc-freq", uri, role)
    request["AutoMLProblemTypeConfig"]["TimeSeriesForecastingJobConfig"]["ForecastFrequency"] = "Q"
    with pytest.raises(ClientError, match=r"Value 'Q' at .*forecastFrequency' failed to satisfy"):
        aws.client("sagemaker").create_auto_ml_job_v2(**request)
    request["AutoMLJobName"] = "fc-algo"
    request["AutoMLProblemTypeConfig"]["TimeSeriesForecastingJobConfig"].update(
        ForecastFrequency="D",
        CandidateGenerationConfig={"AlgorithmsConfig": [{"AutoMLAlgorithms": ["prophet"]}]},
    )
    with pytest.raises(ClientError, match="'prophet' has no local counterpart"):
        aws.client("sagemaker").create_auto_ml_job_v2(**request)


def test_grouping_attributes_make_one_series_per_item_and_store() -> None:
    from emulation.sagemaker.forecaster import split_series

    base = automl_frame(items=2, sparse=0)
    stores = []
    for store, scale in (("A", 1.0), ("B", 10.0)):
        part = base.assign(store_id=store, region="r1" if store == "A" else "r2")
        known = part["demand"] != ""
        part.loc[known, "demand"] = (part.loc[known, "demand"].astype(float) * scale).map(
            lambda v: f"{v:g}"
        )
        stores.append(part)
    frame = pd.concat(stores, ignore_index=True)
    frame = frame[["item_id", "store_id", *[c for c in frame if c not in ("item_id", "store_id")]]]
    config = ForecastConfig(frequency="D", horizon=HORIZON, n_jobs=1, grouping=("store_id",))
    dataset = load_dataset(frame, config)
    assert dataset.history["unique_id"].nunique() == 4  # 2 items x 2 stores
    result = train(dataset, config)
    forecast = split_series(predict(dataset, config, result.document), "item_id", ("store_id",))
    assert list(forecast.columns[:3]) == ["item_id", "store_id", "timestamp"]
    assert len(forecast) == 4 * HORIZON
    level = forecast.groupby("store_id")["p50"].mean()
    assert level["B"] > 5 * level["A"]  # each store's own level, not a pooled one
    backtest = split_series(result.backtest, "item_id", ("store_id",))
    assert set(zip(backtest["item_id"], backtest["store_id"], strict=True)) == {
        ("I0", "A"), ("I0", "B"), ("I1", "A"), ("I1", "B")}  # fmt: skip
    # Without grouping the same rows are two items with two values per day: summed.
    pooled = load_dataset(frame.drop(columns=["store_id"]), CONFIG)
    assert pooled.history["unique_id"].nunique() == 2
    blank = frame.copy()
    blank.loc[5, "store_id"] = ""
    with pytest.raises(ForecastInputError, match="grouping attribute 'store_id' is empty in 1"):
        load_dataset(blank, config)
    no_item = frame.copy()
    no_item.loc[3, "item_id"] = ""  # the store alone must not make it a series id
    with pytest.raises(ForecastInputError, match="item id column 'item_id' is empty in 1"):
        load_dataset(no_item, config)
    with pytest.raises(ForecastInputError, match="no column 'store_id' named in"):
        load_dataset(frame.drop(columns=["store_id"]), config)


@pytest.mark.parametrize(
    ("grouping", "message"),
    [([], "1-5 column names"), (["a", "b", "c", "d", "e", "f"], "1-5 column names"),
     (["item_id"], "twice or as the target"), (["s", "s"], "twice or as the target"),
     ("store_id", "1-5 column names")],
)  # fmt: skip
def test_grouping_attribute_names_are_checked_as_aws_checks_them(grouping, message) -> None:
    from emulation.sagemaker import job_config

    problem = _job_request("x", "s3://b/", "r")["AutoMLProblemTypeConfig"][
        "TimeSeriesForecastingJobConfig"
    ]
    good = {**problem, "TimeSeriesConfig": {**problem["TimeSeriesConfig"],
                                            "GroupingAttributeNames": ["store_id"]}}  # fmt: skip
    assert job_config(good, 1, 1).grouping == ("store_id",)
    bad = {**problem, "TimeSeriesConfig": {**problem["TimeSeriesConfig"],
                                           "GroupingAttributeNames": grouping}}  # fmt: skip
    with pytest.raises(ForecastInputError, match=message):
        job_config(bad, 1, 1)


# ------------------------------------------------------- the objective and the completion criteria
def test_the_objective_decides_which_errors_the_weights_shun() -> None:
    # A misses rarely but by much, B always by a little: absolute errors favour A, squared B.
    y = np.full(10, 100.0)
    errors = np.column_stack([[0.0] * 9 + [10.0], [2.0] * 10])

    def weights(objective: str) -> dict[str, float]:
        losses = pd.DataFrame(row_losses(objective, errors, y), columns=["A", "B"])
        return weights_from(losses, ["A", "B"], objective)

    assert weights("WAPE")["A"] == pytest.approx(2 / 3)  # inverse MAE: 1 against 2
    assert weights("RMSE")["B"] == pytest.approx(0.5 / (0.5 + 1 / np.sqrt(10)))  # RMSE 2, √10
    # MAPE weighs each error by its actual: the same miss costs ten times more on a tenth of it
    small = np.array([10.0] * 5 + [100.0] * 5)
    misses = np.column_stack([[5.0] * 5 + [0.0] * 5, [0.0] * 5 + [5.0] * 5])
    mape = pd.DataFrame(row_losses("MAPE", misses, small), columns=["A", "B"])
    assert weights_from(mape, ["A", "B"], "MAPE")["B"] == pytest.approx(10 / 11)
    assert row_losses("MAPE", np.array([3.0]), np.array([0.0]))[0] == 0.0  # MAPE leaves 0 out
    scaled = row_losses("MASE", np.array([4.0, 4.0]), np.array([1.0, 1.0]), np.array([2.0, 4.0]))
    assert list(scaled) == [2.0, 1.0]


def test_stacking_for_rmse_finds_the_least_squares_combination() -> None:
    rng = np.random.default_rng(7)
    a, b, noise = rng.normal(50, 10, 400), rng.normal(20, 5, 400), rng.normal(0, 30, 400)
    rows = pd.DataFrame({"unique_id": np.repeat(["X", "Y"], 200), "y": 0.7 * a + 0.3 * b,
                         "A": a, "B": b, "C": 0.7 * a + 0.3 * b + noise})  # fmt: skip
    weights = stacked_weights(rows, ["A", "B", "C"], {"X": 1.0, "Y": 2.0}, "RMSE")
    assert weights["A"] == pytest.approx(0.7, abs=1e-4)
    assert weights["B"] == pytest.approx(0.3, abs=1e-4)
    assert weights.get("C", 0.0) < 1e-4


def test_every_time_series_objective_trains_and_is_the_one_the_ensemble_lowers() -> None:
    dataset = load_dataset(automl_frame(), CONFIG)
    seen = {}
    for objective in training.OBJECTIVES:
        messages: list[str] = []
        result = train(dataset, replace(CONFIG, objective=objective), progress=messages.append)
        ensemble = result.document["ensemble"]
        assert ensemble["method"] == min(ensemble["selection_errors"],
                                         key=ensemble["selection_errors"].get)  # fmt: skip
        assert any(f"{objective} losses on the latest selection window" in m for m in messages)
        seen[objective] = ensemble["selection_errors"]["inverse"]
    # the default and MASE score alike (scaled absolute errors); the others score otherwise
    assert seen["MASE"] == seen["AverageWeightedQuantileLoss"]
    assert len({round(v, 6) for v in seen.values()}) == 4


@pytest.mark.parametrize(
    ("objective", "message"),
    [({"MetricName": "Accuracy"}, "'Accuracy' is not a time-series forecasting metric"),
     ({"MetricName": "wQL"}, "Value 'wQL' at 'autoMLJobObjective.metricName' failed to satisfy"),
     ({}, "Value None at 'autoMLJobObjective.metricName'")],
)  # fmt: skip
def test_an_objective_a_time_series_job_cannot_take_is_refused(objective, message) -> None:
    assert check_objective(None) == "AverageWeightedQuantileLoss"  # AWS's default
    assert all(check_objective({"MetricName": name}) == name for name in training.OBJECTIVES)
    with pytest.raises(ForecastInputError, match=message):
        check_objective(objective)


@pytest.mark.parametrize(
    "labels",
    [["p2.5"], ["p05"], ["mean", "p50"], ["50"], ["p0"], ["p100"], ["P50"], [50], [],
     ["p10", "p20", "p30", "p40", "p50", "p60"]],
    ids=["decimal", "leading-zero", "mean", "no-p", "p0", "p100", "capital", "number", "none",
         "six"],
)  # fmt: skip
def test_quantiles_aws_refuses_are_refused_with_its_message(labels) -> None:
    assert parse_quantiles(None) == (0.1, 0.5, 0.9)  # AWS's default
    assert parse_quantiles(["p90", "p1", "p99", "p50"]) == (0.01, 0.5, 0.9, 0.99)
    with pytest.raises(ForecastInputError, match=re.escape(
            "at 'autoMLProblemTypeConfig.timeSeriesForecastingJobConfig.forecastQuantiles' "
            "failed to satisfy constraint")):  # fmt: skip
        parse_quantiles(labels)


@pytest.mark.parametrize(
    ("criteria", "message"),
    [({"MaxCandidates": 2}, "MaxCandidates 2 is not supported for time-series"),
     ({"MaxAutoMLJobRuntimeInSeconds": 0}, "completionCriteria.maxAutoMLJobRuntimeInSeconds' "
                                           "failed to satisfy"),
     ({"MaxRuntimePerTrainingJobInSeconds": "60"}, "Value '60' at"),
     ({"MaxAutoMLJobRuntimeInSeconds": 60, "MaxRuntimePerTrainingJobInSeconds": 120},
      "MaxAutoMLJobRuntimeInSeconds 60 must be equal to or greater than")],
)  # fmt: skip
def test_completion_criteria_are_checked_as_aws_checks_them(criteria, message) -> None:
    limits = check_completion_criteria({"MaxCandidates": 1, "MaxAutoMLJobRuntimeInSeconds": 90,
                                        "MaxRuntimePerTrainingJobInSeconds": 60})  # fmt: skip
    assert limits.first == ("MaxRuntimePerTrainingJobInSeconds", 60)
    assert check_completion_criteria(None).first is None
    with pytest.raises(ForecastInputError, match=message):
        check_completion_criteria(criteria)


def _objects(aws: World, prefix: str) -> list[str]:
    listed = aws.client("s3").list_objects_v2(Bucket="fc-test", Prefix=prefix)
    return [o["Key"] for o in listed.get("Contents", [])]


def test_the_jobs_objective_is_its_final_metric_and_a_bad_one_is_refused(aws: World) -> None:
    embedded_only(aws)
    uri, role = _setup(aws)
    sm = aws.client("sagemaker")
    sm.create_auto_ml_job_v2(**_job_request("fc-mase", uri, role),
                             AutoMLJobObjective={"MetricName": "MASE"})  # fmt: skip
    job = _wait(lambda: sm.describe_auto_ml_job_v2(AutoMLJobName="fc-mase"), "AutoMLJobStatus")
    assert job["AutoMLJobStatus"] == "Completed", job.get("FailureReason")
    final = job["BestCandidate"]["FinalAutoMLJobObjectiveMetric"]
    insights = job["BestCandidate"]["CandidateProperties"]["CandidateArtifactLocations"]
    bucket, _, prefix = insights["ModelInsights"][5:].partition("/")
    body = aws.client("s3").get_object(Bucket=bucket, Key=f"{prefix}/candidates.json")["Body"]
    candidates = json.loads(body.read())
    assert (final["MetricName"], final["Type"]) == ("MASE", "Minimize")
    assert final["Value"] == pytest.approx(candidates["held_out"]["MASE"])
    assert candidates["objective"] == "MASE"
    assert candidates["skipped_items"] == []  # every item has history (or metadata)
    assert job["AutoMLJobObjective"] == {"MetricName": "MASE"}
    for name, extra in (("fc-acc", {"AutoMLJobObjective": {"MetricName": "Accuracy"}}),
                        ("fc-many", {})):  # fmt: skip
        request = _job_request(name, uri, role, **(
            {} if extra else {"CompletionCriteria": {"MaxCandidates": 5}}))  # fmt: skip
        with pytest.raises(ClientError) as refused:
            sm.create_auto_ml_job_v2(**request, **extra)
        assert refused.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as refused:  # a quantile outside AWS's pattern, at once
        sm.create_auto_ml_job_v2(**_job_request("fc-q", uri, role, ForecastQuantiles=["p2.5"]))
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "'p2.5'" in refused.value.response["Error"]["Message"]
    listed = sm.list_auto_ml_jobs()["AutoMLJobSummaries"]
    assert not {"fc-acc", "fc-q"} & {j["AutoMLJobName"] for j in listed}


def test_a_stopped_job_ends_its_work_and_leaves_no_model(aws: World, monkeypatch) -> None:
    embedded_only(aws)
    import emulation.sagemaker as sagemaker_module

    uri, role = _setup(aws)
    sm = aws.client("sagemaker")
    training_started, steps = threading.Event(), []

    def slow_train(dataset, config, progress=None):  # a long training: a step every 50 ms
        training_started.set()
        for step in range(600):
            progress(f"step {step}")
            steps.append(step)
            time.sleep(0.05)
        raise AssertionError("the stop never reached the training")

    monkeypatch.setattr(sagemaker_module, "train", slow_train)
    sm.create_auto_ml_job_v2(**_job_request("fc-stop", uri, role))
    assert training_started.wait(30)
    sm.stop_auto_ml_job(AutoMLJobName="fc-stop")
    job = _wait(lambda: sm.describe_auto_ml_job_v2(AutoMLJobName="fc-stop"), "AutoMLJobStatus")
    assert (job["AutoMLJobStatus"], job["AutoMLJobSecondaryStatus"]) == ("Stopped", "Stopped")
    assert "BestCandidate" not in job and "EndTime" in job
    ended = len(steps)
    time.sleep(0.3)
    assert len(steps) == ended < 600  # the work ended at its next step
    assert _objects(aws, "out/fc-stop/") == []  # nothing written, no half a model
    summary = sm.list_auto_ml_jobs(NameContains="fc-stop")["AutoMLJobSummaries"][0]
    assert summary["AutoMLJobStatus"] == "Stopped"
    for status, listed in (("Stopped", ["fc-stop"]), ("InProgress", []), ("Completed", [])):
        found = sm.list_auto_ml_jobs(StatusEquals=status)["AutoMLJobSummaries"]
        assert [j["AutoMLJobName"] for j in found] == listed, status
    with pytest.raises(ClientError, match="is in status Stopped"):
        sm.stop_auto_ml_job(AutoMLJobName="fc-stop")


@pytest.mark.parametrize(
    ("criteria", "status", "secondary", "reason"),
    [({"MaxAutoMLJobRuntimeInSeconds": 1}, "Stopped", "MaxAutoMLJobRuntimeReached",
      "MaxAutoMLJobRuntimeInSeconds (1 s) before its candidate completed"),
     ({"MaxRuntimePerTrainingJobInSeconds": 1, "MaxAutoMLJobRuntimeInSeconds": 600}, "Failed",
      "Failed", "MaxRuntimePerTrainingJobInSeconds (1 s) without completing")],
)  # fmt: skip
def test_a_job_past_its_runtime_limit_ends_without_a_model(aws: World, criteria, status,
                                                           secondary, reason) -> None:  # fmt: skip
    embedded_only(aws)
    import emulation.sagemaker as sagemaker_module

    uri, role = _setup(aws)
    sm = aws.client("sagemaker")
    name = f"fc-limit-{status.lower()}"
    with sagemaker_module._work_lock:  # another job holds the cores: this one cannot finish
        began = time.monotonic()
        sm.create_auto_ml_job_v2(**_job_request(name, uri, role, CompletionCriteria=criteria))
        job = _wait(lambda: sm.describe_auto_ml_job_v2(AutoMLJobName=name), "AutoMLJobStatus",
                    timeout=30)  # fmt: skip
        assert time.monotonic() - began >= 1.0
    assert (job["AutoMLJobStatus"], job["AutoMLJobSecondaryStatus"]) == (status, secondary)
    assert reason in job["FailureReason"]
    assert "BestCandidate" not in job
    time.sleep(0.5)  # the job's thread has seen the stop and ended, writing nothing
    assert f"automl-{name}" not in sagemaker_module.background_jobs()
    assert _objects(aws, f"out/{name}/") == []


def test_a_hand_made_request_of_the_wrong_types_is_refused_naming_the_parameter(aws: World) -> None:
    """The SDKs check types on the client; a hand-made request does not. AWS refuses it naming
    the parameter, and so does the world, before any check reads a value as its type (a list
    where the holiday structure goes was a 500 from inside the check)."""
    embedded_only(aws)
    uri, role = _setup(aws)
    wrong = [
        ({"HolidayConfig": [None]}, r"Invalid type for parameter .*HolidayConfig\[0\]"),
        ({"ForecastQuantiles": True}, r"Invalid type for parameter .*ForecastQuantiles"),
        ({"Transformations": {"Filling": [[]]}}, r"Invalid type for parameter .*Filling"),
        ({"CandidateGenerationConfig": {"AlgorithmsConfig": [[None]]}},
         r"Invalid type for parameter .*AlgorithmsConfig\[0\]"),
        # an unknown member is dropped, as AWS's JSON reader drops it: then none is given
        ({"HolidayConfig": [{"Country": "US"}]}, r"HolidayConfig CountryCode None is not a"),
        ({"ForecastHorizon": [3]}, r"Invalid type for parameter .*ForecastHorizon"),
    ]  # fmt: skip
    for n, (config, message) in enumerate(wrong):
        request = _job_request(f"fc-wrong-{n}", uri, role, **config)
        status, answer = hand_made_request(aws, "sagemaker", "SageMaker.CreateAutoMLJobV2", request)
        assert status == 400, (config, status, answer)
        # moto's reader refuses some kinds (SerializationException), the job's check the rest
        assert answer["__type"] in ("SerializationException", "ValidationException"), answer
        assert re.search(message, answer["message"]), (config, answer["message"])
    request = _job_request("fc-wrong-channel", uri, role)
    request["AutoMLJobInputDataConfig"] = {"ChannelType": "training"}  # a list goes there
    status, answer = hand_made_request(aws, "sagemaker", "SageMaker.CreateAutoMLJobV2", request)
    assert status == 400 and answer["__type"] == "SerializationException", answer  # moto's reader
    assert "Invalid type for parameter AutoMLJobInputDataConfig" in answer["message"], answer
    sm = aws.client("sagemaker")
    assert sm.list_auto_ml_jobs()["AutoMLJobSummaries"] == []  # nothing made
    status, answer = hand_made_request(aws, "sagemaker", "SageMaker.CreateTransformJob", {
        "TransformJobName": "fc-wrong", "ModelName": "none", "TransformInput": ["s3://fc-test/in/"],
        "TransformOutput": {"S3OutputPath": "s3://fc-test/out/"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1}})  # fmt: skip
    assert status == 400 and "Invalid type for parameter TransformInput" in answer["message"]
    assert sm.list_transform_jobs()["TransformJobSummaries"] == []
    # A request of the right types still trains (the check reads moto's arguments as sent).
    sm.create_auto_ml_job_v2(**_job_request("fc-right", uri, role))
    job = _wait(lambda: sm.describe_auto_ml_job_v2(AutoMLJobName="fc-right"), "AutoMLJobStatus")
    assert job["AutoMLJobStatus"] == "Completed", job.get("FailureReason")


def test_a_long_backtest_shows_its_progress_in_parts_that_change_no_result(monkeypatch) -> None:
    """A backtest of many series runs in parts, each reported, so a long job shows it moving (50
    hourly series took 400 s as one silent step). The series are independent: the parts give the
    same forecasts, weights and metrics as one call over all of them."""
    assert backtest_batches([f"S{i}" for i in range(40)], 2) == [
        [f"S{i}" for i in range(k, min(k + 16, 40))] for k in (0, 16, 32)
    ]  # at least 8 series per worker
    assert [len(b) for b in backtest_batches([str(i) for i in range(1000)], 2)] == [100] * 10
    assert backtest_batches([], 2) == [[]]
    dataset = load_dataset(automl_frame(items=6, sparse=0), CONFIG)
    whole = train(dataset, CONFIG)
    monkeypatch.setattr(training, "BATCH_PER_WORKER", 1)  # parts of one series here
    messages: list[str] = []
    parts = train(dataset, CONFIG, progress=messages.append)
    shown = [m for m in messages if m.startswith("backtested ")]
    assert shown == [f"backtested {n} of 6 smooth series (season 7, 9 windows)" for n in
                     range(1, 6)]  # fmt: skip
    assert parts.weights == whole.weights
    assert parts.metrics == whole.metrics and parts.selection_metrics == whole.selection_metrics
    pd.testing.assert_frame_equal(parts.backtest, whole.backtest)
