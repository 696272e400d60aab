"""The safety guard refuses non-local endpoints before any request and forces dummy credentials."""

from __future__ import annotations

import socket

import pytest

from emulation import UnsafeEndpointError, World
from emulation.safety import check_endpoint, is_local_host, local_environment


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Record (and block) every outgoing connection attempt."""
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise AssertionError(f"a connection was attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


@pytest.mark.parametrize(
    "url",
    [
        "https://kinesis.us-east-1.amazonaws.com",
        "https://s3.eu-west-1.amazonaws.com/",
        "http://10.0.0.5:4566",
        "http://192.168.1.10:5000",
        "http://example.com",
        "http://8.8.8.8",
    ],
)
def test_non_local_endpoints_are_refused_before_any_request(url: str, no_network: list) -> None:
    with pytest.raises(UnsafeEndpointError) as refused:
        World(endpoint_url=url, region="us-east-1").start()
    assert url.rstrip("/").split("//")[1].split(":")[0].split("/")[0] in str(refused.value)
    assert "not a loopback address" in str(refused.value)
    assert no_network == []


def test_endpoint_from_environment_is_checked(monkeypatch, no_network: list) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://kinesis.us-east-1.amazonaws.com")
    with pytest.raises(UnsafeEndpointError, match=r"kinesis\.us-east-1\.amazonaws\.com"):
        World(region="us-east-1")
    assert no_network == []


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:4566", "http://localhost:5000", "http://[::1]:4566", "http://127.3.4.5"],
)
def test_loopback_endpoints_are_accepted(url: str) -> None:
    assert check_endpoint(url, extra_local_hosts=()) == url


def test_named_local_host_must_be_listed(monkeypatch) -> None:
    with pytest.raises(UnsafeEndpointError, match="DFP_LOCAL_HOSTS"):
        check_endpoint("http://localstack:4566", extra_local_hosts=None)
    monkeypatch.setenv("DFP_LOCAL_HOSTS", "moto, localstack")
    assert check_endpoint("http://localstack:4566") == "http://localstack:4566"
    assert is_local_host("LOCALSTACK", ["localstack"])


@pytest.mark.parametrize("url", ["ftp://127.0.0.1", "127.0.0.1:4566", "http://"])
def test_malformed_endpoints_are_refused(url: str) -> None:
    with pytest.raises(UnsafeEndpointError):
        check_endpoint(url, extra_local_hosts=())


def test_clients_use_dummy_credentials_even_with_real_looking_ones(world, monkeypatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALLOOKINGKEY00")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "real-looking-secret")
    monkeypatch.setenv("AWS_PROFILE", "production")
    client = world.client("dynamodb", retries=1)  # a fresh client, created under that env
    credentials = client._request_signer._credentials
    assert credentials.access_key == "testing"
    assert credentials.secret_key == "testing"
    assert credentials.token is None


def test_clients_refuse_requests_to_other_hosts(world) -> None:
    s3 = world.client("s3")

    def redirect(request, **_: object) -> None:  # what a rogue endpoint override would do
        request.url = "https://s3.amazonaws.com/"

    s3.meta.events.register("before-sign.s3.ListBuckets", redirect)
    try:
        with pytest.raises(UnsafeEndpointError, match="may only talk to"):
            s3.list_buckets()
    finally:
        s3.meta.events.unregister("before-sign.s3.ListBuckets", redirect)
    assert isinstance(s3.list_buckets()["Buckets"], list)


def test_subprocess_environment_holds_no_real_credential_source() -> None:
    env = local_environment(
        "http://127.0.0.1:1",
        "eu-west-1",
        base={
            "AWS_PROFILE": "prod",
            "AWS_SESSION_TOKEN": "x",
            "AWS_ENDPOINT_URL_S3": "https://s3.amazonaws.com",
            "PATH": "/bin",
        },
    )
    assert "AWS_PROFILE" not in env and "AWS_SESSION_TOKEN" not in env
    assert "AWS_ENDPOINT_URL_S3" not in env
    assert env["AWS_ACCESS_KEY_ID"] == "testing"
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert env["PATH"] == "/bin"
