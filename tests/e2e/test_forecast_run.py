"""What a full run's forecast stage leaves: export, metrics, baseline, the data for notebooks."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from emulation.sagemaker.forecaster.training import MAX_SELECTION_WINDOWS
from harness.runs import load_run

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
