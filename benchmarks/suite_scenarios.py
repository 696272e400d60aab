"""Benchmark: the scenario library as the test suite runs it, and where its CPU goes, per stage.

The suite's scenario tests are most of its time (``--durations``: 987 of 2,130 worker seconds,
``tests/e2e/test_scenarios.py``), and the suite is CPU-bound (two workers keep both cores busy), so
what a change to a stage saves the suite is CPU seconds, not wall seconds: a stage that waits
(a workflow polling, a Flink job restarting) leaves its core to the other worker. This runs every
scenario the way its test does — one process, one world reset between scenarios, each up to its
last judged stage and without the side branches nothing of it judges — and records each stage's
wall seconds and the CPU seconds the whole machine spent during it (``/proc/stat``: the Spark and
Flink JVMs and the forecaster's workers are separate processes that come and go). Run it on an
otherwise idle machine. The first scenario pays for starting Spark; ``--passes 2`` runs the
library twice and keeps both, the second being what a test worker that has run a Glue job sees.
Results go to benchmarks/results/suite_scenarios.json, with each stage's CPU summed over the
library (``stage_cpu_seconds``) for the last pass.

    .venv/bin/python benchmarks/suite_scenarios.py [SCENARIO ...] [--passes N]
        (default: every library scenario but ``standard``, which the suite leaves out)
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _results import save

LEFT_OUT = ("standard",)  # the suite's `heavy` mark deselects it


def machine_cpu_seconds() -> float:
    """CPU seconds every core of the machine has spent busy since boot (``/proc/stat``: user,
    nice, system, irq and softirq; not idle or iowait, nor steal, which another guest used, nor
    guest time, which user already counts)."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:8]]
    busy = sum(fields[:3]) + sum(fields[5:7])
    return busy / os.sysconf("SC_CLK_TCK")


class StageClock:
    """A run's progress callback that records each stage's wall seconds (as the runner reports
    them when the stage ends) and the machine's CPU seconds while it ran."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.stages: dict[str, dict[str, float]] = {}

    def __call__(self, event: str, stage: str, info: dict) -> None:
        cpu = machine_cpu_seconds()
        if event == "start":
            self.started[stage] = cpu
        elif stage in self.started and event in ("succeeded", "failed"):
            self.stages[stage] = {"wall": round(info["seconds"], 1),
                                  "cpu": round(cpu - self.started.pop(stage), 1)}  # fmt: skip


def stage_totals(runs: dict[str, dict]) -> dict[str, float]:
    """Each stage's CPU seconds summed over the scenarios, largest first."""
    totals: dict[str, float] = {}
    for run in runs.values():
        for stage, seconds in run["stages"].items():
            totals[stage] = totals.get(stage, 0.0) + seconds["cpu"]
    return {k: round(v, 1) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}


def main() -> int:
    from deploy.stack import load_stack
    from emulation import World
    from emulation.world import region_from_environment
    from harness.runner import last_judged_stage, run, unjudged_stages
    from harness.scenario import list_scenarios, load_scenario

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*")
    parser.add_argument("--passes", type=int, default=1, choices=range(1, 4))
    args = parser.parse_args()
    names = args.scenarios or [n for n in list_scenarios() if n not in LEFT_OUT]
    passes: list[dict] = []
    region = region_from_environment() or load_stack().local.region
    with (
        tempfile.TemporaryDirectory(prefix="dfp-suite-scenarios-") as tmp,
        World(region=region) as world,
    ):
        for number in range(args.passes):
            runs: dict[str, dict] = {}
            for name in names:
                world.reset()
                scenario = load_scenario(name)
                clock = StageClock()
                wall, cpu = time.perf_counter(), machine_cpu_seconds()
                result = run(scenario, Path(tmp) / f"{number}-{name}", world=world,
                             until=last_judged_stage(scenario),
                             leave_out=unjudged_stages(scenario), progress=clock)  # fmt: skip
                runs[name] = {
                    "ok": result.ok,
                    "wall": round(time.perf_counter() - wall, 1),
                    "cpu": round(machine_cpu_seconds() - cpu, 1),
                    "stages": clock.stages,
                }
                print(f"pass {number + 1} {name}: {runs[name]['wall']} s wall, "
                      f"{runs[name]['cpu']} s CPU", flush=True)  # fmt: skip
            passes.append(runs)
    last = passes[-1]
    save("suite_scenarios", {
        "benchmark": "suite_scenarios",
        "passes": passes,
        "stage_cpu_seconds": stage_totals(last),
        "library_cpu_seconds": round(sum(r["cpu"] for r in last.values()), 1),
        "library_wall_seconds": round(sum(r["wall"] for r in last.values()), 1),
    })  # fmt: skip
    return 0 if all(r["ok"] for p in passes for r in p.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
