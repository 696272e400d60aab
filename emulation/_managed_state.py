"""Helpers for gap-fillers that run inside the embedded moto server (job runs, queries).

Taking over the state of moto's ``ManagedState`` models, and clients back to the same server.

moto advances such a model through fixed states on every describe call. A gap-filler that really
runs the work instead attaches a tracker (any object with a ``state`` attribute) as ``_dfp``; the
model then reports the tracker's state and stops advancing by itself.
"""

from __future__ import annotations

import os
from typing import Any


def follow_tracker(model: type) -> None:
    """Make instances of ``model`` report ``self._dfp.state`` when a tracker is attached."""
    original_status = model.status
    original_advance = model.advance

    def status_get(self: Any) -> str:
        tracked = getattr(self, "_dfp", None)
        return tracked.state if tracked else original_status.fget(self)

    def status_set(self: Any, value: str) -> None:
        if not getattr(self, "_dfp", None):
            original_status.fset(self, value)

    def advance(self: Any) -> None:
        if not getattr(self, "_dfp", None):
            original_advance(self)

    model.status = property(status_get, status_set)
    model.advance = advance


# Services the embedded server does not serve in this process's world (service → endpoint): in a
# localstack world, S3, Kinesis… are LocalStack's. Set by the world while it runs.
_elsewhere: dict[str, str] = {}


def serve_elsewhere(routes: dict[str, str]) -> None:
    """Send work started inside moto to ``routes`` for those services (``{}`` undoes it)."""
    _elsewhere.clear()
    _elsewhere.update(routes)


def served_in_process(service: str) -> bool:
    """Whether the embedded server holds ``service``'s data (else it lives at another endpoint)."""
    return service not in _elsewhere


def embedded_client(service: str, region: str) -> Any:
    """A guarded, dummy-credential client to the embedded server (``MOTO_PORT``), or to the
    endpoint that serves ``service`` in this world when that is not the embedded server.

    Work started inside moto (a job run, a query) has no World at hand; it talks back to the
    server it runs in, under the same safety rules as every other client.
    """
    import boto3

    from emulation.safety import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY, install_request_guard

    endpoint = _elsewhere.get(service) or f"http://127.0.0.1:{os.environ.get('MOTO_PORT', '5000')}"
    client = boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=DUMMY_ACCESS_KEY_ID,
        aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
    )
    install_request_guard(client, endpoint)
    return client
