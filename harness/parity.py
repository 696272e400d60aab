"""Forecast parity: two exports in the AWS layout, scored on the same actuals, side by side.

A release owner holding an export from AWS (Forecast or Canvas) and one from the local world asks
"do they agree, and does either do better?". Both are scored with the AWS metric definitions
(:mod:`pipeline.contracts.accuracy`) over the same window: the dates both exports cover for which
actuals exist, and only items present in both exports and the actuals.

Inputs:

* an export: a CSV file or a directory of part files (each with a header), columns
  ``item_id, date, p10, …`` (``mean`` optional), dates ``yyyy-MM-dd`` or ISO with ``Z``; an
  export by dimension has its columns between ``item_id`` and ``date``
  (``item_id,store_id,date,…``), and then each item × dimension value is a series;
* actuals: a CSV with ``item_id``, ``timestamp`` or ``date``, and ``demand``, ``target_value`` or
  ``y`` (a header), or a header-less Forecast target time series ``item_id,timestamp,demand``;
  for exports by dimension, the dimension's column too.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emulation.sagemaker.forecaster import FrequencyError, parse_frequency, ragged_record
from pipeline.contracts.accuracy import accuracy_metrics, summary_metrics
from simulator.source import repeated_column

_QUANTILE = re.compile(r"^p\d+(\.\d+)?$")
TARGET_NAMES = ("demand", "target_value", "y")
TIME_NAMES = ("timestamp", "date")
DIMENSION_NAMES = ("store_id",)  # forecast dimensions actuals may carry


class ParityInputError(ValueError):
    """An export or the actuals cannot be read; names the file, column and value."""


@dataclass
class Parity:
    names: tuple[str, str]
    metrics: dict[str, dict[str, Any]]  # name → flat summary metrics
    window: tuple[str, str]
    items: int
    points: int
    totals: pd.DataFrame  # date, actual, <name>_p50 …: the aggregate series for the plot
    #: What was not scored, so that a comparison on a part is seen as one: per export its rows,
    #: those scored, those whose series and date the other export lacks, those without an actual,
    #: and its forecast columns the other lacks (``only_columns``).
    left_out: dict[str, dict[str, Any]]

    def table(self) -> list[dict[str, Any]]:
        """One row per metric: both values and the difference (second minus first)."""
        first, second = self.names
        rows = []
        for metric in self.metrics[first]:
            if metric == "point_forecast_type":
                continue
            a, b = self.metrics[first].get(metric), self.metrics[second].get(metric)
            diff = b - a if isinstance(a, float | int) and isinstance(b, float | int) else None
            rows.append({"metric": metric, first: a, second: b, "difference": diff})
        return rows

    def to_json(self) -> str:
        return json.dumps(
            {
                "exports": list(self.names),
                "window": list(self.window),
                "items": self.items,
                "points": self.points,
                "metrics": self.metrics,
                "table": self.table(),
                "left_out": self.left_out,
            },
            indent=2,
            sort_keys=True,
        )


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.csv") if not p.name.startswith(("_", ".")))
        if not files:
            raise ParityInputError(f"{path}: no .csv files in this directory")
        return files
    if not path.is_file():
        raise ParityInputError(f"{path}: no such file or directory")
    return [path]


def _read(file: Path, **options: Any) -> pd.DataFrame:
    """A CSV as text, refused naming the file when it is not one (empty, not UTF-8, broken)."""
    try:
        ragged = ragged_record(file.read_bytes().decode("utf-8-sig"))
        if ragged is not None:
            line, fields, wanted, record = ragged
            raise ParityInputError(f"{file}: line {line} has {fields} fields, the first line "
                                   f"{wanted}: {record[:120]!r}")  # fmt: skip
        frame = pd.read_csv(file, dtype=str, keep_default_na=False, index_col=False,
                            encoding="utf-8-sig", **options)  # fmt: skip
        if options.get("header", 0) is not None:  # the header as written (pandas renames a
            names = pd.read_csv(file, header=None, nrows=1, dtype=str,  # repeat: p50.1)
                                keep_default_na=False).iloc[0].tolist()  # fmt: skip
            if (twice := repeated_column(names)) is not None:
                raise ParityInputError(f"{file}: names the column {twice!r} twice; which is the "
                                       "forecast to score?")  # fmt: skip
        return frame
    except pd.errors.EmptyDataError:
        raise ParityInputError(f"{file}: empty (not even a header line)") from None
    except UnicodeDecodeError as exc:
        raise ParityInputError(f"{file}: not UTF-8 text (byte {exc.start})") from None
    except (pd.errors.ParserError, csv.Error) as exc:
        raise ParityInputError(f"{file}: not a CSV table: {exc}") from None


def _no_repeats(frame: pd.DataFrame, keys: list[str], source: str, what: str) -> None:
    """Two rows for one series and date would count that point twice: refused, named."""
    repeated = frame[frame.duplicated(keys, keep=False)]
    if not repeated.empty:
        first = repeated.iloc[0]
        key = ", ".join(f"{k} {first[k]!r}" for k in keys if k != "date")
        times = int((repeated[keys] == first[keys]).all(axis=1).sum())
        raise ParityInputError(
            f"{source}: {key} has {times} {what}s for {first['date'].date()} (one per series "
            f"and date is expected; {len(repeated):,} rows repeat one)"
        )


def _dates(values: pd.Series, source: str, column: str) -> pd.Series:
    text = values.astype(str).str.replace("Z", "", regex=False).str.slice(0, 10)
    parsed = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
    if parsed.isna().any():
        bad = values[parsed.isna()].iloc[0]
        raise ParityInputError(f"{source}: column {column!r} has value {bad!r}, not a date")
    return parsed


def _numbers(frame: pd.DataFrame, columns: list[str], source: str,
             header: bool = True) -> pd.DataFrame:  # fmt: skip
    """``columns`` as floats; a value that is not a finite number is refused with its CSV row
    (the header, when the file has one, being row 1)."""
    for column in columns:
        parsed = pd.to_numeric(frame[column], errors="coerce")
        wrong = ~np.isfinite(parsed.to_numpy(dtype=float))
        if wrong.any():
            row = frame.index[wrong][0]
            bad = frame.loc[row, column]
            raise ParityInputError(f"{source}: column {column!r} has value {bad!r} on row "
                                   f"{row + 1 + header}, not a finite number")  # fmt: skip
        frame[column] = parsed.astype(float)
    return frame


def read_export(path: Path) -> pd.DataFrame:
    """An export in the AWS layout → ``item_id, date, p…[, mean]``."""
    frames = []
    for file in _files(path):
        frame = _read(file)
        missing = [c for c in ("item_id", "date") if c not in frame.columns]
        if missing:
            raise ParityInputError(
                f"{file}: no column {missing[0]!r} (an export has item_id,date,p10,…; "
                f"found {','.join(frame.columns)})"
            )
        types = [c for c in frame.columns if _QUANTILE.match(c) or c == "mean"]
        if not types:
            raise ParityInputError(f"{file}: no forecast columns (p10, p50, …, mean)")
        columns = list(frame.columns)
        dims = [c for c in columns[columns.index("item_id") + 1 : columns.index("date")]
                if c not in types]  # fmt: skip
        frame["date"] = _dates(frame["date"], str(file), "date")
        frames.append(_numbers(frame[["item_id", *dims, "date", *types]], types, str(file)))
    columns = list(frames[0].columns)
    for file, frame in zip(_files(path), frames, strict=True):
        if list(frame.columns) != columns:
            raise ParityInputError(f"{file}: columns {list(frame.columns)} differ from {columns}")
    export = pd.concat(frames, ignore_index=True)
    keys = [c for c in columns if not (_QUANTILE.match(c) or c == "mean")]
    _no_repeats(export, keys, str(path), "forecast")
    return export


def read_actuals(path: Path) -> pd.DataFrame:
    """Actuals → ``item_id, timestamp, target_value``."""
    frames = []
    for file in _files(path):
        frame, header = _read(file), True
        time_col = next((c for c in TIME_NAMES if c in frame.columns), None)
        target = next((c for c in TARGET_NAMES if c in frame.columns), None)
        if "item_id" not in frame.columns or time_col is None or target is None:
            if len(frame.columns) != 3:
                raise ParityInputError(
                    f"{file}: actuals need item_id, timestamp (or date) and demand (or "
                    f"target_value, y) columns; found {','.join(frame.columns)}"
                )
            frame = _read(file, header=None, names=["item_id", "timestamp", "demand"])
            time_col, target, header = "timestamp", "demand", False
        out = pd.DataFrame(
            {
                "item_id": frame["item_id"],
                **{d: frame[d] for d in DIMENSION_NAMES if d in frame.columns},
                "timestamp": _dates(frame[time_col], str(file), time_col),
                "target_value": frame[target],
            }
        )
        frames.append(_numbers(out, ["target_value"], str(file), header))
    actuals = pd.concat(frames, ignore_index=True)
    dated = actuals.rename(columns={"timestamp": "date"})
    keys = [c for c in dated.columns if c != "target_value"]
    _no_repeats(dated, keys, str(path), "actual value")
    return actuals


def compare(
    first: pd.DataFrame,
    second: pd.DataFrame,
    actuals: pd.DataFrame,
    names: tuple[str, str] = ("local", "other"),
    frequency: str = "D",
) -> Parity:
    """Score both exports on their common window, items and forecast types.

    ``frequency``: the forecast's ``ForecastFrequency`` in AutoML's spelling (``D``, ``1W``,
    ``M``, ``3M``, ``1Y``, ``1H``, ``15min``…); MASE's seasonal lag is the one the forecaster's
    own metrics use for it (a year of months, a day of hours)."""
    try:
        season = parse_frequency(frequency).mase_season
    except FrequencyError:
        raise ParityInputError(
            f"frequency {frequency!r} is not a ForecastFrequency AutoML accepts (D, W, M, 3M, "
            "Y, 1H, 15min…: an integer and min, H, D, W, M or Y)"
        ) from None
    types = [
        c for c in first.columns if c in second.columns and (_QUANTILE.match(c) or c == "mean")
    ]
    quantiles = sorted(float(c[1:]) / 100 for c in types if c != "mean")
    if not quantiles:
        raise ParityInputError("the two exports share no quantile column (p10, p50, …)")
    by = [[c for c in export.columns if c not in ("item_id", "date")
           and not _QUANTILE.match(c) and c != "mean"] for export in (first, second)]  # fmt: skip
    if by[0] != by[1]:
        raise ParityInputError(
            f"{names[0]} is by {', '.join(['item_id', *by[0]])} and {names[1]} by "
            f"{', '.join(['item_id', *by[1]])}: the exports must forecast the same series"
        )
    dims = by[0]
    missing = [d for d in dims if d not in actuals.columns]
    if missing:
        raise ParityInputError(f"the exports are by {missing[0]}; the actuals have no "
                               f"{missing[0]} column to score them on")  # fmt: skip
    keys = ["item_id", *dims, "date"]
    both = first[keys + types].merge(second[keys + types], on=keys, suffixes=("#1", "#2"))
    actual = actuals.rename(columns={"timestamp": "date"})
    scored = both.merge(actual[[*keys, "target_value"]], on=keys)
    left_out = {
        name: _left_out(mine, theirs, len(both), len(scored))
        for name, mine, theirs in ((names[0], first, second), (names[1], second, first))
    }
    if scored.empty:
        raise ParityInputError(
            f"no ({', '.join(keys)}) is in both exports and the actuals: nothing to compare"
        )
    start = scored["date"].min()
    history = actuals[actuals["timestamp"] < start]
    if dims:  # one series per item and dimension value, as the metrics see it
        scored = scored.assign(series=_series(scored, dims))
        history = history.assign(item_id=_series(history, dims))
    metrics = {}
    totals = (
        scored.groupby("date")[["target_value"]].sum().rename(columns={"target_value": "actual"})
    )
    for suffix, name in (("#1", names[0]), ("#2", names[1])):
        window = scored[["series" if dims else "item_id", "date", "target_value"]].rename(
            columns={"date": "timestamp", "series": "item_id"}
        )
        for column in types:
            window[column] = scored[column + suffix].to_numpy()
        response = accuracy_metrics([window], quantiles, history=history, season_length=season)
        metrics[name] = summary_metrics(response)
        median = "p50" if "p50" in types else types[0]
        totals[f"{name} {median}"] = scored.groupby("date")[median + suffix].sum()
    return Parity(
        names=names,
        metrics=metrics,
        window=(start.date().isoformat(), scored["date"].max().date().isoformat()),
        items=int(scored["item_id"].nunique()),
        points=len(scored),
        totals=totals.reset_index(),
        left_out=left_out,
    )


def _left_out(mine: pd.DataFrame, theirs: pd.DataFrame, shared: int, scored: int) -> dict[str, Any]:
    """One export's rows that were not scored, by reason, and its columns the other lacks.
    ``shared``: rows of series and dates both exports have (one row each: repeats are refused)."""
    return {
        "rows": len(mine),
        "scored": scored,
        "not_in_the_other_export": len(mine) - shared,
        "without_an_actual": shared - scored,
        "only_columns": [c for c in mine.columns if c not in theirs.columns
                         and (_QUANTILE.match(c) or c == "mean")],
    }  # fmt: skip


def _series(frame: pd.DataFrame, dims: list[str]) -> pd.Series:
    """``item|store``: the series id of each row of a frame by dimension."""
    out = frame["item_id"].astype(str)
    for dim in dims:
        out = out + "|" + frame[dim].astype(str)
    return out


def write_plot(parity: Parity, path: Path) -> None:
    """A self-contained HTML page: metrics side by side, and total forecast vs actual."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows = [r for r in parity.table() if r["metric"] != "RMSE"]  # RMSE is in units, not ratios
    figure = make_subplots(
        rows=1, cols=2, subplot_titles=("Accuracy (lower is better)", "Total over all items")
    )
    for name in parity.names:
        figure.add_trace(
            go.Bar(name=name, x=[r["metric"] for r in rows], y=[r[name] for r in rows]),
            row=1, col=1,
        )  # fmt: skip
    figure.add_trace(
        go.Scatter(name="actual", x=parity.totals["date"], y=parity.totals["actual"],
                   mode="lines+markers", line={"color": "black"}),
        row=1, col=2,
    )  # fmt: skip
    for column in parity.totals.columns[2:]:
        figure.add_trace(
            go.Scatter(name=column, x=parity.totals["date"], y=parity.totals[column],
                       mode="lines"),
            row=1, col=2,
        )  # fmt: skip
    figure.update_layout(
        title=f"Forecast parity: {parity.names[0]} vs {parity.names[1]} "
        f"({parity.items} items, {parity.window[0]} to {parity.window[1]})",
        barmode="group",
        template="plotly_white",
    )
    path.write_text(figure.to_html(include_plotlyjs=True, full_html=True))
