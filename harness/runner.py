"""The run spine: world → provision → stages → expectations → ``summary.json`` + ``report.html``.

The spine starts (or is given) the world and provisions the stack — reported as the stages
``world`` and ``provision`` — then runs the stages of :mod:`harness.stages` in order over one
:class:`~harness.run.RunContext`. A failing stage is recorded with its error, the remaining
stages are marked ``skipped``, and the summary and report are still written, so nothing is lost
when something breaks. Last, the stack's state in the world is saved into ``RUN_DIR/world/``
(after a failure too), which ``dfp world RUN_DIR`` loads into a fresh world.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from deploy.bundle import pipeline_digest, pipeline_root
from deploy.stack import ResolvedStack, load_stack
from emulation import World
from emulation.state import Selection, save_state
from harness.files import MARKER, OutputDirError, content_sha256, prepare_directory
from harness.ledger import Ledger
from harness.provision import provision
from harness.run import RunContext, RunDir, StageSpec, StageUnavailable
from harness.run.layout import REPORT_FILE, SUMMARY_FILE
from harness.scenario import Expectation, Scenario
from harness.stages import STAGES

logger = logging.getLogger(__name__)

__all__ = ["REPORT_FILE", "SUMMARY_FILE", "RunResult", "evaluate", "run"]

LOCALSTACK_SCRATCH = ".localstack"  # LocalStack's files during a run (deleted when it stops)
LOCALSTACK_LOG = "localstack.log"  # its log, kept (a log: no data artifact)
_NOT_ARTIFACTS = {SUMMARY_FILE, REPORT_FILE, MARKER}
SPINE = ("world", "provision")  # run before any stage; every stage may rely on both

RunDirectoryError = OutputDirError  # the name callers of the run spine know
Progress = Callable[[str, str, dict[str, Any]], None]


def harness_version() -> str:
    try:
        return version("dfp-harness")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"


def _provision(world: World, scenario: Scenario, out: RunDir) -> ResolvedStack:
    stack = provision(world, load_stack())
    out.stack.write_text(stack.to_json())
    if world.in_process:  # the forecaster's local knob: backtest windows
        from emulation.sagemaker import settings

        settings(
            world.account_id, world.region
        ).backtest_windows = scenario.forecast.backtest_windows
    return stack


#: The stage that writes each summary section, and each hop's counts: how far a run must go for
#: an expectation on it to be judged (:func:`last_judged_stage`).
_SECTION_STAGE = {"simulation": "simulate", "stream": "stream", "staging": "staging",
                  "anomaly": "anomaly", "alerts": "anomaly", "etl": "etl",
                  "forecast": "forecast", "enrich": "enrich"}  # fmt: skip
_HOP_STAGE = {"dms_cdc": "simulate", "shop_events": "simulate", "bad_records": "stream",
              "kinesis_producer": "stream", "kinesis_cdc": "stream", "dms_load": "staging",
              "firehose_staged": "staging", "s3_staged": "staging", "anomaly_job": "anomaly",
              "firehose_outliers": "anomaly", "glue_cdc_apply": "etl",
              "glue_forecast_input": "etl", "forecast_export": "forecast",
              "forecast_enriched": "enrich"}  # fmt: skip
# Faults are caught as late as the Glue job; what late changes cost is known after the anomaly job.
_FAULT_STAGE = {"bad_records": "etl", "dms": "etl", "kinesis": "anomaly",
                "duplicates_removed": "etl", "events": "enrich", "glue": "enrich",
                "sagemaker": "forecast", "flink": "anomaly"}  # fmt: skip


def _judging_stage(path: str, order: list[str]) -> str | None:
    """The stage whose results the summary path ``path`` reads (``None``: no stage in
    particular; an unknown path: the last stage)."""
    head, _, rest = path.partition(".")
    second = rest.split(".", 1)[0]
    if head in ("reconciliation", "status", "scenario", "seed", "version", "endpoint"):
        return None
    if head in _SECTION_STAGE:
        return _SECTION_STAGE[head]
    if head == "counts" and second in _HOP_STAGE:
        return _HOP_STAGE[second]
    if head == "stages" and second in order:
        return second
    if head == "faults":
        return _FAULT_STAGE.get(second, order[-1])
    return order[-1]


def last_judged_stage(scenario: Scenario) -> str:
    """The last stage an expectation of ``scenario`` reads: a run ``until`` it judges them all.
    Paths this cannot place (``reconciliation``, ``status``…) need no particular stage; a path
    it does not know at all needs the whole run."""
    order = [*SPINE, *(s.name for s in STAGES)]
    stages = [_judging_stage(e.path, order) for e in scenario.expectations]
    return order[max((order.index(s) for s in stages if s is not None), default=0)]


def unjudged_stages(scenario: Scenario) -> list[str]:
    """Stages before :func:`last_judged_stage` whose results nothing of ``scenario`` judges:
    side branches (nothing later reads what they give) that no expectation reads and where no
    fault of the scenario is caught or costed (the anomaly job catches bad records, measures
    what late changes cost and reads through throttling). A scenario about forecasts or failed
    jobs can leave the streaming job out; ``dfp run`` always runs every stage."""
    order = [*SPINE, *(s.name for s in STAGES)]
    until = order.index(last_judged_stage(scenario))
    judged = {_judging_stage(e.path, order) for e in scenario.expectations}
    faults = scenario.faults
    judged_by_faults = {"anomaly"} if (
        faults.bad_records is not None or faults.dms.late or faults.kinesis.active
    ) else set()  # fmt: skip
    return [
        spec.name for spec in STAGES
        if spec.side_branch and order.index(spec.name) < until
        and spec.name not in judged | judged_by_faults
    ]  # fmt: skip


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
    """The run's data artifacts, hashed by content (:func:`content_sha256`): the same scenario
    and seed give the same hashes in any process. The saved world state is not one: it holds
    what the world made up (arrival times, execution names, query ids) besides the data hashed
    here. Nor is the Flink application's working directory: the properties the service hands the
    job and the local cluster's configuration name the world's endpoint (a port of its own in
    each process), its jars are the runtime's, its checkpoints and snapshots depend on timing;
    what the job produced is ``anomaly/outliers.json``. Nor are logs: they are stamped with
    the time."""
    layout = RunDir(out_dir)
    skipped = (layout.world_state, layout.flink)
    return {
        path.relative_to(out_dir).as_posix(): content_sha256(path)
        for path in sorted(out_dir.rglob("*"))
        if path.is_file()
        and path.suffix != ".log"
        and path.relative_to(out_dir).as_posix() not in _NOT_ARTIFACTS
        and not any(path.is_relative_to(folder) for folder in skipped)
    }


def stack_selection(stack: ResolvedStack) -> Selection:
    """The resources a run's stack owns in its world: what is saved, and nothing else."""
    spec = stack.stack
    return Selection(
        buckets=tuple(stack.bucket(key) for key in spec.buckets),
        databases=(spec.glue.database,),
        streams=tuple(stack.stream_name(key) for key in spec.streams),
        tables=tuple(stack.table_name(key) for key in spec.tables),
        state_machines=tuple(stack.state_machine_arn(key) for key in spec.state_machines),
    )


