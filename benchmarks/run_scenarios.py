"""Benchmark: end-to-end wall time of ``dfp run`` per scenario, per stage.

Each scenario runs as ``dfp run SCENARIO`` does (a fresh process, its own embedded world), and
the stage timings of its ``summary.json`` — the same the run report shows — are collected with the
total wall time of the process. Results go to benchmarks/results/run_scenarios.json.

    .venv/bin/python benchmarks/run_scenarios.py [SCENARIO ...]    (default: smoke standard)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _results import save

GOALS = {"smoke": 180, "standard": 900}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", default=["smoke", "standard"])
    args = parser.parse_args()
    report: dict = {"benchmark": "run_scenarios", "runs": {}}
    dfp = Path(sys.executable).with_name("dfp")
    for name in args.scenarios:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / name
            began = time.perf_counter()
            done = subprocess.run([str(dfp), "run", name, "--out", str(out)], capture_output=True,
                                  text=True, check=False)  # fmt: skip
            wall = time.perf_counter() - began
            summary = json.loads((out / "summary.json").read_text())
        stages = {k: v["seconds"] for k, v in summary["stages"].items()}
        report["runs"][name] = {
            "exit_code": done.returncode,
            "status": summary["status"],
            "wall_seconds": round(wall, 1),
            "stages_seconds": dict(sorted(stages.items(), key=lambda kv: -kv[1])),
            "goal_seconds": GOALS.get(name),
        }
        print(f"{name}: {summary['status']} in {wall:.0f} s", flush=True)
    save("run_scenarios", report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
