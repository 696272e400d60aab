"""The safety guard refuses non-local endpoints before any request and forces dummy credentials."""

from __future__ import annotations

import json
import os
import socket

import pytest

from emulation import UnsafeEndpointError, World
from emulation.kinesisanalyticsv2.application import ApplicationFailed
from emulation.safety import LOCAL_RUN_ENV, check_endpoint, is_local_host, local_environment
from pipeline.contracts.local_guard import aws_client, check_job_endpoint


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


def test_subprocess_environment_cuts_off_the_users_aws_configuration(tmp_path) -> None:
    config = tmp_path / "config"
    config.write_text("[profile prod]\nendpoint_url = https://s3.amazonaws.com\n")
    env = local_environment(
        "http://127.0.0.1:1",
        "eu-west-1",
        base={"AWS_CONFIG_FILE": str(config), "AWS_SHARED_CREDENTIALS_FILE": str(config),
              "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true", "AWS_DEFAULT_PROFILE": "prod"},
    )  # fmt: skip
    assert env["AWS_CONFIG_FILE"] == env["AWS_SHARED_CREDENTIALS_FILE"] == os.devnull
    assert "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS" not in env and "AWS_DEFAULT_PROFILE" not in env
    assert env[LOCAL_RUN_ENV] == "http://127.0.0.1:1"  # deployed code in it guards its clients
    with pytest.raises(UnsafeEndpointError):
        local_environment("https://s3.amazonaws.com", "eu-west-1", base={})


def test_deployed_code_guards_its_clients_in_a_local_run(monkeypatch, no_network) -> None:
    """``pipeline`` code creates clients with aws_client: guarded once DFP_LOCAL_RUN is set."""
    monkeypatch.setenv(LOCAL_RUN_ENV, "http://127.0.0.1:1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "https://s3.eu-west-1.amazonaws.com")
    with pytest.raises(UnsafeEndpointError, match="not a loopback address"):
        aws_client("s3", region_name="eu-west-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALLOOKINGKEY00")
    client = aws_client("s3", region_name="eu-west-1")
    assert client.meta.endpoint_url == "http://127.0.0.1:1"
    assert client._request_signer._credentials.access_key == "testing"
    with pytest.raises(UnsafeEndpointError, match="not a loopback address"):
        check_job_endpoint("http://10.0.0.5:4566", "consumer.config.0 aws.endpoint")
    with pytest.raises(UnsafeEndpointError, match="no endpoint is set"):
        check_job_endpoint(None, "consumer.config.0 aws.endpoint")
    assert no_network == []
    monkeypatch.delenv(LOCAL_RUN_ENV)
    check_job_endpoint(None, "on AWS the connector uses the region's endpoint")


def test_a_flink_job_pointed_at_a_remote_endpoint_is_refused(world, tmp_path) -> None:
    """The local Managed Flink starts the job; the job refuses before creating a table."""
    from emulation.kinesisanalyticsv2 import ConnectorMissing, connector_jar
    from emulation.kinesisanalyticsv2.application import ApplicationSpec, LocalApplication
    from tests.conftest import REPO

    try:
        jar = connector_jar()
    except ConnectorMissing as exc:
        pytest.skip(
            f"{exc} (test_deployed_code_guards_its_clients_in_a_local_run covers the check)"
        )
    remote = {"aws.region": "us-east-1", "aws.endpoint": "http://10.0.0.5:4566"}
    groups = [
        {"PropertyGroupId": "consumer.config.0",
         "PropertyMap": {**remote, "input.stream.arn": "arn:aws:kinesis:us-east-1:1:stream/s"}},
        {"PropertyGroupId": "producer.config.0",
         "PropertyMap": {**remote, "output.stream.arn": "arn:aws:kinesis:us-east-1:1:stream/o"}},
        {"PropertyGroupId": "errors.config.0",
         "PropertyMap": {**remote, "output.stream.arn": "arn:aws:kinesis:us-east-1:1:stream/e"}},
        {"PropertyGroupId": "detector.config.0", "PropertyMap": {"profiles.uri": "s3://b/p.json"}},
    ]  # fmt: skip
    spec = ApplicationSpec(
        name="remote", entry=REPO / "pipeline" / "anomaly" / "main.py", property_groups=groups,
        jar=jar, python_path=[REPO],
    )  # fmt: skip
    app = LocalApplication(spec, tmp_path / "flink", world.environment()).start()
    try:
        app.process.wait(timeout=120)
        with pytest.raises(ApplicationFailed) as failed:
            app.check()
    finally:
        app.stop()
    assert "consumer.config.0 aws.endpoint" in str(failed.value)
    assert "10.0.0.5" in str(failed.value) and "not a loopback address" in str(failed.value)


def _raw(world, method: str, path: str, headers: dict[str, str]) -> tuple[int, dict, bytes]:
    """A request as a browser's page sends it: its own headers, nothing signed."""
    import http.client
    from urllib.parse import urlsplit

    where = urlsplit(world.endpoint_url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
    try:
        connection.request(method, path, headers=headers)
        answer = connection.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()
    finally:
        connection.close()


def test_web_pages_of_other_sites_cannot_drive_the_world(aws, monkeypatch) -> None:
    """moto allows every origin, so a page open in a browser could create buckets and start
    Glue jobs that run its scripts here. Refused: an Origin of another site (a preflight too),
    and a Host that is not this machine's (a page whose name was rebound to 127.0.0.1)."""
    if not aws.in_process:
        pytest.skip("a patch of the embedded server; another endpoint's server is its own")
    port = aws.endpoint_url.rsplit(":", 1)[1]
    here = f"127.0.0.1:{port}"
    preflight = {"Host": here, "Origin": "http://evil.example",
                 "Access-Control-Request-Method": "PUT"}  # fmt: skip
    status, headers, body = _raw(aws, "OPTIONS", "/stolen", preflight)
    assert status == 403 and "Access-Control-Allow-Origin" not in headers
    assert b"the local world does not answer web pages of other sites" in body
    for headers in ({"Host": here, "Origin": "http://evil.example"},
                    {"Host": here, "Origin": "null"},  # a sandboxed frame, a file:// page
                    {"Host": f"evil.example:{port}"}):  # fmt: skip
        status, _, body = _raw(aws, "PUT", "/stolen", headers)
        assert status == 403, (headers, body)
        assert json.loads(body)["__type"] == "AccessDeniedException"
    assert aws.client("s3").list_buckets()["Buckets"] == []  # nothing made
    # A page of this machine, and a host named in DFP_LOCAL_HOSTS, are answered.
    s3 = {
        "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/"
        "aws4_request, SignedHeaders=host, Signature=0"
    }  # names the service
    mine = {**s3, "Host": here, "Origin": "http://localhost:3000"}
    assert _raw(aws, "PUT", "/mine", mine)[0] == 200
    assert [b["Name"] for b in aws.client("s3").list_buckets()["Buckets"]] == ["mine"]
    monkeypatch.setenv("DFP_LOCAL_HOSTS", "world.internal")  # let through (moto then routes it)
    status, _, body = _raw(aws, "PUT", "/ours", {**s3, "Host": f"world.internal:{port}"})
    assert status != 403 and b"the local world answers only" not in body