def _save_world(ctx: RunContext) -> dict[str, Any]:
    """Save the stack's state into the run directory (``dfp world RUN_DIR`` loads it)."""
    began = time.perf_counter()
    folder = ctx.out.world_state
    try:
        manifest = save_state(ctx.world, folder, stack_selection(ctx.stack))
    except Exception as exc:  # a run's results never depend on the save
        logger.error("saving the world state failed: %s", exc)
        with ctx.out.errors_log.open("a") as log:
            log.write(f"world state:\n{traceback.format_exc()}\n")
        return {"saved": False, "error": f"{type(exc).__name__}: {exc}"}
    return {
        "saved": True,
        "folder": folder.relative_to(ctx.out.root).as_posix(),
        "counts": manifest["counts"],
        "seconds": round(time.perf_counter() - began, 3),
    }


def _end_faults(ctx: RunContext | None) -> None:
    """Disarm the world's faults (a shared world serves the next run) and note what they did."""
    if ctx is None or not ctx.scenario.faults.in_the_world:
        return
    from emulation._managed_state import served_in_process
    from emulation.events import deliver_twice
    from emulation.events import state as events_state
    from emulation.kinesis.faults import Rates, refused, throttle

    world = ctx.world
    if not world.in_process:
        return
    if ctx.scenario.faults.kinesis.active and served_in_process("kinesis"):
        stream = ctx.stack.stream_name("cdc")
        counts = refused(world.account_id, world.region, stream)
        throttle(world.account_id, world.region, stream, Rates())
        if ctx.faults is not None:
            ctx.faults.throttling = {
                (key if key.endswith("_seen") else f"{key}_throttled"): n
                for key, n in counts.items()
            }
    if ctx.scenario.faults.glue.active and served_in_process("glue"):
        _end_glue_faults(ctx)
    if ctx.scenario.faults.sagemaker.active and served_in_process("sagemaker"):
        from emulation.sagemaker import settings as sagemaker_settings

        local = sagemaker_settings(world.account_id, world.region)
        if ctx.faults is not None:
            ctx.faults.automl_failed = local.failed_on_purpose
        local.fail_automl_jobs, local.failed_on_purpose = 0, 0
    if ctx.scenario.faults.events.active and served_in_process("events"):
        deliver_twice(world.account_id, world.region, 0.0, 0)
        deliveries = events_state(world.account_id, world.region).deliveries
        if ctx.faults is not None:
            ctx.faults.deliveries = {
                "delivered": sum(1 for d in deliveries if not d.duplicate),
                "delivered_twice": sum(1 for d in deliveries if d.duplicate),
                "failed": sum(1 for d in deliveries if d.error),
            }


