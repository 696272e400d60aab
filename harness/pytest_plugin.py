"""pytest integration: one local world per test session, reset before each test that asks.

Fixtures:

* ``world`` (session): the running :class:`emulation.World` (embedded moto, or the endpoint in
  ``AWS_ENDPOINT_URL``), started once and stopped at the end of the session.
* ``aws`` (function): the same world, reset to empty before the test.
* ``stack`` (session): the validated stack description.

Marker ``e2e``: end-to-end scenario runs, the heavy ones; select with ``-m e2e`` or leave them out
with ``-m "not e2e"``. Marker ``world``: set on every test that uses ``world`` or ``aws``, so the
suite can be run against another endpoint with ``-m "world and not e2e"``. Marker
``endpoint_free``: a world test whose outcome cannot depend on the endpoint (pure Spark
transforms); such a run leaves it out with ``and not endpoint_free``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests that use the world, so a run against another endpoint can select them."""
    for item in items:
        if {"world", "aws"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.world)
