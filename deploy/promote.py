"""Synthesis (offline) and promotion of a validated bundle to AWS, both through the CDK CLI.

``synth``: ``cdk synth`` of :mod:`deploy.app` over a bundle (cdk-nag's AWS Solutions pack runs as
a policy-validation plugin, so an unacknowledged finding fails synthesis), then cfn-lint on the
template, then a check that the template's ``dfp:bundle`` metadata and every asset it ships are
the bundle's bytes. Needs no credentials and no network.

``promote``: refuses unless the bundle's files match its manifest, a validation report exists for
that manifest's hash and passed, and the bundle is complete; then shows the target account and
region and asks (unless told ``yes``), then ``cdk deploy``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploy.bundle import BundleError, manifest_sha256, read_manifest, verify_bundle
from deploy.outputs import OutputDirError, check_output_dir, prepare_output_dir

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
# The CDK CLI set-up installs from deploy/package.json (npm), pinned by its lock file.
CDK_DIR = REPO / ".dfp" / "cdk"
STACK_ID = "DemandForecasting"
SYNTH_REPORT = "synth.json"
REPORT_FILE = "validation.json"  # written by dfp validate, read by promote
# jsii (the bridge from Python to the CDK's JavaScript) prints a banner on every start when Node
# is older than it prefers. Node 20 (this machine's) works for synthesis and deployment; the
# README recommends 22 or newer.
JSII_QUIET = {
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "18,20",
    "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
    "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION": "1",
}


class DeployError(Exception):
    """Synthesis or deployment could not run or failed (the message says where)."""


class PromotionRefused(Exception):
    """The bundle may not be promoted; ``reasons`` says why, each naming the file."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


def cdk_cli() -> Path:
    cli = CDK_DIR / "node_modules" / ".bin" / "cdk"
    if not cli.is_file():
        raise DeployError(f"{cli}: the AWS CDK CLI is not installed; run ./bootstrap.sh setup")
    return cli


def _environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p),
            # Offline: no telemetry, no notices fetched, no Node end-of-life banner from jsii.
            "CDK_DISABLE_CLI_TELEMETRY": "true",
            **JSII_QUIET,
        }
    )
    env.update(extra or {})
    return env


def _app_command() -> str:
    return f"{sys.executable} -m deploy.app"


@dataclass
class SynthResult:
    out_dir: Path
    template: Path
    manifest_sha256: str
    nag_violations: list[dict[str, Any]] = field(default_factory=list)
    cfn_lint: list[str] = field(default_factory=list)
    asset_problems: list[str] = field(default_factory=list)
    assets: dict[str, str] = field(default_factory=dict)
    acknowledged: list[dict[str, str]] = field(default_factory=list)
    log: str = ""

    @property
    def ok(self) -> bool:
        return not (self.nag_violations or self.cfn_lint or self.asset_problems)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "template": str(self.template),
            "manifest_sha256": self.manifest_sha256,
            "nag_violations": self.nag_violations,
            "nag_acknowledged": self.acknowledged,
            "cfn_lint": self.cfn_lint,
            "asset_problems": self.asset_problems,
            "assets": self.assets,
        }


def _nag_violations(report_path: Path) -> list[dict[str, Any]]:
    if not report_path.is_file():
        return []
    report = json.loads(report_path.read_text())
    found = []
    for plugin in report.get("pluginReports", []):
        for violation in plugin.get("violations", []):
            found.append({
                "rule": violation.get("ruleName"),
                "description": (violation.get("description") or "").split("\n")[0],
                "resources": [
                    r.get("constructPath") or r.get("resourceLogicalId")
                    for r in violation.get("violatingResources", [])
                ],
            })  # fmt: skip
    return found


def _acknowledgments(metadata_path: Path) -> list[dict[str, str]]:
    """Every acknowledged (suppressed) cdk-nag finding with its reason, from CDK's metadata."""
    if not metadata_path.is_file():
        return []
    found = []
    for path, entries in sorted(json.loads(metadata_path.read_text()).items()):
        for entry in entries:
            if entry.get("type") == "aws:cdk:acknowledged-rules":
                for rule, reason in sorted(entry.get("data", {}).items()):
                    found.append({"path": path, "rule": rule.removeprefix("Annotation::"),
                                  "reason": reason})  # fmt: skip
    return found