def _end_glue_faults(ctx: RunContext) -> None:
    """Disarm the failing Glue runs; count each job's runs in this run and how they ended."""
    from emulation.glue.faults import fail_runs, failures

    world = ctx.world
    failed_on_purpose = failures(world.account_id, world.region)
    glue = world.client("glue")
    for key in ctx.scenario.faults.glue.failed_runs:
        job = ctx.stack.job_name(key)
        fail_runs(world.account_id, world.region, job, 0)
        if ctx.faults is None:
            continue
        seen = ctx.faults.glue_seen.get(key, set())
        runs = [r for page in glue.get_paginator("get_job_runs").paginate(JobName=job)
                for r in page["JobRuns"] if r["Id"] not in seen]  # fmt: skip
        states = Counter(r["JobRunState"] for r in runs)
        ctx.faults.glue_runs[key] = {
            "runs": len(runs),
            "failed": states["FAILED"],
            "failed_on_purpose": failed_on_purpose.get(job, 0),
            "succeeded": states["SUCCEEDED"],
            # Glue's own retries name the run they repeat; a workflow's start a fresh run.
            "retried_by_glue": sum(1 for r in runs if r.get("PreviousRunId")),
        }


@dataclass
class RunResult:
    """A finished run: its summary, its directory, and the ground truth to judge it by."""

    summary: dict[str, Any]
    out_dir: Path

    @property
    def ok(self) -> bool:
        return self.summary["status"] == "succeeded"

    def truth_anomalies(self) -> Any:
        """The anomalies the simulator injected (a pyarrow Table; ``sale_ids`` per anomaly)."""
        import pyarrow.parquet as pq

        return pq.read_table(RunDir(self.out_dir).truth_anomalies)

    def truth_daily(self) -> Any:
        """True demand per product and day (a pyarrow Table)."""
        import pyarrow.parquet as pq

        return pq.read_table(RunDir(self.out_dir).truth_daily)

    def outliers(self) -> list[dict[str, Any]]:
        """The outliers the anomaly job wrote (empty when the run stopped before it)."""
        path = RunDir(self.out_dir).outliers
        return json.loads(path.read_text()) if path.exists() else []


