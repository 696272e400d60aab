"""``dfp simulate``: writes world, CDC NDJSON and truth; refuses to mix runs and bad scenarios."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def dfp(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_simulate_writes_the_layout_and_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    result = dfp("simulate", "smoke", "--out", str(out))
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    for name in ("cdc/load.ndjson", "cdc/stream.ndjson", "world/sales.parquet",
                 "truth/daily_demand.parquet", "truth/anomalies.json"):  # fmt: skip
        assert name in manifest["files"], name
    lines = (out / "cdc" / "stream.ndjson").read_text().splitlines()
    assert len(lines) == manifest["records"]["cdc/stream.ndjson"] > 0
    assert all(json.loads(line)["metadata"]["operation"] != "load" for line in lines)
    again = dfp("simulate", "smoke", "--out", str(out))
    assert again.returncode == 2 and "--force" in again.stderr
    assert json.loads((out / "manifest.json").read_text()) == manifest  # untouched


def test_simulate_refuses_an_impossible_scenario_naming_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    text = (REPO / "scenarios" / "smoke.yaml").read_text()
    bad.write_text(text.replace("types: [spike, drop, price_glitch, duplicate_burst]",
                                "types: [spike, meteor]"))  # fmt: skip
    result = dfp("simulate", str(bad), "--out", str(tmp_path / "o"))
    assert result.returncode == 2
    assert "anomalies.types.1" in result.stderr and "meteor" in result.stderr
    bad.write_text(text.replace("discount_max: 0.4", "discount_max: 0.05"))
    result = dfp("simulate", str(bad), "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and "discount_min" in result.stderr
    assert not (tmp_path / "o").exists()


def test_simulate_names_a_bad_value_in_your_own_files_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "sales.csv").write_text(
        "sku;qty;day\nA;2;2025-03-01\nA;x1;2025-03-02\n"
        + "".join(f"A;1;2025-03-{d:02d}\n" for d in range(3, 29))
    )
    scenario = tmp_path / "mine.yaml"
    scenario.write_text(
        "name: mine\nseed: 1\nsource:\n  sales:\n    path: sales.csv\n"
        "    columns: {product_id: sku, quantity: qty, sold_at: day}\n"
        "forecast: {frequency: D, horizon: 1}\n"
    )
    result = dfp("simulate", str(scenario), "--out", str(tmp_path / "o"))
    assert result.returncode == 2, result.stderr
    assert "sales.csv: column 'qty' (quantity) is not a number: row 3: 'x1'" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "o").exists()


def _stage_log(capsys, stage: str, until: str) -> str:
    """What the stage's clock writes to a log (no terminal) from the stage's start until
    ``until`` appears (30 s at most), and the stage's end."""
    import time

    from harness import cli

    cli._progress("start", stage, {})
    seen, deadline = "", time.monotonic() + 30
    while until not in seen and time.monotonic() < deadline:
        time.sleep(0.05)
        seen += capsys.readouterr().err
    cli._progress("succeeded", stage, {"seconds": 1.0})
    return seen + capsys.readouterr().err


def test_a_long_stage_reports_its_running_time_in_a_log(monkeypatch, capsys) -> None:
    """Without a terminal (a CI log), a running stage says every LOG_EVERY seconds how long it
    has run, and says nothing more once it has ended."""
    import time

    from harness import cli

    monkeypatch.setattr(cli._StageClock, "LOG_EVERY", 0.05)
    monkeypatch.setattr(cli._StageClock, "LOOK_EVERY", 0.05)
    seen = _stage_log(capsys, "etl", until="etl still running")
    assert "etl still running (" in seen and "✔ etl (1.00 s)" in seen
    time.sleep(0.2)
    assert "still running" not in capsys.readouterr().err  # the clock stopped with the stage


def test_the_forecast_stage_says_each_step_of_its_training_once(monkeypatch, capsys) -> None:
    """In a log, the forecast's AutoML steps each get a line when they begin (not one a minute
    for a three-minute forecast saying nothing but the seconds)."""

    import emulation.sagemaker
    from harness import cli

    steps = iter(["reading s3://b/in/"] * 3 + ["backtesting 40 smooth series"] * 3
                 + ["ensemble: stacked"] * 1000)  # fmt: skip
    monkeypatch.setattr(emulation.sagemaker, "training_steps", lambda: {"dfp-1": next(steps)})
    monkeypatch.setattr(cli._StageClock, "LOG_EVERY", 1000.0)
    monkeypatch.setattr(cli._StageClock, "LOOK_EVERY", 0.02)
    seen = _stage_log(capsys, "forecast", until="ensemble: stacked")
    lines = [line.split(": ", 1)[1] for line in seen.splitlines() if "still running" in line]
    assert lines == ["reading s3://b/in/", "backtesting 40 smooth series", "ensemble: stacked"]


def test_the_etl_says_its_glue_job_once_and_its_tasks_on_the_minute(monkeypatch, capsys) -> None:
    """The Spark stage's task count changes every second: in a log it rides on the minute's line
    and the line of a new step, never a line of its own."""
    import time

    import emulation.glue.jobs
    import emulation.glue.spark
    from harness import cli

    tasks = iter(f"Spark stage 3: {n} of 9 tasks" for n in range(10_000))
    monkeypatch.setattr(emulation.glue.jobs, "running_job", lambda: "dfp-forecast-input")
    monkeypatch.setattr(emulation.glue.spark, "spark_progress", lambda: next(tasks))
    monkeypatch.setattr(cli._StageClock, "LOG_EVERY", 0.5)
    monkeypatch.setattr(cli._StageClock, "LOOK_EVERY", 0.02)
    cli._progress("start", "etl", {})
    time.sleep(1.2)
    cli._progress("succeeded", "etl", {"seconds": 1.2})
    lines = [line for line in capsys.readouterr().err.splitlines() if "still running" in line]
    # the step's first line, then one per LOG_EVERY: not one per count (60 looks)
    assert 1 <= len(lines) <= 4, lines
    assert all(": Glue job dfp-forecast-input, Spark stage 3: " in line for line in lines)
