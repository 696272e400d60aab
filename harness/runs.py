"""A finished run's data for notebooks and scripts: ``load_run(RUN_DIR)``.

Everything comes from the run directory (the world that produced it is gone): the summary, the
forecast input the forecaster saw, its export and backtest metrics, and the simulator's ground
truth. Frames follow the statsforecast contract where a model will consume them.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from emulation.sagemaker.forecaster.frequency import grid_for, parse_frequency
from harness.run.layout import RunDir


class RunDataError(ValueError):
    """The directory is not a finished run (names the missing file)."""


@dataclass
class RunData:
    path: Path
    summary: dict[str, Any]
    manifest: dict[str, Any]
    forecast_input: pd.DataFrame  # AutoML's table: item_id, timestamp, demand, price, …
    export: pd.DataFrame  # item_id, date, p10, p50, p90
    accuracy: dict[str, Any]  # GetAccuracyMetrics shape
    truth: pd.DataFrame  # the simulator's daily ground truth per product

    @property
    def horizon(self) -> int:
        return int(self.manifest["horizon"])

    @property
    def frequency(self) -> str:
        """The forecast's ``ForecastFrequency`` as the job was given it (``D``, ``1M``, ``3M``…)."""
        return str(self.manifest.get("frequency") or "D")

    @property
    def season(self) -> int:
        """The seasonal period MASE and a seasonal naive forecast take at this frequency (7 for
        days, 12 for months, 1 for years), as the forecaster's own metrics take it."""
        return parse_frequency(self.frequency).mase_season

    @property
    def offset(self) -> pd.DateOffset:
        """The pandas offset between the forecast input's periods (``freq=`` for statsforecast):
        month starts or ends, weeks on the input's weekday, as the forecaster read them."""
        stamps = self.forecast_input["timestamp"]
        return grid_for(parse_frequency(self.frequency), stamps[stamps.notna()]).offset

    @property
    def dimensions(self) -> list[str]:
        """The forecast's dimensions (``["store_id"]`` for a forecast by store, else none)."""
        return list(self.manifest.get("dimensions") or [])

    def _series(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``unique_id``: the item, or ``item|store`` for a forecast by store."""
        unique_id = frame["item_id"].astype(str)
        for dim in self.dimensions:
            unique_id = unique_id + "|" + frame[dim].astype(str)
        return frame.assign(unique_id=unique_id)

    def history(self) -> pd.DataFrame:
        """``unique_id, ds, y`` plus the related columns: the rows with a known target (one
        series per item, or per item and store: ``item|store``)."""
        known = self._series(self.forecast_input[self.forecast_input["demand"].notna()])
        return known.rename(columns={"timestamp": "ds", "demand": "y"})[
            ["unique_id", "ds", "y", *self.related_columns()]
        ].reset_index(drop=True)

    def future(self) -> pd.DataFrame:
        """``unique_id, ds`` plus the related columns for the forecast horizon."""
        ahead = self._series(self.forecast_input[self.forecast_input["demand"].isna()])
        return ahead.rename(columns={"timestamp": "ds"})[
            ["unique_id", "ds", *self.related_columns()]
        ].reset_index(drop=True)

    def related_columns(self) -> list[str]:
        skip = {"item_id", "timestamp", "demand", *self.dimensions}
        return [
            c for c in self.forecast_input.columns
            if c not in skip and pd.api.types.is_numeric_dtype(self.forecast_input[c])
        ]  # fmt: skip


def _need(path: Path) -> Path:
    if not path.exists():
        raise RunDataError(f"{path}: missing; is this the directory of a run that forecast?")
    return path


#: Columns that name a series: text as written, whatever they look like.
KEY_COLUMNS = ("item_id", "store_id", "region")


def read_run_csv(source: Path | bytes, **options: Any) -> pd.DataFrame:
    """A run's CSV (the forecast input or export; a file, or an object's bytes) with its keys as
    written: ``007`` and ``7`` are two items and ``NA`` is one, not a gap (pandas would read
    numbers and NaN); an empty value elsewhere is missing (a future row's demand)."""

    def opened() -> Path | io.BytesIO:
        return io.BytesIO(source) if isinstance(source, bytes) else source

    header = pd.read_csv(opened(), nrows=0).columns
    keys = [c for c in header if c in KEY_COLUMNS]
    return pd.read_csv(opened(), dtype=dict.fromkeys(keys, str), keep_default_na=False,
                       na_values={c: [""] for c in header if c not in keys},
                       **options)  # fmt: skip


def load_run(path: str | Path) -> RunData:
    """Load a run directory written by ``dfp run`` (through the forecast stage)."""
    root = Path(path)
    forecast = RunDir(root).forecast
    summary = json.loads(_need(RunDir(root).summary).read_text())
    frame = read_run_csv(_need(forecast / "input.csv"), parse_dates=["timestamp"])
    export = read_run_csv(_need(forecast / "export.csv"))
    export["date"] = pd.to_datetime(export["date"].str.slice(0, 10))
    truth = pd.read_parquet(_need(RunDir(root).truth_daily))
    truth["date"] = pd.to_datetime(truth["date"])
    return RunData(
        path=root,
        summary=summary,
        manifest=json.loads(_need(forecast / "manifest.json").read_text()),
        forecast_input=frame,
        export=export,
        accuracy=json.loads(_need(forecast / "accuracy-metrics.json").read_text()),
        truth=truth,
    )
