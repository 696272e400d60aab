"""DMS messages: every message validates against the Kinesis-target format, settings apply."""

from __future__ import annotations

import json
import re

import jsonschema
import pyarrow.compute as pc
import pytest

from emulation.dms import DmsSettings, dms_messages, record_bytes
from harness.simulation import simulate
from pipeline.contracts.cdc import PRIMARY_KEYS, TABLES

TIMESTAMP = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$"


def message_schema(settings: DmsSettings, cdc: bool) -> dict:
    meta_props = {
        "timestamp": {"type": "string", "pattern": TIMESTAMP},
        "record-type": {"const": "data"},
        "operation": {"enum": ["insert", "update", "delete"] if cdc else ["load"]},
        "partition-key-type": {"const": settings.partition_key_type},
        "schema-name": {"const": settings.schema_name},
        "table-name": {"enum": list(TABLES)},
    }
    required = list(meta_props)
    if cdc:
        meta_props["transaction-id"] = {"type": "integer", "minimum": 1}
        required.append("transaction-id")
        if settings.include_transaction_details:
            for key in (
                "transaction-record-id",
                "prev-transaction-id",
                "prev-transaction-record-id",
            ):
                meta_props[key] = {"type": "integer"}
            meta_props["commit-timestamp"] = {"type": "string", "pattern": TIMESTAMP}
            meta_props["stream-position"] = {"type": "string", "minLength": 1}
            required += list(meta_props)[len(required) :]
    if settings.include_partition_value and settings.partition_key_type != "schema-table":
        meta_props["partition-key-value"] = {"type": "string"}
        required.append("partition-key-value")
    return {
        "type": "object",
        "required": ["data", "metadata"],
        "additionalProperties": False,
        "properties": {
            "data": {"type": "object"},
            "metadata": {
                "type": "object",
                "required": required,
                "additionalProperties": False,
                "properties": meta_props,
            },
        },
    }


def check_data(table: str, data: dict, settings: DmsSettings) -> None:
    schema = TABLES[table]
    assert PRIMARY_KEYS[table] in data
    assert set(data) <= set(schema.names)
    if settings.include_null_and_empty:
        assert set(data) == set(schema.names)
    else:
        assert all(v not in (None, "") for v in data.values())
    for field in schema:
        if field.name not in data:
            assert field.nullable or not settings.include_null_and_empty
            continue
        value = data[field.name]
        if value is None:
            assert field.nullable
        elif str(field.type) == "date32[day]":
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)
        elif str(field.type).startswith("timestamp"):
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", value)
        elif str(field.type) in ("int32", "int64"):
            assert isinstance(value, int)
        elif str(field.type) == "double":
            assert isinstance(value, int | float)
        else:
            assert isinstance(value, str)


@pytest.fixture(scope="module")
def sim():
    """The smoke simulation (no AWS world: these tests check message bytes only)."""
    return simulate("smoke").world


@pytest.fixture(scope="module")
def stores_sim():
    """A world with locations: the ``stores`` table and sales and campaigns naming stores."""
    return simulate("stores").world


SETTINGS = [
    DmsSettings(),
    DmsSettings(include_transaction_details=True, include_partition_value=True),
    DmsSettings(partition_key_type="schema-table", include_null_and_empty=True),
    DmsSettings(partition_include_schema_table=True, include_partition_value=True,
                message_format="json-unformatted"),
]  # fmt: skip


#: Messages validated per table and operation: all of a group up to this many, else this many
#: spread evenly over it. One code path writes a group's messages, and the sales full load alone
#: is 38,000 messages (12 s of schema validation per setting on a busy machine).
PER_GROUP = 500


def _spread(rows: list[dict]) -> list[dict]:
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["table"], row["operation"]), []).append(row)
    return [row for group in groups.values()
            for row in group[:: max(1, len(group) // PER_GROUP)][:PER_GROUP]]  # fmt: skip


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: ",".join(
    k for k, v in s.model_dump().items() if v not in (False, "json", "primary-key", "retail")
) or "defaults")  # fmt: skip
def test_messages_validate_for_every_table_operation_and_setting(
    sim, stores_sim, settings: DmsSettings
) -> None:
    messages = dms_messages(sim.changes, settings, sim.start)
    # The stores table comes from a world with locations (smoke has none); its rows are loaded,
    # and created (a store opening after the window), never deleted.
    stores = dms_messages(stores_sim.changes, settings, stores_sim.start)
    stores = stores.filter(pc.equal(stores["table"], "stores"))
    validators = {cdc: jsonschema.Draft202012Validator(message_schema(settings, cdc))
                  for cdc in (False, True)}  # fmt: skip
    seen = set()
    for row in _spread(messages.to_pylist()) + stores.to_pylist():
        message = json.loads(row["message"])
        op = message["metadata"]["operation"]
        validators[op != "load"].validate(message)
        check_data(row["table"], message["data"], settings)
        assert row["operation"] == op and row["table"] == message["metadata"]["table-name"]
        pk = str(message["data"][PRIMARY_KEYS[row["table"]]])
        schema_table = f"{settings.schema_name}.{row['table']}"
        if settings.partition_key_type == "schema-table":
            assert row["partition_key"] == schema_table
        elif settings.partition_include_schema_table:
            assert row["partition_key"] == f"{schema_table}.{pk}"
        else:
            assert row["partition_key"] == pk
        if "partition-key-value" in message["metadata"]:
            assert message["metadata"]["partition-key-value"] == row["partition_key"]
        seen.add((row["table"], op))
    operations = ("load", "insert", "update", "delete")
    every = {(t, op) for t in TABLES if t != "stores" for op in operations}
    assert seen == every | {("stores", "load"), ("stores", "insert")}


def test_transaction_ids_increase_in_commit_order(sim) -> None:
    settings = DmsSettings(include_transaction_details=True)
    messages = dms_messages(sim.changes, settings, sim.start)
    cdc = messages.filter(pc.not_equal(messages["operation"], "load"))
    metas = [json.loads(m)["metadata"] for m in cdc["message"].to_pylist()]
    ids = [m["transaction-id"] for m in metas]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(m["prev-transaction-id"] < m["transaction-id"] for m in metas)
    commits = [m["commit-timestamp"] for m in metas]
    assert commits == sorted(commits)
    assert all(m["timestamp"] >= m["commit-timestamp"] for m in metas)  # read after commit


def test_null_columns_are_omitted_unless_asked_for(sim) -> None:
    lean = dms_messages(sim.changes, DmsSettings(), sim.start)
    full = dms_messages(sim.changes, DmsSettings(include_null_and_empty=True), sim.start)
    pick = pc.equal(lean["table"], "campaigns")
    lean_data = [json.loads(m)["data"] for m in lean.filter(pick)["message"].to_pylist()]
    full_data = [json.loads(m)["data"] for m in full.filter(pick)["message"].to_pylist()]
    assert all(("product_id" in d) != ("category" in d) for d in lean_data)
    assert all("product_id" in d and "category" in d for d in full_data)
    assert any(d["product_id"] is None for d in full_data)


def test_message_format_shapes_record_bytes(sim) -> None:
    message = dms_messages(sim.changes, DmsSettings(), sim.start)["message"][0].as_py()
    formatted = record_bytes(message, DmsSettings(message_format="json"))
    one_line = record_bytes(message, DmsSettings(message_format="json-unformatted"))
    assert b"\n\t" in formatted and b"\n" not in one_line
    assert json.loads(formatted) == json.loads(one_line) == json.loads(message)
