"""``dfp validate`` runs a scenario on exactly a bundle's code and binds its report to the
manifest; promotion accepts that bundle and no byte-changed copy of it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploy.bundle import manifest_sha256, pipeline_root
from deploy.promote import REPORT_FILE, default_report_dir, promotion_problems
from harness.scenario import load_scenario
from tests.conftest import VALIDATE_SCENARIO, VALIDATE_TEST, child


@pytest.mark.e2e
def test_validate_runs_the_bundles_code_and_promotion_accepts_only_it(
    request: pytest.FixtureRequest,
) -> None:
    """``dfp validate`` on a fresh bundle and ``real-retail`` given as a path
    (``tests/conftest.py``); this is also that scenario's end-to-end test."""
    with child(request.config, VALIDATE_TEST) as validation:
        code, output = validation.result(timeout=900)
        assert code == 0, output[-3000:]
        # The forecaster's worker processes end cleanly: nothing left to the resource tracker
        # (it used to report "leaked semaphore objects" after every run that forecast).
        assert "leaked semaphore" not in output, output[-3000:]
        check_report_and_promotion(validation.bundle)


def check_report_and_promotion(bundle: Path) -> None:
    report_path = default_report_dir(bundle) / REPORT_FILE
    report = json.loads(report_path.read_text())
    assert report["passed"] and report["manifest_sha256"] == manifest_sha256(bundle)
    (scenario,) = report["scenarios"]
    # a scenario given as a path runs in a folder named by the scenario's own name
    name = load_scenario(str(VALIDATE_SCENARIO)).name
    assert Path(scenario["run_dir"]) == default_report_dir(bundle) / "runs" / name
    summary = json.loads((Path(scenario["run_dir"]) / "summary.json").read_text())
    assert summary["status"] == "succeeded"
    broken = {k: v for k, v in summary["stages"].items() if v["status"] != "succeeded"}
    assert not broken, broken
    failed = [e for e in summary["expectations"] if not e["ok"]]
    assert not failed and scenario["expectations_met"] == scenario["expectations"] > 0, failed
    # the bundle's Flink job processed the whole window (its sinks' watermark passed it)
    assert summary["anomaly"]["matches_reference"] is True
    # the run imported the bundle's unpacked copy, not this checkout's package
    assert summary["pipeline"]["root"] != str(pipeline_root())
    assert summary["pipeline"]["root"].endswith("/src/pipeline")
    assert summary["pipeline"]["digest"] == report["pipeline_digest"]

    assert promotion_problems(bundle, report_path) == []
    definition = bundle / "states" / "forecast" / "workflow.asl.json"
    definition.write_bytes(definition.read_bytes().replace(b'"Wait', b'"wait', 1))
    (problem,) = promotion_problems(bundle, report_path)
    assert str(definition) in problem