class _Stages:
    """Runs named steps, records each one's status and time, and stops after a failure."""

    def __init__(self, out: RunDir, notify: Progress) -> None:
        self.out = out
        self.notify = notify
        self.results: dict[str, dict[str, Any]] = {}
        self.failed = False

    def run(self, name: str, step: Callable[[], Any]) -> Any:
        if self.failed:
            self.results[name] = {"status": "skipped", "seconds": 0.0}
            self.notify("skipped", name, {})
            return None
        self.notify("start", name, {})
        began = time.perf_counter()
        try:
            value = step()
        except StageUnavailable as exc:
            seconds = round(time.perf_counter() - began, 3)
            self.results[name] = {"status": "skipped", "seconds": seconds, "reason": str(exc)}
            logger.warning("stage %s skipped: %s", name, exc)
            self.notify("skipped", name, {"reason": str(exc)})
            return None
        except Exception as exc:
            self.failed = True
            seconds = round(time.perf_counter() - began, 3)
            self.results[name] = {
                "status": "failed",
                "seconds": seconds,
                "error": f"{type(exc).__name__}: {exc}",
            }
            logger.error("stage %s failed: %s", name, exc)
            with self.out.errors_log.open("a") as log:
                log.write(f"stage {name}:\n{traceback.format_exc()}\n")
            self.notify("failed", name, {"seconds": seconds, "error": str(exc)})
            return None
        seconds = round(time.perf_counter() - began, 3)
        self.results[name] = {"status": "succeeded", "seconds": seconds}
        self.notify("succeeded", name, {"seconds": seconds})
        return value


def _skip_without_inputs(spec: StageSpec, ctx: RunContext, givers: dict[str, str],
                         results: dict[str, dict[str, Any]]) -> None:  # fmt: skip
    """A stage whose input an earlier stage ran and chose not to give (a forecast that failed
    as the scenario's faults asked gives no export) has nothing to do: skipped, saying why. An
    input whose giver has not run stays an error (:meth:`StageSpec.check_needs`)."""
    for need in spec.needs:
        giver = givers.get(need)
        if getattr(ctx, need) is None and giver in results:
            why = results[giver].get("reason") or ctx.summary.get(giver, {}).get("outcome")
            raise StageUnavailable(
                f"needs {need}, which stage {giver} did not give" + (f" ({why})" if why else "")
            )


def _as_specs(stages: Sequence[StageSpec | tuple[str, Callable]] | None) -> list[StageSpec]:
    """The stages to run; ``(name, function)`` pairs are accepted for ad-hoc stages in tests."""
    return [s if isinstance(s, StageSpec) else StageSpec(s[0], s[1]) for s in stages or STAGES]


