"""A validation judges each run: its status, its expectations, and which code it ran."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploy.bundle import BundleError, build_bundle
from harness.validate import _scenario_verdict, validate_bundle


def _run(tmp_path: Path, *, status: str = "succeeded", digest: str = "d", root: str = "/x") -> Path:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    summary = {
        "status": status,
        "stages": {"etl": {"status": "failed" if status != "succeeded" else "succeeded",
                           "error": "boom"}},
        "expectations": [{"path": "anomaly.recall", "ok": status == "succeeded",
                          "reason": "0.5 < 0.8"}],
        "pipeline": {"digest": digest, "root": root},
    }  # fmt: skip
    (run_dir / "summary.json").write_text(json.dumps(summary))
    return run_dir


def test_a_succeeded_run_of_the_bundles_code_passes(tmp_path: Path) -> None:
    verdict = _scenario_verdict("smoke", _run(tmp_path), "d", Path("/x"), 0)
    assert verdict["passed"] and verdict["reasons"] == []


def test_a_run_of_other_code_fails_even_when_it_succeeded(tmp_path: Path) -> None:
    verdict = _scenario_verdict("smoke", _run(tmp_path, digest="e", root="/repo"), "d",
                                Path("/x"), 0)  # fmt: skip
    assert not verdict["passed"]
    assert any("digest e, not the bundle's d" in r for r in verdict["reasons"])
    assert any("from /repo, not the bundle's copy" in r for r in verdict["reasons"])


def test_a_failed_run_names_its_stage_and_expectation(tmp_path: Path) -> None:
    verdict = _scenario_verdict("smoke", _run(tmp_path, status="failed"), "d", Path("/x"), 1)
    assert not verdict["passed"]
    assert "stage etl failed: boom" in verdict["reasons"]
    assert "expectation anomaly.recall: 0.5 < 0.8" in verdict["reasons"]
    assert not _scenario_verdict("x", tmp_path / "nowhere", "d", Path("/x"), 1)["passed"]


def test_a_tampered_bundle_is_not_run(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    build_bundle(bundle)
    (bundle / "pipeline.zip").write_bytes(b"not the package")
    with pytest.raises(BundleError, match=r"pipeline\.zip: sha256"):
        validate_bundle(bundle, ["smoke"], tmp_path / "out")
    assert not (tmp_path / "out" / "runs").exists()
