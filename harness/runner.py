"""The run spine: world → provision → stages → expectations → ``summary.json`` + ``report.html``.

A run is a list of named stages. Each stage gets a :class:`RunContext` (scenario, world, the
resolved stack, the ledger, the output directory) and adds its counts, metrics and files. A
failing stage is recorded with its error, the remaining stages are marked ``skipped``, and the
summary and report are still written, so nothing is lost when something breaks.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from deploy.bundle import pipeline_digest, pipeline_root
from deploy.stack import ResolvedStack, load_stack
from emulation import World
from harness.files import MARKER, OccupiedDirectoryError, prepare_directory, sha256_file
from harness.ledger import Ledger
from harness.provision import provision
from harness.scenario import Expectation, Scenario

logger = logging.getLogger(__name__)

SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.html"
_NOT_ARTIFACTS = {SUMMARY_FILE, REPORT_FILE, MARKER}


RunDirectoryError = OccupiedDirectoryError  # the name callers of the run spine know


def harness_version() -> str:
    try:
        return version("dfp-harness")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"


@dataclass
class RunContext:
    """What a stage may read and add to."""

    scenario: Scenario
    out_dir: Path
    ledger: Ledger = field(default_factory=Ledger)
    world: World | None = None
    stack: ResolvedStack | None = None
    anomaly: dict[str, Any] | None = None
    forecast: dict[str, Any] | None = None
    simulation: Any = None
    extra: dict[str, Any] = field(default_factory=dict)  # summary sections
    scratch: dict[str, Any] = field(default_factory=dict)  # passed between stages only


Stage = Callable[[RunContext], None]


class StageUnavailable(Exception):
    """A stage cannot run in this world (e.g. it needs the embedded endpoint); not a failure of
    the pipeline, so later stages still run and expectations on its results still judge."""


Progress = Callable[[str, str, dict[str, Any]], None]


def _stage_provision(ctx: RunContext) -> None:
    assert ctx.world is not None
    ctx.stack = provision(ctx.world, load_stack())
    (ctx.out_dir / "stack.json").write_text(ctx.stack.to_json())
    if ctx.world.kind == "embedded":  # the forecaster's local knob: backtest windows
        from emulation.sagemaker import settings

        local = settings(ctx.world.account_id, ctx.world.region)
        local.backtest_windows = ctx.scenario.forecast.backtest_windows


def default_stages() -> list[tuple[str, Stage]]:
    """The stages that exist, in order."""
    from harness.anomaly_stage import stage_anomaly
    from harness.forecast_stage import stage_enrich, stage_forecast
    from harness.stages import stage_etl, stage_simulate, stage_staging, stage_stream

    return [
        ("provision", _stage_provision),
        ("simulate", stage_simulate),
        ("stream", stage_stream),
        ("staging", stage_staging),
        ("anomaly", stage_anomaly),
        ("etl", stage_etl),
        ("forecast", stage_forecast),
        ("enrich", stage_enrich),
    ]


def _lookup(summary: dict[str, Any], path: str) -> tuple[bool, Any]:
    node: Any = summary
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return False, None
    return True, node


def evaluate(expectation: Expectation, summary: dict[str, Any]) -> dict[str, Any]:
    """Judge one expectation against the summary; a missing value fails it."""
    found, value = _lookup(summary, expectation.path)
    result: dict[str, Any] = {"path": expectation.path, "actual": value}
    bounds = {
        k: v for k, v in (("min", expectation.min), ("max", expectation.max)) if v is not None
    }
    if expectation.equals is not None:
        bounds["equals"] = expectation.equals
    result["expected"] = bounds
    if not found or value is None:
        result.update(ok=False, reason=f"the summary has no value at {expectation.path}")
        return result
    if expectation.equals is not None:
        ok = value == expectation.equals
        reason = "" if ok else f"{value!r} is not {expectation.equals!r}"
    elif not isinstance(value, int | float) or isinstance(value, bool):
        ok, reason = False, f"{value!r} is not a number"
    else:
        reasons = []
        if expectation.min is not None and value < expectation.min:
            reasons.append(f"{value} < min {expectation.min}")
        if expectation.max is not None and value > expectation.max:
            reasons.append(f"{value} > max {expectation.max}")
        ok, reason = not reasons, "; ".join(reasons)
    result.update(ok=ok, reason=reason)
    return result


def artifact_hashes(out_dir: Path) -> dict[str, str]:
    return {
        path.relative_to(out_dir).as_posix(): sha256_file(path)
        for path in sorted(out_dir.rglob("*"))
        if path.is_file() and path.relative_to(out_dir).as_posix() not in _NOT_ARTIFACTS
    }


@dataclass
class RunResult:
    summary: dict[str, Any]
    out_dir: Path

    @property
    def ok(self) -> bool:
        return self.summary["status"] == "succeeded"


def run(
    scenario: Scenario,
    out_dir: Path,
    *,
    force: bool = False,
    world: World | None = None,
    region: str | None = None,
    stages: list[tuple[str, Stage]] | None = None,
    until: str | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Run ``scenario`` and write ``summary.json`` and ``report.html`` into ``out_dir``.

    ``world``: an already running world to use (the pytest plugin passes its session world);
    otherwise one is started from the environment and stopped at the end.
    """
    from harness.report import write_report

    out_dir = Path(out_dir)
    prepare_directory(out_dir, force)
    notify = progress or (lambda *_: None)
    ctx = RunContext(scenario=scenario, out_dir=out_dir)
    stage_results: dict[str, dict[str, Any]] = {}
    owns_world = world is None
    failed = False
    all_stages: list[tuple[str, Stage]] = [("world", lambda c: None), *(stages or default_stages())]
    if until is not None:
        names = [name for name, _ in all_stages]
        if until not in names:
            raise ValueError(f"no stage {until!r}; stages are {', '.join(names)}")
        all_stages = all_stages[: names.index(until) + 1]
    try:
        for name, stage in all_stages:
            if failed:
                stage_results[name] = {"status": "skipped", "seconds": 0.0}
                notify("skipped", name, {})
                continue
            notify("start", name, {})
            began = time.perf_counter()
            try:
                if name == "world":
                    if world is None:
                        world = World(region=region or load_stack().local.region).start()
                    ctx.world = world
                else:
                    stage(ctx)
                seconds = round(time.perf_counter() - began, 3)
                stage_results[name] = {"status": "succeeded", "seconds": seconds}
                notify("succeeded", name, {"seconds": seconds})
            except StageUnavailable as exc:
                seconds = round(time.perf_counter() - began, 3)
                stage_results[name] = {"status": "skipped", "seconds": seconds, "reason": str(exc)}
                logger.warning("stage %s skipped: %s", name, exc)
                notify("skipped", name, {"reason": str(exc)})
            except Exception as exc:
                failed = True
                seconds = round(time.perf_counter() - began, 3)
                stage_results[name] = {
                    "status": "failed",
                    "seconds": seconds,
                    "error": f"{type(exc).__name__}: {exc}",
                }
                logger.error("stage %s failed: %s", name, exc)
                (out_dir / "errors.log").open("a").write(
                    f"stage {name}:\n{traceback.format_exc()}\n"
                )
                notify("failed", name, {"seconds": seconds, "error": str(exc)})
    finally:
        if owns_world and world is not None:
            world.stop()

    summary: dict[str, Any] = {
        "scenario": scenario.name,
        "seed": scenario.seed,
        "version": harness_version(),
        "endpoint": {"kind": ctx.world.kind if ctx.world else None},
        "counts": ctx.ledger.counts(),
        "reconciliation": ctx.ledger.reconcile(),
        "anomaly": ctx.anomaly,
        "forecast": ctx.forecast,
        "stages": stage_results,
        "artifacts": artifact_hashes(out_dir),
        # Which code ran: a bundle's validation checks this digest against its manifest.
        "pipeline": {"digest": pipeline_digest(), "root": str(pipeline_root())},
        **ctx.extra,
    }
    summary["expectations"] = [evaluate(e, summary) for e in scenario.expectations]
    if until is not None:  # a partial run judges only what it produced
        for result in summary["expectations"]:
            if not result["ok"] and result["actual"] is None:
                result.update(ok=None, reason=f"not evaluated: the run stopped after {until}")
    stages_ok = all(s["status"] != "failed" for s in stage_results.values()) and not failed
    expectations_ok = all(e["ok"] is not False for e in summary["expectations"])
    summary["status"] = "succeeded" if stages_ok and expectations_ok else "failed"
    (out_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    write_report(summary, out_dir / REPORT_FILE)
    return RunResult(summary=summary, out_dir=out_dir)
