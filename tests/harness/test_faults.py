"""Fault injection on the CDC stream: the schema, the DMS faults, bad records, throttling."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

import pytest

from emulation.dms import DmsSettings
from emulation.kinesis import Producer, read_stream
from emulation.kinesis.faults import Rates, refused, throttle
from harness.faults import (
    BAD_RECORD_KINDS,
    OVERSIZED_BYTES,
    BadRecords,
    DmsFaults,
    FaultLog,
    Faults,
    NewColumn,
    SchemaDrift,
    StreamRecord,
    TypeChange,
    inject,
)
from harness.ledger import Ledger
from harness.scenario import ScenarioError, load_scenario, parse_scenario

WINDOW_END = dt.datetime(2025, 2, 6, tzinfo=dt.UTC)


def _dms(txn: int, sale_id: int, table: str = "sales", op: str = "insert") -> StreamRecord:
    stamp = (WINDOW_END - dt.timedelta(hours=30) + dt.timedelta(minutes=txn)).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ"
    )
    message = {
        "data": {"sale_id": sale_id, "product_id": "P1", "quantity": 2, "unit_price": 5.0,
                 "channel": "web", "sold_at": stamp[:19] + "Z"},
        "metadata": {"timestamp": stamp, "record-type": "data", "operation": op,
                     "partition-key-type": "primary-key", "schema-name": "retail",
                     "table-name": table, "transaction-id": txn, "commit-timestamp": stamp},
    }  # fmt: skip
    return StreamRecord(str(sale_id), json.dumps(message).encode(), "dms")


def _shop(sale_id: int) -> StreamRecord:
    event = {"event_type": "order_line", "schema_version": 1, "event_id": f"e{sale_id}",
             "sale_id": sale_id, "product_id": "P1", "quantity": 1, "unit_price": 5.0,
             "channel": "web", "sold_at": "2025-02-05T10:00:00Z"}  # fmt: skip
    return StreamRecord(str(sale_id), json.dumps(event).encode(), "shop")


def _window(n: int = 200) -> list[StreamRecord]:
    records = [_dms(1000 + i, 500 + i) for i in range(n)]
    records[10] = _dms(1010, 500, op="update")  # a second change of sale 500 (same key)
    return [*records[:50], _shop(9000), *records[50:]]


def _inject(faults: Faults, seed: int = 7, records=None) -> tuple[list[StreamRecord], FaultLog]:
    log = FaultLog(faults, seed)
    out = inject(records or _window(), faults, seed, formatted=False, log=log,
                 window_end=WINDOW_END)  # fmt: skip
    return out, log


# ------------------------------------------------------------------------------ the schema
SMOKE = (load_scenario("smoke").base_dir / "smoke.yaml").read_text()


@pytest.mark.parametrize(
    ("section", "key", "message"),
    [
        ("faults: {dms: {redelivered: -0.1}}", "faults.dms.redelivered", "greater than or equal"),
        ("faults: {dms: {late: 1.5}}", "faults.dms.late", "less than or equal to 1"),
        ("faults: {kinesis: {get_records_calls: 1.0}}", "faults.kinesis.get_records_calls",
         "less than 1"),
        ("faults: {kinesis: {put_record_entries: 0.1}}", "faults.kinesis.put_record_entries",
         "unknown key"),
        ("faults: {bad_records: {kinds: [not_json, not_json]}}", "faults.bad_records.kinds",
         "more than once"),
        ("faults: {bad_records: {kinds: [unknown_schema_version]}}", "faults.bad_records.kinds",
         "direct_events"),
        ("faults: {glue: {failed_runs: {forecast-imput: 1}}}",
         "faults.glue.failed_runs.forecast-imput", "no such Glue job"),
        ("faults: {glue: {failed_runs: {forecast-input: -1}}}",
         "faults.glue.failed_runs.forecast-input", "greater than or equal to 0"),
        ("faults: {glue: {failed_runs: {forecast-input: 4}}}",
         "faults.glue.failed_runs.forecast-input", "less than or equal to 3"),
        ("faults: {sagemaker: {failed_automl_jobs: -1}}", "faults.sagemaker.failed_automl_jobs",
         "greater than or equal to 0"),
        ("faults: {sagemaker: {failed_jobs: 1}}", "faults.sagemaker.failed_jobs", "unknown key"),
        ("faults: {flink: {crashes: 4}}", "faults.flink.crashes", "less than or equal to 3"),
        ("faults: {flink: {kills: 1}}", "faults.flink.kills", "unknown key"),
        ("faults: {flink: {task_failures: 3}}", "faults.flink.task_failures",
         "less than or equal to 2"),
        ("faults: {world: {restarts: 4}}", "faults.world.restarts", "less than or equal to 3"),
        ("faults: {world: {restarts: 1, outage_seconds: 0}}", "faults.world.outage_seconds",
         "greater than 0"),
        ("faults: {schema_drift: {table: coupons, add_column: {name: x}}}",
         "faults.schema_drift.table", "not a replicated table"),
        ("faults: {schema_drift: {}}", "faults.schema_drift", "give add_column, change_type"),
        ("faults: {schema_drift: {change_type: {column: qty}}}",
         "faults.schema_drift.change_type.column", "has no column 'qty'"),
        ("faults: {schema_drift: {change_type: {column: sale_id}}}",
         "faults.schema_drift.change_type.column", "primary key"),
        ("faults: {schema_drift: {change_type: {column: unit_price, type: INT64}}}",
         "faults.schema_drift.change_type.type", "widens an integer column"),
        ("faults: {schema_drift: {add_column: {name: channel}}}",
         "faults.schema_drift.add_column.name", "already has a column"),
        ("faults: {schema_drift: {at: 1, add_column: {name: x}}}", "faults.schema_drift.at",
         "less than 1"),
    ],
)  # fmt: skip
def test_a_fault_that_cannot_apply_is_a_scenario_error_naming_the_key(section, key, message):
    with pytest.raises(ScenarioError) as raised:
        parse_scenario(SMOKE + section + "\n", "drill.yaml")
    text = str(raised.value)
    assert f"drill.yaml: {key}" in text and message in text, text


def test_the_library_s_fault_scenarios_validate_and_inject_something() -> None:
    for name in (
        "bad-records",
        "late-and-duplicate",
        "throttled",
        "job-retries",
        "forecast-failure",
        "restarts",
        "schema-drift",
    ):
        assert load_scenario(name).faults.active, name


# ------------------------------------------------------------------------------ schema drift
def test_schema_drift_writes_dms_control_records_and_later_rows_in_the_new_shape() -> None:
    drift = SchemaDrift(table="sales", at=0.5, add_column=NewColumn(name="promo_code", filled=0.5),
                        change_type=TypeChange(column="quantity", type="STRING"))  # fmt: skip
    settings = DmsSettings(include_table_alter_operations=True, include_control_details=True,
                           include_partition_value=True)  # fmt: skip
    window = _window()
    log = FaultLog(Faults(schema_drift=drift), 7)
    out = inject(window, Faults(schema_drift=drift), 7, formatted=False, log=log,
                 window_end=WINDOW_END, settings=settings)  # fmt: skip
    messages = [json.loads(r.data) for r in out]
    controls = [i for i, m in enumerate(messages)
                if (m.get("metadata") or {}).get("record-type") == "control"]  # fmt: skip
    assert len(controls) == 2 and controls[1] == controls[0] + 1
    add, change = messages[controls[0]], messages[controls[1]]
    assert [add["metadata"]["operation"], change["metadata"]["operation"]] == [
        "add-column", "column-type-change"]  # fmt: skip
    for control in (add, change):
        meta = control["metadata"]
        assert meta["partition-key-type"] == "task-id" and meta["table-name"] == "sales"
        assert meta["partition-key-value"] == out[controls[0]].partition_key
        assert "data" not in control and "transaction-id" not in meta
    # Each carries the table's definition after its own statement.
    assert add["control"]["table-def"]["columns"]["promo_code"] == {
        "type": "STRING",
        "nullable": True,
    }
    assert add["control"]["table-def"]["columns"]["quantity"]["type"] == "INT32"
    assert change["control"]["table-def"]["columns"]["quantity"]["type"] == "STRING"
    assert change["control"]["table-def"]["primary-key"] == ["sale_id"]
    # Rows before the DDL are untouched; every sales row after it has the new shape.
    sales = [(i, m) for i, m in enumerate(messages) if (m.get("metadata") or {}).get(
        "table-name") == "sales" and m["metadata"]["record-type"] == "data"]  # fmt: skip
    before = [m for i, m in sales if i < controls[0]]
    after = [m for i, m in sales if i > controls[1]]
    assert len(before) == len(after) == 100
    assert all(isinstance(m["data"]["quantity"], int) and "promo_code" not in m["data"]
               for m in before)  # fmt: skip
    assert all(m["data"]["quantity"] == "2" for m in after)
    filled = sum("promo_code" in m["data"] for m in after)
    assert 0 < filled < len(after) and log.schema_drift["new_column_values"] == filled
    assert [r.data for r in out if r.source != "control"][:controls[0]] == [
        r.data for r in window][:controls[0]]  # fmt: skip
    assert log.control == Counter({("sales", "control", "add-column"): 1,
                                   ("sales", "control", "column-type-change"): 1})  # fmt: skip
    assert log.summary()["schema_drift"]["control_records"] == 2


def test_without_ddl_on_the_endpoint_schema_drift_changes_only_the_rows() -> None:
    """``IncludeTableAlterOperations`` off (DMS's default): no control records, rows drift."""
    drift = SchemaDrift(change_type=TypeChange(column="unit_price", type="STRING"))
    out, log = _inject(Faults(schema_drift=drift))
    assert not log.control and log.schema_drift["control_records"] == 0
    prices = [json.loads(r.data)["data"]["unit_price"] for r in out if r.source == "dms"]
    assert "5.0" in prices and 5.0 in prices and len(out) == len(_window())


def test_schema_drift_of_a_table_the_window_lacks_is_refused() -> None:
    drift = SchemaDrift(table="campaigns", change_type=TypeChange(column="discount"))
    with pytest.raises(ValueError, match="no change of table campaigns"):
        _inject(Faults(schema_drift=drift))


# ------------------------------------------------------------------------------ DMS faults
def test_same_seed_same_records_other_seed_other_records() -> None:
    faults = Faults(dms=DmsFaults(redelivered=0.1, out_of_order=0.1, late=0.1),
                    bad_records=BadRecords(rate=0.05))  # fmt: skip
    first, _ = _inject(faults, seed=1)
    again, _ = _inject(faults, seed=1)
    other, _ = _inject(faults, seed=2)
    assert [r.data for r in first] == [r.data for r in again]
    assert [r.data for r in first] != [r.data for r in other]


def test_redelivery_repeats_a_contiguous_run_of_changes_after_the_restart() -> None:
    records = _window()
    out, log = _inject(Faults(dms=DmsFaults(redelivered=0.1)), records=records)
    dms = [r.data for r in records if r.source == "dms"]
    count = round(0.1 * len(dms))
    assert log.redelivered_records == count == len(out) - len(records)
    restart = log.restart_after
    replay = dms[restart - count : restart]
    after = [r.data for r in out]
    at = after.index(dms[restart - 1]) + 1
    assert after[at : at + count] == replay  # the copies come right after the restart point
    assert Counter(after) - Counter(r.data for r in records) == Counter(replay)


def test_out_of_order_keeps_every_record_and_the_order_of_each_key() -> None:
    records = _window()
    out, log = _inject(Faults(dms=DmsFaults(out_of_order=0.2)), records=records)
    assert log.out_of_order > 0
    assert Counter(r.data for r in out) == Counter(r.data for r in records)
    assert [r.data for r in out] != [r.data for r in records]

    def per_key(rows):
        keys: dict[str, list[bytes]] = {}
        for r in rows:
            keys.setdefault(r.partition_key, []).append(r.data)
        return keys

    assert per_key(out) == per_key(records)


def test_late_changes_come_after_the_window_stamped_when_dms_read_them() -> None:
    records = _window()
    out, log = _inject(Faults(dms=DmsFaults(late=0.1)), records=records)
    late = [r for r in out if r.data in log.late]
    assert len(late) == len(log.late) > 0
    assert out[-len(late) :] == late  # after every other record
    for record in late:
        message, original = json.loads(record.data), json.loads(log.late[record.data])
        assert message["metadata"]["timestamp"] > WINDOW_END.strftime("%Y-%m-%dT%H:%M:%S")
        assert message["metadata"]["commit-timestamp"] == original["metadata"]["commit-timestamp"]
        assert message["data"] == original["data"]
    # Only a key's last change can be late: sale 500 changed twice, its insert stays on time.
    first_500 = next(r for r in records if r.partition_key == "500")
    assert first_500 in out[: len(out) - len(late)]


# ------------------------------------------------------------------------------ bad records
def test_every_kind_of_bad_record_is_built_from_a_real_message() -> None:
    spec = BadRecords(rate=0.0, kinds=list(BAD_RECORD_KINDS))
    out, log = _inject(Faults(bad_records=spec))
    assert sorted(b.kind for b in log.bad) == sorted(BAD_RECORD_KINDS)  # at least one each
    assert len(out) == len(_window()) + len(BAD_RECORD_KINDS)
    by_kind = {b.kind: b for b in log.bad}
    with pytest.raises(ValueError):
        json.loads(by_kind["not_json"].data)
    assert len(by_kind["oversized"].data) > OVERSIZED_BYTES
    unknown = json.loads(by_kind["unknown_table"].data)
    assert unknown["metadata"]["table-name"] == "coupons"
    assert "quantity" not in json.loads(by_kind["missing_field"].data)["data"]
    assert json.loads(by_kind["wrong_type"].data)["data"]["quantity"] == "three"
    assert json.loads(by_kind["negative_quantity"].data)["data"]["quantity"] < 0
    assert json.loads(by_kind["unknown_schema_version"].data)["schema_version"] == 99
    # New ids, so each can be found again; the partition key follows the new primary key.
    real_ids = {json.loads(r.data).get("data", {}).get("sale_id") for r in _window()}
    for bad in log.bad:
        assert bad.sale_id not in real_ids
    missing = by_kind["missing_field"]
    assert missing.partition_key == str(missing.sale_id)


def test_a_bad_record_is_found_again_by_its_bytes_or_by_its_change() -> None:
    _, log = _inject(Faults(bad_records=BadRecords(kinds=["negative_quantity", "not_json"])))
    negative = next(b for b in log.bad if b.kind == "negative_quantity")
    cut = next(b for b in log.bad if b.kind == "not_json")
    assert log.caught("glue_cdc_apply", "not positive", table="sales",
                      transaction_id=negative.transaction_id)  # fmt: skip
    assert log.caught("firehose_staged", "MetadataExtractionFailed", data=cut.data)
    assert not log.caught("firehose_staged", "x", data=b"a real record")
    summary = log.summary()["bad_records"]
    assert summary["missed"] == summary["injected"] - 2


def test_the_ledger_accounts_for_copies_delivered_and_removed() -> None:
    ledger = Ledger()
    ledger.hop("dms").add(received=10, written=12, redelivered=2)
    ledger.hop("glue").add(received=12, written=10, duplicates_removed=2)
    ledger.link("dms", "glue")
    assert ledger.reconcile()["ok"]
    ledger.hop("glue").add(received=0, written=1)  # one copy let through
    result = ledger.reconcile()
    assert not result["ok"] and result["duplicated"] == 1


# ------------------------------------------------------------------------------ throttling
def test_throttled_kinesis_is_retried_by_the_producer_and_every_reader(aws) -> None:
    if aws.kind != "embedded":
        pytest.skip("throttling is injected inside the embedded moto only (a moto patch); "
                    "this session's own run of this test covers it")  # fmt: skip
    kinesis = aws.client("kinesis")
    kinesis.create_stream(StreamName="drill", ShardCount=2)
    throttle(aws.account_id, aws.region, "drill",
             Rates(put_records_entries=0.3, get_records_calls=0.3, seed=5))  # fmt: skip
    records = [(str(i), f"record {i}".encode()) for i in range(400)]
    report = Producer(kinesis, stream_name="drill", base_delay=0.001, max_delay=0.01).send(records)
    assert report.written == 400 and not report.rejected and report.retried_records > 0
    held = read_stream(kinesis, "drill")
    assert Counter(r["data"] for r in held) == Counter(d for _, d in records)
    counts = refused(aws.account_id, aws.region, "drill")
    assert counts["put_records_entries"] == report.retried_records
    assert counts["get_records_calls"] > 0
    # A raw call sees AWS's error code when every retry is refused as well.
    throttle(aws.account_id, aws.region, "drill", Rates(get_records_calls=0.99, seed=1))
    shard = kinesis.list_shards(StreamName="drill")["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(
        StreamName="drill", ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    with pytest.raises(aws.client("kinesis", retries=0).exceptions.ClientError) as raised:
        aws.client("kinesis", retries=0).get_records(ShardIterator=iterator)
    assert raised.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    throttle(aws.account_id, aws.region, "drill", Rates())  # off again
    assert kinesis.get_records(ShardIterator=iterator)["Records"]


def test_a_task_failure_restored_from_a_later_periodic_checkpoint_still_finishes_the_window(
    dfp_run, aws, monkeypatch
) -> None:
    """Flink keeps taking its periodic checkpoints while a drill runs: one can complete between
    the drill's checkpoint and the failure, and Flink restores that one. Checkpointing every
    half second makes that certain. The job then reads again only what came after it, maybe
    nothing, and a restored job's watermark starts again from what it reads: without the
    heartbeat DMS writes after the recovery, it waited for event time that never came."""
    if aws.kind != "embedded":
        pytest.skip("the drill fails reads inside the embedded moto only (a moto patch); "
                    "this session's own run of this test covers it")  # fmt: skip
    import harness.stages.anomaly as stage
    from emulation.kinesisanalyticsv2.application import Checkpoints

    monkeypatch.setattr(stage, "application_checkpoints",
                        lambda app: Checkpoints(interval_ms=500, min_pause_ms=0))  # fmt: skip
    small = {"products": 12, "categories": 2, "brands": 3}
    result = dfp_run("restarts", until="anomaly", faults={"flink": {"task_failures": 1}},
                     expectations=[], catalog=small)  # fmt: skip
    assert result.summary["stages"]["anomaly"]["status"] == "succeeded"
    (drill,) = result.summary["faults"]["flink"]["drills"]
    assert drill["kind"] == "task_failure" and drill["restarts"] == 1
    assert drill["restored_checkpoint"] > drill["checkpoint"]  # a periodic one, not the drill's
    assert "records_read_again" not in drill  # not the part: what came after that checkpoint
    anomaly = result.summary["anomaly"]
    assert anomaly["matches_reference"] is True
    assert anomaly["heartbeats"] == 3  # two after the window, one after the recovery
    assert result.summary["faults"]["flink"]["restarted_in_place"] == 1


def test_the_plugin_runs_a_scenario_with_faults_and_hands_over_the_ground_truth(dfp_run) -> None:
    result = dfp_run("smoke", until="staging", faults={"dms": {"redelivered": 0.05}})
    faults = result.summary["faults"]
    assert faults["dms"]["redelivered"] > 0
    assert result.summary["staging"]["exactly_once"]
    assert result.summary["staging"]["copies"] == faults["dms"]["redelivered"]
    assert result.summary["reconciliation"]["ok"]
    assert result.truth_daily().num_rows > 0 and result.truth_anomalies().num_rows > 0
    assert result.outliers() == []  # the run stopped before the anomaly job
    with pytest.raises(ScenarioError, match=r"faults\.dms\.late"):
        dfp_run("smoke", faults={"dms": {"late": 2}})


def test_the_report_shows_what_each_fault_cost_and_what_was_missed() -> None:
    from harness.report import render_report

    log = FaultLog(Faults(bad_records=BadRecords(kinds=["oversized", "not_json"])), 1)
    _, log = _inject(log.faults)
    oversized = next(b for b in log.bad if b.kind == "oversized")
    log.caught("kinesis_producer", "RecordTooLarge: 1 MiB", data=oversized.data)
    log.redelivered_records = 7
    summary = {"scenario": "drill", "status": "failed", "faults": log.summary(),
               "counts": {"glue_cdc_apply": {"in": 9, "out": 2, "rejected": 0,
                                             "duplicates_removed": 7}}}  # fmt: skip
    page = render_report(summary)
    faults = page[page.index("id='faults'") : page.index("Records per hop")]
    assert "oversized" in faults and "not_json" in faults
    assert "caught by kinesis_producer" in faults
    assert "failed" in faults  # the cut-off record was caught by nobody
    assert "DMS changes delivered again" in faults and ">7<" in faults
    assert "duplicates removed" in page  # the hop table grows the columns that happened


def test_the_report_shows_schema_drift_and_world_restarts_with_their_cost() -> None:
    from harness.report import render_report

    drift = SchemaDrift(add_column=NewColumn(name="promo_code"),
                        change_type=TypeChange(column="quantity"))  # fmt: skip
    settings = DmsSettings(include_table_alter_operations=True)
    log = FaultLog(Faults(schema_drift=drift), 7)
    inject(_window(), log.faults, 7, formatted=False, log=log, window_end=WINDOW_END,
           settings=settings)  # fmt: skip
    log.schema_drift["staging"] = {"new_column_values_dropped": 31,
                                   "changed_column_staged_as": "int32"}  # fmt: skip
    log.world = {"restarts": 1, "outage_seconds": 2.0, "producer_unreachable_calls": 3,
                 "producer_seconds": 4.5}  # fmt: skip
    log.flink = {"crashes": 0, "task_failures": 1, "restarted_in_place": 1,
                 "drills": [{"kind": "task_failure", "records_read_again": 61}],
                 "duplicates_removed": {"outliers": 4, "rejected": 0}}  # fmt: skip
    summary = {"scenario": "drill", "status": "succeeded", "faults": log.summary(),
               "etl": {"changes": {"control_records": 2}}, "anomaly": {"rejected": 0},
               "stream": {"records": 201, "ordered_per_partition_key": True}}  # fmt: skip
    page = render_report(summary)
    faults = page[page.index("id='faults'") : page.index("Records per hop")]
    assert "ALTER TABLE sales ADD COLUMN promo_code STRING" in faults
    assert "2 control records (Glue job set aside 2)" in faults
    assert "dropped by the catalog&#x27;s schema: 31" in faults or "schema: 31" in faults
    assert "world endpoint restarted mid-window (down 2.0 s each)" in faults
    assert "found no endpoint: 3" in faults
    assert "restarted in place from its latest checkpoint" in faults
    assert "61 records read again" in faults and "killed mid-stream" not in faults
    assert "periodic checkpoint" not in faults  # it restored the drill's own
    # Flink restored a periodic checkpoint completed after the drill's: the report says so.
    log.flink["drills"] = [{"kind": "task_failure", "checkpoint": 2, "restored_checkpoint": 5}]
    page = render_report({**summary, "faults": log.summary()})
    faults = page[page.index("id='faults'") : page.index("Records per hop")]
    assert "0 records read again" in faults
    assert "restored periodic checkpoint 5 (taken after the drill&#x27;s 2)" in faults
    assert log.summary()["injected"] == 2 + 1 + 1
