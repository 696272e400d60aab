"""AWS accuracy metrics against values computed by hand (pooled over items, then over windows)."""

import math

import pandas as pd
import pytest

from pipeline.contracts.accuracy import (
    accuracy_metrics,
    quantile_column,
    summary_metrics,
    window_metrics,
)

QUANTILES = [0.1, 0.5, 0.9]


def _window(**overrides) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "item_id": ["A", "A", "B", "B"],
            "timestamp": pd.to_datetime(["2025-01-04", "2025-01-05"] * 2),
            "target_value": [10.0, 0.0, 5.0, 5.0],
            "p10": [6.0, 0.0, 3.0, 4.0],
            "p50": [8.0, 1.0, 5.0, 7.0],
            "p90": [12.0, 2.0, 8.0, 9.0],
            "mean": [9.0, 1.0, 5.0, 6.0],
        }
    )
    return frame.assign(**overrides)


def _by_type(metrics: dict) -> dict:
    return {e["ForecastType"]: e for e in metrics["ErrorMetrics"]}


def test_quantile_column_names() -> None:
    assert [quantile_column(q) for q in (0.1, 0.5, 0.9, 0.025)] == ["p10", "p50", "p90", "p2.5"]


def test_pooled_metrics_match_hand_computation() -> None:
    train = pd.DataFrame(
        {
            "item_id": ["A", "A", "A", "B", "B"],
            "timestamp": pd.to_datetime(
                ["2025-01-01", "2025-01-02", "2025-01-03"] * 1 + ["2025-01-02", "2025-01-03"]
            ),
            "target_value": [2.0, 4.0, 6.0, 1.0, 1.0],
        }
    )
    metrics = window_metrics(_window(), QUANTILES, train=train, frequency="Y")  # m = 1
    losses = {loss["Quantile"]: loss["LossValue"] for loss in metrics["WeightedQuantileLosses"]}
    # Σ|y| = 20. wQL[0.1] = 2·(0.1·4 + 0.1·2 + 0.1·1)/20; wQL[0.9] = 2·0.1·(2+2+3+4)/20.
    assert losses[0.1] == pytest.approx(0.07)
    assert losses[0.5] == pytest.approx(0.25)
    assert losses[0.9] == pytest.approx(0.11)
    assert metrics["AverageWeightedQuantileLoss"] == pytest.approx((0.07 + 0.25 + 0.11) / 3)
    mean = _by_type(metrics)["mean"]
    assert mean["WAPE"] == pytest.approx(3 / 20)
    assert mean["RMSE"] == pytest.approx(math.sqrt(3 / 4))
    assert mean["MAPE"] == pytest.approx((0.1 + 0 + 0.2) / 3)  # the y = 0 point is left out
    # Training diffs (m = 1): A 2, 2; B 0 → pooled scale 4/3; MAE of the mean forecast 3/4.
    assert mean["MASE"] == pytest.approx(0.75 / (4 / 3))
    assert metrics["RMSE"] == mean["RMSE"]


def test_wql_at_median_equals_wape_of_p50() -> None:
    metrics = window_metrics(_window(), QUANTILES)
    losses = {loss["Quantile"]: loss["LossValue"] for loss in metrics["WeightedQuantileLosses"]}
    assert _by_type(metrics)["0.5"]["WAPE"] == pytest.approx(losses[0.5])


def test_pooling_differs_from_per_series_average() -> None:
    # A sells 100, B sells 1: pooled WAPE weights A's error by its volume, per-series does not.
    window = pd.DataFrame(
        {
            "item_id": ["A", "B"],
            "timestamp": pd.to_datetime(["2025-01-01"] * 2),
            "target_value": [100.0, 1.0],
            "p50": [90.0, 3.0],
            "mean": [90.0, 3.0],
        }
    )
    pooled = _by_type(window_metrics(window, [0.5]))["mean"]["WAPE"]
    assert pooled == pytest.approx(12 / 101)
    assert pooled != pytest.approx((10 / 100 + 2 / 1) / 2)


def test_zero_actuals_report_the_unweighted_loss() -> None:
    window = _window(target_value=[0.0] * 4)
    metrics = window_metrics(window, [0.5])
    assert metrics["WeightedQuantileLosses"][0]["LossValue"] == pytest.approx(8 + 1 + 5 + 7)
    assert _by_type(metrics)["mean"]["MAPE"] is None


def test_items_with_filled_actuals_are_left_out() -> None:
    window = _window(filled=[False, True, False, False])
    metrics = window_metrics(window, [0.5])
    # Only B remains: Σ|y| = 10, |y − p50| = 0 + 2.
    assert metrics["WeightedQuantileLosses"][0]["LossValue"] == pytest.approx(0.2)


def test_windows_are_averaged_in_the_get_accuracy_metrics_shape() -> None:
    first = _window()
    second = _window(
        timestamp=pd.to_datetime(["2025-01-06", "2025-01-07"] * 2), p50=[10.0, 0.0, 5.0, 5.0]
    )
    response = accuracy_metrics([first, second], QUANTILES, algorithm="AutoETS")
    windows = response["PredictorEvaluationResults"][0]["TestWindows"]
    assert [w["EvaluationType"] for w in windows] == ["SUMMARY", "COMPUTED", "COMPUTED"]
    assert windows[1]["TestWindowStart"].startswith("2025-01-04")
    assert windows[1]["ItemCount"] == 2
    summary = windows[0]["Metrics"]
    p50_loss = next(x for x in summary["WeightedQuantileLosses"] if x["Quantile"] == 0.5)
    assert p50_loss["LossValue"] == pytest.approx((0.25 + 0.0) / 2)
    flat = summary_metrics(response)
    assert flat["wQL[0.5]"] == pytest.approx(0.125)
    assert flat["WAPE"] == pytest.approx(3 / 20)
    assert flat["point_forecast_type"] == "mean"


def test_no_window_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one backtest window"):
        accuracy_metrics([], QUANTILES)


def test_mase_without_a_known_season_is_an_error_not_a_lag_of_one() -> None:
    train = pd.DataFrame({"item_id": ["A"] * 3, "timestamp": pd.to_datetime(
        ["2025-01-01", "2025-01-02", "2025-01-03"]), "target_value": [2.0, 4.0, 6.0]})  # fmt: skip
    assert window_metrics(_window(), QUANTILES, train=train, frequency="1Y") == window_metrics(
        _window(), QUANTILES, train=train, frequency="Y")  # fmt: skip
    with pytest.raises(ValueError, match=r"no MASE season known for frequency '15min'"):
        window_metrics(_window(), QUANTILES, train=train, frequency="15min")
    assert window_metrics(_window(), QUANTILES, train=train, frequency="15min", season_length=96)
