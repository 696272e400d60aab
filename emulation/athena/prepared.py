"""Athena's prepared statements: the API, and ``EXECUTE``/``PREPARE``/``DEALLOCATE PREPARE``.

moto keeps prepared statements by name alone, answers ``GetPreparedStatement`` of a missing one
with a server error (awswrangler's ``create_prepared_statement`` asks that first, so it failed on
a run's world), and has no ``List``, ``Update``, ``Delete`` or ``BatchGet``; nor does a query run
one. Here they are kept per workgroup, as on Athena:

- ``CreatePreparedStatement`` (an existing name is ``InvalidRequestException``),
  ``GetPreparedStatement``, ``UpdatePreparedStatement``, ``DeletePreparedStatement`` (a missing
  one is ``ResourceNotFoundException``), ``ListPreparedStatements`` (paged, at most 50) and
  ``BatchGetPreparedStatement`` (missing names under ``UnprocessedPreparedStatementNames``); a
  workgroup that does not exist is ``InvalidRequestException``.
- ``EXECUTE name [USING v1, v2…]`` runs the statement of the query's workgroup with the values
  bound to its ``?`` (each one literal, never pasted into the SQL); without ``USING`` the
  execution's ``ExecutionParameters`` are bound. ``PREPARE name FROM statement`` creates or
  replaces one, ``DEALLOCATE PREPARE name`` deletes it. A statement that is not there fails the
  query with ``NOT_FOUND``, as Trino fails it.

Not emulated: a prepared statement's statistics, and its workgroup's limits.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp

from emulation._patching import moto_patch
from emulation.athena.errors import QueryFailed
from emulation.athena.metadata import MetadataError, page_of

_ID = r'"?([A-Za-z_][\w@:]*)"?'  # a statement's name, quoted or not
_EXECUTE = re.compile(rf"EXECUTE\s+{_ID}(?:\s+USING\s+(.+))?", re.I | re.S)
_PREPARE = re.compile(rf"PREPARE\s+{_ID}\s+FROM\s+(.+)", re.I | re.S)
_DEALLOCATE = re.compile(rf"DEALLOCATE\s+PREPARE\s+{_ID}", re.I)
_NAME = re.compile(r"[A-Za-z_][\w@:]{0,255}")


@dataclass
class Prepared:
    name: str
    workgroup: str
    statement: str
    description: str | None
    modified: dt.datetime

    def as_dict(self) -> dict[str, Any]:
        answer = {
            "StatementName": self.name,
            "QueryStatement": self.statement,
            "WorkGroupName": self.workgroup,
            "LastModifiedTime": self.modified.timestamp(),
        }
        if self.description:
            answer["Description"] = self.description
        return answer


def statements(backend: Any) -> dict[tuple[str, str], Prepared]:
    """The backend's prepared statements by (workgroup, name); gone when the backend is reset."""
    held = getattr(backend, "_dfp_prepared", None)
    if held is None:
        held = backend._dfp_prepared = {}
    return held


def _workgroup(backend: Any, name: str | None) -> str:
    group = name or "primary"
    if backend.get_work_group(group) is None:
        raise MetadataError("InvalidRequestException", f"WorkGroup {group} is not found")
    return group


def _found(backend: Any, name: str, workgroup: str) -> Prepared:
    statement = statements(backend).get((workgroup, name))
    if statement is None:
        raise MetadataError(
            "ResourceNotFoundException",
            f"Prepared statement {name} was not found in workgroup {workgroup}",
        )
    return statement


def create(backend: Any, name: str, workgroup: str | None, sql: str, about: str | None) -> None:
    group = _workgroup(backend, workgroup)
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise MetadataError("InvalidRequestException", f"StatementName {name!r} is not valid")
    if not isinstance(sql, str) or not sql.strip():
        raise MetadataError("InvalidRequestException", "QueryStatement must not be empty")
    if (group, name) in statements(backend):
        raise MetadataError(
            "InvalidRequestException",
            f"Prepared statement {name} already exists in workgroup {group}",
        )
    statements(backend)[(group, name)] = Prepared(name, group, sql, about, dt.datetime.now(dt.UTC))


def update(backend: Any, name: str, workgroup: str | None, sql: str, about: str | None) -> None:
    group = _workgroup(backend, workgroup)
    statement = _found(backend, name, group)
    statement.statement, statement.description = sql, about
    statement.modified = dt.datetime.now(dt.UTC)


def listed(backend: Any, workgroup: str | None, max_results: Any, token: Any) -> dict[str, Any]:
    group = _workgroup(backend, workgroup)
    held = sorted(
        (s for s in statements(backend).values() if s.workgroup == group), key=lambda s: s.name
    )
    page, following = page_of(held, max_results, token)
    answer: dict[str, Any] = {
        "PreparedStatements": [
            {"StatementName": s.name, "LastModifiedTime": s.modified.timestamp()} for s in page
        ]
    }
    if following:
        answer["NextToken"] = following
    return answer


