"""``dfp validate BUNDLE``: run scenarios on exactly a bundle's artifacts; write a report bound to
the bundle's manifest hash.

The bundle's pipeline package is unpacked (after checking every file against the manifest and the
separately shipped Glue scripts and state machine definitions against the package's copies), and
each scenario runs as ``dfp run`` in a child process whose ``pipeline`` package *is* that copy and
whose stack description is the bundle's. Each run records the digest of the code it ran; the
validation passes only when every run succeeded, met its expectations and ran the bundle's digest.
``dfp deploy promote`` then accepts the bundle only with a passing report for its manifest hash.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deploy.bundle import BundleError, extract_pipeline, manifest_sha256, read_manifest
from deploy.outputs import OutputDirError, check_output_dir, prepare_output_dir
from deploy.promote import REPORT_FILE, default_report_dir
from harness.runner import SUMMARY_FILE, harness_version
from harness.scenario import find_scenario, load_scenario

logger = logging.getLogger(__name__)

REPORT_FORMAT = 1
REPO = Path(__file__).resolve().parent.parent
Progress = Callable[[str, dict[str, Any]], None]


def _scenario_verdict(
    name: str, run_dir: Path, digest: str, package: Path, returncode: int
) -> dict[str, Any]:
    summary_path = run_dir / SUMMARY_FILE
    verdict: dict[str, Any] = {"scenario": name, "run_dir": str(run_dir), "exit_code": returncode}
    if not summary_path.is_file():
        verdict.update(passed=False, reasons=[f"{summary_path}: the run wrote no summary"])
        return verdict
    summary = json.loads(summary_path.read_text())
    reasons = []
    if summary.get("status") != "succeeded":
        failed_stages = [
            f"stage {stage} {info.get('status')}: {info.get('error', '')}".rstrip(": ")
            for stage, info in summary.get("stages", {}).items()
            if info.get("status") == "failed"
        ]
        failed_expectations = [
            f"expectation {e['path']}: {e.get('reason')}"
            for e in summary.get("expectations", [])
            if e.get("ok") is False
        ]
        reasons += failed_stages + failed_expectations or [f"status {summary.get('status')}"]
    ran = (summary.get("pipeline") or {}).get("digest")
    root = (summary.get("pipeline") or {}).get("root")
    if ran != digest:
        reasons.append(f"the run used pipeline digest {ran}, not the bundle's {digest}")
    if root != str(package):
        reasons.append(f"the run imported the pipeline from {root}, not the bundle's copy")
    verdict.update(
        passed=not reasons,
        reasons=reasons,
        status=summary.get("status"),
        pipeline_digest=ran,
        stages={k: v.get("status") for k, v in summary.get("stages", {}).items()},
        expectations_met=sum(1 for e in summary.get("expectations", []) if e.get("ok")),
        expectations=len(summary.get("expectations", [])),
    )
    return verdict


def validate_bundle(
    bundle: Path,
    scenarios: list[str],
    out_dir: Path | None = None,
    *,
    progress: Progress | None = None,
    run_options: list[str] | None = None,
) -> dict[str, Any]:
    """Run ``scenarios`` on ``bundle``'s code; write and return the validation report.

    Raises :class:`deploy.bundle.BundleError` when the bundle does not match its manifest (then
    nothing runs). ``run_options`` are passed to each ``dfp run`` (e.g. ``--seed``).
    """
    bundle = Path(bundle).resolve()
    out_dir = Path(out_dir) if out_dir else default_report_dir(bundle)
    try:  # the report directory is validate's own: replaced when dfp made it, else refused
        check_output_dir(out_dir, force=True)
    except OutputDirError as exc:
        raise BundleError(str(exc)) from None
    notify = progress or (lambda *_: None)
    manifest = read_manifest(bundle)
    identity = manifest_sha256(bundle)
    digest = manifest["source"]["pipeline_digest"]
    scenario_files = {name: find_scenario(name).resolve() for name in scenarios}
    # Run directories are named by each scenario's own name: what the user typed may be a path.
    folders: dict[str, str] = {}
    for name, path in scenario_files.items():
        own = load_scenario(str(path)).name
        folders[name] = own if own not in folders.values() else f"{own}-{len(folders) + 1}"
    prepare_output_dir(out_dir, force=True, kind="validation")
    out_dir = out_dir.resolve()
    results = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dfp-validate-") as tmp:
        package = extract_pipeline(bundle, Path(tmp) / "src")
        env = dict(os.environ)
        # The bundle's package first on the path, so `import pipeline` is the bundle's copy.
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(package.parent), str(REPO), env.get("PYTHONPATH", "")) if p
        )
        env["DFP_STACK_FILE"] = str(bundle / "stack.yaml")
        for name, path in scenario_files.items():
            run_dir = out_dir / "runs" / folders[name]
            notify("start", {"scenario": name, "run_dir": str(run_dir)})
            began = time.perf_counter()
            command = [sys.executable, "-m", "harness.cli", "run", str(path), "--out",
                       str(run_dir), "--force", *(run_options or [])]  # fmt: skip
            with (out_dir / f"{folders[name]}.log").open("w") as log:
                # cwd: `python -m` puts it first on sys.path; it must not hold a `pipeline/`.
                returncode = subprocess.run(
                    command, env=env, cwd=tmp, stdout=log, stderr=subprocess.STDOUT, check=False
                ).returncode
            verdict = _scenario_verdict(name, run_dir, digest, package.resolve(), returncode)
            verdict["seconds"] = round(time.perf_counter() - began, 1)
            results.append(verdict)
            notify("done", verdict)
    report = {
        "format": REPORT_FORMAT,
        "bundle": str(bundle),
        "manifest_sha256": identity,
        "pipeline_digest": digest,
        "incomplete": manifest.get("incomplete", []),
        "passed": bool(results) and all(r["passed"] for r in results),
        "scenarios": results,
        "harness_version": harness_version(),
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 1),
    }
    (out_dir / REPORT_FILE).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return report
