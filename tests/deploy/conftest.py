"""Deploy fixtures: one bundle and one in-process synthesis per test session."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deploy.bundle import build_bundle


@dataclass
class Synthesized:
    bundle: Path
    out_dir: Path
    template: dict[str, Any]

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return {
            logical: resource.get("Properties", {})
            for logical, resource in self.template["Resources"].items()
            if resource["Type"] == kind
        }

    def asset_file(self, key: str) -> Path:
        """The staged file of an asset object key (``<hash>.<ext>``)."""
        return self.out_dir / f"asset.{key}"


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "bundle"
    build_bundle(out)
    return out


@dataclass
class CliSynth:
    returncode: int
    stderr: str
    out_dir: Path


@pytest.fixture(scope="session")
def cli_synth(bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> CliSynth:
    """``dfp deploy synth`` as a user runs it: the CDK CLI with cdk-nag, cfn-lint and the asset
    check, offline, without credentials or an AWS config. Once per session: its template is the
    one every template test reads."""
    home = tmp_path_factory.mktemp("home")
    env = {
        "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
        "HOME": str(home),
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    }
    out = tmp_path_factory.mktemp("cdk") / "cdk.out"
    command = ["-m", "harness.cli", "deploy", "synth", str(bundle_dir), "--out", str(out)]
    proc = subprocess.run(
        [sys.executable, *command], env=env, capture_output=True, text=True, check=False,
        cwd=Path(__file__).parents[2],
    )  # fmt: skip
    return CliSynth(proc.returncode, proc.stderr, out)


@pytest.fixture(scope="session")
def synthesized(bundle_dir: Path, cli_synth: CliSynth) -> Synthesized:
    """The template ``dfp deploy synth`` wrote (cdk-nag ran as a validation plugin: it fails
    synthesis on an unacknowledged finding)."""
    from deploy.app import STACK_ID

    assert cli_synth.returncode == 0, cli_synth.stderr[-3000:]
    template = json.loads((cli_synth.out_dir / f"{STACK_ID}.template.json").read_text())
    return Synthesized(bundle_dir, cli_synth.out_dir, template)


def resolve(value: Any, account: str, region: str) -> Any:
    """Evaluate the intrinsics a name is built from (pseudo parameters, Fn::Join); references to
    resources stay as ``<ref:ID>`` / ``<getatt:ID.Attr>`` markers."""
    pseudo = {"AWS::AccountId": account, "AWS::Region": region, "AWS::Partition": "aws",
              "AWS::URLSuffix": "amazonaws.com"}  # fmt: skip
    if isinstance(value, list):
        return [resolve(v, account, region) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        return pseudo.get(value["Ref"], f"<ref:{value['Ref']}>")
    if set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return separator.join(str(resolve(p, account, region)) for p in parts)
    if set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
        text = value["Fn::Sub"]
        for name, resolved in pseudo.items():
            text = text.replace("${" + name + "}", resolved)
        return text
    if set(value) == {"Fn::GetAtt"}:
        return f"<getatt:{'.'.join(value['Fn::GetAtt'])}>"
    return {k: resolve(v, account, region) for k, v in value.items()}
