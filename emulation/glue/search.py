"""Glue's ``SearchTables``, which moto lacks: the catalog searched as data tools search it.

awswrangler's ``wr.catalog.tables(search_text=…)`` and ``wr.catalog.search_tables``, and catalog
browsers, find tables with it across databases. Answered from the in-process catalog, with
Glue's documented rules:

- ``SearchText`` matches a table when each of its words is a token of the table's name, its
  database's name, its description, a column's (or partition key's) name or comment, or a
  parameter's value; tokens are the value split on punctuation and spaces (``forecast`` finds
  ``forecast_enriched``), compared without regard to case. Text in double quotes must equal one
  of those values whole.
- ``Filters``: for a text field (``Name``, ``DatabaseName``, ``Description``, ``TableType``,
  ``Owner``, or a table parameter by its key) the ``Value`` must be one of the field's tokens, as
  Glue's fuzzy match does (``link`` finds ``customer-link``, not ``xxlinkyy``); for a time field
  (``CreateTime``, ``UpdateTime``, ``LastAccessTime``) the ``Comparator`` compares with the
  ``Value`` as an ISO date-time or seconds since 1970.
- ``SortCriteria`` by any of those fields, ``ASC`` or ``DESC``; otherwise by database, then name.
- ``MaxResults`` (1–1000) and ``NextToken`` page; ``ResourceShareType`` ``FOREIGN`` finds nothing
  (no catalog shares tables with a local account).

Not emulated: Lake Formation's column permissions, relevance ranking (results come sorted, not
scored), and ``IncludeStatusDetails``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from emulation._patching import moto_patch

_TOKENS = re.compile(r"[^\W_]+", re.UNICODE)
_TIME_FIELDS = ("CreateTime", "UpdateTime", "LastAccessTime")
_TEXT_FIELDS = ("Name", "DatabaseName", "Description", "TableType", "Owner")
_COMPARE = {
    "EQUALS": lambda a, b: a == b,
    "GREATER_THAN": lambda a, b: a > b,
    "LESS_THAN": lambda a, b: a < b,
    "GREATER_THAN_EQUALS": lambda a, b: a >= b,
    "LESS_THAN_EQUALS": lambda a, b: a <= b,
}


class SearchInputError(ValueError):
    """A request Glue refuses with ``InvalidInputException``."""


def tokens(value: Any) -> set[str]:
    """A value's tokens as Glue's search splits it: on punctuation and spaces, in lower case."""
    return {t.lower() for t in _TOKENS.findall(str(value or ""))}


def _searched(table: dict[str, Any]) -> list[str]:
    storage = table.get("StorageDescriptor") or {}
    values = [table.get("Name"), table.get("DatabaseName"), table.get("Description")]
    for column in [*(storage.get("Columns") or []), *(table.get("PartitionKeys") or [])]:
        values += [column.get("Name"), column.get("Comment")]
    values += list((table.get("Parameters") or {}).values())
    return [str(v) for v in values if v]


def matches_text(table: dict[str, Any], text: str) -> bool:
    values = _searched(table)
    quoted = re.fullmatch(r'\s*"(.*)"\s*', text)
    if quoted:
        wanted = quoted.group(1).lower()
        return any(v.lower() == wanted for v in values)
    found = set().union(*(tokens(v) for v in values)) if values else set()
    return all(word in found for word in tokens(text))


def _time(value: Any, where: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    text = str(value).strip()
    try:
        if re.fullmatch(r"-?\d+(\.\d+)?", text):
            return dt.datetime.fromtimestamp(float(text), dt.UTC)
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise SearchInputError(
            f"{where}: {value!r} is not a date-time (ISO 8601 or seconds since 1970)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _field(table: dict[str, Any], key: str) -> Any:
    """A table's field by its ``GetTable`` name, else one of its parameters by key."""
    if key in table:
        return table[key]
    return (table.get("Parameters") or {}).get(key)


def matches_filter(table: dict[str, Any], predicate: dict[str, Any]) -> bool:
    key, value = predicate.get("Key"), predicate.get("Value")
    if not key:
        raise SearchInputError("Filters: every predicate needs a Key")
    comparator = predicate.get("Comparator") or "EQUALS"
    if comparator not in _COMPARE:
        raise SearchInputError(f"Filters: Comparator {comparator!r} is not one of {list(_COMPARE)}")
    field = _field(table, key)
    if key in _TIME_FIELDS:
        if field is None:
            return False
        wanted = _time(value, f"Filters {key}")
        return _COMPARE[comparator](_time(field, key), wanted)
    if field is None:
        return False
    wanted = str(value or "").lower()
    return wanted in tokens(field) or str(field).lower() == wanted


def search(
    tables: list[dict[str, Any]],
    text: str | None,
    filters: list[dict[str, Any]] | None,
    sort: list[dict[str, Any]] | None,
    max_results: Any,
    token: Any,
    share: str | None,
) -> dict[str, Any]:
    """``SearchTables``' answer over ``tables`` (``GetTables`` entries with ``DatabaseName``)."""
    if share not in (None, "ALL", "FOREIGN"):
        raise SearchInputError(f"ResourceShareType {share!r} is not FOREIGN or ALL")
    found = [] if share == "FOREIGN" else list(tables)
    if text:
        found = [t for t in found if matches_text(t, text)]
    for predicate in filters or []:
        found = [t for t in found if matches_filter(t, predicate)]
    found.sort(key=lambda t: (t.get("DatabaseName") or "", t.get("Name") or ""))
    for criterion in reversed(sort or []):
        name = criterion.get("FieldName") or ""
        order = criterion.get("Sort") or "ASC"
        if order not in ("ASC", "DESC"):
            raise SearchInputError(f"SortCriteria: Sort {order!r} is not ASC or DESC")
        known = name in _TIME_FIELDS or name in _TEXT_FIELDS
        if not known:
            raise SearchInputError(
                f"SortCriteria: FieldName {name!r} is not one of {[*_TEXT_FIELDS, *_TIME_FIELDS]}"
            )
        found.sort(
            key=lambda t, n=name: (_field(t, n) is None, str(_field(t, n) or "")),
            reverse=order == "DESC",
        )
    size = 1000 if max_results in (None, "") else int(max_results)
    if not 1 <= size <= 1000:
        raise SearchInputError(f"MaxResults {max_results!r} is not between 1 and 1000")
    start = 0
    if token:
        if not str(token).isdigit() or int(token) > len(found):
            raise SearchInputError(f"NextToken {token!r} is not a token this search gave")
        start = int(token)
    answer: dict[str, Any] = {"TableList": found[start : start + size]}
    if start + size < len(found):
        answer["NextToken"] = str(start + size)
    return answer


@moto_patch("glue-search")
def install_in_process() -> None:
    """Answer ``SearchTables`` from the in-process catalog (idempotent)."""
    from moto.core.responses import ActionResult
    from moto.glue.exceptions import InvalidInputException
    from moto.glue.responses import GlueResponse

    def search_tables(self):  # type: ignore[no-untyped-def]
        backend = self.glue_backend
        tables = [
            table.as_dict()
            for database in backend.databases.values()
            for table in database.tables.values()
        ]
        try:
            answer = search(
                tables,
                self.parameters.get("SearchText"),
                self.parameters.get("Filters"),
                self.parameters.get("SortCriteria"),
                self.parameters.get("MaxResults"),
                self.parameters.get("NextToken"),
                self.parameters.get("ResourceShareType"),
            )
        except SearchInputError as exc:
            raise InvalidInputException("SearchTables", str(exc)) from None
        return ActionResult(answer)

    GlueResponse.search_tables = search_tables
