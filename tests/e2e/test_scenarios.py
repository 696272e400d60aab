"""Every scenario under scenarios/ (the library) runs and meets its own expectations.

Each runs through the last stage its expectations judge (:func:`harness.runner.last_judged_stage`):
a fault scenario whose checks end at the Glue job does not pay for a forecast it never looks at;
and a side branch nothing of it judges (:func:`harness.runner.unjudged_stages`) is left out.
``dfp run --all`` runs the whole library end to end.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import Window
from pyspark.sql import functions as F

import pipeline.etl.transforms as transforms
from harness.runner import last_judged_stage, run, unjudged_stages
from harness.scenario import list_scenarios, load_scenario
from harness.stages import STAGES
from pipeline.contracts.cdc import PRIMARY_KEYS, TABLES
from tests.conftest import VALIDATE_SCENARIO

HEAVY = {"standard"}  # minutes on this machine; select with -m heavy
# Run by test_validate.py's `dfp validate` (its verdict fails on any stage or expectation not
# met), so that the session makes that whole run once.
VALIDATED = {VALIDATE_SCENARIO.stem}


@pytest.mark.e2e
@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.heavy) if name in HEAVY else name
        for name in list_scenarios()
        if name not in VALIDATED
    ],
)
def test_scenario_meets_its_expectations(name: str, request, tmp_path: Path) -> None:
    if name == "smoke":  # the session's shared smoke run: one full smoke per session
        result = request.getfixturevalue("smoke_run")
    else:
        scenario = load_scenario(name)
        result = run(scenario, tmp_path / name, world=request.getfixturevalue("aws"),
                     until=last_judged_stage(scenario),
                     leave_out=unjudged_stages(scenario))  # fmt: skip
    judged = [e for e in result.summary["expectations"] if e["ok"] is not True]
    # Skipped on purpose: a stage the scenario expects skipped (nothing to enrich after a
    # failed forecast), or a side branch left out. Anything else must have succeeded.
    meant = {
        e["path"].split(".")[1]
        for e in result.summary["expectations"]
        if e["path"].startswith("stages.") and e["expected"].get("equals") == "skipped"
    }
    meant |= set(unjudged_stages(load_scenario(name)))
    broken = {
        k: v
        for k, v in result.summary["stages"].items()
        if v["status"] != "succeeded" and not (v["status"] == "skipped" and k in meant)
    }
    assert not broken, broken
    assert not judged, judged  # every expectation judged, and met
    assert result.ok
    faults = result.summary.get("faults")
    if faults is not None:  # a fault scenario injected something, and nothing was lost
        assert faults["injected"] > 0
        assert result.summary["reconciliation"]["lost"] == 0


def _current_rows_keeping_copies(staged, table):
    """``current_rows`` with its guard off: ``rank`` instead of ``row_number``, so the copies of
    a redelivered change (same transaction) all count as the latest version."""
    order = Window.partitionBy(F.col(f"data.{PRIMARY_KEYS[table]}")).orderBy(
        F.coalesce(F.col("metadata.`transaction-id`"), F.lit(-1)).desc(),
        F.col("metadata.timestamp").desc(),
    )
    latest = (
        staged.where(F.col("table") == table)
        .withColumn("_rank", F.rank().over(order))
        .where("_rank = 1")
        .where(F.col("metadata.operation") != "delete")
    )
    return latest.select(*[F.col(f"data.{f.name}").alias(f.name) for f in TABLES[table]])


@pytest.mark.e2e
def test_without_the_copy_guard_the_duplicate_scenario_fails(aws, monkeypatch, tmp_path) -> None:
    """The guard the late-and-duplicate scenario exists for, turned off on purpose: the Glue job
    then counts DMS's redelivered sales twice, and the scenario says so."""
    monkeypatch.setattr(transforms, "current_rows", _current_rows_keeping_copies)
    scenario = load_scenario("late-and-duplicate")
    without_flink = [s for s in STAGES if s.name != "anomaly"]  # the guard is the Glue job's
    result = run(scenario, tmp_path / "run", world=aws, stages=without_flink, until="etl")
    failed = {e["path"]: e for e in result.summary["expectations"] if e["ok"] is False}
    assert "etl.demand_matches_truth" in failed, result.summary["expectations"]
    assert result.summary["etl"]["target_demand"] > result.summary["etl"]["truth_sold"]
    assert not result.ok
