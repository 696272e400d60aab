"""Athena's REST-JSON protocol, in front of moto's Athena, which speaks only JSON 1.1.

Newer AWS SDKs speak REST-JSON to Athena (botocore from 1.44.18 on: what a client installed
today gets): each operation has its own method and path (``POST /query-executions``,
``GET /query-executions/{QueryExecutionId}/results?MaxResults=…``), where older ones, the
harness's pinned botocore among them, POST every call to ``/`` with
``X-Amz-Target: AmazonAthena.<Operation>``. moto routes only the second form and answered the
first with an HTML 404, so dbt-athena, awswrangler or boto3 freshly installed could not start a
query in the world.

:class:`RestJsonAthena` wraps the world's WSGI application: a request signed for Athena that
carries no ``X-Amz-Target`` is matched to its operation by method and URI template, and handed on
as the same call in JSON 1.1: the URI's labels and the query-string and header members moved
into the JSON body, each in its model type (``MaxResults=5`` becomes the integer 5). The answer
goes back as it is: a REST-JSON client reads the same JSON body, and an error's ``__type``. Old
and new clients are served side by side.

The routes are ``rest_routes.json``, generated from botocore's REST-JSON Athena model (its
``source`` says which) by ``python emulation/athena/rest.py > emulation/athena/rest_routes.json``
run with such a botocore (the script needs nothing else): the world's routing does not depend
on the botocore installed beside it, which may be older than its clients'.

Not emulated: ``GetQueryResultStream`` (moto has no such operation: it is answered as unknown).
A request whose method and path match no operation is ``UnknownOperationException`` (404)
naming them, as AWS answers.
"""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

logger = logging.getLogger(__name__)

#: moto's Athena answers JSON 1.1 calls addressed ``AmazonAthena.<Operation>``.
TARGET_PREFIX = "AmazonAthena"
ROUTES_FILE = Path(__file__).with_name("rest_routes.json")
_SIGNED_FOR = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_LABEL = re.compile(r"\{([^}]+?)(\+?)\}")


@dataclass(frozen=True)
class _Route:
    """One operation's method and URI template, as a pattern over the raw path."""

    operation: str
    method: str
    pattern: re.Pattern[str]
    labels: dict[str, str]  # the pattern's group → the input member it fills
    literal: int  # characters of fixed path: the most specific template wins
    members: dict[str, dict]  # the members bound to the query string or a header


def _routes(file: Path = ROUTES_FILE) -> list[_Route]:
    routes = []
    for name, operation in json.loads(file.read_text())["operations"].items():
        template = operation["uri"].split("?", 1)[0]
        by_label = {m["name"]: member for member, m in operation["members"].items()
                    if m["in"] == "uri"}  # fmt: skip
        labels: dict[str, str] = {}
        pattern, end = "", 0
        for number, label in enumerate(_LABEL.finditer(template)):
            pattern += re.escape(template[end : label.start()])
            labels[f"l{number}"] = by_label.get(label[1], label[1])
            pattern += f"(?P<l{number}>.+)" if label[2] else f"(?P<l{number}>[^/]+)"
            end = label.end()
        pattern += re.escape(template[end:])
        bound = {member: m for member, m in operation["members"].items() if m["in"] != "uri"}
        routes.append(_Route(name, operation["method"], re.compile(f"^{pattern}/?$"), labels,
                             len(_LABEL.sub("", template)), bound))  # fmt: skip
    routes.sort(key=lambda route: -route.literal)
    return routes


def _typed(kind: str, values: list[str], of: str = "string") -> Any:
    """A query-string or header value in its member's JSON type."""
    if kind == "list":
        return [_typed(of, [value]) for value in values]
    value = values[-1]
    if kind in ("integer", "long"):
        try:
            return int(value)
        except ValueError:
            return value  # moto's own validation names it
    if kind == "boolean":
        return value.lower() == "true"
    return value


