"""The guard that keeps every local run away from real AWS accounts.

A run talks to exactly one endpoint. Before anything is sent, that endpoint must be on the loopback
interface (``127.0.0.0/8``, ``::1``, ``localhost``) or a host the user names explicitly as local in
``DFP_LOCAL_HOSTS`` (comma-separated, e.g. a docker-compose service name). Credentials are forced
to dummy values, so even a wrong endpoint could not sign a request for a real account, and every
client carries a hook that refuses a request addressed to any other host (a second line of defence
against per-service endpoint overrides such as ``AWS_ENDPOINT_URL_S3``).

Real AWS is reached only through ``deploy/``, never through a run.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

LOCAL_HOSTS_ENV = "DFP_LOCAL_HOSTS"
DUMMY_ACCESS_KEY_ID = "testing"
DUMMY_SECRET_ACCESS_KEY = "testing"
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
# Variables that could make an AWS SDK (ours or a subprocess's) pick up real credentials.
_CREDENTIAL_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
)


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


def check_endpoint(url: str, extra_local_hosts: Iterable[str] | None = None) -> str:
    """Return ``url`` normalised (no trailing slash) if it is local; raise otherwise.

    Raises :class:`UnsafeEndpointError` naming the endpoint and why it is refused. Called before
    any client is created, so a refused endpoint never receives a byte.
    """
    if extra_local_hosts is None:
        extra_local_hosts = explicit_local_hosts()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeEndpointError(
            f"refusing endpoint {url!r}: scheme {parts.scheme!r} is not http or https"
        )
    host = parts.hostname
    if not host:
        raise UnsafeEndpointError(f"refusing endpoint {url!r}: it names no host")
    if not is_local_host(host, extra_local_hosts):
        raise UnsafeEndpointError(
            f"refusing endpoint {url!r}: host {host!r} is not a loopback address. A local run only "
            f"talks to an emulator on this machine (127.0.0.1, ::1, localhost) or to a host listed "
            f"in {LOCAL_HOSTS_ENV}; real AWS is reached only through deploy/."
        )
    return url.rstrip("/")


def local_environment(
    endpoint_url: str, region: str, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Environment for a subprocess of a local run: dummy credentials, the endpoint, the region.

    Profiles, session tokens and container/web-identity credential sources are removed so no SDK
    in the subprocess can find a real credential.
    """
    env = dict(os.environ if base is None else base)
    for name in _CREDENTIAL_VARIABLES:
        env.pop(name, None)
    for name in [k for k in env if k.startswith("AWS_ENDPOINT_URL_")]:
        env.pop(name)
    env.update(
        AWS_ACCESS_KEY_ID=DUMMY_ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY=DUMMY_SECRET_ACCESS_KEY,
        AWS_ENDPOINT_URL=endpoint_url,
        AWS_REGION=region,
        AWS_DEFAULT_REGION=region,
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def install_request_guard(client, endpoint_url: str) -> None:
    """Make ``client`` refuse, before sending, any request not addressed to ``endpoint_url``."""
    allowed = urlsplit(endpoint_url)
    allowed_netloc = (allowed.hostname or "", allowed.port)

    def _guard(request, **_: object) -> None:
        target = urlsplit(request.url)
        if (target.hostname or "", target.port) != allowed_netloc:
            raise UnsafeEndpointError(
                f"refusing to send {request.method} {target.scheme}://{target.netloc}: "
                f"this run may only talk to {endpoint_url}"
            )

    client.meta.events.register_first("before-send.*.*", _guard)
