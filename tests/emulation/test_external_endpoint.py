"""The external-endpoint path: the suite against a separately started ``moto_server``.

Users with Docker point ``AWS_ENDPOINT_URL`` at LocalStack from ``docker-compose.yml``; this machine
has no Docker engine, so the same path is proved with a plain ``moto_server`` process started on
its own, with a non-default account id and region to show neither is assumed anywhere.
"""

from __future__ import annotations

import os

import pytest

from deploy.stack import load_stack
from emulation import World
from harness.provision import provision
from tests.conftest import EXTERNAL_ACCOUNT, EXTERNAL_REGION, EXTERNAL_TEST, child, moto_server

ACCOUNT = EXTERNAL_ACCOUNT
REGION = EXTERNAL_REGION


@pytest.fixture(scope="module")
def external_endpoint():
    if os.environ.get("AWS_ENDPOINT_URL"):
        pytest.skip("this session already runs against an external endpoint")
    env = {**os.environ, "MOTO_ACCOUNT_ID": ACCOUNT}
    with moto_server(env) as url:
        yield url


def test_suite_passes_against_an_external_moto_server(request: pytest.FixtureRequest) -> None:
    """Started beside the session when collection ended (``tests/conftest.py``)."""
    if os.environ.get("AWS_ENDPOINT_URL"):
        pytest.skip("this session already runs against an external endpoint")
    with child(request.config, EXTERNAL_TEST) as suite:
        code, output = suite.result(timeout=1200)
    tail = "\n".join(output.splitlines()[-40:])
    assert code == 0, tail
    assert " passed" in output


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
