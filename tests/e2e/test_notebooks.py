"""The notebooks run on the session's smoke run, start its world and use awswrangler and boto3
as a data scientist would; each leaves the figure it is for.

``notebooks/forecast_experiments.ipynb`` runs in ``test_forecast_run.py``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def execute(name: str, run_dir, monkeypatch) -> list:
    import nbformat
    from nbclient import NotebookClient

    from tests.conftest import REPO

    monkeypatch.setenv("DFP_RUN_DIR", str(run_dir))
    notebook = nbformat.read(REPO / "notebooks" / name, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO)}}).execute()  # fmt: skip
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    errors = [f"{o.ename}: {o.evalue}" for o in outputs if o.output_type == "error"]
    assert not errors, errors
    return outputs


def figures(outputs: list) -> list[dict]:
    return [
        o["data"]["application/vnd.plotly.v1+json"]
        for o in outputs
        if "data" in o and "application/vnd.plotly.v1+json" in o["data"]
    ]


def values(array) -> list:
    """A trace's array as plotly stored it: a list, or typed binary (``bdata``)."""
    if isinstance(array, dict) and "bdata" in array:
        import base64

        import numpy as np

        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return list(array)


def text(outputs: list) -> str:
    return "".join(o.get("text", "") for o in outputs if o.output_type == "stream")


def test_scenario_exploration_agrees_with_the_ground_truth(smoke_run, monkeypatch) -> None:
    outputs = execute("scenario_exploration.ipynb", smoke_run.out_dir, monkeypatch)
    printed = text(outputs)
    assert "staged sales differ from the truth on 0\n" in printed, printed
    [figure] = figures(outputs)
    names = {t.get("name") for t in figure["data"]}
    assert {"staged sales (Athena)", "ground truth (expected)"} <= names
    bars, expected = figure["data"][:2]
    days = len(values(bars["x"]))
    assert days == len(values(expected["x"])) > 30  # every day of the product's life


def test_anomaly_tuning_scores_every_setting(smoke_run, monkeypatch) -> None:
    outputs = execute("anomaly_tuning.ipynb", smoke_run.out_dir, monkeypatch)
    [figure] = figures(outputs)
    settings, default = figure["data"]
    assert len(values(settings["x"])) == 27
    # the job's default, replayed here, scores as the run scored the job
    anomaly = smoke_run.summary["anomaly"]
    assert values(default["x"]) == [anomaly["recall"]]
    assert values(default["y"]) == [anomaly["precision"]]


def test_parity_walkthrough_compares_two_exports(smoke_run, monkeypatch) -> None:
    folders = set(Path(tempfile.gettempdir()).glob("parity-*"))
    outputs = execute("parity_walkthrough.ipynb", smoke_run.out_dir, monkeypatch)
    assert set(Path(tempfile.gettempdir()).glob("parity-*")) == folders  # nothing left behind
    [figure] = figures(outputs)
    names = [t["name"] for t in figure["data"]]
    assert names == ["actual", "local forecaster p50", "seasonal naive p50"]
    horizon = json.loads((smoke_run.out_dir / "summary.json").read_text())["forecast"]["horizon"]
    assert len(values(figure["data"][0]["x"])) == horizon
