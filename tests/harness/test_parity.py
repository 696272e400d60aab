"""``dfp parity``: two exports in the AWS layout on the same actuals, AWS metrics side by side."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from harness.cli import app

runner = CliRunner()


def _actuals(days: int = 14) -> pd.DataFrame:
    dates = pd.date_range("2025-03-01", periods=days, freq="D")
    return pd.DataFrame(
        [
            {"item_id": item, "timestamp": d.strftime("%Y-%m-%d"), "demand": float(base + i % 3)}
            for item, base in (("A", 10), ("B", 2))
            for i, d in enumerate(dates)
        ]
    )


def _export(actuals: pd.DataFrame, factor: float, last: int = 7) -> pd.DataFrame:
    window = actuals.groupby("item_id").tail(last)
    return pd.DataFrame(
        {
            "item_id": window["item_id"],
            "date": window["timestamp"] + "T00:00:00Z",
            "p10": window["demand"] * factor * 0.8,
            "p50": window["demand"] * factor,
            "p90": window["demand"] * factor * 1.2,
        }
    )


def _write(tmp: Path, factor: float = 1.2) -> tuple[Path, Path, Path]:
    actuals = _actuals()
    (tmp / "local").mkdir()
    _export(actuals, 1.0).iloc[:5].to_csv(tmp / "local" / "x_part0.csv", index=False)
    _export(actuals, 1.0).iloc[5:].to_csv(tmp / "local" / "x_part1.csv", index=False)
    _export(actuals, factor).to_csv(tmp / "aws.csv", index=False)
    actuals.to_csv(tmp / "actuals.csv", index=False)
    return tmp / "local", tmp / "aws.csv", tmp / "actuals.csv"


def test_parity_scores_both_exports_on_the_same_window(tmp_path: Path) -> None:
    local, aws, actuals = _write(tmp_path)
    out = tmp_path / "out"
    result = runner.invoke(app, ["parity", str(local), str(aws), "--actuals", str(actuals),
                                 "--out", str(out), "--names", "local", "aws"])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((out / "parity.json").read_text())
    assert report["items"] == 2 and report["points"] == 14
    assert report["window"] == ["2025-03-08", "2025-03-14"]
    assert report["metrics"]["local"]["WAPE"] == pytest.approx(0.0)
    assert report["metrics"]["aws"]["WAPE"] == pytest.approx(0.2)  # p50 is 20 % high everywhere
    row = next(r for r in report["table"] if r["metric"] == "wQL[0.5]")
    assert row["difference"] == pytest.approx(0.2)
    page = (out / "parity.html").read_text()
    assert "plotly" in page.lower() and "Forecast parity" in page


def test_headerless_target_series_are_accepted_as_actuals(tmp_path: Path) -> None:
    local, aws, actuals = _write(tmp_path)
    pd.read_csv(actuals).to_csv(actuals, index=False, header=False)
    result = runner.invoke(app, ["parity", str(local), str(aws), "--actuals", str(actuals),
                                 "--out", str(tmp_path / "o")])  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = actuals.read_text().splitlines()
    lines[4] = lines[4].rsplit(",", 1)[0] + ",-inf"  # the file's fifth line
    actuals.write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["parity", str(local), str(aws), "--actuals", str(actuals),
                                 "--out", str(tmp_path / "o2")])  # fmt: skip
    assert "has value '-inf' on row 5, not a finite number" in " ".join(result.output.split())


@pytest.mark.parametrize(
    ("breaks", "message"),
    [
        (lambda f: f.drop(columns=["date"]), "no column 'date'"),
        (lambda f: f.assign(p50="lots"), "column 'p50' has value 'lots' on row 2, not a finite"),
        (
            lambda f: f.assign(p90=[1.0] * 13 + [float("inf")]),
            "column 'p90' has value 'inf' on row 15, not a finite number",
        ),
        (lambda f: f.assign(date="March"), "column 'date' has value 'March', not a date"),
        (
            lambda f: pd.concat([f, f.iloc[[3]]]),
            "item_id 'A' has 2 forecasts for 2025-03-11 (one per series and date is expected",
        ),
        (lambda f: f.iloc[:0, :0], "empty (not even a header line)"),
        (  # pandas would read the second as p50.1 and score the first
            lambda f: f.assign(extra=f["p50"] + 1).rename(columns={"extra": "p50"}),
            "names the column 'p50' twice; which is the forecast to score?",
        ),
    ],
)
def test_a_broken_export_is_refused_naming_file_and_column(tmp_path: Path, breaks, message) -> None:
    local, aws, actuals = _write(tmp_path)
    broken = breaks(pd.read_csv(aws))
    if broken.columns.empty:  # nothing at all: not even a header
        aws.write_text("")
    else:
        broken.to_csv(aws, index=False)
    out = tmp_path / "out"
    result = runner.invoke(app, ["parity", str(local), str(aws), "--actuals", str(actuals),
                                 "--out", str(out)])  # fmt: skip
    assert not out.exists()
    assert result.exit_code == 2
    flat = " ".join(result.output.split())
    assert "aws.csv" in flat and message in flat


def test_an_export_line_with_a_field_more_or_less_is_refused_naming_it(tmp_path: Path) -> None:
    """pandas reads a record with one field more as if its first were a row label (every value
    one column left) and one with a field less as an empty last value: the file is refused."""
    local, aws, actuals = _write(tmp_path)
    lines = aws.read_text().splitlines()
    for broken, fields in ((lines[3] + ",", len(lines[0].split(",")) + 1),
                           (lines[3].rsplit(",", 1)[0], len(lines[0].split(",")) - 1)):  # fmt: skip
        aws.write_text("\n".join([*lines[:3], broken, *lines[4:]]) + "\n")
        result = runner.invoke(app, ["parity", str(local), str(aws), "--actuals", str(actuals),
                                     "--out", str(tmp_path / "out")])  # fmt: skip
        assert result.exit_code == 2
        assert f"aws.csv: line 4 has {fields} fields, the first line {len(lines[0].split(','))}" \
            in " ".join(result.output.split())  # fmt: skip
        assert not (tmp_path / "out").exists()


def test_an_export_not_in_utf8_is_refused_naming_the_byte(tmp_path: Path) -> None:
    local, aws, actuals = _write(tmp_path)
    aws.write_bytes(b"item_id,date,p10,p50,p90\n\xe9t\xe9,2025-03-08,1,2,3\n")  # Latin-1
    result = runner.invoke(app, ["parity", str(local), str(aws), "--actuals", str(actuals),
                                 "--out", str(tmp_path / "out")])  # fmt: skip
    assert result.exit_code == 2
    assert "aws.csv: not UTF-8 text (byte 25)" in " ".join(result.output.split())


def test_repeated_actuals_are_refused_naming_the_series_and_date(tmp_path: Path) -> None:
    local, aws, actuals = _write(tmp_path)
    frame = pd.read_csv(actuals)
    pd.concat([frame, frame.iloc[[20]]]).to_csv(actuals, index=False)
    result = runner.invoke(app, ["parity", str(local), str(aws), "--actuals", str(actuals),
                                 "--out", str(tmp_path / "out")])  # fmt: skip
    assert result.exit_code == 2
    flat = " ".join(result.output.split())
    assert "actuals.csv: item_id 'B' has 2 actual values for 2025-03-07" in flat


def test_exports_by_store_are_scored_per_item_and_store(tmp_path: Path) -> None:
    from harness.parity import ParityInputError, compare, read_actuals, read_export

    actuals = pd.concat([_actuals().assign(store_id=s) for s in ("S1", "S2")], ignore_index=True)
    actuals = actuals[["item_id", "store_id", "timestamp", "demand"]]
    actuals.loc[actuals["store_id"] == "S2", "demand"] *= 3  # another level at the other store
    local = pd.concat([_export(part, 1.0).assign(store_id=s)
                       for s, part in actuals.groupby("store_id")])  # fmt: skip
    local = local[["item_id", "store_id", "date", "p10", "p50", "p90"]]
    # The other export swaps the stores' forecasts: right per item in total, wrong per store.
    swapped = local.assign(store_id=local["store_id"].map({"S1": "S2", "S2": "S1"}))
    local.to_csv(tmp_path / "local.csv", index=False)
    swapped.to_csv(tmp_path / "swapped.csv", index=False)
    actuals.to_csv(tmp_path / "actuals.csv", index=False)
    first, second = read_export(tmp_path / "local.csv"), read_export(tmp_path / "swapped.csv")
    assert list(first.columns[:3]) == ["item_id", "store_id", "date"]
    result = compare(first, second, read_actuals(tmp_path / "actuals.csv"))
    assert result.points == 2 * 2 * 7  # items x stores x days: no row matched twice
    assert result.metrics["local"]["WAPE"] == pytest.approx(0.0)
    assert result.metrics["other"]["WAPE"] > 0.5
    with pytest.raises(ParityInputError, match="the exports are by store_id; the actuals"):
        compare(first, second, read_actuals(tmp_path / "actuals.csv").drop(columns="store_id"))


def test_what_was_not_scored_is_counted_by_reason_and_said(tmp_path: Path) -> None:
    """A comparison on part of the exports is seen as one: rows of series or dates the other
    export lacks, rows past the actuals, and forecast columns only one export has."""
    actuals = _actuals()
    local = _export(actuals, 1.0)  # A and B, the last 7 days: 14 rows
    extra = pd.DataFrame(
        {"item_id": "C", "date": local["date"].iloc[:3], "p10": 1.0, "p50": 2.0, "p90": 3.0}
    )  # an item only this export has
    later = local.tail(2).assign(date=["2025-03-15T00:00:00Z", "2025-03-16T00:00:00Z"])
    other = pd.concat([local, extra, later], ignore_index=True).drop(columns="p90")
    for frame, name in ((local, "local.csv"), (other, "other.csv"), (actuals, "actuals.csv")):
        frame.to_csv(tmp_path / name, index=False)
    out = tmp_path / "out"
    result = runner.invoke(app, ["parity", str(tmp_path / "local.csv"),
                                 str(tmp_path / "other.csv"), "--actuals",
                                 str(tmp_path / "actuals.csv"), "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    left_out = json.loads((out / "parity.json").read_text())["left_out"]
    assert left_out["local"] == {"rows": 14, "scored": 14, "not_in_the_other_export": 0,
                                 "without_an_actual": 0, "only_columns": ["p90"]}  # fmt: skip
    assert left_out["other"] == {"rows": 19, "scored": 14, "not_in_the_other_export": 5,
                                 "without_an_actual": 0, "only_columns": []}  # fmt: skip
    said = " ".join(result.output.split())
    assert "local: 14 of 14 rows scored; its p90 not compared (the other lacks them)" in said
    assert "other: 14 of 19 rows scored; 5 not in the other export" in said
    # Rows both exports have, past the actuals' last day, are counted as such.
    actuals[actuals["timestamp"] < "2025-03-14"].to_csv(tmp_path / "actuals.csv", index=False)
    result = runner.invoke(app, ["parity", str(tmp_path / "local.csv"),
                                 str(tmp_path / "other.csv"), "--actuals",
                                 str(tmp_path / "actuals.csv"), "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    left_out = json.loads((out / "parity.json").read_text())["left_out"]
    assert left_out["local"]["without_an_actual"] == 2 and left_out["local"]["scored"] == 12


def test_exports_of_other_series_are_refused_naming_both(tmp_path: Path) -> None:
    from harness.parity import ParityInputError, compare, read_actuals, read_export

    actuals = _actuals().assign(store_id="S1")
    by_store = _export(actuals, 1.0).assign(store_id="S1")
    by_store = by_store[["item_id", "store_id", "date", "p10", "p50", "p90"]]
    by_store.to_csv(tmp_path / "by_store.csv", index=False)
    _export(actuals, 1.0).to_csv(tmp_path / "by_item.csv", index=False)
    actuals.to_csv(tmp_path / "actuals.csv", index=False)
    with pytest.raises(
        ParityInputError,
        match="local is by item_id, store_id and other by "
        "item_id: the exports must forecast the same",
    ):
        compare(read_export(tmp_path / "by_store.csv"), read_export(tmp_path / "by_item.csv"),
                read_actuals(tmp_path / "actuals.csv"))  # fmt: skip


def test_point_metrics_of_another_quantile_are_said_to_be(tmp_path: Path) -> None:
    local, aws, actuals = _write(tmp_path)
    pd.read_csv(aws).drop(columns="p50").to_csv(aws, index=False)
    result = runner.invoke(app, ["parity", str(local), str(aws), "--actuals", str(actuals),
                                 "--out", str(tmp_path / "out")])  # fmt: skip
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "WAPE, RMSE, MASE and MAPE are of the p10 forecast" in said
    assert "local: 14 of 14 rows scored; its p50 not compared" in said


def _monthly(tmp: Path) -> tuple[Path, Path, Path]:
    """Three years of a yearly cycle with a trend: a lag of 12 months and a lag of 1 give MASE
    different scales (12 a month against the cycle's swings)."""
    months = pd.date_range("2022-01-01", periods=36, freq="MS")
    demand = [100 + i + 30 * ((i % 12) in (5, 6, 7)) for i in range(36)]
    actuals = pd.DataFrame({"item_id": "A", "timestamp": months.strftime("%Y-%m-%d"),
                            "demand": [float(d) for d in demand]})  # fmt: skip
    for name, factor in (("local.csv", 1.0), ("other.csv", 1.1)):
        _export(actuals, factor, last=6).to_csv(tmp / name, index=False)
    actuals.to_csv(tmp / "actuals.csv", index=False)
    return tmp / "local.csv", tmp / "other.csv", tmp / "actuals.csv"


def _mase(tmp: Path, frequency: str) -> float:
    local, other, actuals = _monthly(tmp)
    out = tmp / f"out-{frequency}"
    result = runner.invoke(app, ["parity", str(local), str(other), "--actuals", str(actuals),
                                 "--out", str(out), "--frequency", frequency])  # fmt: skip
    assert result.exit_code == 0, result.output
    return json.loads((out / "parity.json").read_text())["metrics"]["other"]["MASE"]


def test_mase_takes_the_season_of_any_automl_frequency(tmp_path: Path) -> None:
    history = [100 + i + 30 * ((i % 12) in (5, 6, 7)) for i in range(30)]
    errors = [0.1 * (100 + i + 30 * ((i % 12) in (5, 6, 7))) for i in range(30, 36)]
    yearly_lag = sum(abs(history[i] - history[i - 12]) for i in range(12, 30)) / 18
    assert _mase(tmp_path, "M") == pytest.approx(sum(errors) / 6 / yearly_lag)
    assert _mase(tmp_path, "1M") == _mase(tmp_path, "M")  # AutoML's spelling, the same season
    assert _mase(tmp_path, "1Y") != _mase(tmp_path, "M")  # a lag of one period: another scale


def test_a_frequency_automl_refuses_is_refused_naming_it(tmp_path: Path) -> None:
    local, other, actuals = _monthly(tmp_path)
    out = tmp_path / "out"
    result = runner.invoke(app, ["parity", str(local), str(other), "--actuals", str(actuals),
                                 "--out", str(out), "--frequency", "monthly"])  # fmt: skip
    assert result.exit_code != 0
    assert "frequency 'monthly' is not a ForecastFrequency AutoML accepts" in result.output
    assert not out.exists()
