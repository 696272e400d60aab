"""The guard that keeps every local run away from real AWS accounts.

A run talks to exactly one endpoint. Before anything is sent, that endpoint must be on the loopback
interface (``127.0.0.0/8``, ``::1``, ``localhost``) or a host the user names explicitly as local in
``DFP_LOCAL_HOSTS`` (comma-separated, e.g. a docker-compose service name). Credentials are forced
to dummy values, so even a wrong endpoint could not sign a request for a real account, and every
client carries a hook that refuses a request addressed to any other host (a second line of defence
against per-service endpoint overrides such as ``AWS_ENDPOINT_URL_S3``).

The checks themselves live in :mod:`pipeline.contracts.local_guard`, because processes that run
deployed code (the Flink job and its Python workers, Glue scripts, the API handler) must apply the
same guard and cannot import this package; :func:`local_environment` marks such processes as part
of a local run (``DFP_LOCAL_RUN``) and cuts them off from the user's AWS configuration.

Real AWS is reached only through ``deploy/``, never through a run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from pipeline.contracts.local_guard import (
    DUMMY_ACCESS_KEY_ID,
    DUMMY_SECRET_ACCESS_KEY,
    LOCAL_HOSTS_ENV,
    LOCAL_RUN_ENV,
    UnsafeEndpointError,
    check_endpoint,
    endpoint_variable,
    explicit_local_hosts,
    install_request_guard,
    is_local_host,
)

__all__ = [
    "DUMMY_ACCESS_KEY_ID",
    "DUMMY_SECRET_ACCESS_KEY",
    "LOCAL_HOSTS_ENV",
    "LOCAL_RUN_ENV",
    "UnsafeEndpointError",
    "check_endpoint",
    "endpoint_variable",
    "explicit_local_hosts",
    "install_request_guard",
    "is_local_host",
    "local_environment",
]

logger = logging.getLogger(__name__)

# Variables that could make an AWS SDK (ours or a subprocess's) pick up real credentials, a real
# profile, or endpoints other than the world's.
_CREDENTIAL_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
    "AWS_SDK_UA_APP_ID",
)


def local_environment(
    endpoint_url: str,
    region: str,
    base: Mapping[str, str] | None = None,
    routes: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Environment for a subprocess of a local run: dummy credentials, the endpoint, the region.

    Profiles, session tokens and container/web-identity credential sources are removed, the
    shared config and credentials files point at an empty file, and ``DFP_LOCAL_RUN`` names the
    endpoint so that deployed code in the subprocess applies the same guard
    (:func:`pipeline.contracts.local_guard.aws_client`).

    ``routes`` (service → endpoint) become boto3's per-service variables
    (``AWS_ENDPOINT_URL_DYNAMODB``…), each checked like the endpoint; any such variable inherited
    from the caller is removed first, so only the world's own routes reach the subprocess.
    """
    endpoint_url = check_endpoint(endpoint_url)
    routed = {endpoint_variable(s): check_endpoint(url) for s, url in (routes or {}).items()}
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
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        **{LOCAL_RUN_ENV: endpoint_url},
        **routed,
    )
    return env