def run(
    scenario: Scenario,
    out_dir: Path,
    *,
    force: bool = False,
    world: World | None = None,
    region: str | None = None,
    stages: Sequence[StageSpec | tuple[str, Callable]] | None = None,
    until: str | None = None,
    leave_out: Sequence[str] = (),
    progress: Progress | None = None,
    engine: str = "moto",
) -> RunResult:
    """Run ``scenario`` and write ``summary.json`` and ``report.html`` into ``out_dir``.

    ``until``: the last stage to run. ``leave_out``: side-branch stages not to run (see
    :func:`unjudged_stages`); they are recorded as skipped, saying so.
    ``world``: an already running world to use (the pytest plugin passes its session world);
    otherwise one is started from the environment and stopped at the end: ``engine`` ``moto``
    (the embedded moto, or ``AWS_ENDPOINT_URL``) or ``localstack`` (LocalStack beside the embedded
    moto; its files in ``OUT/.localstack/``, deleted when it stops).
    """
    from harness.report import write_report

    out_dir = Path(out_dir)
    specs = _as_specs(stages)
    names = [*SPINE, *(s.name for s in specs)]
    if until is not None:
        if until not in names:
            raise ValueError(f"no stage {until!r}; stages are {', '.join(names)}")
        names = names[: names.index(until) + 1]
    for name in leave_out:
        spec = next((s for s in specs if s.name == name), None)
        if spec is None or not spec.side_branch:
            branches = ", ".join(s.name for s in specs if s.side_branch) or "none"
            raise ValueError(
                f"stage {name!r} cannot be left out: only side branches can ({branches})"
            )
    prepare_directory(out_dir, force)
    out = RunDir(out_dir)
    steps = _Stages(out, progress or (lambda *_: None))
    owns_world = world is None
    ctx: RunContext | None = None
    ledger = Ledger()
    endpoint: dict[str, Any] = {"kind": None}  # described while the world runs
    try:

        def start_world() -> World:
            if world is not None:
                return world
            return World(
                region=region or load_stack().local.region,
                engine=engine,
                scratch=out_dir / LOCALSTACK_SCRATCH if engine == "localstack" else None,
                log_file=out_dir / LOCALSTACK_LOG if engine == "localstack" else None,
            ).start()

        world = steps.run("world", start_world)
        endpoint = world.describe() if world is not None else endpoint
        if "provision" in names:
            stack = steps.run("provision", lambda: _provision(world, scenario, out))
            if stack is not None:
                ctx = RunContext(
                    scenario=scenario, out=out, world=world, stack=stack, ledger=ledger
                )
        givers = {given: s.name for s in specs for given in s.gives}
        for spec in specs:
            if spec.name not in names:
                break

            def step(spec: StageSpec = spec) -> None:
                assert ctx is not None  # provisioning succeeded, or the step is skipped
                if spec.name in leave_out:
                    raise StageUnavailable("left out: nothing this run judges reads it")
                _skip_without_inputs(spec, ctx, givers, steps.results)
                spec.check_needs(ctx, givers)
                spec.run(ctx)

            steps.run(spec.name, step)
    finally:
        try:
            _end_faults(ctx)
        except Exception as exc:  # disarming must never hide the run's own outcome
            logger.error("disarming the world's faults failed: %s", exc)
        if owns_world and world is not None and sys.exc_info()[0] is None:
            world.settle()  # nothing left running to die with the process (not on Ctrl-C)
        # Saved even after a failed stage: what the run left is what a user wants to look at.
        world_state = _save_world(ctx) if ctx is not None else None
        if owns_world and world is not None:
            world.stop()

    if ctx is not None and ctx.faults is not None:
        ctx.summary["faults"] = ctx.faults.summary()
    sections = ctx.summary if ctx is not None else {}
    summary: dict[str, Any] = {
        "scenario": scenario.name,
        "seed": scenario.seed,
        "version": harness_version(),
        "endpoint": endpoint,
        "counts": ledger.counts(),
        "reconciliation": ledger.reconcile(),
        "anomaly": None,
        "forecast": None,
        "stages": steps.results,
        "world_state": world_state,
        "artifacts": artifact_hashes(out_dir),
        # Which code ran: a bundle's validation checks this digest against its manifest.
        "pipeline": {"digest": pipeline_digest(), "root": str(pipeline_root())},
        **sections,
    }
    summary["expectations"] = [evaluate(e, summary) for e in scenario.expectations]
    if until is not None:  # a partial run judges only what it produced
        for result in summary["expectations"]:
            if not result["ok"] and result["actual"] is None:
                result.update(ok=None, reason=f"not evaluated: the run stopped after {until}")
    stages_ok = not steps.failed and all(s["status"] != "failed" for s in steps.results.values())
    expectations_ok = all(e["ok"] is not False for e in summary["expectations"])
    summary["status"] = "succeeded" if stages_ok and expectations_ok else "failed"
    out.summary.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    write_report(summary, out.report)
    return RunResult(summary=summary, out_dir=out_dir)