class RestJsonAthena:
    """WSGI middleware: Athena's REST-JSON requests handed on in JSON 1.1 form."""

    def __init__(self, app: Callable) -> None:
        self.app = app
        self.routes = _routes()

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if environ.get("HTTP_X_AMZ_TARGET") or not _signed_for_athena(environ):
            return self.app(environ, start_response)
        raw = environ.get("RAW_URI") or environ.get("PATH_INFO") or "/"
        path = raw.split("?", 1)[0]
        method = environ.get("REQUEST_METHOD", "GET")
        for route in self.routes:
            found = route.pattern.match(path) if route.method == method else None
            if found:
                return self.app(_as_json(environ, route, found), start_response)
        message = f"no Athena operation is {method} {unquote(path)}"
        body = json.dumps({"__type": "UnknownOperationException", "message": message}).encode()
        start_response("404 Not Found", [("Content-Type", "application/json"),
                                         ("x-amzn-ErrorType", "UnknownOperationException"),
                                         ("Content-Length", str(len(body)))])  # fmt: skip
        return [body]


def _signed_for_athena(environ: dict[str, Any]) -> bool:
    signature = environ.get("HTTP_AUTHORIZATION") or unquote(environ.get("QUERY_STRING", ""))
    found = _SIGNED_FOR.search(signature)
    return bool(found) and found[1] == "athena"


def _as_json(environ: dict[str, Any], route: _Route, found: re.Match[str]) -> dict[str, Any]:
    """The environ of the same call in JSON 1.1 form."""
    stream = environ["wsgi.input"]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw_body = stream.read(length) if length else b""
    try:
        params = json.loads(raw_body) if raw_body.strip() else {}
    except ValueError:
        params = None  # passed on as it came: moto's parser answers it
    if isinstance(params, dict):
        for group, member in route.labels.items():
            params[member] = unquote(found[group])
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        for member, bound in route.members.items():
            if bound["in"] == "querystring" and bound["name"] in query:
                params[member] = _typed(bound["type"], query[bound["name"]], bound.get("of", ""))
            elif bound["in"] == "header":
                header = environ.get("HTTP_" + bound["name"].upper().replace("-", "_"))
                if header is not None:
                    params[member] = _typed(bound["type"], [header])
        body = json.dumps(params).encode()
    else:
        body = raw_body
    operation = route.operation
    logger.debug("Athena REST-JSON %s %s is %s", environ.get("REQUEST_METHOD"),
                 environ.get("PATH_INFO"), operation)  # fmt: skip
    translated = dict(environ)
    translated.update({
        "REQUEST_METHOD": "POST", "PATH_INFO": "/", "RAW_URI": "/", "REQUEST_URI": "/",
        "QUERY_STRING": "", "CONTENT_TYPE": "application/x-amz-json-1.1",
        "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
        "HTTP_X_AMZ_TARGET": f"{TARGET_PREFIX}.{operation}",
    })  # fmt: skip
    return translated


def regenerate() -> str:
    """``rest_routes.json`` from the installed botocore's Athena model, which must be REST-JSON."""
    import botocore
    import botocore.session

    model = botocore.session.get_session().get_service_model("athena")
    if model.protocol != "rest-json":
        raise SystemExit(f"botocore {botocore.__version__} describes Athena as {model.protocol}: "
                         "run this with botocore 1.44.18 or newer")  # fmt: skip
    operations = {}
    for name in model.operation_names:
        operation = model.operation_model(name)
        members = {}
        for member, shape in (
            operation.input_shape.members if operation.input_shape else {}
        ).items():
            if where := shape.serialization.get("location"):
                members[member] = {"in": where, "name": shape.serialization.get("name", member),
                                   "type": shape.type_name}  # fmt: skip
                if shape.type_name == "list":
                    members[member]["of"] = shape.member.type_name
        operations[name] = {"method": operation.http["method"],
                            "uri": operation.http["requestUri"], "members": members}  # fmt: skip
    source = f"botocore {botocore.__version__}, athena {model.api_version} (rest-json)"
    return json.dumps({"source": source, "operations": operations}, indent=1, sort_keys=True)


if __name__ == "__main__":
    sys.stdout.write(regenerate() + "\n")
