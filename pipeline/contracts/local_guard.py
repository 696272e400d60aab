"""The loopback guard of a local run, in every process that the run starts.

A local run must never reach a real AWS account. The harness's own clients are guarded by
``emulation.safety`` (which re-exports this module's functions); but a local run also starts
processes that run *deployed* code — the Flink job and its Python workers, Glue scripts, the
forecast API handler — and those create their own clients. They live in ``pipeline`` and cannot
import the emulation, so the guard they share lives here, next to the other contracts between
the deployed code and its local world:

* the local world puts :data:`LOCAL_RUN_ENV` (the endpoint) into the environment of every process
  it starts; on AWS the variable is never set and :func:`aws_client` is plain ``boto3.client``;
* when it is set, :func:`aws_client` refuses an endpoint that is not loopback (or named in
  :data:`LOCAL_HOSTS_ENV`), uses dummy credentials, and installs a hook that refuses, before
  sending, any request addressed elsewhere;
* :func:`check_job_endpoint` does the same for endpoints that reach Java code (the Kinesis
  connector's ``aws.endpoint``), where no Python hook can follow.
"""

from __future__ import annotations

import functools
import ipaddress
import os
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

LOCAL_RUN_ENV = "DFP_LOCAL_RUN"
LOCAL_HOSTS_ENV = "DFP_LOCAL_HOSTS"
DUMMY_ACCESS_KEY_ID = "testing"
DUMMY_SECRET_ACCESS_KEY = "testing"
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


class UnsafeEndpointError(RuntimeError):
    """The endpoint is not local, so the run refuses to send anything to it."""


def explicit_local_hosts(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """Host names the user declared local through ``DFP_LOCAL_HOSTS``."""
    raw = (environ if environ is not None else os.environ).get(LOCAL_HOSTS_ENV, "")
    return frozenset(h.strip().lower() for h in raw.split(",") if h.strip())


def is_local_host(host: str, extra_local_hosts: Iterable[str] = ()) -> bool:
    """True for loopback addresses and names, and for hosts explicitly declared local."""
    host = host.strip("[]").lower()
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    if host in {h.lower() for h in extra_local_hosts}:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def names_this_machine(authority: str | None, extra_local_hosts: Iterable[str] = ()) -> bool:
    """Whether an HTTP ``Host`` value (``host[:port]``) names a local host (:func:`is_local_host`;
    a malformed or empty one does not). A local server refuses other names: a web page whose name
    was rebound to 127.0.0.1 sends its own."""
    try:
        host = urlsplit(f"//{authority}").hostname if authority else None
    except ValueError:
        return False
    return bool(host) and is_local_host(host, [*explicit_local_hosts(), *extra_local_hosts])


def check_endpoint(url: str, extra_local_hosts: Iterable[str] | None = None) -> str:
    """Return ``url`` normalised (no trailing slash) if it is local; raise otherwise.

    Raises :class:`UnsafeEndpointError` naming the endpoint and why it is refused. Called before
    any client is created, so a refused endpoint never receives a byte.
    """
    if extra_local_hosts is None:
        extra_local_hosts = explicit_local_hosts()
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - a malformed port raises here
    except ValueError as exc:
        raise UnsafeEndpointError(f"refusing endpoint {url!r:.200}: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeEndpointError(
            f"refusing endpoint {url!r:.200}: scheme {parts.scheme!r} is not http or https"
        )
    if not host:
        raise UnsafeEndpointError(f"refusing endpoint {url!r:.200}: it names no host")
    if not is_local_host(host, extra_local_hosts):
        raise UnsafeEndpointError(
            f"refusing endpoint {url!r:.200}: host {host!r} is not a loopback address. A local "
            f"run only talks to an emulator on this machine (127.0.0.1, ::1, localhost) or to a "
            f"host listed in {LOCAL_HOSTS_ENV}; real AWS is reached only through deploy/."
        )
    return url.rstrip("/")


def install_request_guard(client: Any, endpoint_url: str) -> None:
    """Make ``client`` refuse, before sending, any request not addressed to ``endpoint_url``."""
    allowed = urlsplit(endpoint_url)
    allowed_netloc = (allowed.hostname or "", allowed.port)

    def _guard(request: Any, **_: object) -> None:
        target = urlsplit(request.url)
        if (target.hostname or "", target.port) != allowed_netloc:
            raise UnsafeEndpointError(
                f"refusing to send {request.method} {target.scheme}://{target.netloc}: "
                f"this run may only talk to {endpoint_url}"
            )

    client.meta.events.register_first("before-send.*.*", _guard)


def local_run_endpoint(environ: Mapping[str, str] | None = None) -> str | None:
    """The local world's endpoint when this process belongs to a local run, else None."""
    value = (environ if environ is not None else os.environ).get(LOCAL_RUN_ENV, "").strip()
    return value or None


def check_job_endpoint(url: str | None, what: str) -> None:
    """In a local run, refuse a job option that would send requests anywhere but the world.

    ``what`` names the option in the error (e.g. ``consumer.config.0 aws.endpoint``). A missing
    endpoint is refused as well: the SDK would then go to the real AWS endpoint of the region.
    Outside a local run this does nothing.
    """
    if local_run_endpoint() is None:
        return
    if not url:
        raise UnsafeEndpointError(
            f"refusing {what}: no endpoint is set, so requests would go to real AWS; a local run "
            "must name its local endpoint"
        )
    try:
        check_endpoint(url)
    except UnsafeEndpointError as exc:
        raise UnsafeEndpointError(f"{what}: {exc}") from None


@functools.cache  # a service model is a large JSON file, read once
def endpoint_variable(service: str) -> str:
    """boto3's per-service endpoint variable for the client name ``service``:
    ``AWS_ENDPOINT_URL_`` and the service id, upper case, spaces as underscores
    (``dynamodb`` → ``AWS_ENDPOINT_URL_DYNAMODB``, ``kinesisanalyticsv2`` →
    ``AWS_ENDPOINT_URL_KINESIS_ANALYTICS_V2``)."""
    import botocore.session

    try:
        model = botocore.session.get_session().get_service_model(service)
        service_id = model.service_id.hyphenize().replace("-", "_")
    except Exception:  # an unknown name: the plain transformation
        service_id = service.replace("-", "_")
    return f"AWS_ENDPOINT_URL_{service_id.upper()}"


def aws_client(service: str, **kwargs: Any) -> Any:
    """``boto3.client(service, **kwargs)``, guarded when this process belongs to a local run."""
    import boto3

    local = local_run_endpoint()
    if local is None:
        return boto3.client(service, **kwargs)
    # The world's endpoint, unless a per-service override routes this service elsewhere (it is
    # checked like any other).
    endpoint = check_endpoint(
        kwargs.pop("endpoint_url", None) or os.environ.get(endpoint_variable(service)) or local
    )
    kwargs.update(
        endpoint_url=endpoint,
        aws_access_key_id=DUMMY_ACCESS_KEY_ID,
        aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
        aws_session_token=None,
    )
    client = boto3.client(service, **kwargs)
    install_request_guard(client, endpoint)
    return client
