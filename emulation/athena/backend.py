"""The in-process moto server's Athena, made to run what it is given.

moto records a query and reports it ``SUCCEEDED`` with no rows. Here ``StartQueryExecution``
starts a thread that carries the statement out (:mod:`emulation.athena.statements`); the
execution reports ``QUEUED``/``RUNNING`` and then ``SUCCEEDED``, ``FAILED`` (with
``StateChangeReason`` and ``AthenaError``) or ``CANCELLED``; its result is written where Athena
writes it and answered page by page by ``GetQueryResults``. ``BatchGetQueryExecution`` (which moto
lacks), ``ListQueryExecutions`` (newest first, paginated) and ``StopQueryExecution`` (which
interrupts the engine) answer as Athena does.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from emulation._managed_state import embedded_client, follow_tracker, served_in_process
from emulation._patching import moto_patch
from emulation.athena import prepared
from emulation.athena.data import S3Object
from emulation.athena.engine import Cancel, Catalog
from emulation.athena.errors import QueryFailed
from emulation.athena.results import result_set, results_csv, text_result
from emulation.athena.statements import Outcome, Session, run

logger = logging.getLogger(__name__)

_RUN_LOCK = threading.Lock()  # one statement at a time: DDL and writes see each other in order


@dataclass
class _Run:
    state: str = "QUEUED"
    reason: str | None = None
    error_type: str | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    columns: list[dict[str, Any]] = field(default_factory=list)
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    completed: float | None = None
    output: str | None = None
    outcome: Outcome | None = None
    cancel: Cancel = field(default_factory=Cancel)


@moto_patch("athena")
def install_in_process() -> None:
    """Make the in-process moto execute Athena queries (idempotent)."""
    from moto.athena.models import AthenaBackend, Execution, QueryResults
    from moto.athena.responses import AthenaResponse
    from moto.core.exceptions import JsonRESTError

    original_start = AthenaBackend.start_query_execution
    original_results = AthenaBackend.get_query_results

    def start_query_execution(self, query, context, config, workgroup, execution_parameters):  # type: ignore[no-untyped-def]
        # moto stores any JSON; the query's thread reads these shapes (a hand-made request with
        # a list for a context crashed it, and the query never ended)
        for name, value, kind in (("QueryString", query, str),
                                  ("QueryExecutionContext", context, dict),
                                  ("ResultConfiguration", config, dict),
                                  ("ExecutionParameters", execution_parameters, list)):  # fmt: skip
            if value is not None and not isinstance(value, kind):
                # answered by the malformed-request guard (emulation._patching): a 400 naming
                # the parameter, from botocore's own validator
                raise TypeError(f"{name} is a {type(value).__name__}, not a {kind.__name__}")
        exec_id = original_start(self, query, context, config, workgroup, execution_parameters)
        execution = self.executions[exec_id]
        execution._dfp = _Run()
        threading.Thread(
            target=_run_in_process, args=(self, execution), daemon=True, name=f"athena-{exec_id}"
        ).start()
        return exec_id

    def found(self, exec_id: str):  # type: ignore[no-untyped-def]
        execution = self.executions.get(exec_id)
        if execution is None:
            raise JsonRESTError(
                "InvalidRequestException", f"QueryExecution {exec_id} was not found"
            )
        return execution

    def page(self, default: int) -> tuple[int, int]:  # type: ignore[no-untyped-def]
        """``MaxResults`` and the position ``NextToken`` carries; a token this server did not
        give is refused as Athena refuses it."""
        size, token = self._get_param("MaxResults") or default, self._get_param("NextToken")
        try:
            size, start = int(size), int(token or 0)
        except (TypeError, ValueError):
            raise JsonRESTError("InvalidRequestException", "Invalid pagination token") from None
        if size < 1 or start < 0:
            raise JsonRESTError("InvalidRequestException", "Invalid pagination token")
        return size, start

    def get_query_results(self, exec_id: str):  # type: ignore[no-untyped-def]
        execution = found(self, exec_id)
        run_: _Run | None = getattr(execution, "_dfp", None)
        if run_ is None:
            return original_results(self, exec_id)
        if run_.state != "SUCCEEDED":
            raise JsonRESTError(
                "InvalidRequestException",
                f"Query has not yet finished. Current state: {run_.state}"
                if run_.state in ("QUEUED", "RUNNING")
                else f"Query did not succeed: {run_.reason or run_.state}",
            )
        return QueryResults(rows=run_.rows, column_info=run_.columns)

    def described(self, exec_id: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
        execution = found(self.athena_backend, exec_id)
        body = _execution(execution)
        run_ = getattr(execution, "_dfp", None)
        if run_ is not None:
            _describe(body, run_)
        return body

    def get_query_execution(self):  # type: ignore[no-untyped-def]
        return json.dumps({"QueryExecution": described(self, self._get_param("QueryExecutionId"))})

    def batch_get_query_execution(self):  # type: ignore[no-untyped-def]
        ids = self._get_param("QueryExecutionIds") or []
        if not 1 <= len(ids) <= 50:
            return self.error("QueryExecutionIds must hold 1 to 50 ids", 400)
        executions, unprocessed = [], []
        for exec_id in ids:
            try:
                executions.append(described(self, exec_id))
            except JsonRESTError as exc:
                unprocessed.append(
                    {
                        "QueryExecutionId": exec_id,
                        "ErrorCode": "InvalidRequestException",
                        "ErrorMessage": exc.message,
                    }
                )
        return json.dumps(
            {"QueryExecutions": executions, "UnprocessedQueryExecutionIds": unprocessed}
        )

    def list_query_executions(self):  # type: ignore[no-untyped-def]
        group = self._get_param("WorkGroup") or "primary"
        executions = [
            e
            for e in self.athena_backend.executions.values()
            if (e.workgroup.name if e.workgroup else "primary") == group
        ]
        executions.sort(key=lambda e: e.start_time, reverse=True)
        size, start = page(self, 50)
        answer: dict[str, Any] = {
            "QueryExecutionIds": [e.id for e in executions[start : start + size]]
        }
        if start + size < len(executions):
            answer["NextToken"] = str(start + size)
        return json.dumps(answer)

    def stop_query_execution(self):  # type: ignore[no-untyped-def]
        execution = found(self.athena_backend, self._get_param("QueryExecutionId"))
        run_: _Run | None = getattr(execution, "_dfp", None)
        if run_ is not None and run_.state in ("QUEUED", "RUNNING"):
            run_.cancel.request()
        return json.dumps({})

    def results_response(self):  # type: ignore[no-untyped-def]
        exec_id = self._get_param("QueryExecutionId")
        result = self.athena_backend.get_query_results(exec_id).to_dict()
        run_ = getattr(self.athena_backend.executions[exec_id], "_dfp", None)
        rows = result["ResultSet"]["Rows"]
        size, start = page(self, 1000)
        result["ResultSet"]["Rows"] = rows[start : start + size]
        if start + size < len(rows):
            result["NextToken"] = str(start + size)
        if run_ is not None and run_.outcome is not None:
            result["UpdateCount"] = run_.outcome.update_count or 0
        return json.dumps(result)

    AthenaBackend.start_query_execution = start_query_execution
    AthenaBackend.get_query_results = get_query_results
    follow_tracker(Execution)
    AthenaResponse.get_query_execution = get_query_execution
    AthenaResponse.batch_get_query_execution = batch_get_query_execution
    AthenaResponse.list_query_executions = list_query_executions
    AthenaResponse.stop_query_execution = stop_query_execution
    AthenaResponse.get_query_results = results_response


def _execution(execution: Any) -> dict[str, Any]:
    """A ``QueryExecution`` as moto knows it (for one it did not run itself)."""
    body: dict[str, Any] = {
        "QueryExecutionId": execution.id,
        "Query": execution.query,
        "StatementType": "DDL"
        if execution.query.lstrip().upper().startswith(_DDL_WORDS)
        else "DML",
        "ResultConfiguration": execution.config or {},
        "QueryExecutionContext": execution.context or {},
        "Status": {
            "State": execution.status,
            "SubmissionDateTime": execution.start_time,
            "CompletionDateTime": execution.end_time,
        },
        "Statistics": {
            "EngineExecutionTimeInMillis": 0,
            "DataScannedInBytes": 0,
            "TotalExecutionTimeInMillis": 0,
            "QueryQueueTimeInMillis": 0,
            "ResultReuseInformation": {"ReusedPreviousResult": False},
        },
        "WorkGroup": execution.workgroup.name if execution.workgroup else "primary",
    }
    if execution.execution_parameters is not None:
        body["ExecutionParameters"] = execution.execution_parameters
    return body


_DDL_WORDS = ("ALTER", "CREATE", "DESCRIBE", "DROP", "MSCK", "SHOW")


def _describe(body: dict[str, Any], run_: _Run) -> None:
    """Fill a ``QueryExecution`` with what the statement really did."""
    status = body["Status"]
    status["SubmissionDateTime"] = run_.submitted
    if run_.completed:
        status["CompletionDateTime"] = run_.completed
    outcome = run_.outcome
    if outcome is not None:
        body["StatementType"] = outcome.statement_type
        body["SubstatementType"] = outcome.substatement
    if run_.output:
        body["ResultConfiguration"] = {
            **(body.get("ResultConfiguration") or {}),
            "OutputLocation": run_.output,
        }
    statistics = body.setdefault("Statistics", {})
    if run_.completed and run_.started:
        engine = int((run_.completed - run_.started) * 1000)
        statistics["EngineExecutionTimeInMillis"] = engine
        statistics["QueryQueueTimeInMillis"] = int((run_.started - run_.submitted) * 1000)
        statistics["TotalExecutionTimeInMillis"] = int((run_.completed - run_.submitted) * 1000)
    if outcome is not None:
        statistics["DataScannedInBytes"] = outcome.scanned
        if outcome.manifest:
            statistics["DataManifestLocation"] = outcome.manifest
    if run_.reason:
        status["StateChangeReason"] = run_.reason
        internal = run_.error_type in (None, "GENERIC_INTERNAL_ERROR")
        status["AthenaError"] = {  # Athena's catalog: 1 SYSTEM / 200 engine, 2 USER / 1000
            "ErrorCategory": 1 if internal else 2,
            "ErrorType": 200 if internal else 1000,
            "Retryable": False,
            "ErrorMessage": run_.reason,
        }


class _InProcessObjects:
    """Objects read straight from the in-process moto S3 store: listing thousands of objects
    through the API cost more than the query itself (XML written, then parsed)."""

    def __init__(self, account_id: str, partition: str) -> None:
        from moto.s3.models import s3_backends

        self.backend = s3_backends[account_id][partition]

    def list(self, bucket: str, prefix: str) -> list[S3Object]:
        from moto.s3.exceptions import MissingBucket
        from moto.s3.models import FakeDeleteMarker

        try:
            store = self.backend.get_bucket(bucket)
        except MissingBucket:
            raise QueryFailed("HIVE_PATH_NOT_FOUND", f"bucket {bucket!r} does not exist") from None
        for _attempt in range(5):  # the store may change under a concurrent request
            try:
                items = list(store.keys.items())
                break
            except RuntimeError:
                continue
        else:
            items = []
        return [
            S3Object(bucket, name, key.etag, key.size)
            for name, key in items
            if name.startswith(prefix) and not isinstance(key, FakeDeleteMarker)
        ]

    def read(self, obj: S3Object) -> bytes:
        key = self.backend.get_object(obj.bucket, obj.key)
        if key is None:
            raise QueryFailed("HIVE_CANNOT_OPEN_SPLIT", f"{obj.uri} was deleted during the query")
        return key.value


class _ClientObjects:
    """Objects listed and read through the S3 API: the world's S3 is not the in-process moto's
    (a localstack world keeps S3 in LocalStack)."""

    def __init__(self, s3: Any) -> None:
        self.s3 = s3

    def list(self, bucket: str, prefix: str) -> list[S3Object]:
        found = []
        try:
            for page in self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix
            ):
                found += [
                    S3Object(bucket, o["Key"], o["ETag"].strip('"'), o["Size"])
                    for o in page.get("Contents", [])
                ]
        except self.s3.exceptions.NoSuchBucket:
            raise QueryFailed("HIVE_PATH_NOT_FOUND", f"bucket {bucket!r} does not exist") from None
        return found

    def read(self, obj: S3Object) -> bytes:
        try:
            return self.s3.get_object(Bucket=obj.bucket, Key=obj.key)["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            raise QueryFailed(
                "HIVE_CANNOT_OPEN_SPLIT", f"{obj.uri} was deleted during the query"
            ) from None


def _run_in_process(backend: Any, execution: Any) -> None:
    """Carry the execution out; whatever fails ends it ``FAILED`` (never left running)."""
    try:
        _execute(backend, execution)
    except Exception as exc:  # before the statement ran: the request's own settings
        run_: _Run = execution._dfp
        run_.reason = f"GENERIC_INTERNAL_ERROR: {type(exc).__name__}: {exc}"
        run_.state = "FAILED"
        run_.started = run_.started or time.time()
        run_.completed = time.time()
        logger.warning("Athena query could not start: %s", exc, exc_info=True)


def _execute(backend: Any, execution: Any) -> None:
    run_: _Run = execution._dfp
    s3 = embedded_client("s3", backend.region_name)
    context = execution.context or {}
    # moto has appended "<id>.csv" to a given location; the folder is the output
    given = (execution.config or {}).get("OutputLocation")
    output = given.removesuffix(f"{execution.id}.csv") if given else None
    enforced, configured = _workgroup_output(backend, execution)
    output = ((configured if enforced else None) or output or configured or "").rstrip("/") or None

    session = Session(
        catalog=Catalog(embedded_client("glue", backend.region_name)),
        s3=s3,
        objects=_InProcessObjects(backend.account_id, getattr(backend, "partition", "aws"))
        if served_in_process("s3")
        else _ClientObjects(s3),
        database=(context.get("Database") or "").strip('`"').lower() or None,
        output=output,
        query_id=execution.id,
        cancel=run_.cancel,
    )
    try:
        with _RUN_LOCK:
            run_.cancel.check()
            run_.state, run_.started = "RUNNING", time.time()
            group = getattr(execution.workgroup, "name", None)
            kind, sql, values = prepared.intercept(backend, execution.query, group)
            if kind == "done":  # PREPARE, DEALLOCATE PREPARE
                outcome = Outcome("UTILITY", sql or "")
            else:
                given = execution.execution_parameters if values is None else values
                outcome = run(sql or execution.query, session, given)
        _publish(run_, outcome, s3, output, execution.id)
        run_.state = "SUCCEEDED"
    except QueryFailed as exc:
        if exc.error_type == "USER_CANCELLED":
            run_.reason, run_.error_type, run_.state = None, None, "CANCELLED"
        else:
            run_.reason, run_.error_type, run_.state = str(exc), exc.error_type, "FAILED"
    except Exception as exc:
        run_.reason = f"GENERIC_INTERNAL_ERROR: {type(exc).__name__}: {exc}"
        run_.state = "FAILED"
        logger.warning("Athena query failed internally: %s", exc, exc_info=True)
    run_.started = run_.started or time.time()
    run_.completed = time.time()


def _publish(run_: _Run, outcome: Outcome, s3: Any, output: str | None, query_id: str) -> None:
    """The result as ``GetQueryResults`` pages it and as the file Athena writes."""
    run_.outcome = outcome
    body: bytes | None = None
    if outcome.rows is not None:
        run_.rows, run_.columns = result_set(outcome.rows)
        body, suffix = results_csv(run_.rows), ".csv"
    elif outcome.update_count is not None:  # CTAS, INSERT INTO, UNLOAD: no rows, UpdateCount
        run_.rows, run_.columns = [], result_set(pa.table({"rows": pa.array([], pa.int64())}))[1]
        counted = result_set(pa.table({"rows": pa.array([outcome.update_count], pa.int64())}))[0]
        body, suffix = results_csv(counted), ".csv"
    else:
        run_.rows, run_.columns, body = text_result(outcome.columns, outcome.text)
        suffix = ".txt"
    if outcome.output:
        run_.output = outcome.output
    elif output and output.startswith("s3://"):
        run_.output = f"{output}/{query_id}{suffix}"
        bucket, _, key = run_.output[len("s3://") :].partition("/")
        s3.put_object(Bucket=bucket, Key=key, Body=body or b"")


def _workgroup_output(backend: Any, execution: Any) -> tuple[bool, str | None]:
    """The workgroup's result location and whether it overrides the request's (as Athena does
    under ``EnforceWorkGroupConfiguration``); otherwise it is used when the request gives none."""
    group = execution.workgroup or backend.work_groups.get("primary")
    configuration = getattr(group, "configuration", None) or {}
    location = (configuration.get("ResultConfiguration") or {}).get("OutputLocation")
    return bool(configuration.get("EnforceWorkGroupConfiguration")), location
