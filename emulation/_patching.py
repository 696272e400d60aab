"""The gap-fillers that extend the in-process moto server: registered once, installed once.

A gap-filler module marks its ``install_in_process`` with :func:`moto_patch`; the embedded world
calls :func:`install_all` before it starts the server. Each patch runs at most once per process
(moto's classes are process-wide), under one lock, in registration order. Gap-fillers that the
harness drives from outside the server (Firehose delivery, DMS delivery, the Kinesis producer,
Managed Flink applications) need no patch and are not registered here.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

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


@moto_patch("malformed-requests")
def _refuse_malformed_requests() -> None:
    """A value of another kind than its parameter's documented shape (a structure where a list
    goes, text where a structure does) made moto fail inside the server: in the reader of the
    services it reads by their shapes, or in the handler of those it reads by hand. That is a
    ``500`` with an HTML page, which SDKs retry five times. The SDKs never send such a request
    (their serializers refuse it first), but a hand-made one may, and AWS answers it at once:
    ``400`` ``SerializationException`` on its JSON protocols (``MalformedInput`` on the others,
    from the reader), naming the action and, from botocore's own validator on the body, the
    parameter. A handler that fails on a request whose body validates is left to fail as before:
    that is the emulator's fault, not the request's."""
    from moto.core.exceptions import JsonRESTError
    from moto.core.exceptions import _RESTError as XmlRESTError
    from moto.core.responses import BaseResponse
    from moto.core.utils import get_service_model
    from werkzeug.exceptions import HTTPException

    def refusal(self: BaseResponse, exc: Exception, body: object) -> tuple[str, str]:
        action = self._get_action() or "this request"
        model = get_service_model(self.boto3_service_name)
        found = _parameter_report(model, action, body) if model.protocol == "json" else None
        message = (f"{action}: the request's parameters do not match its documented shapes "
                   f"({found or f'{type(exc).__name__}: {exc}'})")  # fmt: skip
        logger.info("%s", message)
        return model.protocol, message

    original_parse = BaseResponse.parse_parameters

    def parse_parameters(self: BaseResponse, request: Any) -> None:
        try:
            original_parse(self, request)
        except HTTPException:
            raise
        except Exception as exc:
            protocol, message = refusal(self, exc, getattr(request, "data", b""))
            if protocol in ("json", "rest-json"):
                raise JsonRESTError("SerializationException", message) from None
            raise XmlRESTError("MalformedInput", message) from None

    original_call = BaseResponse.call_action

    def call_action(self: BaseResponse) -> object:
        try:
            return original_call(self)
        except (HTTPException, NotImplementedError):
            raise
        except Exception as exc:
            try:
                model = get_service_model(self.boto3_service_name)
                action = self._get_action()
                # the request as it came: DynamoDB's handler puts its parsed parameters in
                # ``body`` (a dict, the nulls dropped) before the action runs
                sent = getattr(self, "raw_body", None) or self.body
                malformed = model.protocol == "json" and action and _parameter_report(
                    model, action, sent) is not None  # fmt: skip
            except Exception:
                malformed = False
            if not malformed:
                raise
            _, message = refusal(self, exc, sent)
            headers = {**self.response_headers, "Content-Type": "application/x-amz-json-1.1",
                       "x-amzn-ErrorType": "SerializationException"}  # fmt: skip
            return 400, headers, json.dumps({"__type": "SerializationException",
                                             "message": message})  # fmt: skip

    BaseResponse.parse_parameters = parse_parameters
    BaseResponse.call_action = call_action


def parameter_problems(model: Any, action: str, params: Any) -> str | None:
    """botocore's own validator on a request's parameters, by the operation's documented shapes:
    which parameter is of the wrong kind, missing or unknown (``None`` when they are valid)."""
    from botocore.validate import ParamValidator

    report = ParamValidator().validate(params, model.operation_model(action).input_shape)
    return report.generate_report() if report.has_errors() else None


def _parameter_report(model: Any, action: str, body: object) -> str | None:
    """:func:`parameter_problems` of a JSON request's body (``None`` when it cannot tell). A
    body that is no JSON at all is reported as such: on a JSON protocol it never is valid."""
    try:
        parsed = body if isinstance(body, dict) else json.loads(body or b"{}")
    except ValueError as exc:
        return f"the body is not JSON: {exc}"
    try:
        return parameter_problems(model, action, parsed)
    except Exception:
        return None


@moto_patch("browser-guard")
def _refuse_other_sites() -> None:
    """moto's server allows every origin (CORS ``*``), so any web page open in a browser on this
    machine could drive the world while it runs: find its port, create a bucket, put a script in
    it and start a Glue job that runs the script here. The embedded world answers only requests
    addressed to this machine: an ``Origin`` header (sent by browsers only) must name a loopback
    host, and so must the ``Host`` header (a page whose name was rebound to 127.0.0.1 sends its
    own). ``DFP_LOCAL_HOSTS`` names more hosts to accept. Refused: ``403`` ``AccessDenied``,
    naming the header and what to do."""
    from urllib.parse import urlsplit

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    from pipeline.contracts.local_guard import names_this_machine

    def local(authority: str | None) -> bool:
        # and LocalStack's own name for 127.0.0.1, under which it forwards to this server
        host = (authority or "").rsplit(":", 1)[0].lower()
        return names_this_machine(authority) or host == "localhost.localstack.cloud" or (
            host.endswith(".localhost.localstack.cloud"))  # fmt: skip

    def problem(environ: dict[str, Any]) -> str | None:
        origin = environ.get("HTTP_ORIGIN")
        if origin is not None:
            try:
                authority = urlsplit(origin).netloc
            except ValueError:
                authority = None
            if not local(authority):
                return (f"Origin {origin[:100]!r}: the local world does not answer web pages of "
                        "other sites (a page on this machine may call it; add its host to "
                        "DFP_LOCAL_HOSTS)")  # fmt: skip
        host_header = environ.get("HTTP_HOST", "")
        if not local(host_header):
            return (
                f"Host {host_header[:100]!r}: the local world answers only requests "
                "addressed to this machine (127.0.0.1, localhost; more in DFP_LOCAL_HOSTS)"
            )
        return None

    original = DomainDispatcherApplication.__call__

    def __call__(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        refused = problem(environ)
        if refused is None:
            return original(self, environ, start_response)
        logger.warning("refused a request: %s", refused)
        body = json.dumps({"__type": "AccessDeniedException", "message": refused}).encode()
        start_response("403 Forbidden", [("Content-Type", "application/json"),
                                         ("x-amzn-ErrorType", "AccessDeniedException"),
                                         ("Content-Length", str(len(body)))])  # fmt: skip
        return [body]

    DomainDispatcherApplication.__call__ = __call__
