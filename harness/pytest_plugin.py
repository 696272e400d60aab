"""pytest integration: one local world per test session, reset before each test that asks.

Fixtures:

* ``world`` (session): the running :class:`emulation.World` (embedded moto, or the endpoint in
  ``AWS_ENDPOINT_URL``), started once and stopped at the end of the session.
* ``aws`` (function): the same world, reset to empty before the test.
* ``stack`` (session): the validated stack description.
* ``dfp_run`` (function): runs a scenario in that world, with sections replaced (``faults=…``,
  ``anomalies=…``) and validated as a scenario file is, into the test's temporary directory; the
  :class:`~harness.runner.RunResult` holds the summary, the job's outliers and the ground truth.
  So a test can say "with 5% of DMS's changes delivered twice, no outlier is lost".

Marker ``e2e``: end-to-end scenario runs, the heavy ones; select with ``-m e2e`` or leave them out
with ``-m "not e2e"``. Marker ``world``: set on every test that uses ``world`` or ``aws``, so the
suite can be run against another endpoint with ``-m "world and not e2e"``. Marker
``endpoint_free``: a world test whose outcome cannot depend on the endpoint (pure Spark
transforms); such a run leaves it out with ``and not endpoint_free``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy.stack import Stack, load_stack
from emulation import World
from emulation.world import region_from_environment


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: end-to-end scenario runs (slow; select with -m e2e)")
    config.addinivalue_line(
        "markers",
        "world: talks to the local AWS world (set on every test using the world or aws fixture; "
        "add it to tests that reach the world otherwise, e.g. through the CLI)",
    )
    config.addinivalue_line(
        "markers", "heavy: runs taking minutes (the standard scenario); deselected unless -m heavy"
    )
    config.addinivalue_line(
        "markers",
        "endpoint_free: uses the world only to configure a local engine (Spark) or to compare "
        "with it; behaves the same against any endpoint, so a run against another endpoint may "
        "leave it out",
    )
    logging.getLogger("werkzeug").setLevel(logging.ERROR)


@pytest.fixture(scope="session")
def stack() -> Stack:
    return load_stack()


@pytest.fixture(scope="session")
def world(stack: Stack) -> Iterator[World]:
    with World(region=region_from_environment() or stack.local.region) as running:
        yield running


@pytest.fixture
def aws(world: World) -> World:
    world.reset()
    return world


@pytest.fixture
def dfp_run(world: World, tmp_path: Path) -> Callable[..., Any]:
    """``dfp_run(scenario="smoke", *, until=None, seed=None, **sections) -> RunResult``."""
    from harness.runner import run
    from harness.scenario import load_scenario

    runs = 0

    def run_scenario(scenario: str = "smoke", *, until: str | None = None,
                     seed: int | None = None, **sections: Any) -> Any:  # fmt: skip
        nonlocal runs
        chosen = load_scenario(scenario)
        if sections:
            chosen = chosen.with_changes(**sections)
        if seed is not None:
            chosen = chosen.with_seed(seed)
        runs += 1
        world.reset()
        return run(chosen, tmp_path / f"dfp-run-{runs}-{chosen.name}", world=world, until=until)

    return run_scenario


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests that use the world, so a run against another endpoint can select them."""
    for item in items:
        if {"world", "aws"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.world)
