"""Firehose from a Kinesis source: buffering in event time, Parquet with the catalog schema,
key layout, dynamic partitioning and the error output."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from deploy.stack import load_stack
from emulation import World
from emulation.firehose import DeliveryStream, InvalidArgumentException, Record, parse_jq
from emulation.glue import InvalidInputException, arrow_type
from emulation.kinesis import Producer
from harness.provision import provision

T0 = dt.datetime(2025, 3, 1, 10, 0, tzinfo=dt.UTC)


def message(table: str, pk: int, when: dt.datetime, op: str = "insert", **data) -> bytes:
    row = {"sale_id": pk, "product_id": f"P{pk:05d}", "quantity": 1, "unit_price": 9.99,
           "channel": "web", "sold_at": when.strftime("%Y-%m-%dT%H:%M:%SZ"), **data}  # fmt: skip
    meta = {"timestamp": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "record-type": "data",
            "operation": op, "partition-key-type": "primary-key", "schema-name": "retail",
            "table-name": table, "transaction-id": 1000 + pk}  # fmt: skip
    return json.dumps({"data": row, "metadata": meta}).encode()


def arrival(data: bytes) -> dt.datetime:
    stamp = json.loads(data)["metadata"]["timestamp"]
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


@pytest.fixture
def staged(aws: World):
    names = provision(aws, load_stack())
    delivery = DeliveryStream(aws, names.delivery_stream_name("cdc-staged"), arrival_time=arrival)
    return aws, names, delivery


def _objects(world: World, bucket: str, prefix: str) -> dict[str, bytes]:
    s3 = world.client("s3")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


def test_hive_types_map_to_arrow() -> None:
    assert arrow_type("struct<a:int,b-c:array<double>>") == pa.struct(
        [pa.field("a", pa.int32()), pa.field("b-c", pa.list_(pa.float64()))]
    )
    assert arrow_type("decimal(10,2)") == pa.decimal128(10, 2)
    assert arrow_type("varchar(20)") == pa.string()
    with pytest.raises(InvalidInputException, match="unknown Hive type"):
        arrow_type("mystery")


def test_jq_subset() -> None:
    assert parse_jq('{table: .metadata."table-name" // "other", op: .metadata.operation}') == {
        "table": (["metadata", "table-name"], "other"),
        "op": (["metadata", "operation"], None),
    }
    with pytest.raises(InvalidArgumentException, match="not emulated"):
        parse_jq("{table: .records[0].name}")


def test_stream_records_are_staged_as_parquet_with_the_catalog_schema(staged) -> None:
    world, names, delivery = staged
    kinesis = world.client("kinesis")
    records = [(str(i), message("sales", i, T0 + dt.timedelta(seconds=i))) for i in range(50)]
    shop = {"event_type": "order_line", "schema_version": 1, "event_id": "web-1", "sale_id": 7,
            "product_id": "P00007", "quantity": 2, "unit_price": 5.0, "channel": "web",
            "sold_at": "2025-03-01T10:00:30Z"}  # fmt: skip
    Producer(kinesis, stream_name=names.stream_name("cdc")).send(
        [*records, ("P00007", json.dumps(shop).encode())]
    )
    delivery._arrival_time = lambda data: T0  # one moment for all: one buffer per partition
    assert delivery.poll() == 51
    delivery.drain()
    objects = _objects(world, names.bucket("staged"), "cdc/")
    layout = re.compile(
        r"^cdc/table=(sales|ecommerce_events)/dt=2025-03-01/"
        r"dfp-cdc-staged-1-2025-03-01-10-00-00-[0-9a-f-]{36}$"
    )
    assert all(layout.match(key) for key in objects), list(objects)
    assert len(objects) == 2
    table = world.client("glue").get_table(DatabaseName="dfp", Name="staged_cdc")["Table"]
    from emulation.glue import arrow_schema

    schema = arrow_schema(table["StorageDescriptor"]["Columns"])
    sales_key = next(k for k in objects if "table=sales" in k)
    rows = pq.read_table(io.BytesIO(objects[sales_key]))
    assert rows.schema.remove_metadata().equals(schema)
    assert rows.num_rows == 50
    first = next(r for r in rows.to_pylist() if r["data"]["sale_id"] == 0)
    assert first["data"]["campaign_id"] is None
    assert first["metadata"]["transaction-id"] == 1000
    assert first["metadata"]["timestamp"] == T0
    shop_key = next(k for k in objects if "ecommerce_events" in k)
    shop_rows = pq.read_table(io.BytesIO(objects[shop_key])).to_pylist()
    assert shop_rows[0]["sale_id"] == 7 and shop_rows[0]["data"] is None
    assert delivery.stats.delivered == 51 and delivery.stats.received == 51


def test_buffers_flush_on_interval_in_event_time_and_on_size(staged) -> None:
    world, names, delivery = staged
    # Three records, 0 s, 200 s and 400 s after T0: the 300 s interval closes the first buffer
    # when the third arrives, so two objects, keyed by their first record's time.
    delivery.put(Record(message("sales", i, T0 + dt.timedelta(seconds=200 * i)),
                        T0 + dt.timedelta(seconds=200 * i), str(i)) for i in range(3))  # fmt: skip
    delivery.drain()
    keys = sorted(_objects(world, names.bucket("staged"), "cdc/"))
    stamps = [re.search(r"-1-(\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d)-", k).group(1) for k in keys]
    assert stamps == ["2025-03-01-10-00-00", "2025-03-01-10-06-40"]
    # Size: with a 64 MiB hint, 70 MiB of input makes two objects without any time passing.
    delivery.size_limit = 1024  # scale the hint down for the test; same rule
    big = [Record(message("sales", 100 + i, T0, note="x" * 300), T0, f"b{i}") for i in range(8)]
    delivery.put(big)
    delivery.drain()
    expected, filled = 0, 0
    for record in big:  # a buffer is delivered as soon as its input reaches the hint
        filled += len(record.data)
        if filled >= delivery.size_limit:
            expected, filled = expected + 1, 0
    expected += 1 if filled else 0
    assert expected >= 2
    assert delivery.stats.objects == 2 + expected


def test_bad_records_go_to_the_error_prefix_with_reasons(staged) -> None:
    world, names, delivery = staged
    good = message("sales", 1, T0)
    wrong_type = message("sales", 2, T0, quantity="three")
    not_json = b"{not json"
    delivery.put(Record(d, T0, str(i)) for i, d in enumerate([good, wrong_type, not_json]))
    delivery.drain()
    bucket = names.bucket("staged")
    errors = _objects(world, bucket, "errors/cdc/")
    by_type = {k.split("/")[2]: v for k, v in errors.items()}
    assert set(by_type) == {"partitioning-failed", "format-conversion-failed"}
    conversion = [json.loads(x) for x in by_type["format-conversion-failed"].splitlines()]
    assert len(conversion) == 1
    assert base64.b64decode(conversion[0]["rawData"]) == wrong_type
    assert conversion[0]["errorCode"].startswith("DataFormatConversion")
    assert conversion[0]["dataCatalogTable"]["tableName"] == "staged_cdc"
    partitioning = json.loads(by_type["partitioning-failed"])
    assert base64.b64decode(partitioning["rawData"]) == not_json
    staged_rows = _objects(world, bucket, "cdc/")
    assert sum(pq.read_table(io.BytesIO(b)).num_rows for b in staged_rows.values()) == 1
    assert delivery.stats.received == 3 and delivery.stats.delivered == 1
    assert sum(delivery.stats.failed.values()) == 2


def test_numbers_sent_as_strings_convert_as_openx_reads_them(staged) -> None:
    """A column changed to a character type upstream (DMS then sends ``"quantity": "3"``): the
    OpenX SerDe parses it into the catalog's int; a column the catalog lacks is dropped; text
    that is no number still fails the record, naming the field."""
    world, names, delivery = staged
    drifted = message("sales", 1, T0, quantity="3", unit_price="12.50", promo_code="PROMO42")
    fraction = message("sales", 2, T0, quantity="2.5")
    delivery.put(Record(d, T0, str(i)) for i, d in enumerate([drifted, fraction]))
    delivery.drain()
    bucket = names.bucket("staged")
    (body,) = _objects(world, bucket, "cdc/").values()
    (row,) = pq.read_table(io.BytesIO(body)).to_pylist()
    assert row["data"]["quantity"] == 3 and row["data"]["unit_price"] == 12.5
    assert "promo_code" not in row["data"]
    (errors,) = _objects(world, bucket, "errors/cdc/").values()
    failure = json.loads(errors)
    assert base64.b64decode(failure["rawData"]) == fraction
    assert "data.quantity: '2.5' is not a number" in failure["errorMessage"]


def test_same_input_same_keys_and_bytes(aws: World) -> None:
    def run() -> dict[str, bytes]:
        aws.reset()
        names = provision(aws, load_stack())
        delivery = DeliveryStream(
            aws, names.delivery_stream_name("cdc-staged"), arrival_time=arrival
        )
        delivery.put(Record(message("sales", i, T0), T0, str(i)) for i in range(20))
        delivery.drain()
        return _objects(aws, names.bucket("staged"), "cdc/")

    assert run() == run()


def _mixed_batch() -> list[bytes]:
    """Tables, the shop's events (the JQ default), a non-string partition value (kept as its
    text, as per record), oversize records (size hint) and records that fail."""
    shop = json.dumps({"event_type": "order_line", "sale_id": 7}).encode()
    data = [
        message("sales" if i % 3 else "products", i, T0, note="y" * (i % 50)) for i in range(60)
    ]
    data[10] = shop
    data[20] = b"{broken"
    data[30] = message("sales", 30, T0, quantity="three")
    return data


def test_a_bulk_batch_gives_the_objects_record_by_record_gives(aws: World) -> None:
    """put_batch is the fast path of bulk loads; it must not change a byte of what is written."""
    data = _mixed_batch()

    def deliver(bulk: bool) -> tuple[dict[str, bytes], dict[str, bytes], tuple]:
        aws.reset()
        names = provision(aws, load_stack())
        delivery = DeliveryStream(aws, names.delivery_stream_name("cdc-staged"))
        delivery.size_limit = 2048  # several size-triggered objects per table
        if bulk:
            delivery.put_batch(data, T0, sequence_prefix="load")
        else:
            delivery.put([Record(d, T0, f"load-{i:09d}") for i, d in enumerate(data)])
        delivery.drain()
        bucket = names.bucket("staged")
        stats = delivery.stats
        counts = (stats.received, stats.delivered, stats.objects, dict(stats.failed))
        return _objects(aws, bucket, "cdc/"), _objects(aws, bucket, "errors/"), counts

    staged, errors, counts = deliver(bulk=True)
    assert (staged, errors, counts) == deliver(bulk=False)
    assert counts[0] == 60 and counts[1] == 58 and counts[2] > 3
    assert any("table=ecommerce_events" in k for k in staged)


def test_partition_values_that_are_not_text_fall_back_record_by_record(staged) -> None:
    delivery = staged[2]
    odd = json.dumps({"data": {}, "metadata": {"table-name": 42}}).encode()
    assert delivery._partitions([message("sales", 1, T0), odd]) == [
        (("table", "sales"),),
        (("table", "42"),),
    ]
    nested = json.dumps({"metadata": {"table-name": {"x": 1}}}).encode()
    (reason,) = delivery._partitions([nested])
    assert reason.startswith("MetadataExtractionFailed: no value for partition key table")
