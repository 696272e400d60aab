"""The run's stages after provisioning: simulate, stream, stage (Firehose), ETL (Glue).

Each stage reads what earlier ones left in the :class:`~harness.runner.RunContext` and records
what it received, wrote and rejected in the ledger; its findings go to a summary section.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import re
from collections import Counter, defaultdict
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from emulation.dms import record_bytes, write_ndjson
from emulation.firehose import DeliveryStream
from emulation.glue import arrow_schema
from emulation.glue.jobs import run_job
from emulation.kinesis import Producer, read_stream, stream_positions
from harness.simulation import simulate
from pipeline.contracts.cdc import PRIMARY_KEYS, TABLES
from pipeline.contracts.staged import ECOMMERCE_PARTITION, STAGED_CDC_TABLE

if TYPE_CHECKING:
    from harness.runner import RunContext

logger = logging.getLogger(__name__)

HOP_DMS = "dms_cdc"
HOP_SHOP = "shop_events"
HOP_PRODUCER = "kinesis_producer"
HOP_STREAM = "kinesis_cdc"


def stage_simulate(ctx: RunContext) -> None:
    """Generate the scenario's world; keep its truth and its streamed window as run files."""
    sim = simulate(ctx.scenario)
    ctx.simulation = sim
    out = ctx.out_dir / "simulation"
    (out / "truth").mkdir(parents=True, exist_ok=True)
    pq.write_table(sim.truth_daily, out / "truth" / "daily_demand.parquet", compression="zstd")
    pq.write_table(sim.truth_anomalies, out / "truth" / "anomalies.parquet", compression="zstd")
    stream = sim.cdc_stream
    write_ndjson(stream["message"], out / "cdc" / "stream.ndjson")
    window_changes = sum(
        len(t.filter(pc.not_equal(t["_op"], "load"))) for t in sim.world.changes.values()
    )
    ctx.ledger.hop(HOP_DMS).add(received=window_changes, written=len(stream))
    if len(sim.ecommerce):
        write_ndjson(sim.ecommerce["message"], out / "events" / "ecommerce.ndjson")
        ctx.ledger.hop(HOP_SHOP).add(received=len(sim.ecommerce), written=len(sim.ecommerce))
    ctx.extra["simulation"] = {
        "window": {
            "start": sim.world.window_start.isoformat(),
            "end": sim.world.window_end.isoformat(),
        },
        "full_load_records": len(sim.cdc_load),
        "stream_records": len(stream),
        "ecommerce_events": len(sim.ecommerce),
        "anomalies_injected": len(sim.truth_anomalies),
    }


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


