"""Kinesis in CBOR, as the AWS SDKs for Java send it by default, in front of moto's JSON.

The Java SDKs (v1 and v2, so KCL, the Flink and Spark connectors, Java producers) speak
Kinesis's JSON 1.1 protocol encoded as CBOR (``Content-Type: application/x-amz-cbor-1.1``):
blobs such as a record's ``Data`` are byte strings instead of base64 text, and timestamps are
CBOR tag 1 over epoch milliseconds (AWS's use; RFC 8949's tag 1 counts seconds). moto reads only
JSON: its handler failed decoding the body as UTF-8 and every call was a 500, so a Java client
needed ``aws.cborEnabled=false`` to reach the world. Kinesis on AWS and LocalStack answer both.

:class:`CborKinesis` wraps the world's WSGI application: such a request is decoded, its blobs
base64-encoded and its timestamps turned into epoch seconds, and handed to moto as JSON 1.1; the
answer is encoded back into CBOR by the operation's output shape in botocore's Kinesis model
(blobs as byte strings, timestamps as tag 1 over milliseconds), errors as a CBOR map with
``__type`` and ``message``, as the SDK's CBOR error reader expects.

Not emulated: CBOR for services other than Kinesis (no other AWS JSON service takes it), and
the Smithy RPC v2 CBOR protocol (``/service/…/operation/…`` paths) newer SDKs use for some
services; a body that is no CBOR is ``SerializationException`` (400) saying so.
"""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

import botocore.session
import cbor2
from botocore.model import Shape

logger = logging.getLogger(__name__)

CBOR_TYPE = "application/x-amz-cbor-1.1"
_TARGET_PREFIX = "Kinesis_20131202."


class _Millis(float):
    """A tag-1 timestamp of the request: epoch milliseconds."""


def _decoded(body: bytes) -> Any:
    return cbor2.loads(body, semantic_decoders={1: lambda value, _immutable: _Millis(value)})


def _as_json(value: Any) -> Any:
    """A decoded CBOR request as the JSON protocol has it."""
    if isinstance(value, dict):
        return {key: _as_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_json(item) for item in value]
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    if isinstance(value, _Millis):
        return float(value) / 1000
    return value


def _as_cbor(value: Any, shape: Shape | None) -> Any:
    """A JSON answer's value in CBOR's types, by its shape in the model."""
    if shape is None:
        return value
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        return {key: _as_cbor(item, shape.members.get(key)) for key, item in value.items()}
    if kind == "list" and isinstance(value, list):
        return [_as_cbor(item, shape.member) for item in value]
    if kind == "map" and isinstance(value, dict):
        return {key: _as_cbor(item, shape.value) for key, item in value.items()}
    if kind == "blob" and isinstance(value, str):
        return base64.b64decode(value)
    if kind == "timestamp" and isinstance(value, int | float):
        return cbor2.CBORTag(1, round(value * 1000))
    return value


@cache
def _output_shape(operation: str) -> Shape | None:
    model = botocore.session.get_session().get_service_model("kinesis")
    try:
        return model.operation_model(operation).output_shape
    except Exception:  # an operation the model lacks: answered by moto as unknown
        return None


class CborKinesis:
    """WSGI middleware: Kinesis's CBOR requests handed on as JSON, answered in CBOR."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET") or ""
        kind = (environ.get("CONTENT_TYPE") or "").split(";")[0].strip().lower()
        if kind != CBOR_TYPE or not target.startswith(_TARGET_PREFIX):
            return self.app(environ, start_response)
        operation = target[len(_TARGET_PREFIX) :]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            params = _as_json(_decoded(raw)) if raw else {}
        except (cbor2.CBORDecodeError, ValueError, TypeError) as exc:
            return _answer(start_response, "400 Bad Request", {
                "__type": "SerializationException",
                "message": f"{operation}: the body is not CBOR: {exc}"})  # fmt: skip
        body = json.dumps(params).encode()
        logger.debug("Kinesis %s in CBOR, handed on as JSON", operation)
        translated = dict(environ)
        translated.update({"CONTENT_TYPE": "application/x-amz-json-1.1",
                           "CONTENT_LENGTH": str(len(body)),
                           "wsgi.input": io.BytesIO(body)})  # fmt: skip
        seen: dict[str, Any] = {}

        def capture(status: str, headers: list, exc_info: Any = None) -> Callable:
            seen.update(status=status, headers=headers)
            return lambda _data: None

        answer = b"".join(self.app(translated, capture))
        try:
            decoded = json.loads(answer) if answer.strip() else {}
        except ValueError:  # not JSON (a server error page): passed on as it came
            start_response(seen["status"], seen["headers"])
            return [answer]
        failed = not seen["status"].startswith("2")
        payload = decoded if failed else _as_cbor(decoded, _output_shape(operation))
        kept = [(name, value) for name, value in seen["headers"]
                if name.lower() not in ("content-type", "content-length")]  # fmt: skip
        return _answer(start_response, seen["status"], payload, kept)


def _answer(start_response: Callable, status: str, payload: Any,
            headers: list | None = None) -> list[bytes]:  # fmt: skip
    body = cbor2.dumps(payload)
    start_response(status, [*(headers or []), ("Content-Type", CBOR_TYPE),
                            ("Content-Length", str(len(body)))])  # fmt: skip
    return [body]
