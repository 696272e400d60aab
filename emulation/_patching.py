"""The gap-fillers that extend the in-process moto server: registered once, installed once.

A gap-filler module marks its ``install_in_process`` with :func:`moto_patch`; the embedded world
calls :func:`install_all` before it starts the server. Each patch runs at most once per process
(moto's classes are process-wide), under one lock, in registration order. Gap-fillers that the
harness drives from outside the server (Firehose delivery, DMS delivery, the Kinesis producer,
Managed Flink applications) need no patch and are not registered here.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)

_lock = threading.RLock()
_installed: set[str] = set()
_registry: dict[str, Callable[[], None]] = {}


def moto_patch(name: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    """Register ``function`` as the in-process patch ``name``; calling it applies it once."""

    def register(function: Callable[[], None]) -> Callable[[], None]:
        @functools.wraps(function)
        def once() -> None:
            with _lock:
                if name in _installed:
                    return
                function()
                _installed.add(name)
                logger.debug("in-process moto patched: %s", name)

        _registry[name] = once
        return once

    return register


def registered() -> list[str]:
    """The registered patches, in registration order."""
    return list(_registry)


def install_all() -> None:
    """Apply every registered patch (idempotent)."""
    for install in list(_registry.values()):
        install()


@moto_patch("server-dispatch")
def _list_moto_modules_once() -> None:
    """moto's server asks, for every request whose host is not an AWS name (``127.0.0.1``),
    whether the host names one of its modules, by listing its package folder and checking each
    entry is a folder: about 180 system calls a request, half the server's time for a Glue job
    that opens hundreds of staged objects. The folder does not change while the process runs:
    list it once."""
    import moto.backends

    modules = tuple(moto.backends.list_of_moto_modules())
    moto.backends.list_of_moto_modules = lambda: modules


@moto_patch("unemulated-actions")
def _answer_unemulated_actions() -> None:
    """An action moto does not implement raises ``NotImplementedError`` inside the server, which
    answers ``500`` with an HTML page: boto3 takes that for a passing server fault and retries it
    five times, backing off, before it shows the caller a page of HTML. Answer it at once instead,
    as LocalStack does, with ``501`` and the error code ``NotImplemented`` naming the action (and a
    ``NotImplementedError`` of an implemented action, about an option moto lacks, its message),
    in the service's protocol: SDKs do not retry a ``501``, and they read the code."""
    import json
    from xml.sax.saxutils import escape

    from moto.core.responses import BaseResponse
    from moto.core.utils import get_service_model

    original = BaseResponse.call_action

    def call_action(self: BaseResponse) -> object:
        try:
            return original(self)
        except NotImplementedError as exc:
            action = self._get_action() or "this request"
            message = (f"{action} is not emulated by the local world ({self.service_name}): "
                       f"{exc or 'not implemented'}")  # fmt: skip
            logger.info("%s", message)
            try:
                protocol = get_service_model(self.boto3_service_name).protocol
            except Exception:  # a service botocore does not know: XML, as most old ones
                protocol = "query"
            if protocol in ("json", "rest-json"):
                body = json.dumps({"__type": "NotImplemented", "message": message})
                kind = "application/x-amz-json-1.1"
            else:
                body = (
                    "<ErrorResponse><Error><Type>Sender</Type><Code>NotImplemented</Code>"
                    f"<Message>{escape(message)}</Message></Error></ErrorResponse>"
                )
                kind = "text/xml"
            headers = {**self.response_headers, "Content-Type": kind,
                       "x-amzn-ErrorType": "NotImplemented"}  # fmt: skip
            return 501, headers, body

    BaseResponse.call_action = call_action