def stage_stream(ctx: RunContext) -> None:
    """Put the window on the CDC stream through the producer, then read the stream back."""
    assert ctx.world is not None and ctx.stack is not None
    kinesis = ctx.world.client("kinesis")
    stream_name = ctx.stack.stream_name("cdc")
    records = _stream_records(ctx)
    before = stream_positions(kinesis, stream_name)  # an external endpoint may hold older runs
    ctx.scratch["cdc_stream_start"] = before
    producer = Producer(kinesis, stream_name=stream_name)
    report = producer.send(records)
    hop = ctx.ledger.hop(HOP_PRODUCER)
    hop.add(received=report.received, written=report.written)
    for rejected in report.rejected:
        hop.reject(rejected.reason.split(":")[0])
    if report.rejected:
        errors = ctx.out_dir / "errors" / "kinesis-producer.ndjson"
        errors.parent.mkdir(parents=True, exist_ok=True)
        errors.write_text(
            "".join(
                json.dumps({"partition_key": r.partition_key, "reason": r.reason,
                            "data": r.data.decode(errors="replace")}) + "\n"
                for r in report.rejected
            )
        )  # fmt: skip
    ctx.ledger.link([HOP_DMS, HOP_SHOP] if len(ctx.simulation.ecommerce) else HOP_DMS, HOP_PRODUCER)
    held = read_stream(kinesis, stream_name, after=before)
    ctx.scratch["cdc_window"] = [r["data"] for r in held]  # what the stream holds, read once
    ctx.ledger.hop(HOP_STREAM).add(received=len(held), written=len(held))
    ctx.ledger.link(HOP_PRODUCER, HOP_STREAM)
    # Content check: the stream holds exactly what was written, each record once.
    sent = Counter(data for _, data in records) - Counter(r.data for r in report.rejected)
    got = Counter(r["data"] for r in held)
    missing, extra = sent - got, got - sent
    if missing or extra:
        ctx.ledger.discrepancy(
            f"{HOP_STREAM}: content differs from what was written "
            f"({sum(missing.values())} missing, {sum(extra.values())} unexpected)",
        )
    # Order per partition key, as consumers rely on.
    by_key: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    for record in sorted(held, key=lambda r: (r["shard_id"], int(r["sequence_number"]))):
        source, position = _order_key(record["data"])
        by_key[(record["partition_key"], str(source))].append((source, position))
    out_of_order = sum(sum(1 for a, b in pairwise(keys) if b < a) for keys in by_key.values())
    ctx.extra["stream"] = {
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


HOP_LOAD = "dms_load"
HOP_FIREHOSE = "firehose_staged"
HOP_STAGED = "s3_staged"
STAGED_KEY = re.compile(
    r"^cdc/table=(?P<table>[a-z_]+)/dt=\d{4}-\d{2}-\d{2}/"
    r"(?P<stream>[a-z0-9-]+)-1-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-[0-9a-f-]{36}$"
)


def simulated_arrival(data: bytes) -> dt.datetime | None:
    """When a record reached Firehose on the simulated clock: DMS's timestamp, or the shop's."""
    try:
        message = json.loads(data)
        stamp = message["metadata"]["timestamp"] if "metadata" in message else message["sold_at"]
        return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _expected_identities(ctx: RunContext) -> Counter:
    """Each record that must be staged once: (table, 'load', pk), (table, 'cdc', txn), shop."""
    expected: Counter = Counter()
    for table, changes in ctx.simulation.world.changes.items():
        pk = changes[PRIMARY_KEYS[table]].to_pylist()
        txn = changes["_txn"].to_pylist()
        ops = changes["_op"].to_pylist()
        expected.update(
            (table, "load", str(k)) if op == "load" else (table, "cdc", str(t))
            for k, t, op in zip(pk, txn, ops, strict=True)
        )
    expected.update(
        (ECOMMERCE_PARTITION, "shop", str(s))
        for s in ctx.simulation.ecommerce["sale_id"].to_pylist()
    )
    return expected


def _staged_identities(table: str, rows: pa.Table) -> list[tuple[str, str, str]]:
    if table == ECOMMERCE_PARTITION:
        return [(table, "shop", str(s)) for s in rows["sale_id"].to_pylist()]
    pk = pc.struct_field(rows["data"], PRIMARY_KEYS[table]).to_pylist()
    meta = rows["metadata"]
    ops = pc.struct_field(meta, "operation").to_pylist()
    txn = pc.struct_field(meta, "transaction-id").to_pylist()
    return [
        (table, "load", str(k)) if op == "load" else (table, "cdc", str(t))
        for k, t, op in zip(pk, txn, ops, strict=True)
    ]


def record_delivery(ctx: RunContext, hop_name: str, delivery: DeliveryStream) -> None:
    """A delivery stream's counts as a hop: records in, rows delivered, failures by code."""
    hop = ctx.ledger.hop(hop_name)
    hop.add(received=delivery.stats.received, written=delivery.stats.delivered)
    for reason, count in delivery.stats.failed.items():
        hop.reject(reason, count)


def stage_staging(ctx: RunContext) -> None:
    """Firehose stages the CDC data as Parquet: the history in bulk, then the streamed window."""
    assert ctx.world is not None and ctx.stack is not None
    sim = ctx.simulation
    world, names = ctx.world, ctx.stack
    delivery = DeliveryStream(
        world, names.delivery_stream_name("cdc-staged"), arrival_time=simulated_arrival
    )
    # 1. The history, as Firehose would have delivered DMS's full load (not record by record
    #    through the emulated stream, which long histories would make slow).
    load = sim.cdc_load
    ctx.ledger.hop(HOP_LOAD).add(
        received=sum(len(t.filter(pc.equal(t["_op"], "load"))) for t in sim.world.changes.values()),
        written=len(load),
    )
    loaded_at = sim.world.window_start
    for table in TABLES:
        messages = load.filter(pc.equal(load["table"], table))["message"].to_pylist()
        delivery.put_batch(
            [m.encode() for m in messages],
            loaded_at,
            sequence_prefix=f"load-{table}",
            partition=(("table", table),),
        )
    delivery.drain()
    # 2. The window, read from the CDC stream where this run's records start.
    delivery.start_from(ctx.scratch["cdc_stream_start"])
    delivery.poll()
    delivery.drain()
    stats = delivery.stats
    record_delivery(ctx, HOP_FIREHOSE, delivery)
    ctx.ledger.link([HOP_LOAD, HOP_STREAM], HOP_FIREHOSE)
    # 3. Read back what the staged bucket holds: layout, schema, and each record exactly once.
    s3 = world.client("s3")
    bucket = names.bucket("staged")
    catalog = world.client("glue").get_table(
        DatabaseName=ctx.stack.stack.glue.database, Name=STAGED_CDC_TABLE
    )["Table"]
    schema = arrow_schema(catalog["StorageDescriptor"]["Columns"])
    staged: Counter = Counter()
    rows_by_table: Counter = Counter()
    bad_keys: list[str] = []
    schema_ok = True
    for key in sorted(stats.keys):
        match = STAGED_KEY.match(key)
        if not match:
            bad_keys.append(key)
            continue
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        rows = pq.read_table(io.BytesIO(body))
        schema_ok &= rows.schema.remove_metadata().equals(schema)
        table = match.group("table")
        rows_by_table[table] += rows.num_rows
        staged.update(_staged_identities(table, rows))
    ctx.ledger.hop(HOP_STAGED).add(received=sum(staged.values()), written=sum(staged.values()))
    ctx.ledger.link(HOP_FIREHOSE, HOP_STAGED)
    expected = _expected_identities(ctx)
    missing, extra = expected - staged, staged - expected
    if missing or extra:
        ctx.ledger.discrepancy(
            f"{HOP_STAGED}: {sum(missing.values())} records never staged, "
            f"{sum(extra.values())} staged more than once or unexpected",
        )
    ctx.extra["staging"] = {
        "delivery_stream": delivery.name,
        "objects": stats.objects,
        "error_objects": stats.error_objects,
        "rows": dict(sorted(rows_by_table.items())),
        "exactly_once": not missing and not extra,
        "key_layout_ok": not bad_keys,
        "catalog_schema_ok": bool(schema_ok),
    }


HOP_ETL = "glue_forecast_input"


def _job_run(ctx: RunContext, job_name: str, arguments: dict[str, str]) -> dict[str, Any]:
    """Start the job through the Glue API and wait; on external endpoints run it directly."""
    world = ctx.world
    if world.kind != "embedded":  # moto's server cannot be extended from here; see jobs.py
        outcome = run_job(world, job_name, arguments)
        return {"JobRunState": outcome.state, "ErrorMessage": outcome.error}
    glue = world.client("glue")
    run_id = glue.start_job_run(JobName=job_name, Arguments=arguments)["JobRunId"]

    def finished() -> dict[str, Any] | None:
        run = glue.get_job_run(JobName=job_name, RunId=run_id)["JobRun"]
        return run if run["JobRunState"] not in ("STARTING", "RUNNING") else None

    return world.wait_for(finished, what=f"Glue job {job_name} run {run_id}", timeout=1800)


def stage_etl(ctx: RunContext) -> None:
    """The forecast-input Glue job, as the schedule would start it when the window closes."""
    assert ctx.world is not None and ctx.stack is not None
    sim, scenario = ctx.simulation, ctx.scenario
    end = (sim.world.window_end - dt.timedelta(days=1)).date()
    arguments = {
        "--frequency": scenario.forecast.frequency,
        "--horizon": str(scenario.forecast.horizon),
        "--start_date": scenario.calendar.start.isoformat(),
        "--end_date": end.isoformat(),
        "--quantiles": ",".join(f"{q:g}" for q in scenario.forecast.quantiles),
    }
    job_name = ctx.stack.job_name("forecast-input")
    run = _job_run(ctx, job_name, arguments)
    if run["JobRunState"] != "SUCCEEDED":
        raise RuntimeError(f"Glue job {job_name} {run['JobRunState']}: {run.get('ErrorMessage')}")
    s3 = ctx.world.client("s3")
    bucket = ctx.stack.bucket("forecast")
    manifest_key = f"input/{end.isoformat()}.json"
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    ctx.scratch["manifest_key"] = manifest_key
    rows: dict[str, int] = {}
    frames: dict[str, pa.Table] = {}
    for name, location in manifest["datasets"].items():
        if name == "automl_input":  # the same rows again, with a header; checked by the forecaster
            continue
        prefix = location.split(f"s3://{bucket}/", 1)[1]
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        parts = [o["Key"] for o in listed if o["Key"].rsplit("/", 1)[-1].startswith("part-")]
        body = b"".join(s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in sorted(parts))
        columns = manifest["schemas"][name]
        table = pacsv.read_csv(
            io.BytesIO(body),
            read_options=pacsv.ReadOptions(column_names=columns),
            convert_options=pacsv.ConvertOptions(strings_can_be_null=False),
        ) if body else pa.table({c: [] for c in columns})  # fmt: skip
        frames[name] = table
        rows[name] = table.num_rows
    # The forecast input's demand is what was sold: the ground truth's units for existing items.
    truth = sim.truth_daily
    existing = pa.array(sim.products["product_id"].to_pylist())
    in_range = pc.and_(
        pc.less_equal(truth["date"], pa.scalar(end, pa.date32())),
        pc.is_in(truth["product_id"], existing),
    )
    truth_sold = pc.sum(truth.filter(in_range)["sold"]).as_py() or 0
    target_total = pc.sum(frames["target_time_series"]["demand"]).as_py() or 0
    ctx.ledger.hop(HOP_ETL).add(
        received=rows["target_time_series"], written=rows["target_time_series"]
    )
    ctx.extra["etl"] = {
        "job": job_name,
        "state": run["JobRunState"],
        "version": manifest["version"],
        "rows": rows,
        "items": len(set(frames["item_metadata"]["item_id"].to_pylist())),
        "target_items": len(set(frames["target_time_series"]["item_id"].to_pylist())),
        "target_demand": float(target_total),
        "truth_sold": float(truth_sold),
        "demand_matches_truth": abs(float(target_total) - float(truth_sold)) < 1e-6,
    }
