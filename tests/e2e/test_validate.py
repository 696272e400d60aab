"""``dfp validate`` runs a scenario on exactly a bundle's code and binds its report to the
manifest; promotion accepts that bundle and no byte-changed copy of it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deploy.bundle import build_bundle, manifest_sha256, pipeline_root
from deploy.promote import REPORT_FILE, default_report_dir, promotion_problems
from harness.cli import app


@pytest.mark.e2e
def test_validate_runs_the_bundles_code_and_promotion_accepts_only_it(tmp_path: Path) -> None:
    jar = tmp_path / "deps.jar"
    jar.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    bundle = tmp_path / "bundle"
    build_bundle(bundle, flink_jar=jar)

    result = CliRunner().invoke(app, ["validate", str(bundle), "--scenario", "smoke"])
    assert result.exit_code == 0, result.output

    report_path = default_report_dir(bundle) / REPORT_FILE
    report = json.loads(report_path.read_text())
    assert report["passed"] and report["manifest_sha256"] == manifest_sha256(bundle)
    (scenario,) = report["scenarios"]
    summary = json.loads((Path(scenario["run_dir"]) / "summary.json").read_text())
    assert summary["status"] == "succeeded"
    # the run imported the bundle's unpacked copy, not this checkout's package
    assert summary["pipeline"]["root"] != str(pipeline_root())
    assert summary["pipeline"]["root"].endswith("/src/pipeline")
    assert summary["pipeline"]["digest"] == report["pipeline_digest"]

    assert promotion_problems(bundle, report_path) == []
    definition = bundle / "states" / "forecast" / "workflow.asl.json"
    definition.write_bytes(definition.read_bytes().replace(b'"Wait', b'"wait', 1))
    (problem,) = promotion_problems(bundle, report_path)
    assert str(definition) in problem
