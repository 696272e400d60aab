"""AWS helpers several stages share: queries, job runs, workflow executions, delivery counts.

They take the world and the resolved stack (not a run context), so tests and tools use them too.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from emulation.glue.jobs import run_job

if TYPE_CHECKING:
    from deploy.stack import ResolvedStack
    from emulation import World
    from emulation.firehose import DeliveryStream
    from harness.ledger import Ledger

logger = logging.getLogger(__name__)


def split_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` → (bucket, key)."""
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def simulated_arrival(data: bytes) -> dt.datetime | None:
    """When a record reached Firehose on the simulated clock: DMS's timestamp, or the shop's."""
    try:
        message = json.loads(data)
        stamp = message["metadata"]["timestamp"] if "metadata" in message else message["sold_at"]
        return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def record_delivery(ledger: Ledger, hop_name: str, delivery: DeliveryStream) -> None:
    """A delivery stream's counts as a hop: records in, rows delivered, failures by code."""
    hop = ledger.hop(hop_name)
    hop.add(received=delivery.stats.received, written=delivery.stats.delivered)
    for reason, count in delivery.stats.failed.items():
        hop.reject(reason, count)


def athena_rows(
    world: World, stack: ResolvedStack, sql: str, parameters: list[str] | None = None
) -> list[dict[str, str | None]]:
    """Run one query through the Athena API and return its rows (header row dropped)."""
    athena = world.client("athena")
    request: dict[str, Any] = {
        "QueryString": sql,
        "QueryExecutionContext": {"Database": stack.stack.glue.database},
        "ResultConfiguration": {
            "OutputLocation": f"s3://{stack.bucket('athena-results')}/harness/"
        },
    }
    if parameters:
        request["ExecutionParameters"] = parameters
    query_id = athena.start_query_execution(**request)["QueryExecutionId"]

    def done() -> dict[str, Any] | None:
        status = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]
        return status if status["State"] in ("SUCCEEDED", "FAILED", "CANCELLED") else None

    status = world.wait_for(done, what=f"Athena query {query_id}", timeout=300)
    if status["State"] != "SUCCEEDED":
        raise RuntimeError(f"Athena query failed: {status.get('StateChangeReason')}: {sql}")
    rows: list[dict[str, str | None]] = []
    header: list[str] | None = None
    for page in athena.get_paginator("get_query_results").paginate(QueryExecutionId=query_id):
        for row in page["ResultSet"]["Rows"]:
            values = [cell.get("VarCharValue") for cell in row["Data"]]
            if header is None:
                header = [v or "" for v in values]
                continue
            rows.append(dict(zip(header, values, strict=True)))
    return rows


def job_run(world: World, job_name: str, arguments: dict[str, str]) -> dict[str, Any]:
    """Start the Glue job through its API and wait for it, and for Glue's retries of it when it
    fails and the job's ``MaxRetries`` allows one; returns the last run (``GetJobRun``'s
    ``JobRun``) with ``Attempts``: every run's id, state and error, first to last. On external
    endpoints the job runs directly, once."""
    if not world.in_process:  # moto's server cannot be extended from here; see jobs.py
        outcome = run_job(world, job_name, arguments)
        return {"JobRunState": outcome.state, "ErrorMessage": outcome.error,
                "Attempts": [{"state": outcome.state, "error": outcome.error}]}  # fmt: skip
    glue = world.client("glue")
    max_retries = int(glue.get_job(JobName=job_name)["Job"].get("MaxRetries") or 0)
    run_id = glue.start_job_run(JobName=job_name, Arguments=arguments)["JobRunId"]
    attempts: list[dict[str, Any]] = []
    while True:

        def finished(run_id: str = run_id) -> dict[str, Any] | None:
            run = glue.get_job_run(JobName=job_name, RunId=run_id)["JobRun"]
            return run if run["JobRunState"] not in ("STARTING", "RUNNING", "STOPPING") else None

        run = world.wait_for(finished, what=f"Glue job {job_name} run {run_id}", timeout=1800)
        attempts.append({"id": run["Id"], "state": run["JobRunState"],
                         "error": run.get("ErrorMessage")})  # fmt: skip
        if run["JobRunState"] != "FAILED" or int(run.get("Attempt") or 0) >= max_retries:
            run["Attempts"] = attempts
            return run
        logger.warning("Glue job %s run %s failed (%s); waiting for Glue's retry", job_name,
                       run_id, run.get("ErrorMessage"))  # fmt: skip

        def retry(failed: str = run_id) -> str | None:
            for page in glue.get_paginator("get_job_runs").paginate(JobName=job_name):
                for listed in page["JobRuns"]:
                    if listed.get("PreviousRunId") == failed:
                        return listed["Id"]
            return None

        run_id = world.wait_for(retry, what=f"Glue's retry of {job_name} run {run_id}",
                                timeout=600)  # fmt: skip


