"""Promotion refuses, with the reason, any bundle that is not exactly a validated one; it shows
the target account and region and asks before deploying."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from deploy.bundle import build_bundle, manifest_sha256
from deploy.promote import PromotionRefused, promote, promotion_problems
from emulation import World
from harness.cli import app

runner = CliRunner()


class NoAws:
    """A session that fails the test if promotion reaches AWS before its checks passed."""

    region_name = "us-east-1"

    def client(self, *_: Any, **__: Any) -> Any:
        raise AssertionError("promotion called AWS although a check failed")


def _complete_bundle(tmp_path: Path) -> Path:
    jar = tmp_path / "deps.jar"
    jar.write_bytes(b"PK\x05\x06" + b"\0" * 18)  # promotion checks bytes, not jar contents
    bundle = tmp_path / "bundle"
    build_bundle(bundle, flink_jar=jar)
    return bundle


def _report(tmp_path: Path, bundle: Path, *, passed: bool = True, name: str = "v.json") -> Path:
    """A validation report as dfp validate writes it (the e2e test makes a real one)."""
    scenario = {"scenario": "smoke", "passed": passed,
                "reasons": [] if passed else ["expectation anomaly.recall: 0.5 < 0.8"]}  # fmt: skip
    path = tmp_path / name
    path.write_text(json.dumps({"format": 1, "manifest_sha256": manifest_sha256(bundle),
                                "passed": passed, "scenarios": [scenario]}))  # fmt: skip
    return path


def test_one_changed_byte_is_refused_with_the_file_named(tmp_path: Path) -> None:
    bundle = _complete_bundle(tmp_path)
    report = _report(tmp_path, bundle)
    assert promotion_problems(bundle, report) == []
    script = bundle / "glue" / "etl" / "forecast_input.py"
    data = bytearray(script.read_bytes())
    data[-2] ^= 0x20
    script.write_bytes(bytes(data))
    with pytest.raises(PromotionRefused) as refused:
        promote(bundle, report, session=NoAws(), confirm=lambda _: True, out_dir=tmp_path / "o")
    (reason,) = refused.value.reasons
    assert str(script) in reason and "differs from the manifest" in reason
    result = runner.invoke(
        app, ["deploy", "promote", str(bundle), "--report", str(report), "--yes"]
    )
    assert result.exit_code == 2
    assert "promotion refused" in result.output and "forecast_input.py" in result.output


def test_a_report_must_exist_match_the_manifest_and_have_passed(tmp_path: Path) -> None:
    bundle = _complete_bundle(tmp_path)
    (missing,) = promotion_problems(bundle, tmp_path / "none.json")
    assert "no validation report" in missing
    other = tmp_path / "other"
    build_bundle(other)  # another bundle: no jar, so another manifest
    (stale,) = promotion_problems(bundle, _report(tmp_path, other, name="stale.json"))
    assert "validates manifest" in stale and manifest_sha256(bundle) in stale
    (failed,) = promotion_problems(bundle, _report(tmp_path, bundle, passed=False))
    assert "did not pass" in failed and "anomaly.recall" in failed
    broken = tmp_path / "broken.json"
    broken.write_text('{"manifest_sha256": 3}')
    (bad,) = promotion_problems(bundle, broken)
    assert "broken.json: field 'manifest_sha256'" in bad


def test_an_incomplete_bundle_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # as on a machine where set-up could not build the Managed Flink dependency jar
    monkeypatch.setattr("deploy.bundle.DEFAULT_FLINK_JAR", tmp_path / "not-built.jar")
    bundle = tmp_path / "bundle"
    manifest = build_bundle(bundle, flink_jar=None)
    assert manifest["incomplete"]
    (reason,) = promotion_problems(bundle, _report(tmp_path, bundle))
    assert "flink/anomaly.zip: incomplete" in reason


def test_promote_shows_account_and_region_and_asks(aws: World, tmp_path: Path) -> None:
    bundle = _complete_bundle(tmp_path)
    report = _report(tmp_path, bundle)
    env = {"AWS_ENDPOINT_URL": aws.endpoint_url, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": aws.region}  # fmt: skip
    result = runner.invoke(
        app, ["deploy", "promote", str(bundle), "--report", str(report)], input="n\n", env=env
    )
    assert result.exit_code == 2, result.output
    assert aws.account_id in result.output and aws.region in result.output
    assert "Deploy?" in result.output and "not confirmed" in result.output