def check_assets(out_dir: Path, bundle: Path) -> tuple[dict[str, str], list[str]]:
    """Map each bundle artifact to the asset CDK staged with the same bytes; problems if an asset
    is not one of the bundle's artifacts, a code artifact is not shipped, or the template's
    bundle metadata is stale."""
    manifest = read_manifest(bundle)
    by_hash: dict[str, list[str]] = {}
    for path, artifact in sorted(manifest["artifacts"].items()):
        by_hash.setdefault(artifact["sha256"], []).append(path)
    assets_file = out_dir / f"{STACK_ID}.assets.json"
    problems: list[str] = []
    mapping: dict[str, str] = {}
    for key, asset in json.loads(assets_file.read_text()).get("files", {}).items():
        source = out_dir / asset["source"]["path"]
        if source.name == f"{STACK_ID}.template.json":
            continue
        digest = hashlib.sha256(source.read_bytes()).hexdigest()
        if digest not in by_hash:
            problems.append(f"{source}: sha256 {digest} is not an artifact of {bundle}")
        else:
            for path in by_hash[digest]:
                mapping[path] = key
    for path, artifact in sorted(manifest["artifacts"].items()):
        if artifact["kind"] != "stack-description" and path not in mapping:
            problems.append(
                f"{bundle / path}: not shipped by the template (no asset has its bytes)"
            )
    template = json.loads((out_dir / f"{STACK_ID}.template.json").read_text())
    metadata = template.get("Metadata", {}).get("dfp:bundle", {})
    if metadata.get("manifest_sha256") != manifest_sha256(bundle):
        problems.append(
            f"{out_dir / f'{STACK_ID}.template.json'}: dfp:bundle.manifest_sha256 "
            f"{metadata.get('manifest_sha256')} is not the bundle's {manifest_sha256(bundle)}"
        )
    return mapping, problems


def synth(bundle: Path, out_dir: Path) -> SynthResult:
    """``cdk synth`` + cdk-nag + cfn-lint + asset check; writes ``synth.json`` into ``out_dir``."""
    bundle = Path(bundle).resolve()
    problems = verify_bundle(bundle)
    if problems:
        raise BundleError("the bundle does not match its manifest: " + "; ".join(problems))
    try:  # cdk.out is synth's own output: replaced when dfp made it, refused otherwise
        prepare_output_dir(out_dir, force=True, kind="cdk synth")
    except OutputDirError as exc:
        raise DeployError(str(exc)) from None
    out_dir = Path(out_dir).resolve()
    command = [str(cdk_cli()), "synth", "--app", _app_command(), "--context", f"bundle={bundle}",
               "--output", str(out_dir), "--quiet", "--no-notices", "--no-version-reporting",
               "--no-path-metadata", "--no-asset-metadata"]  # fmt: skip
    logger.info("running %s", " ".join(command))
    proc = subprocess.run(
        command, cwd=REPO, env=_environment(), capture_output=True, text=True, check=False
    )
    template = out_dir / f"{STACK_ID}.template.json"
    result = SynthResult(out_dir, template, manifest_sha256(bundle), log=proc.stdout + proc.stderr)
    result.nag_violations = _nag_violations(out_dir / "validation-report.json")
    if proc.returncode != 0 and not result.nag_violations:
        raise DeployError(f"cdk synth failed (exit {proc.returncode}):\n{result.log[-4000:]}")
    if proc.returncode == 0:
        lint = subprocess.run(
            [str(Path(sys.executable).with_name("cfn-lint")), str(template)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if lint.returncode != 0:
            result.cfn_lint = [line for line in lint.stdout.splitlines() if line.strip()] or [
                lint.stderr.strip()
            ]
        result.assets, result.asset_problems = check_assets(out_dir, bundle)
        result.acknowledged = _acknowledgments(out_dir / f"{STACK_ID}.metadata.json")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / SYNTH_REPORT).write_text(json.dumps(result.to_json(), indent=2) + "\n")
    return result


# ------------------------------------------------------------------------------ promotion
def default_report_dir(bundle: Path) -> Path:
    """Where ``dfp validate`` writes and ``dfp deploy promote`` looks: next to the bundle."""
    bundle = Path(bundle).resolve()
    return bundle.with_name(bundle.name + "-validation")


def read_report(path: Path) -> dict[str, Any]:
    """A validation report; errors name the file and the field."""
    try:
        report = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise BundleError(
            f"{path}: no validation report; run dfp validate on this bundle first"
        ) from None
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path}: not JSON: {exc}") from None
    for name, kind in (("manifest_sha256", str), ("passed", bool), ("scenarios", list)):
        if not isinstance(report.get(name), kind):
            raise BundleError(f"{path}: field {name!r} is missing or not a {kind.__name__}")
    return report


