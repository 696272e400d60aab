"""Benchmark: end-to-end wall time of ``dfp run`` per scenario, per stage.

Each scenario runs as ``dfp run SCENARIO`` does (a fresh process, its own embedded world), and
the stage timings of its ``summary.json`` — the same the run report shows — are collected with the
total wall time of the process. Results go to benchmarks/results/run_scenarios.json.

``stores`` runs at two sizes in the same invocation: as shipped, and scaled to
:data:`STORES_LARGE` (products and stores; same calendar and seed). The results then carry
``stores_growth``: each stage's seconds at both sizes, the ratio, and the ratio of the series
counts (item × store pairs the ETL built), so how each stage grows with the number of series
shows next to ``standard``.

    .venv/bin/python benchmarks/run_scenarios.py [SCENARIO ...]    (default: smoke standard stores)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from _results import save

GOALS = {"smoke": 180, "standard": 900}
REPO = Path(__file__).resolve().parents[1]
# The large size of the stores scenario: 300 items x 10 stores (+ the web location).
STORES_LARGE = {"catalog": {"products": 300, "categories": 12, "brands": 40},
                "stores": {"count": 10, "regions": 3}}  # fmt: skip


def _scaled_stores(folder: Path) -> Path:
    """The shipped stores scenario with :data:`STORES_LARGE` merged in, as a file."""
    raw = yaml.safe_load((REPO / "scenarios" / "stores.yaml").read_text())
    for section, values in STORES_LARGE.items():
        raw[section] = {**raw.get(section, {}), **values}
    raw["name"] = "stores-large"
    raw["expectations"] = []  # timed, not judged: the shipped size carries the judgement
    path = folder / "stores-large.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _run(dfp: Path, name: str, target: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / name
        began = time.perf_counter()
        done = subprocess.run([str(dfp), "run", target, "--out", str(out)], capture_output=True,
                              text=True, check=False)  # fmt: skip
        wall = time.perf_counter() - began
        summary = json.loads((out / "summary.json").read_text())
    stages = {k: v["seconds"] for k, v in summary["stages"].items()}
    print(f"{name}: {summary['status']} in {wall:.0f} s", flush=True)
    return {
        "exit_code": done.returncode,
        "status": summary["status"],
        "wall_seconds": round(wall, 1),
        "stages_seconds": dict(sorted(stages.items(), key=lambda kv: -kv[1])),
        "goal_seconds": GOALS.get(name),
        "series": (summary.get("etl") or {}).get("target_series"),
        "full_load_records": (summary.get("simulation") or {}).get("full_load_records"),
    }


def _growth(small: dict, large: dict) -> dict:
    out: dict = {"series": [small["series"], large["series"]]}
    if small["series"] and large["series"]:
        out["series_ratio"] = round(large["series"] / small["series"], 2)
    out["stages"] = {
        stage: {"seconds": [seconds, large["stages_seconds"].get(stage)],
                "ratio": round(large["stages_seconds"][stage] / seconds, 2) if seconds else None}
        for stage, seconds in small["stages_seconds"].items()
        if stage in large["stages_seconds"]
    }  # fmt: skip
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", default=["smoke", "standard", "stores"])
    args = parser.parse_args()
    report: dict = {"benchmark": "run_scenarios", "runs": {}}
    dfp = Path(sys.executable).with_name("dfp")
    for name in args.scenarios:
        report["runs"][name] = _run(dfp, name, name)
        if name == "stores":
            with tempfile.TemporaryDirectory() as tmp:
                large = _run(dfp, "stores-large", str(_scaled_stores(Path(tmp))))
            report["runs"]["stores-large"] = large
            report["stores_large"] = STORES_LARGE
            report["stores_growth"] = _growth(report["runs"]["stores"], large)
    save("run_scenarios", report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
