"""Shared test helpers. The world fixtures come from the harness's pytest plugin."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parent.parent

# Property tests: derandomised under CI (and wherever DFP_HYPOTHESIS_PROFILE=ci), so that a random
# draw can never turn CI red or green; exploring with fresh draws everywhere else. A failure
# found while exploring is kept as an @example on the test.
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(
    os.environ.get("DFP_HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def moto_server(env: dict[str, str] | None = None) -> Iterator[str]:
    """A separately started ``moto_server`` process on a free loopback port."""
    port = free_port()
    exe = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen(
        [str(exe), "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("moto_server did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def smoke_run(world, tmp_path_factory):
    """One full ``smoke`` run per session, shared by the tests that only read its results."""
    from harness.runner import run
    from harness.scenario import load_scenario

    world.reset()
    result = run(load_scenario("smoke"), tmp_path_factory.mktemp("smoke") / "run", world=world)
    assert result.summary["stages"]["forecast"]["status"] == "succeeded", result.summary["stages"]
    return result
