"""The Kinesis producer: limits, retries of partial failures and throttling, no silent loss."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from emulation import World
from emulation.kinesis import (
    MAX_BYTES_PER_CALL,
    MAX_BYTES_PER_RECORD,
    MAX_RECORDS_PER_CALL,
    Producer,
    read_stream,
    stream_positions,
)
from emulation.world import WorldError


class FlakyKinesis:
    """A Kinesis double that fails chosen records and throttles chosen calls, then recovers."""

    def __init__(
        self, fail_first_attempts: int = 0, throttle_calls: int = 0, always_fail: str = ""
    ):
        self.calls: list[list[dict[str, Any]]] = []
        self.written: list[tuple[str, bytes]] = []
        self._fail_attempts = fail_first_attempts
        self._throttle = throttle_calls
        self._always_fail = always_fail
        self._attempts: dict[bytes, int] = {}

    def put_records(self, Records: list[dict[str, Any]], **target: Any) -> dict[str, Any]:
        assert target
        self.calls.append(Records)
        assert len(Records) <= MAX_RECORDS_PER_CALL
        assert sum(len(r["Data"]) + len(r["PartitionKey"]) for r in Records) <= MAX_BYTES_PER_CALL
        if self._throttle:
            self._throttle -= 1
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}},
                "PutRecords",
            )
        results = []
        for record in Records:
            seen = self._attempts.get(record["Data"], 0)
            self._attempts[record["Data"]] = seen + 1
            odd = int(record["Data"].split(b"-")[1]) % 2 == 1
            if record["PartitionKey"] == self._always_fail or (odd and seen < self._fail_attempts):
                results.append({"ErrorCode": "InternalFailure", "ErrorMessage": "try again"})
            else:
                self.written.append((record["PartitionKey"], record["Data"]))
                results.append({"SequenceNumber": str(len(self.written)), "ShardId": "s-0"})
        return {"FailedRecordCount": sum("ErrorCode" in r for r in results), "Records": results}


def records(n: int, key: str = "k") -> list[tuple[str, bytes]]:
    return [(f"{key}{i % 7}", f"r-{i}".encode()) for i in range(n)]


def test_batches_respect_record_count_and_size_limits() -> None:
    fake = FlakyKinesis()
    big = b"x" * (MAX_BYTES_PER_RECORD - 10)
    items = records(1_200) + [(f"big{i}", b"r-0-" + big[:-4]) for i in range(7)]
    report = Producer(fake, stream_name="s", sleep=lambda _: None).send(items)
    assert report.written == len(items) == report.received
    assert sorted(fake.written) == sorted(items)
    assert max(len(c) for c in fake.calls) == MAX_RECORDS_PER_CALL


def test_partial_failures_are_retried_until_written() -> None:
    fake = FlakyKinesis(fail_first_attempts=2)
    delays: list[float] = []
    report = Producer(fake, stream_name="s", sleep=delays.append).send(records(1_000))
    assert report.written == 1_000 and not report.rejected
    assert report.retried_records == 1_000  # 500 odd records, each failing twice
    assert sorted(fake.written) == sorted(records(1_000))
    assert delays and delays == sorted(delays[:2]) + delays[2:]  # backoff grows


def test_throttled_calls_are_retried() -> None:
    fake = FlakyKinesis(throttle_calls=3)
    report = Producer(fake, stream_name="s", sleep=lambda _: None).send(records(10))
    assert report.throttled_calls == 3 and report.written == 10


def test_records_that_never_succeed_are_rejected_with_a_reason_not_dropped() -> None:
    fake = FlakyKinesis(always_fail="k3")
    items = records(70)
    report = Producer(fake, stream_name="s", max_attempts=3, sleep=lambda _: None).send(items)
    failing = [r for r in items if r[0] == "k3"]
    assert report.written + len(report.rejected) == report.received == len(items)
    assert [(r.partition_key, r.data) for r in report.rejected] == failing
    assert all(
        r.reason.startswith("InternalFailure: failed after 3 attempts") for r in report.rejected
    )


def test_oversized_records_and_bad_keys_are_rejected_up_front() -> None:
    fake = FlakyKinesis()
    items = [("ok", b"r-1"), ("k", b"r-2" + b"x" * MAX_BYTES_PER_RECORD), ("", b"r-3"),
             ("x" * 257, b"r-4")]  # fmt: skip
    report = Producer(fake, stream_name="s", sleep=lambda _: None).send(items)
    assert report.written == 1
    assert sorted(report.reasons) == ["InvalidPartitionKey", "RecordTooLarge"]
    assert report.reasons["InvalidPartitionKey"] == 2


def test_non_retryable_errors_surface() -> None:
    class Missing:
        def put_records(self, **_: Any) -> None:
            raise ClientError(
                {"Error": {"Code": "ResourceNotFoundException", "Message": "no stream"}},
                "PutRecords",
            )

    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        Producer(Missing(), stream_name="s").send(records(3))


def test_an_endpoint_that_stays_unreachable_rejects_the_batch_after_the_timeout() -> None:
    class Gone:
        def put_records(self, **_: Any) -> None:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")

    clock = iter(range(0, 1000, 10))  # each look at the clock: ten seconds later
    items = records(5)
    producer = Producer(Gone(), stream_name="s", sleep=lambda _: None, unreachable_timeout=30)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("emulation.kinesis.time.monotonic", lambda: float(next(clock)))
        report = producer.send(items)
    assert report.written == 0 and report.unreachable_calls == 4  # 0 s, 10, 20, 30, then 40
    assert [(r.partition_key, r.data) for r in report.rejected] == items
    assert all(r.reason.startswith("EndpointUnreachable") for r in report.rejected)


def test_the_producer_rides_out_a_world_restart_and_the_world_keeps_its_state(
    aws: World,
) -> None:
    """The endpoint goes down while the producer writes and comes back with its state: every
    record is on the stream once, in order per key, and what was written before the restart
    keeps its sequence numbers (a plain boto3 call gives up within a second)."""
    if aws.kind != "embedded":
        pytest.skip("only the embedded world can be restarted (its state lives in this "
                    "process); this session's own run of this test covers it")  # fmt: skip
    kinesis = aws.client("kinesis")
    kinesis.create_stream(StreamName="orders", ShardCount=2)
    first = records(200, "a")
    Producer(kinesis, stream_name="orders").send(first)
    before = {r["data"]: r["sequence_number"] for r in read_stream(kinesis, "orders")}
    failures: list[BaseException] = []
    down = threading.Event()

    def restart_world() -> None:
        try:
            aws.restart(2.0, down=down)
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)
        finally:
            down.set()

    restart = threading.Thread(target=restart_world)
    restart.start()
    down.wait()  # the endpoint refuses connections now, however loaded the machine is
    later = [(key, b"later-" + data) for key, data in records(600, "b")]
    report = Producer(kinesis, stream_name="orders").send(later)
    restart.join()
    assert not failures, failures
    assert report.written == 600 and not report.rejected and report.unreachable_calls >= 1
    held = read_stream(kinesis, "orders")
    assert sorted((r["partition_key"], r["data"]) for r in held) == sorted(first + later)
    for key in {k for k, _ in first + later}:
        got = [r["data"] for r in held if r["partition_key"] == key]
        assert got == [d for k, d in first + later if k == key]
    assert {r["data"]: r["sequence_number"] for r in held if r["data"] in before} == before


def test_failed_reads_answer_internal_failure_until_called_off(aws: World) -> None:
    if aws.kind != "embedded":
        pytest.skip("reads are failed inside the embedded moto only (a moto patch); this "
                    "session's own run of this test covers it")  # fmt: skip
    from emulation.kinesis.faults import fail_reads

    kinesis = aws.client("kinesis", retries=1)
    kinesis.create_stream(StreamName="flaky", ShardCount=1)
    kinesis.put_record(StreamName="flaky", Data=b"r0", PartitionKey="k")
    shard = kinesis.list_shards(StreamName="flaky")["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(
        StreamName="flaky", ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    fail_reads(aws.account_id, aws.region, "flaky", True)
    try:
        with pytest.raises(ClientError) as failed:
            kinesis.get_records(ShardIterator=iterator)
        error = failed.value.response
        assert error["Error"]["Code"] == "InternalFailure"
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 500  # what SDKs retry
    finally:
        answered = fail_reads(aws.account_id, aws.region, "flaky", False)
    assert answered == 2  # the call and the client's one retry
    assert [r["Data"] for r in kinesis.get_records(ShardIterator=iterator)["Records"]] == [b"r0"]


def test_only_the_embedded_world_can_be_restarted() -> None:
    world = World("http://127.0.0.1:9", region="eu-west-1")  # never started: nothing to restart
    with pytest.raises(WorldError, match="only an embedded moto world"):
        world.restart(0.1)


def test_producer_against_the_world_stream_keeps_order_per_key(aws: World) -> None:
    kinesis = aws.client("kinesis")
    kinesis.create_stream(StreamName="orders", ShardCount=3)
    items = records(1_500)
    report = Producer(kinesis, stream_name="orders").send(items)
    assert report.written == 1_500
    held = read_stream(kinesis, "orders")
    assert sorted((r["partition_key"], r["data"]) for r in held) == sorted(items)
    for key in {k for k, _ in items}:
        got = [r["data"] for r in held if r["partition_key"] == key]
        assert got == [d for k, d in items if k == key]


def test_reading_after_positions_skips_earlier_records(aws: World) -> None:
    kinesis = aws.client("kinesis")
    kinesis.create_stream(StreamName="reused", ShardCount=2)
    Producer(kinesis, stream_name="reused").send(records(40, "old"))
    before = stream_positions(kinesis, "reused")
    assert set(before) == {"shardId-000000000000", "shardId-000000000001"}
    new = records(25, "new")
    Producer(kinesis, stream_name="reused").send(new)
    held = read_stream(kinesis, "reused", after=before)
    assert sorted((r["partition_key"], r["data"]) for r in held) == sorted(new)


def test_concurrent_writers_to_one_shard_lose_nothing(aws: World) -> None:
    """Parallel PutRecords calls into one shard (a Flink sink's writers) each get their own
    sequence numbers, as on AWS; unpatched moto numbered some alike and kept only the last."""
    if aws.kind != "embedded":
        pytest.skip(
            "a plain moto server numbers concurrent writes to a shard without a lock; "
            "only the embedded world carries the fix (emulation/kinesis/shards.py)"
        )
    from concurrent.futures import ThreadPoolExecutor

    aws.client("kinesis").create_stream(StreamName="many-writers", ShardCount=1)
    aws.client("kinesis").get_waiter("stream_exists").wait(StreamName="many-writers")

    def write(writer: int) -> list[str]:
        client = aws.client("kinesis")  # a client per thread, as each sink writer has its own
        sequence = []
        for batch in range(5):
            records = [{"Data": f"{writer}-{batch}-{i}".encode(), "PartitionKey": f"k{i}"}
                       for i in range(100)]  # fmt: skip
            response = client.put_records(StreamName="many-writers", Records=records)
            assert response["FailedRecordCount"] == 0
            sequence += [r["SequenceNumber"] for r in response["Records"]]
        return sequence

    with ThreadPoolExecutor(8) as pool:
        numbers = [n for part in pool.map(write, range(8)) for n in part]
    assert len(set(numbers)) == len(numbers) == 8 * 5 * 100
    stored = [r["data"] for r in read_stream(aws.client("kinesis"), "many-writers")]
    assert sorted(stored) == sorted(f"{w}-{b}-{i}".encode() for w in range(8) for b in range(5)
                                    for i in range(100))  # fmt: skip


def test_held_reads_show_a_stream_part_by_part(aws: World) -> None:
    if aws.kind != "embedded":
        pytest.skip("reads are held inside the embedded moto only (a moto patch); this "
                    "session's own run of this test covers it")  # fmt: skip
    from emulation.kinesis.faults import hold_reads

    kinesis = aws.client("kinesis")
    kinesis.create_stream(StreamName="held", ShardCount=1)
    seqs = [kinesis.put_record(StreamName="held", Data=f"r{i}".encode(),
                               PartitionKey="k")["SequenceNumber"] for i in range(6)]  # fmt: skip
    shard = kinesis.list_shards(StreamName="held")["Shards"][0]["ShardId"]

    def read(iterator: str) -> tuple[list[bytes], str]:
        answer = kinesis.get_records(ShardIterator=iterator)
        return [r["Data"] for r in answer["Records"]], answer["NextShardIterator"]

    start = kinesis.get_shard_iterator(
        StreamName="held", ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    hold_reads(aws.account_id, aws.region, "held", {shard: None})
    try:
        assert read(start)[0] == []  # nothing has "arrived" yet
        hold_reads(aws.account_id, aws.region, "held", {shard: seqs[2]})
        first, iterator = read(start)
        assert first == [b"r0", b"r1", b"r2"]
        assert read(iterator)[0] == []  # the iterator waits at the hold
        assert len(read_stream(kinesis, "held")) == 3  # every reader of the stream is held
        hold_reads(aws.account_id, aws.region, "held", None)
        assert read(iterator)[0] == [b"r3", b"r4", b"r5"]  # the rest, from where it stopped
    finally:
        hold_reads(aws.account_id, aws.region, "held", None)