def intercept(backend: Any, sql: str, workgroup: str | None) -> tuple[str, str | None, list | None]:
    """What an execution runs: ``("run", sql, parameters)`` for ``EXECUTE`` (the prepared
    statement and its ``USING`` values, or ``None`` to keep the execution's parameters), or
    ``("done", substatement, None)`` for ``PREPARE``/``DEALLOCATE PREPARE`` (carried out here),
    or ``("run", None, None)`` for any other statement."""
    text = sql.strip().rstrip(";").strip()
    group = workgroup or "primary"
    execute = _EXECUTE.fullmatch(text)
    if execute:
        prepared = statements(backend).get((group, execute.group(1)))
        if prepared is None:
            raise QueryFailed("NOT_FOUND", f"Prepared statement not found: {execute.group(1)}")
        values = _values(execute.group(2)) if execute.group(2) else None
        return "run", prepared.statement, values
    prepare = _PREPARE.fullmatch(text)
    if prepare:
        name, body = prepare.group(1), prepare.group(2)
        previous = statements(backend).get((group, name))
        statements(backend)[(group, name)] = Prepared(
            name, group, body, previous.description if previous else None, dt.datetime.now(dt.UTC)
        )
        return "done", "PREPARE", None
    deallocate = _DEALLOCATE.fullmatch(text)
    if deallocate:
        if statements(backend).pop((group, deallocate.group(1)), None) is None:
            raise QueryFailed("NOT_FOUND", f"Prepared statement not found: {deallocate.group(1)}")
        return "done", "DEALLOCATE", None
    return "run", None, None


def _values(using: str) -> list[str]:
    """``USING`` values as the literals ``ExecutionParameters`` would carry (checked there)."""
    try:
        probe = sqlglot.parse_one(f"SELECT {using}", read="trino")
    except (sqlglot.errors.SqlglotError, ValueError, IndexError, RecursionError) as exc:
        detail = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise QueryFailed("SYNTAX_ERROR", f"EXECUTE … USING: {detail}") from None
    if not isinstance(probe, exp.Select) or probe.args.get("from"):
        raise QueryFailed("SYNTAX_ERROR", "EXECUTE … USING takes a list of values")
    return [e.sql(dialect="trino") for e in probe.expressions]


@moto_patch("athena-prepared")
def install_in_process() -> None:
    """Prepared statements per workgroup in the in-process moto (idempotent)."""
    from moto.athena.responses import AthenaResponse
    from moto.core.exceptions import JsonRESTError

    def answered(method):  # type: ignore[no-untyped-def]
        def handler(self):  # type: ignore[no-untyped-def]
            try:
                return json.dumps(method(self, self.athena_backend) or {})
            except MetadataError as exc:
                raise JsonRESTError(exc.code, exc.message) from None

        handler.__name__ = method.__name__
        return handler

    def statement(self):  # type: ignore[no-untyped-def]
        """Create's and Update's parameters: name, workgroup, statement, description."""
        return (self._get_param(p) for p in ("StatementName", "WorkGroup", "QueryStatement",
                                             "Description"))  # fmt: skip

    @answered
    def create_prepared_statement(self, backend):  # type: ignore[no-untyped-def]
        create(backend, *statement(self))

    @answered
    def get_prepared_statement(self, backend):  # type: ignore[no-untyped-def]
        group = _workgroup(backend, self._get_param("WorkGroup"))
        return {
            "PreparedStatement": _found(backend, self._get_param("StatementName"), group).as_dict()
        }

    @answered
    def update_prepared_statement(self, backend):  # type: ignore[no-untyped-def]
        update(backend, *statement(self))

    @answered
    def delete_prepared_statement(self, backend):  # type: ignore[no-untyped-def]
        group = _workgroup(backend, self._get_param("WorkGroup"))
        name = self._get_param("StatementName")
        _found(backend, name, group)
        del statements(backend)[(group, name)]

    @answered
    def list_prepared_statements(self, backend):  # type: ignore[no-untyped-def]
        return listed(
            backend,
            self._get_param("WorkGroup"),
            self._get_param("MaxResults"),
            self._get_param("NextToken"),
        )

    @answered
    def batch_get_prepared_statement(self, backend):  # type: ignore[no-untyped-def]
        group = _workgroup(backend, self._get_param("WorkGroup"))
        found, missing = [], []
        for name in self._get_param("PreparedStatementNames") or []:
            statement = statements(backend).get((group, name))
            if statement is None:
                missing.append(
                    {
                        "StatementName": name,
                        "ErrorCode": "NOT_FOUND",
                        "ErrorMessage": f"Prepared statement {name} was not found",
                    }
                )
            else:
                found.append(statement.as_dict())
        return {"PreparedStatements": found, "UnprocessedPreparedStatementNames": missing}

    for method in (
        create_prepared_statement,
        get_prepared_statement,
        update_prepared_statement,
        delete_prepared_statement,
        list_prepared_statements,
        batch_get_prepared_statement,
    ):
        setattr(AthenaResponse, method.__name__, method)