def find_executions(
    sfn: Any, machine_arn: str, bucket: str, key: str, inputs: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Every execution of ``machine_arn`` whose event names ``s3://bucket/key``, newest first
    (EventBridge delivers at least once: one object may start several), as ``ListExecutions``
    lists them. ``inputs`` caches each execution's input (it never changes) across polls, so an
    execution is described once, not on every poll."""
    inputs = {} if inputs is None else inputs
    executions = sfn.list_executions(stateMachineArn=machine_arn)["executions"]
    found = []
    for execution in sorted(executions, key=lambda e: e["startDate"], reverse=True):
        arn = execution["executionArn"]
        if arn not in inputs:
            inputs[arn] = sfn.describe_execution(executionArn=arn).get("input") or "{}"
        detail = json.loads(inputs[arn]).get("event", {}).get("detail", {})
        if detail.get("bucket", {}).get("name") == bucket and (
            detail.get("object", {}).get("key") == key
        ):
            found.append(execution)
    return found


def find_execution(sfn: Any, machine_arn: str, bucket: str, key: str) -> dict[str, Any] | None:
    """The newest execution of ``machine_arn`` whose event names ``s3://bucket/key``
    (``DescribeExecution``'s answer)."""
    found = find_executions(sfn, machine_arn, bucket, key)
    return sfn.describe_execution(executionArn=found[0]["executionArn"]) if found else None


def wait_for_execution(
    world: World, machine_arn: str, bucket: str, key: str, timeout: float = 3600
) -> dict[str, Any]:
    """Wait for the executions the object's S3 event started (several when the event was
    delivered more than once), then until every one has ended; returns the newest
    (``DescribeExecution``'s answer), with ``executions``: how many were ``started``, how many
    ``succeeded`` and ``failed``."""
    sfn = world.client("stepfunctions")
    inputs: dict[str, str] = {}
    first = world.wait_for(
        lambda: find_executions(sfn, machine_arn, bucket, key, inputs) or None,
        what=f"the execution of {machine_arn.rsplit(':', 1)[-1]} for s3://{bucket}/{key}",
        timeout=60,
    )
    name = first[0]["name"]
    logger.info("execution %s started", name)

    def finished() -> list[dict[str, Any]] | None:
        runs = find_executions(sfn, machine_arn, bucket, key, inputs)
        return runs if all(r["status"] != "RUNNING" for r in runs) else None

    runs = world.wait_for(finished, what=f"execution {name}", timeout=timeout)
    newest = sfn.describe_execution(executionArn=runs[0]["executionArn"])
    statuses = Counter(r["status"] for r in runs)
    newest["executions"] = {"started": len(runs), "succeeded": statuses["SUCCEEDED"],
                            "failed": len(runs) - statuses["SUCCEEDED"]}  # fmt: skip
    return newest


def failure_notices(world: World, stack: ResolvedStack, workflow: str, uri: str,
                    *, expect: bool = False) -> list[dict[str, Any]]:  # fmt: skip
    """The failure notices ``workflow`` published to the alarm topic about the object ``uri``,
    as its subscribers received them (the local inbox queue; see ``harness.provision``). Read
    and removed from the inbox; notices about other objects stay. ``expect``: the execution
    failed, so its notice is waited for (up to 10 s; a delivery may lag its publication)."""
    from harness.provision import inbox_queue_name

    sqs = world.client("sqs")
    queue = sqs.get_queue_url(QueueName=inbox_queue_name(stack, "alarms"))["QueueUrl"]
    found: list[dict[str, Any]] = []
    seen: set[str] = set()
    deadline = time.monotonic() + (10.0 if expect else 0.0)
    while True:
        received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                       WaitTimeSeconds=1 if expect else 0)  # fmt: skip
        batch = received.get("Messages", [])
        new = [m for m in batch if m["MessageId"] not in seen]
        for message in new:
            seen.add(message["MessageId"])
            try:
                envelope = json.loads(message["Body"])
                notice = json.loads(envelope.get("Message", ""))
            except ValueError:
                notice, envelope = {}, {}
            if notice.get("workflow") == workflow and notice.get("object") == uri:
                found.append({"subject": envelope.get("Subject"), **notice})
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
            else:  # someone else's: back to the queue at once
                sqs.change_message_visibility(QueueUrl=queue, VisibilityTimeout=0,
                                              ReceiptHandle=message["ReceiptHandle"])  # fmt: skip
        if not new and (found or not expect or time.monotonic() > deadline):
            return found
