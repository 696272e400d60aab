"""Stage ``stream``: the window on the CDC stream through the producer, read back and reconciled."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from itertools import pairwise

from emulation.dms import record_bytes
from emulation.kinesis import Producer, read_stream, stream_positions
from harness.run import RunContext, StageSpec, hops


def _stream_records(ctx: RunContext) -> list[tuple[str, bytes]]:
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
    timed += [
        (sent_us, 1, sale_id, key, message.encode())
        for sent_us, sale_id, key, message in zip(
            shop["sent_us"].to_pylist(),
            shop["sale_id"].to_pylist(),
            shop["partition_key"].to_pylist(),
            shop["message"].to_pylist(),
            strict=True,
        )
    ]
    timed.sort(key=lambda item: item[:3])
    return [(key, data) for *_, key, data in timed]


def _order_key(data: bytes) -> tuple[int, int]:
    """(source, position) of a record: DMS transaction id or the shop's sale id."""
    message = json.loads(data)
    if "metadata" in message:
        return 0, int(message["metadata"]["transaction-id"])
    return 1, int(message["sale_id"])


def run(ctx: RunContext) -> None:
    """Put the window on the CDC stream through the producer, then read the stream back."""
    kinesis = ctx.world.client("kinesis")
    stream_name = ctx.stack.stream_name("cdc")
    records = _stream_records(ctx)
    before = stream_positions(kinesis, stream_name)  # an external endpoint may hold older runs
    ctx.cdc_stream_start = before
    producer = Producer(kinesis, stream_name=stream_name)
    report = producer.send(records)
    hop = ctx.ledger.hop(hops.KINESIS_PRODUCER)
    hop.add(received=report.received, written=report.written)
    for rejected in report.rejected:
        hop.reject(rejected.reason.split(":")[0])
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
    ctx.ledger.link(
        [hops.DMS_CDC, hops.SHOP_EVENTS] if len(ctx.simulation.ecommerce) else hops.DMS_CDC,
        hops.KINESIS_PRODUCER,
    )
    held = read_stream(kinesis, stream_name, after=before)
    ctx.cdc_window = [r["data"] for r in held]  # what the stream holds, read once
    ctx.ledger.hop(hops.KINESIS_CDC).add(received=len(held), written=len(held))
    ctx.ledger.link(hops.KINESIS_PRODUCER, hops.KINESIS_CDC)
    # Content check: the stream holds exactly what was written, each record once.
    sent = Counter(data for _, data in records) - Counter(r.data for r in report.rejected)
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
        source, position = _order_key(record["data"])
        by_key[(record["partition_key"], str(source))].append((source, position))
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
            "reordered": report.reordered,
            "rejected": len(report.rejected),
        },
    }


STAGE = StageSpec("stream", run, needs=("simulation",), gives=("cdc_stream_start", "cdc_window"))
