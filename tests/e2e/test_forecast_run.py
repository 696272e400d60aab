"""What a full run's forecast stage leaves: export, metrics, baseline, the data for notebooks."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from emulation.sagemaker.forecaster.training import MAX_SELECTION_WINDOWS
from harness.runs import load_run
from tests.e2e.test_notebooks import execute, figures

pytestmark = pytest.mark.e2e
NOTEBOOK = "notebooks/forecast_experiments.ipynb"


def test_the_run_forecasts_every_item_for_the_horizon(smoke_run) -> None:
    forecast = smoke_run.summary["forecast"]
    data = load_run(smoke_run.out_dir)
    items = smoke_run.summary["etl"]["target_items"]
    assert forecast["items"] == items == data.export["item_id"].nunique()
    assert len(data.export) == items * forecast["horizon"]
    assert list(data.export.columns) == ["item_id", "date", "p10", "p50", "p90"]
    last = data.history()["ds"].max()
    assert data.export["date"].min() == last + pd.Timedelta(days=1)
    assert sum(forecast["models"].values()) == items
    assert (data.export["p10"] <= data.export["p90"]).all()
    hop = smoke_run.summary["counts"]["forecast_export"]
    assert hop["in"] == hop["out"] == items


def test_metrics_and_baseline_are_aws_shaped_and_consistent(smoke_run) -> None:
    forecast = smoke_run.summary["forecast"]
    for section in (forecast["metrics"], forecast["baseline"]["metrics"]):
        assert {"AverageWeightedQuantileLoss", "wQL[0.1]", "wQL[0.5]", "wQL[0.9]", "WAPE",
                "RMSE", "MASE", "MAPE"} <= set(section)  # fmt: skip
        losses = [section[f"wQL[{q}]"] for q in ("0.1", "0.5", "0.9")]
        assert section["AverageWeightedQuantileLoss"] == pytest.approx(sum(losses) / 3)
    # learned on the selection windows, reported beside the held-out metrics: a job as small
    # as smoke's takes the most selection windows
    assert forecast["selection_windows"] == MAX_SELECTION_WINDOWS
    assert forecast["selection_metrics"]["WAPE"] is not None
    ratio = forecast["metrics"]["WAPE"] / forecast["baseline"]["metrics"]["WAPE"]
    assert forecast["wape_ratio_to_baseline"] == pytest.approx(ratio)
    accuracy = load_run(smoke_run.out_dir).accuracy
    summary = accuracy["PredictorEvaluationResults"][0]["TestWindows"][0]
    assert summary["EvaluationType"] == "SUMMARY"


def test_the_notebook_runs_on_the_smoke_run(smoke_run, monkeypatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    from tests.conftest import REPO

    monkeypatch.setenv("DFP_RUN_DIR", str(smoke_run.out_dir))
    notebook = nbformat.read(REPO / NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO)}}).execute()  # fmt: skip
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    figure = notebook.cells[-1].outputs[0]["data"]
    assert "application/vnd.plotly.v1+json" in figure
    traces = figure["application/vnd.plotly.v1+json"]["data"]
    assert {"actual", "ground truth (expected)"} <= {t["name"] for t in traces}
    assert all(len(t["x"]) > 0 for t in traces)
    assert os.environ["DFP_RUN_DIR"] == str(smoke_run.out_dir)


def _monthly_run(smoke_run, root):
    """The smoke run's directory with a monthly forecast in place of its daily one: five years
    of three items' sales with a yearly cycle and a price, horizon 6 (as a replay of one's own
    monthly data leaves it)."""
    import json
    import shutil

    import numpy as np

    from harness.run.layout import RunDir

    source, target = RunDir(smoke_run.out_dir), RunDir(root)
    target.forecast.mkdir(parents=True)
    shutil.copy(source.summary, target.summary)
    target.truth_daily.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source.truth_daily, target.truth_daily)
    shutil.copy(source.forecast / "accuracy-metrics.json", target.forecast)
    manifest = json.loads((source.forecast / "manifest.json").read_text())
    (target.forecast / "manifest.json").write_text(
        json.dumps({**manifest, "frequency": "1M", "horizon": 6}))  # fmt: skip
    months = pd.date_range("2019-01-01", periods=66, freq="MS")
    items = sorted(pd.read_csv(source.forecast / "input.csv")["item_id"].unique())[:3]
    noise = np.random.default_rng(7).normal(0, 2, size=(3, 66))
    rows = [{"item_id": item, "timestamp": month.strftime("%Y-%m-%d"),
             "demand": round(40 + 10 * k + 15 * np.sin(2 * np.pi * m / 12) + noise[k, m])
             if m < 60 else None, "price": 9.5 + (m % 5) / 10}
            for k, item in enumerate(items) for m, month in enumerate(months)]  # fmt: skip
    pd.DataFrame(rows).to_csv(target.forecast / "input.csv", index=False)
    export = pd.DataFrame([{"item_id": item, "date": f"{month:%Y-%m-%d}T00:00:00Z", "p10": 30.0,
                            "p50": 45.0, "p90": 60.0}
                           for item in items for month in months[60:]])  # fmt: skip
    export.to_csv(target.forecast / "export.csv", index=False)
    return root


def test_the_notebook_takes_a_monthly_run_in_months(smoke_run, monkeypatch, tmp_path) -> None:
    """A monthly forecast is held out, modelled and scored in months with a yearly season, not
    as days (the notebook's first version forecast six days past a monthly cut-off)."""
    run_dir = _monthly_run(smoke_run, tmp_path / "monthly")
    data = load_run(run_dir)
    assert (data.season, data.offset) == (12, pd.offsets.MonthBegin(1))
    last_six = data.history()["ds"].drop_duplicates().sort_values().iloc[-6:]
    [figure] = figures(execute(Path(NOTEBOOK).name, run_dir, monkeypatch))
    traces = figure["data"]
    [holdout] = [t for t in traces if t["name"].endswith("on the holdout P50")]
    assert list(pd.to_datetime(holdout["x"])) == list(last_six)
    [actual] = [t for t in traces if t["name"] == "actual"]
    assert len(actual["x"]) == 42  # seven horizons of months


def test_the_export_was_enriched_for_athena(smoke_run) -> None:
    enrich = smoke_run.summary["enrich"]
    forecast = smoke_run.summary["forecast"]
    assert enrich["execution"]["status"] == "SUCCEEDED"
    assert enrich["rows"] == forecast["export"]["rows"] and enrich["matches_export"]
    assert enrich["items"] == forecast["items"] and enrich["unknown_items"] == 0
    hop = smoke_run.summary["counts"]["forecast_enriched"]
    assert hop["in"] == hop["out"] == enrich["rows"]


def test_the_anomaly_job_flags_the_injected_anomalies(smoke_run) -> None:
    summary = smoke_run.summary
    anomaly = summary["anomaly"]
    assert anomaly["precision"] >= 0.9 and anomaly["recall"] >= 0.8, anomaly
    assert anomaly["matches_reference"]  # Flink's output is the detector's, in event-time order
    assert set(anomaly["recall_by_type"]) <= {"spike", "drop", "price_glitch", "duplicate_burst"}
    job = summary["counts"]["anomaly_job"]
    assert job["in"] == summary["stream"]["records"] + anomaly["heartbeats"]
    assert job["in"] == job["out"] + job["rejected"]
    delivered = summary["counts"]["firehose_outliers"]
    assert delivered["in"] == delivered["out"] == anomaly["flagged"]
    for alert in summary["alerts"]:
        assert alert["rule"] == "outliers-per-product-day" and alert["value"] >= alert["threshold"]
    assert (smoke_run.out_dir / "flink" / "application_properties.json").is_file()
