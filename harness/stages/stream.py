"""Stage ``stream``: the window on the CDC stream through the producer, read back and reconciled.

With a scenario's ``faults`` (:mod:`harness.faults`), the window is first given its DMS faults
and bad records, and the embedded Kinesis throttles the stream as asked for the rest of the run.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from itertools import pairwise

from emulation.dms import record_bytes
from emulation.kinesis import Producer, ProducerReport, read_stream, stream_positions
from harness.faults import FaultLog, StreamRecord, inject
from harness.run import RunContext, StageSpec, hops


def _stream_records(ctx: RunContext) -> list[StreamRecord]:
    """DMS messages and shop events of the window, interleaved in the order they happen."""
    sim = ctx.simulation
    settings = ctx.scenario.dms
    stream = sim.cdc_stream
    timed = [
        (commit_us, 0, seq, key, record_bytes(message, settings))
        for commit_us, seq, key, message in zip(
            stream["commit_us"].to_pylist(),
            stream["seq"].to_pylist(),
            stream["partition_key"].to_pylist(),
            stream["message"].to_pylist(),
            strict=True,
        )
    ]
    shop = sim.ecommerce
    timed = [(*t[:4], "dms", t[4]) for t in timed]
    timed += [
        (sent_us, 1, sale_id, key, "shop", message.encode())
        for sent_us, sale_id, key, message in zip(
            shop["sent_us"].to_pylist(),
            shop["sale_id"].to_pylist(),
            shop["partition_key"].to_pylist(),
            shop["message"].to_pylist(),
            strict=True,
        )
    ]
    timed.sort(key=lambda item: item[:3])
    return [StreamRecord(key, data, source) for *_, key, source, data in timed]


def _order_key(data: bytes) -> tuple[int, int] | None:
    """(source, position) of a record: DMS transaction id or the shop's sale id (``None`` for a
    record that has neither: an injected bad one)."""
    try:
        message = json.loads(data)
        if "metadata" in message:
            return 0, int(message["metadata"]["transaction-id"])
        return 1, int(message["sale_id"])
    except (ValueError, KeyError, TypeError):
        return None


def _arm_world_faults(ctx: RunContext, stream_name: str) -> None:
    """Have the embedded world throttle the CDC stream, deliver events twice and fail Glue runs,
    as the scenario's faults ask (the runner disarms them when the run ends)."""
    faults = ctx.scenario.faults
    if not faults.in_the_world:
        return
    from emulation._managed_state import served_in_process
    from emulation.events import deliver_twice
    from emulation.glue.faults import fail_runs
    from emulation.kinesis.faults import Rates, throttle
    from harness.faults import IN_THE_WORLD

    for name in faults.in_the_world:
        service = IN_THE_WORLD[name]
        if not (ctx.world.in_process and served_in_process(service)):
            raise ValueError(
                f"faults.{name}: injected by the embedded moto, and {service} is served "
                f"elsewhere in this world ({ctx.world.describe().get('kind')}); run the "
                "scenario with --world moto and no AWS_ENDPOINT_URL"
            )
    world, spec = ctx.world, faults.kinesis
    if spec.active:
        throttle(world.account_id, world.region, stream_name, Rates(
            spec.put_records_entries, spec.put_records_calls, spec.get_records_calls,
            seed=ctx.scenario.seed))  # fmt: skip
    if faults.events.active:
        deliver_twice(world.account_id, world.region, faults.events.duplicate_deliveries,
                      ctx.scenario.seed)  # fmt: skip
    if faults.glue.active:
        glue = world.client("glue")
        for key, count in faults.glue.failed_runs.items():
            job = ctx.stack.job_name(key)
            if ctx.faults is not None:  # runs of an earlier run in this world are not this one's
                ctx.faults.glue_seen[key] = {
                    r["Id"] for page in glue.get_paginator("get_job_runs").paginate(JobName=job)
                    for r in page["JobRuns"]
                }  # fmt: skip
            fail_runs(world.account_id, world.region, job, count)
    if faults.sagemaker.active:
        from emulation.sagemaker import settings as sagemaker_settings

        local = sagemaker_settings(world.account_id, world.region)
        local.fail_automl_jobs, local.failed_on_purpose = faults.sagemaker.failed_automl_jobs, 0


class _Restarts:
    """The world's endpoint restarted while the producer writes (``faults.world``): when the
    producer takes the first record of each later part of the window, the endpoint goes down
    (in a thread, so the producer meets the outage mid-batch) and comes back with its state."""

    def __init__(self, ctx: RunContext, count: int) -> None:
        spec = ctx.scenario.faults.world
        self.ctx, self.spec = ctx, spec
        parts = spec.restarts + 1
        self.at = {round(count * n / parts) for n in range(1, parts)} if spec.active else set()
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []
        self.began = 0.0

    def _restart(self, down: threading.Event) -> None:
        try:
            self.ctx.world.restart(self.spec.outage_seconds, down=down)
        except BaseException as exc:  # reported by finish(), in the stage's thread
            self.errors.append(exc)
        finally:
            down.set()  # never leave the producer waiting on an outage that did not come

    def during(self, records: Iterator[tuple[str, bytes]]) -> Iterator[tuple[str, bytes]]:
        self.began = time.monotonic()
        for index, record in enumerate(records):
            if index in self.at:
                for thread in self.threads:  # one outage at a time
                    thread.join()
                down = threading.Event()
                thread = threading.Thread(target=self._restart, args=(down,), name="world-restart")
                thread.start()
                self.threads.append(thread)
                # The producer takes this record only once the endpoint refuses connections, so
                # the batch holding it meets the outage whatever the machine's load.
                down.wait()
            yield record

    def wait(self) -> None:
        """Until the endpoint is back (also when the producer failed: never leave it down)."""
        for thread in self.threads:
            thread.join()

    def finish(self, report: ProducerReport) -> None:
        if self.errors:
            raise self.errors[0]
        if self.spec.active and self.ctx.faults is not None:
            self.ctx.faults.world = {
                "restarts": len(self.threads),
                "outage_seconds": self.spec.outage_seconds,
                "restart_after_records": sorted(self.at),
                "producer_unreachable_calls": report.unreachable_calls,
                "producer_seconds": round(time.monotonic() - self.began, 2),
            }