def promotion_problems(bundle: Path, report_path: Path) -> list[str]:
    """Why ``bundle`` may not be promoted with the validation report at ``report_path``."""
    bundle = Path(bundle)
    try:
        problems = verify_bundle(bundle)
    except BundleError as exc:
        return [str(exc)]
    if problems:
        return [f"the bundle changed since it was built: {p}" for p in problems]
    identity = manifest_sha256(bundle)
    try:
        report = read_report(report_path)
    except BundleError as exc:
        return [str(exc)]
    reasons = []
    if report["manifest_sha256"] != identity:
        reasons.append(
            f"{report_path}: validates manifest {report['manifest_sha256']}, but this bundle's "
            f"manifest is {identity}; run dfp validate on this bundle"
        )
    elif not report["passed"]:
        failed = [
            f"{s.get('scenario')}: {'; '.join(s.get('reasons', []))}"
            for s in report["scenarios"]
            if not s.get("passed")
        ]
        reasons.append(f"{report_path}: the validation did not pass ({' | '.join(failed)})")
    for gap in read_manifest(bundle).get("incomplete", []):
        reasons.append(f"{bundle / gap['artifact']}: incomplete: {gap['reason']}")
    return reasons


@dataclass(frozen=True)
class Target:
    account: str
    region: str
    arn: str


def target_identity(session: Any) -> Target:
    """The account and region ``session`` would deploy to (STS; fails clearly without
    credentials)."""
    from botocore.exceptions import BotoCoreError, ClientError

    region = session.region_name
    if not region:
        raise DeployError("no AWS region: set AWS_REGION or pass --region")
    try:
        identity = session.client("sts").get_caller_identity()
    except (BotoCoreError, ClientError) as exc:
        raise DeployError(f"cannot identify the target account (AWS credentials?): {exc}") from exc
    return Target(identity["Account"], region, identity["Arn"])


def promote(
    bundle: Path,
    report_path: Path,
    *,
    session: Any,
    confirm: Callable[[Target], bool],
    out_dir: Path,
) -> Target:
    """Check, confirm, ``cdk deploy``. Raises :class:`PromotionRefused` before touching AWS when
    a check fails, and :class:`DeployError` when CDK fails."""
    bundle = Path(bundle).resolve()
    reasons = promotion_problems(bundle, report_path)
    try:  # CDK writes the deployment's cloud assembly there: only into a directory of dfp's
        check_output_dir(out_dir, force=True)
    except OutputDirError as exc:
        reasons.append(str(exc))
    if reasons:
        raise PromotionRefused(reasons)
    target = target_identity(session)
    if not confirm(target):
        raise PromotionRefused(["not confirmed"])
    prepare_output_dir(out_dir, force=True, kind="cdk deploy")
    command = [str(cdk_cli()), "deploy", STACK_ID, "--app", _app_command(), "--context",
               f"bundle={bundle}", "--output", str(out_dir), "--require-approval", "never",
               "--no-notices"]  # fmt: skip
    env = _environment({"CDK_DEFAULT_ACCOUNT": target.account, "CDK_DEFAULT_REGION": target.region,
                        "AWS_REGION": target.region})  # fmt: skip
    proc = subprocess.run(command, cwd=REPO, env=env, check=False)
    if proc.returncode != 0:
        raise DeployError(f"cdk deploy failed (exit {proc.returncode}); see its output above")
    return target
