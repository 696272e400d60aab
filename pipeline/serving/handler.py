"""The forecast API behind the web page: API Gateway (proxy integration) + Lambda on AWS.

Routes:

* ``GET /forecast/{item_id}``: the item's latest forecast. From the DynamoDB cache when an unexpired
  entry is there; else read from the enriched Athena table with a parameterised query, stored in
  DynamoDB with a TTL attribute, and returned. ``source`` says which. For a forecast by store,
  ``?store_id=S`` gives the item at one store, ``?region=R`` the sum over that region's stores,
  and neither the sum over every store (``stores`` says how many were summed). The cache is keyed
  by item and location (``location``: ``all``, ``store#S`` or ``region#R``).
* ``GET /products?q=TEXT``: up to 20 items whose id or name contains ``TEXT`` (case-insensitive).
* ``GET /stores``: the stores of the latest forecast, with region, format and how many items.

Roll-ups sum each quantile over the stores: exact for the mean and the sum of P50s, while the
summed P10 and P90 make a band as wide as if every store's demand moved together (real stores
move partly independently, so the total's own band is narrower).

Request values never become SQL text: they are checked against a pattern (``400`` otherwise) and
passed to Athena as ``ExecutionParameters`` (bound values). An unknown item is a ``404``; any
other failure is a ``500`` with a generic message (the details go to the log, never the caller).

Configuration comes from the environment on AWS (``FORECAST_TABLE``, ``ATHENA_DATABASE``,
``ATHENA_OUTPUT``, ``ATHENA_WORKGROUP``, ``CACHE_TTL_SECONDS``); :func:`make_handler` takes the
clients and settings explicitly, which is how a local server runs the same code.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pipeline.contracts.local_guard import aws_client

logger = logging.getLogger(__name__)

# Matched with fullmatch: ``$`` would also match before a trailing newline ("P00001\n").
ITEM_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
REGION = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}")
SEARCH = re.compile(r"[\w .-]{1,64}")
TABLE = "forecast_enriched"
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Settings:
    table: str
    database: str
    output: str
    workgroup: str = "primary"
    cache_ttl_seconds: int = 3600
    query_timeout_seconds: float = 60.0

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """From the function's environment (``os.environ`` unless another mapping is given)."""
        env = os.environ if environ is None else environ
        return cls(
            table=env["FORECAST_TABLE"],
            database=env["ATHENA_DATABASE"],
            output=env["ATHENA_OUTPUT"],
            workgroup=env.get("ATHENA_WORKGROUP", "primary"),
            cache_ttl_seconds=int(env.get("CACHE_TTL_SECONDS", "3600")),
        )


