"""The external-endpoint path: the suite against a separately started ``moto_server``.

Users with Docker point ``AWS_ENDPOINT_URL`` at LocalStack from ``docker-compose.yml``; this machine
has no Docker engine, so the same path is proved with a plain ``moto_server`` process started on
its own, with a non-default account id and region to show neither is assumed anywhere.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from deploy.stack import load_stack
from emulation import World
from harness.provision import provision
from tests.conftest import REPO, moto_server

ACCOUNT = "210987654321"
REGION = "eu-central-1"


@pytest.fixture(scope="module")
def external_endpoint():
    if os.environ.get("AWS_ENDPOINT_URL"):
        pytest.skip("this session already runs against an external endpoint")
    env = {**os.environ, "MOTO_ACCOUNT_ID": ACCOUNT}
    with moto_server(env) as url:
        yield url


def test_suite_passes_against_an_external_moto_server(external_endpoint: str) -> None:
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": external_endpoint,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            "world and not e2e",  # the tests that talk to the endpoint; the rest cannot differ
            "--ignore",
            str(REPO / "tests" / "emulation" / "test_external_endpoint.py"),
            str(REPO / "tests"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    tail = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
    assert result.returncode == 0, tail
    assert " passed" in result.stdout


def test_external_world_uses_the_endpoints_account_and_the_configured_region(
    external_endpoint: str,
) -> None:
    with World(endpoint_url=external_endpoint, region=REGION) as world:
        assert world.kind == "moto"
        assert world.account_id == ACCOUNT
        world.reset()
        names = provision(world, load_stack())
        buckets = {b["Name"] for b in world.client("s3").list_buckets()["Buckets"]}
        assert names.bucket("staged") == f"dfp-staged-{ACCOUNT}-{REGION}"
        assert names.bucket("staged") in buckets
        location = world.client("s3").get_bucket_location(Bucket=names.bucket("staged"))
        assert location["LocationConstraint"] == REGION
