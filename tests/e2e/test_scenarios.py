"""Every scenario under scenarios/ runs end to end and meets its own expectations."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.runner import run
from harness.scenario import list_scenarios, load_scenario
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
        result = run(load_scenario(name), tmp_path / name, world=request.getfixturevalue("aws"))
    failed = [e for e in result.summary["expectations"] if not e["ok"]]
    broken = {k: v for k, v in result.summary["stages"].items() if v["status"] != "succeeded"}
    assert not broken, broken
    assert not failed, failed
    assert result.ok
