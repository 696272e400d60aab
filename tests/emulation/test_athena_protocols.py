"""Athena in both protocols its SDKs speak: REST-JSON (botocore 1.44.18 on: a client installed
today) and JSON 1.1 (older SDKs, the harness's pinned boto3 among them: ``X-Amz-Target:
AmazonAthena.<Operation>``), side by side on the embedded world's one endpoint."""

from __future__ import annotations

import json
import time

import pytest

from emulation import World
from tests.conftest import embedded_only, signed_request


def _rest(world: World, method: str, path: str, body: dict | bytes | None = None
          ) -> tuple[int, dict]:  # fmt: skip
    """A signed REST-JSON request, sent as it is (the path and query as given; bytes as they
    are)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode() if body else b""
    status, _, raw = signed_request(world, "athena", method, path, data,
                                    {"Content-Type": "application/json"})  # fmt: skip
    return status, json.loads(raw or b"{}")


@pytest.fixture
def embedded(aws: World) -> World:
    return embedded_only(aws, "Athena's REST-JSON routing")


def _finished(athena, query: str) -> None:
    while athena.get_query_execution(QueryExecutionId=query)["QueryExecution"]["Status"][
        "State"
    ] in ("QUEUED", "RUNNING"):
        time.sleep(0.05)


def test_rest_json_and_json_11_clients_run_the_same_queries(embedded: World) -> None:
    athena = embedded.client("athena")  # JSON 1.1: the pinned botocore
    embedded.client("s3").create_bucket(Bucket="results")
    output = {"OutputLocation": "s3://results/q/"}
    query = {"QueryString": "SELECT 6 * 7 AS answer", "ResultConfiguration": output}
    status, rest = _rest(embedded, "POST", "/query-executions", query)
    assert status == 200
    started = [rest["QueryExecutionId"], athena.start_query_execution(**query)["QueryExecutionId"]]
    for one in started:
        _finished(athena, one)
    rows = [athena.get_query_results(QueryExecutionId=q)["ResultSet"]["Rows"] for q in started]
    assert rows[0] == rows[1] == [{"Data": [{"VarCharValue": "answer"}]},
                                  {"Data": [{"VarCharValue": "42"}]}]  # fmt: skip
    status, described = _rest(embedded, "GET", f"/query-executions/{started[1]}")
    assert (status, described["QueryExecution"]["Status"]["State"]) == (200, "SUCCEEDED")
    # The URI's label, and a query-string member in its model type (MaxResults an integer:
    # a string would be refused as the wrong type)
    status, page = _rest(embedded, "GET", f"/query-executions/{started[0]}/results?MaxResults=1")
    assert status == 200 and len(page["ResultSet"]["Rows"]) == 1 and page["NextToken"]
    status, listed = _rest(embedded, "GET", "/query-executions?MaxResults=50")
    assert status == 200 and set(started) <= set(listed["QueryExecutionIds"])
    status, batch = _rest(embedded, "POST", "/batch-get-query-executions",
                          {"QueryExecutionIds": started})  # fmt: skip
    assert status == 200 and len(batch["QueryExecutions"]) == 2
    status, group = _rest(embedded, "GET", "/workgroups/primary")
    assert (status, group["WorkGroup"]["Name"]) == (200, "primary")


def test_the_routes_are_botocores_rest_json_model_of_athena() -> None:
    """Every route names an operation moto's Athena answers in JSON 1.1 or one it lacks (then
    AWS's unknown-operation error), with a method and a URI template; the pinned botocore's
    JSON 1.1 model knows each of those operations by the same name."""
    import botocore.session

    from emulation.athena.rest import ROUTES_FILE, _routes

    routes = _routes()
    table = json.loads(ROUTES_FILE.read_text())
    assert table["source"].startswith("botocore ") and "rest-json" in table["source"]
    known = set(botocore.session.get_session().get_service_model("athena").operation_names)
    names = {route.operation for route in routes}
    assert len(names) == len(routes) >= 60
    assert {"StartQueryExecution", "GetQueryResults", "GetWorkGroup"} <= names
    assert len(names - known) <= 2, names - known  # the few newer than the pinned model
    assert all(route.method in {"GET", "POST", "PUT", "PATCH", "DELETE"} for route in routes)


def test_rest_json_errors_name_the_operation_or_the_route(embedded: World) -> None:
    status, missing = _rest(embedded, "GET", "/query-executions/no-such-query")
    assert (status, missing["__type"]) == (400, "InvalidRequestException")
    status, unknown = _rest(embedded, "GET", "/no-such-route/x")
    assert (status, unknown["__type"]) == (404, "UnknownOperationException")
    assert "GET /no-such-route/x" in unknown["message"]
    status, garbled = _rest(embedded, "POST", "/query-executions", b'{"QueryString": ')
    assert (status, garbled["__type"]) == (400, "SerializationException")
    assert "the body is not JSON" in garbled["message"]
    status, wrong_method = _rest(embedded, "DELETE", "/query-executions")
    assert (status, wrong_method["__type"]) == (404, "UnknownOperationException")