def _literal(value: str) -> str:
    """A string as one Athena execution parameter (a quoted SQL literal, quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def _response(status: int, body: Any) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", "Cache-Control": "no-store"},
        "body": json.dumps(body, sort_keys=True),
    }


class ForecastApi:
    def __init__(self, dynamodb: Any, athena: Any, settings: Settings) -> None:
        self.dynamodb = dynamodb
        self.athena = athena
        self.settings = settings

    # ----------------------------------------------------------------------------- athena
    def query(self, sql: str, parameters: list[str]) -> list[dict[str, str | None]]:
        request: dict[str, Any] = {
            "QueryString": sql,
            "QueryExecutionContext": {"Database": self.settings.database},
            "ResultConfiguration": {"OutputLocation": self.settings.output},
            "WorkGroup": self.settings.workgroup,
        }
        if parameters:
            request["ExecutionParameters"] = parameters
        query_id = self.athena.start_query_execution(**request)["QueryExecutionId"]
        deadline = time.monotonic() + self.settings.query_timeout_seconds
        delay = 0.05
        while True:
            status = self.athena.get_query_execution(QueryExecutionId=query_id)
            state = status["QueryExecution"]["Status"]["State"]
            if state == "SUCCEEDED":
                break
            if state in ("FAILED", "CANCELLED"):
                reason = status["QueryExecution"]["Status"].get("StateChangeReason")
                raise RuntimeError(f"Athena query {query_id} {state}: {reason}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Athena query {query_id} did not finish in time")
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
        rows: list[dict[str, str | None]] = []
        header: list[str] | None = None
        token = None
        while True:
            kwargs = {"QueryExecutionId": query_id, **({"NextToken": token} if token else {})}
            page = self.athena.get_query_results(**kwargs)
            for row in page["ResultSet"]["Rows"]:
                values = [cell.get("VarCharValue") for cell in row["Data"]]
                if header is None:
                    header = [v or "" for v in values]
                else:
                    rows.append(dict(zip(header, values, strict=True)))
            token = page.get("NextToken")
            if not token:
                return rows

    # ------------------------------------------------------------------------------ routes
    def forecast(
        self, item_id: str, store_id: str | None = None, region: str | None = None
    ) -> dict[str, Any]:
        if not isinstance(item_id, str) or not ITEM_ID.fullmatch(item_id):
            raise ApiError(400, "item id must be 1-64 letters, digits, '-' or '_'")
        if store_id is not None and not (isinstance(store_id, str) and ITEM_ID.fullmatch(store_id)):
            raise ApiError(400, "store_id must be 1-64 letters, digits, '-' or '_'")
        if region is not None and (not isinstance(region, str) or not REGION.fullmatch(region)):
            raise ApiError(400, "region must be 1-64 letters, digits, spaces, '.', '-', '_'")
        if store_id is not None and region is not None:
            raise ApiError(400, "give store_id or region, not both")
        location = f"store#{store_id}" if store_id else f"region#{region}" if region else "all"
        key = {"item_id": {"S": item_id}, "location": {"S": location}}
        cached = self.dynamodb.get_item(TableName=self.settings.table, Key=key).get("Item")
        now = int(time.time())
        if cached and int(cached["expires_at"]["N"]) > now:
            body = json.loads(cached["body"]["S"])
            return {**body, "source": "cache"}
        where, parameters = "item_id = ?", [_literal(item_id)]
        if store_id is not None:
            where, parameters = where + " AND store_id = ?", [*parameters, _literal(store_id)]
        if region is not None:
            where, parameters = where + " AND region = ?", [*parameters, _literal(region)]
        # One row per date: the item's own forecast, or summed over the stores asked for.
        rows = self.query(
            f"SELECT CAST(date AS varchar) AS date, sum(p10) AS p10, sum(p50) AS p50, "
            f"sum(p90) AS p90, max(name) AS name, max(category) AS category, "
            f"max(brand) AS brand, max(price_tier) AS price_tier, max(list_price) AS list_price, "
            f"max(promotion_applied) AS promotion_applied, "
            f"sum(recent_daily_demand) AS recent_daily_demand, "
            f"count(DISTINCT store_id) AS stores, max(version) AS version "
            f"FROM {TABLE} WHERE {where} AND version = (SELECT max(version) FROM {TABLE}) "
            f"GROUP BY date ORDER BY date",
            parameters,
        )
        if not rows:
            at = f" at store {store_id}" if store_id else f" in region {region}" if region else ""
            raise ApiError(404, f"no forecast for item {item_id}{at}")
        first = rows[0]
        body = {
            "item_id": item_id,
            "store_id": store_id,
            "region": region,
            "stores": int(first["stores"] or 0),
            "name": first["name"],
            "category": first["category"],
            "brand": first["brand"],
            "price_tier": first["price_tier"],
            "list_price": _number(first["list_price"]),
            "recent_daily_demand": _number(first["recent_daily_demand"]),
            "version": first["version"],
            "forecast": [
                {
                    "date": row["date"],
                    "p10": _number(row["p10"]),
                    "p50": _number(row["p50"]),
                    "p90": _number(row["p90"]),
                    "promotion": row["promotion_applied"] == "1",
                }
                for row in rows
            ],
        }
        self.dynamodb.put_item(
            TableName=self.settings.table,
            Item={
                **key,
                "body": {"S": json.dumps(body, sort_keys=True)},
                "version": {"S": str(first["version"])},
                "expires_at": {"N": str(now + self.settings.cache_ttl_seconds)},
            },
        )
        return {**body, "source": "athena"}

    def products(self, text: str) -> dict[str, Any]:
        if not isinstance(text, str) or not SEARCH.fullmatch(text):
            raise ApiError(400, "search text must be 1-64 letters, digits, spaces, '.', '-', '_'")
        pattern = "%" + text.lower().replace("\\", "").replace("%", "").replace("_", "\\_") + "%"
        rows = self.query(
            f"SELECT DISTINCT item_id, name, category FROM {TABLE} "
            f"WHERE version = (SELECT max(version) FROM {TABLE}) "
            f"AND (lower(item_id) LIKE ? ESCAPE '\\' OR lower(name) LIKE ? ESCAPE '\\') "
            f"ORDER BY item_id LIMIT 20",
            [_literal(pattern), _literal(pattern)],
        )
        return {"query": text, "items": rows}

    def stores(self) -> dict[str, Any]:
        rows = self.query(
            f"SELECT store_id, max(region) AS region, max(store_format) AS store_format, "
            f"count(DISTINCT item_id) AS items FROM {TABLE} "
            f"WHERE version = (SELECT max(version) FROM {TABLE}) AND store_id IS NOT NULL "
            f"GROUP BY store_id ORDER BY store_id",
            [],
        )
        return {"stores": [{**row, "items": int(row["items"] or 0)} for row in rows]}

    def __call__(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        method = event.get("httpMethod") or event.get("requestContext", {}).get("http", {}).get(
            "method", "GET"
        )
        path = event.get("rawPath") or event.get("path") or "/"
        try:
            if method != "GET":
                raise ApiError(405, "only GET is supported")
            if not isinstance(path, str) or len(path) > 2048:
                raise ApiError(400, "the path must be text of at most 2048 characters")
            parts = [p for p in path.split("/") if p]
            query = event.get("queryStringParameters") or {}
            if not isinstance(query, dict):
                raise ApiError(400, "query parameters must be name=value pairs")
            if len(parts) == 2 and parts[0] == "forecast":
                return _response(
                    200, self.forecast(parts[1], query.get("store_id"), query.get("region"))
                )
            if parts == ["products"]:
                return _response(200, self.products(query.get("q") or ""))
            if parts == ["stores"]:
                return _response(200, self.stores())
            raise ApiError(404, "no such route")
        except ApiError as exc:
            return _response(exc.status, {"error": exc.message})
        except Exception:
            logger.exception("request %.20r %.200r failed", method, path)
            return _response(500, {"error": "internal error; the service log has the details"})


def _number(value: str | None) -> float | None:
    """A result cell as a number; sums over stores are rounded to 6 decimals (the export's
    precision) so that 0.1 + 0.2 reads 0.3."""
    return None if value in (None, "") else round(float(Decimal(value)), 6)


def make_handler(dynamodb: Any, athena: Any, settings: Settings) -> Handler:
    """The handler over given clients and settings (the Lambda entry builds them from env)."""
    return ForecastApi(dynamodb, athena, settings)


_default: Handler | None = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point (``pipeline.serving.handler.handler``)."""
    global _default
    if _default is None:
        _default = make_handler(
            aws_client("dynamodb"), aws_client("athena"), Settings.from_environment()
        )
    return _default(event, context)
