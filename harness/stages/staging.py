"""Stage ``staging``: Firehose stages CDC data as Parquet; the bucket is read back and checked."""

from __future__ import annotations

import base64
import io
import json
import re
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from emulation.firehose import DeliveryStream
from emulation.glue import arrow_schema
from harness.run import RunContext, StageSpec, hops
from harness.run.aws import record_delivery, simulated_arrival
from pipeline.contracts.cdc import PRIMARY_KEYS, TABLES
from pipeline.contracts.staged import ECOMMERCE_PARTITION, STAGED_CDC_TABLE

STAGED_KEY = re.compile(
    r"^cdc/table=(?P<table>[a-z_]+)/dt=\d{4}-\d{2}-\d{2}/"
    r"(?P<stream>[a-z0-9-]+)-1-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-[0-9a-f-]{36}$"
)


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


def _with_faults(ctx: RunContext, expected: Counter) -> Counter:
    """What must be staged once faults are injected: DMS's redelivered copies too (Firehose
    stages what the stream holds), DMS's DDL control records, and every bad record that neither
    the producer nor Firehose refused (the Glue job and the anomaly job deal with those)."""
    if ctx.faults is None:
        return expected
    expected = expected + ctx.faults.redelivered + ctx.faults.control
    expected.update(
        bad.identity for bad in ctx.faults.bad
        if not any(hop in (hops.KINESIS_PRODUCER, hops.FIREHOSE_STAGED) for hop, _ in bad.caught)
    )  # fmt: skip
    return expected


def _trace_errors(ctx: RunContext, bucket: str, keys: list[str]) -> None:
    """Find the injected bad records in Firehose's error objects (by their bytes)."""
    if ctx.faults is None:
        return
    s3 = ctx.world.client("s3")
    for key in keys:
        for line in s3.get_object(Bucket=bucket, Key=key)["Body"].read().splitlines():
            entry = json.loads(line)
            ctx.faults.caught(hops.FIREHOSE_STAGED,
                              f"{entry['errorCode']}: {entry['errorMessage']}",
                              data=base64.b64decode(entry["rawData"]))  # fmt: skip


def _staged_identities(table: str, rows: pa.Table) -> list[tuple[str, str, str]]:
    if table == ECOMMERCE_PARTITION:
        return [(table, "shop", str(s)) for s in rows["sale_id"].to_pylist()]
    meta = rows["metadata"]
    if table not in PRIMARY_KEYS:  # a table nobody replicates: named by its transaction
        return [(table, "cdc", str(t))
                for t in pc.struct_field(meta, "transaction-id").to_pylist()]  # fmt: skip
    pk = pc.struct_field(rows["data"], PRIMARY_KEYS[table]).to_pylist()
    ops = pc.struct_field(meta, "operation").to_pylist()
    txn = pc.struct_field(meta, "transaction-id").to_pylist()
    kinds = pc.struct_field(meta, "record-type").to_pylist()

    def identity(key: object, txn_id: object, op: object, kind: object) -> tuple[str, str, str]:
        if kind == "control":  # DDL: named by its operation
            return (table, "control", str(op))
        return (table, "load", str(key)) if op == "load" else (table, "cdc", str(txn_id))

    return [identity(*row) for row in zip(pk, txn, ops, kinds, strict=True)]


def _drift_at_staging(ctx: RunContext, staged: pa.Schema) -> None:
    """What Firehose made of the drifted rows: the staged schema is the catalog's, so a column
    the catalog lacks is dropped (its values counted as lost to the lake), and a changed column
    is read into the catalog's type."""
    spec = ctx.scenario.faults.schema_drift
    assert spec is not None and ctx.faults is not None
    data = staged.field("data").type
    names = {f.name for f in data}
    report: dict[str, object] = {}
    if spec.add_column is not None:
        kept = spec.add_column.name in names
        report["new_column_in_catalog"] = kept
        report["new_column_values_dropped"] = (
            0 if kept else ctx.faults.schema_drift["new_column_values"]
        )
    if spec.change_type is not None and spec.change_type.column in names:
        report["changed_column_staged_as"] = str(data.field(spec.change_type.column).type)
    ctx.faults.schema_drift["staging"] = report


def run(ctx: RunContext) -> None:
    """Firehose stages the CDC data as Parquet: the history in bulk, then the streamed window."""
    sim = ctx.simulation
    world, names = ctx.world, ctx.stack
    delivery = DeliveryStream(
        world, names.delivery_stream_name("cdc-staged"), arrival_time=simulated_arrival
    )
    # 1. The history, as Firehose would have delivered DMS's full load (not record by record
    #    through the emulated stream, which long histories would make slow).
    load = sim.cdc_load
    ctx.ledger.hop(hops.DMS_LOAD).add(
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
    delivery.start_from(ctx.cdc_stream_start)
    delivery.poll()
    delivery.drain()
    stats = delivery.stats
    record_delivery(ctx.ledger, hops.FIREHOSE_STAGED, delivery)
    _trace_errors(ctx, names.bucket("staged"), stats.error_keys)
    ctx.ledger.link([hops.DMS_LOAD, hops.KINESIS_CDC], hops.FIREHOSE_STAGED)
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
    ctx.ledger.hop(hops.S3_STAGED).add(received=sum(staged.values()), written=sum(staged.values()))
    ctx.ledger.link(hops.FIREHOSE_STAGED, hops.S3_STAGED)
    expected = _with_faults(ctx, _expected_identities(ctx))
    missing, extra = expected - staged, staged - expected
    if missing or extra:
        ctx.ledger.discrepancy(
            f"{hops.S3_STAGED}: {sum(missing.values())} records never staged, "
            f"{sum(extra.values())} staged more than once or unexpected",
        )
    if ctx.faults is not None and ctx.faults.schema_drift:
        _drift_at_staging(ctx, schema)
    ctx.summary["staging"] = {
        "delivery_stream": delivery.name,
        "objects": stats.objects,
        "error_objects": stats.error_objects,
        "rows": dict(sorted(rows_by_table.items())),
        # Each record staged as many times as the stream delivered it: once, or twice for a
        # change DMS delivered again (faults); the Glue job removes such copies.
        "exactly_once": not missing and not extra,
        "copies": sum(n - 1 for n in staged.values() if n > 1),
        "key_layout_ok": not bad_keys,
        "catalog_schema_ok": bool(schema_ok),
    }


STAGE = StageSpec("staging", run, needs=("simulation", "cdc_stream_start"))
