"""Putting records on a Kinesis data stream the way a careful producer (DMS, a web shop) does.

:class:`Producer` sends ``PutRecords`` batches within Kinesis limits (500 records, 5 MiB per call,
1 MiB per record counting data and partition key), retries the records of a partial failure and
whole calls that were throttled, with exponential backoff and jitter, and accounts for every
record: written, or rejected with a reason (too large, bad partition key, still failing after the
last attempt). Nothing is dropped silently; rejected records are handed back to the caller. An
endpoint that cannot be reached (a restart, a network blip) is retried for up to
``unreachable_timeout`` seconds (30, the Kinesis Producer Library's default ``RecordTtl``) before
the batch is rejected as ``EndpointUnreachable``; boto3's own retries give up within a second.

:func:`read_stream` reads a whole stream back (every shard from ``TRIM_HORIZON``), which is how a
run checks what the stream holds; a throttled ``GetRecords`` is retried from the same iterator
with backoff, as a consumer must.

Not emulated: the per-shard write limits (1 MiB/s, 1,000 records/s) are not enforced by the local
endpoints; ordering per partition key holds unless a partial failure makes a record be retried
after later records of the same key were written (as on AWS with ``PutRecords``); such records are
counted in :attr:`ProducerReport.reordered`.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

logger = logging.getLogger(__name__)

MAX_RECORDS_PER_CALL = 500
MAX_BYTES_PER_CALL = 5 * 1024 * 1024
MAX_BYTES_PER_RECORD = 1024 * 1024
_RETRYABLE = {"ProvisionedThroughputExceededException", "InternalFailure", "ServiceUnavailable",
              "ThrottlingException", "KMSThrottlingException"}  # fmt: skip


@dataclass
class Rejected:
    """A record the producer could not write, with the reason."""

    partition_key: str
    data: bytes
    reason: str


@dataclass
class ProducerReport:
    received: int = 0
    written: int = 0
    calls: int = 0
    retried_records: int = 0
    throttled_calls: int = 0
    unreachable_calls: int = 0  # calls that found no endpoint to connect to, and were retried
    reordered: int = 0
    rejected: list[Rejected] = field(default_factory=list)

    @property
    def reasons(self) -> Counter[str]:
        return Counter(r.reason.split(":")[0] for r in self.rejected)


class Producer:
    """Batches, sends and retries records for one stream (by name or ARN)."""

    def __init__(
        self,
        client: Any,
        *,
        stream_name: str | None = None,
        stream_arn: str | None = None,
        max_attempts: int = 8,
        base_delay: float = 0.05,
        max_delay: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        on_progress: Callable[[int], None] | None = None,
        unreachable_timeout: float = 30.0,
    ) -> None:
        if not (stream_name or stream_arn):
            raise ValueError("give stream_name or stream_arn")
        self._client = client
        self._target = {"StreamARN": stream_arn} if stream_arn else {"StreamName": stream_name}
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._sleep = sleep
        self._on_progress = on_progress
        self._jitter = random.Random(0)
        self._unreachable_timeout = unreachable_timeout

    def send(self, records: Iterable[tuple[str, bytes]]) -> ProducerReport:
        report = ProducerReport()
        for batch in self._batches(records, report):
            self._send_batch(batch, report)
            if self._on_progress:
                self._on_progress(report.written)
        return report

    def _batches(
        self, records: Iterable[tuple[str, bytes]], report: ProducerReport
    ) -> Iterator[list[tuple[str, bytes]]]:
        batch: list[tuple[str, bytes]] = []
        size = 0
        for key, data in records:
            report.received += 1
            record_size = len(data) + len(key.encode())
            if not 1 <= len(key) <= 256:
                report.rejected.append(
                    Rejected(key, data, f"InvalidPartitionKey: length {len(key)} not in 1..256")
                )
                continue
            if record_size > MAX_BYTES_PER_RECORD:
                report.rejected.append(
                    Rejected(key, data, f"RecordTooLarge: {record_size} bytes > 1 MiB")
                )
                continue
            if batch and (
                len(batch) == MAX_RECORDS_PER_CALL or size + record_size > MAX_BYTES_PER_CALL
            ):
                yield batch
                batch, size = [], 0
            batch.append((key, data))
            size += record_size
        if batch:
            yield batch

    def _put(self, pending: list[tuple[str, bytes]], report: ProducerReport) -> Any:
        """One ``PutRecords`` call, retried while the endpoint cannot be reached (up to the
        timeout; then every record of the batch is rejected by the caller's accounting)."""
        began, tries = time.monotonic(), 0
        while True:
            try:
                return self._client.put_records(
                    Records=[{"PartitionKey": k, "Data": d} for k, d in pending], **self._target
                )
            except (EndpointConnectionError, ConnectionClosedError) as exc:
                report.unreachable_calls += 1
                if time.monotonic() - began > self._unreachable_timeout:
                    raise ClientError(
                        {"Error": {"Code": "EndpointUnreachable", "Message": str(exc)}},
                        "PutRecords",
                    ) from exc
                self._backoff(min(tries, 5))
                tries += 1

    def _backoff(self, attempt: int) -> None:
        delay = min(self._max_delay, self._base_delay * 2**attempt)
        self._sleep(delay * (0.5 + self._jitter.random() / 2))

    def _send_batch(self, batch: list[tuple[str, bytes]], report: ProducerReport) -> None:
        pending = batch
        last_error: dict[int, str] = {}
        for attempt in range(self._max_attempts):
            report.calls += 1
            try:
                response = self._put(pending, report)
            except ClientError as exc:
                code = exc.response["Error"]["Code"]
                if code == "EndpointUnreachable":  # retried for its own timeout already
                    last_error = {i: f"{code}: {exc}" for i in range(len(pending))}
                    break
                if code not in _RETRYABLE:
                    raise
                report.throttled_calls += 1
                last_error = {i: f"{code}: {exc}" for i in range(len(pending))}
                self._backoff(attempt)
                continue
            failed: list[tuple[str, bytes]] = []
            errors: dict[int, str] = {}
            written_keys: set[str] = set()
            for record, result in zip(pending, response["Records"], strict=True):
                if "ErrorCode" in result:
                    errors[len(failed)] = f"{result['ErrorCode']}: {result.get('ErrorMessage', '')}"
                    failed.append(record)
                else:
                    written_keys.add(record[0])
            report.written += len(pending) - len(failed)
            if not failed:
                return
            report.retried_records += len(failed)
            report.reordered += sum(1 for key, _ in failed if key in written_keys)
            pending, last_error = failed, errors
            self._backoff(attempt)
        for i, (key, data) in enumerate(pending):
            reason = last_error.get(i, "unknown error")
            report.rejected.append(
                Rejected(
                    key, data, f"{reason.split(':')[0]}: failed after {self._max_attempts} attempts"
                )
            )
        logger.warning("%d records rejected after %d attempts", len(pending), self._max_attempts)


READ_ATTEMPTS = 12


def _get_records(client: Any, iterator: str, sleep: Callable[[float], None] = time.sleep) -> Any:
    """``GetRecords`` with throttling retried (backoff from 50 ms, capped at 2 s)."""
    for attempt in range(READ_ATTEMPTS):
        try:
            return client.get_records(ShardIterator=iterator, Limit=10_000)
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in _RETRYABLE or attempt == READ_ATTEMPTS - 1:
                raise
            sleep(min(2.0, 0.05 * 2**attempt))
    raise AssertionError("unreachable")


def stream_positions(client: Any, stream_name: str) -> dict[str, str | None]:
    """The last sequence number in each shard now (``None`` for an empty shard).

    Taken before writing, it lets :func:`read_stream` return only what was written since, so a
    run against a long-lived endpoint does not count an earlier run's records.
    """
    positions: dict[str, str | None] = {}
    for record in read_stream(client, stream_name):
        positions[record["shard_id"]] = record["sequence_number"]
    for shard in client.list_shards(StreamName=stream_name)["Shards"]:
        positions.setdefault(shard["ShardId"], None)
    return positions


def read_stream(
    client: Any,
    stream_name: str,
    *,
    after: dict[str, str | None] | None = None,
    idle_polls: int = 2,
) -> list[dict[str, Any]]:
    """Every record the stream holds, shard by shard from ``TRIM_HORIZON`` (or after ``after``).

    Each item has ``shard_id``, ``sequence_number``, ``partition_key`` and ``data``.
    """
    out: list[dict[str, Any]] = []
    shards = client.list_shards(StreamName=stream_name)["Shards"]
    for shard in sorted(shards, key=lambda s: s["ShardId"]):
        start: dict[str, Any] = {"ShardIteratorType": "TRIM_HORIZON"}
        if after and after.get(shard["ShardId"]):
            start = {
                "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                "StartingSequenceNumber": after[shard["ShardId"]],
            }
        iterator = client.get_shard_iterator(
            StreamName=stream_name, ShardId=shard["ShardId"], **start
        )["ShardIterator"]
        empty = 0
        while iterator and empty < idle_polls:
            response = _get_records(client, iterator)
            records = response["Records"]
            out.extend(
                {
                    "shard_id": shard["ShardId"],
                    "sequence_number": r["SequenceNumber"],
                    "partition_key": r["PartitionKey"],
                    "data": r["Data"],
                }
                for r in records
            )
            empty = 0 if records else empty + 1
            iterator = response.get("NextShardIterator")
    return out