def run(ctx: RunContext) -> None:
    """Put the window on the CDC stream through the producer, then read the stream back."""
    kinesis = ctx.world.client("kinesis")
    stream_name = ctx.stack.stream_name("cdc")
    records = _stream_records(ctx)
    faults = ctx.scenario.faults
    if faults.active:
        ctx.faults = FaultLog(faults, ctx.scenario.seed)
        records = inject(
            records,
            faults,
            ctx.scenario.seed,
            formatted=ctx.scenario.dms.message_format == "json",
            log=ctx.faults,
            window_end=ctx.simulation.world.window_end,
            settings=ctx.scenario.dms,
        )
        controls = sum(ctx.faults.control.values())
        if controls:  # DDL read from the source's log, written as control records
            ctx.ledger.hop(hops.DMS_CDC).add(received=controls, written=controls)
        if ctx.faults.redelivered_records:
            ctx.ledger.hop(hops.DMS_CDC).add(
                redelivered=ctx.faults.redelivered_records,
                written=ctx.faults.redelivered_records,
            )
        if ctx.faults.bad:
            ctx.ledger.hop(hops.BAD_RECORDS).add(received=len(ctx.faults.bad),
                                                 written=len(ctx.faults.bad))  # fmt: skip
    before = stream_positions(kinesis, stream_name)  # an external endpoint may hold older runs
    ctx.cdc_stream_start = before
    _arm_world_faults(ctx, stream_name)
    producer = Producer(kinesis, stream_name=stream_name)
    restarts = _Restarts(ctx, len(records))
    try:
        report = producer.send(restarts.during((r.partition_key, r.data) for r in records))
    finally:
        restarts.wait()
    restarts.finish(report)
    hop = ctx.ledger.hop(hops.KINESIS_PRODUCER)
    hop.add(received=report.received, written=report.written,
            retried=report.retried_records, throttled=report.throttled_calls)  # fmt: skip
    if ctx.faults is not None:
        ctx.faults.client_retries[hops.KINESIS_PRODUCER] = {
            "calls": report.calls, "retried_records": report.retried_records,
            "throttled_calls": report.throttled_calls, "reordered": report.reordered,
        }  # fmt: skip
    for rejected in report.rejected:
        hop.reject(rejected.reason.split(":")[0])
        if ctx.faults is not None:
            ctx.faults.caught(hops.KINESIS_PRODUCER, rejected.reason, data=rejected.data)
    if report.rejected:
        errors = ctx.out.errors / "kinesis-producer.ndjson"
        errors.parent.mkdir(parents=True, exist_ok=True)
        errors.write_text(
            "".join(
                json.dumps({"partition_key": r.partition_key, "reason": r.reason,
                            "data": r.data.decode(errors="replace")}) + "\n"
                for r in report.rejected
            )
        )  # fmt: skip
    sources = [hops.DMS_CDC]
    if len(ctx.simulation.ecommerce):
        sources.append(hops.SHOP_EVENTS)
    if ctx.faults is not None and ctx.faults.bad:
        sources.append(hops.BAD_RECORDS)
    ctx.ledger.link(sources, hops.KINESIS_PRODUCER)
    held = read_stream(kinesis, stream_name, after=before)
    ctx.cdc_window = [r["data"] for r in held]  # what the stream holds, read once
    ctx.ledger.hop(hops.KINESIS_CDC).add(received=len(held), written=len(held))
    ctx.ledger.link(hops.KINESIS_PRODUCER, hops.KINESIS_CDC)
    # Content check: the stream holds exactly what was written, each record once.
    sent = Counter(r.data for r in records) - Counter(r.data for r in report.rejected)
    got = Counter(r["data"] for r in held)
    missing, extra = sent - got, got - sent
    if missing or extra:
        ctx.ledger.discrepancy(
            f"{hops.KINESIS_CDC}: content differs from what was written "
            f"({sum(missing.values())} missing, {sum(extra.values())} unexpected)",
        )
    # Order per partition key, as consumers rely on.
    by_key: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    for record in sorted(held, key=lambda r: (r["shard_id"], int(r["sequence_number"]))):
        order = _order_key(record["data"])
        if order is None or (ctx.faults is not None and ctx.faults.is_bad(record["data"])):
            continue  # a bad record has no place in the order
        by_key[(record["partition_key"], str(order[0]))].append(order)
    out_of_order = sum(sum(1 for a, b in pairwise(keys) if b < a) for keys in by_key.values())
    ctx.summary["stream"] = {
        "stream": stream_name,
        "records": len(held),
        "shards": dict(sorted(Counter(r["shard_id"] for r in held).items())),
        "partition_keys": len({r["partition_key"] for r in held}),
        "ordered_per_partition_key": out_of_order == 0,
        "out_of_order": out_of_order,
        "producer": {
            "calls": report.calls,
            "retried_records": report.retried_records,
            "throttled_calls": report.throttled_calls,
            "unreachable_calls": report.unreachable_calls,
            "reordered": report.reordered,
            "rejected": len(report.rejected),
        },
    }


STAGE = StageSpec("stream", run, needs=("simulation",), gives=("cdc_stream_start", "cdc_window"))
