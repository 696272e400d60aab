"""A running delivery stream: intake from the source stream, partitioning, buffering in event
time, conversion, delivery to S3 and the error output. See the package docstring."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import logging
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import accumulate
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import pyarrow.parquet as pq

from emulation.firehose.config import read_config
from emulation.firehose.convert import all_objects, convert, convert_lines, joined_lines, one_line
from emulation.firehose.errors import InvalidArgumentException
from emulation.firehose.jq import extract
from emulation.firehose.keys import key_prefix, object_key, partition_value_problem
from emulation.kinesis import read_stream

if TYPE_CHECKING:
    from emulation.world import World

logger = logging.getLogger(__name__)


@dataclass
class Record:
    """One record entering the delivery stream."""

    data: bytes
    arrival: dt.datetime
    sequence_number: str = ""


class _Numbers:
    """Sequence numbers ``<prefix>-<index:09d>`` of a bulk batch, formatted only when read (an
    object key's seed, an error record): a bulk load of millions never formats the rest."""

    def __init__(self, prefix: str, start: int, stop: int) -> None:
        self.prefix, self.start, self.stop = prefix, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, index: int) -> str:
        return f"{self.prefix}-{self.start + index:09d}"

    def span(self, start: int, stop: int) -> _Numbers:
        return _Numbers(self.prefix, self.start + start, self.start + stop)


class _SequenceNumbers:
    """A buffer's sequence numbers: runs of given strings and lazy bulk spans, indexable."""

    def __init__(self) -> None:
        self._runs: list[list[str] | _Numbers] = []
        self._starts: list[int] = []
        self._length = 0

    def extend(self, numbers: list[str] | _Numbers) -> None:
        if len(numbers):
            self._runs.append(numbers)
            self._starts.append(self._length)
            self._length += len(numbers)

    def append(self, number: str) -> None:
        if self._runs and isinstance(self._runs[-1], list):
            self._runs[-1].append(number)
        else:
            self._runs.append([number])
            self._starts.append(self._length)
        self._length += 1

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> str:
        run = bisect_right(self._starts, index) - 1
        return self._runs[run][index - self._starts[run]]


@dataclass
class _Buffer:
    """One partition's pending input, as parallel lists (a bulk delivery appends slices)."""

    data: list[bytes] = field(default_factory=list)
    arrivals: list[dt.datetime] = field(default_factory=list)
    sequence_numbers: _SequenceNumbers = field(default_factory=_SequenceNumbers)
    size: int = 0

    @property
    def first_arrival(self) -> dt.datetime:
        return self.arrivals[0]

    def record(self, index: int) -> Record:
        return Record(self.data[index], self.arrivals[index], self.sequence_numbers[index])


@dataclass
class DeliveryStats:
    received: int = 0
    delivered: int = 0
    objects: int = 0
    error_objects: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    keys: list[str] = field(default_factory=list)
    error_keys: list[str] = field(default_factory=list)


class DeliveryStream:
    """A running Kinesis-source delivery stream, configured from the endpoint."""

    def __init__(
        self,
        world: World,
        name: str,
        *,
        arrival_time: Callable[[bytes], dt.datetime | None] | None = None,
    ) -> None:
        self._world = world
        self.name = name
        self._arrival_time = arrival_time
        config = read_config(world, name)
        self.config = config
        self.source_stream = config.source_stream
        self.bucket = config.bucket
        self.prefix = config.prefix
        self.error_prefix = config.error_prefix
        self.size_limit = config.size_limit
        self.interval = config.interval
        self.extension = config.extension
        self.partition_query = config.partition_query
        self.dynamic = config.dynamic
        self.schema = config.schema
        self.compression = config.compression
        self.catalog = config.catalog
        self._buffers: dict[tuple[tuple[str, str], ...], _Buffer] = {}
        self._next_due: dt.datetime | None = None  # no buffer is due before this arrival time
        self._positions: dict[str, str | None] = {}
        self._last_arrival: dt.datetime | None = None
        self.stats = DeliveryStats()

    # -------------------------------------------------------------------------- intake
    def poll(self) -> int:
        """Take what the source stream received since the last poll; returns the count."""
        if self.source_stream is None:
            raise InvalidArgumentException(f"{self.name} has no Kinesis stream source")
        kinesis = self._world.client("kinesis")
        records = read_stream(kinesis, self.source_stream, after=self._positions)
        for r in records:
            self._positions[r["shard_id"]] = r["sequence_number"]
        self.put(Record(r["data"], self._arrival(r["data"]), r["sequence_number"]) for r in records)
        return len(records)

    def start_from(self, positions: dict[str, str | None]) -> None:
        """Read the source from these shard positions on (see ``kinesis.stream_positions``)."""
        self._positions = dict(positions)

    def _arrival(self, data: bytes) -> dt.datetime:
        """The record's arrival on the caller's clock; a record that does not say (one that is
        not even JSON) arrived with the record before it, so the same stream keeps the same
        object keys."""
        if not self._arrival_time:
            return dt.datetime.now(dt.UTC)
        when = self._arrival_time(data) or self._last_arrival or dt.datetime.now(dt.UTC)
        self._last_arrival = when
        return when

    def put(
        self, records: Iterable[Record], partition: tuple[tuple[str, str], ...] | None = None
    ) -> None:
        """Buffer records in arrival order, delivering buffers as their hints are reached.

        ``partition``: the partition keys when the caller already knows them (bulk delivery of
        one table), sparing the per-record query.
        """
        batch = records if isinstance(records, list) else list(records)
        if partition is not None:
            partitions: list[Any] = [partition] * len(batch)
        else:
            partitions = self._partitions([r.data for r in batch])
        for record, keys in zip(batch, partitions, strict=True):
            self.stats.received += 1
            self._deliver_due(record.arrival)
            if isinstance(keys, str):
                self._errors("partitioning-failed", [(record, f"DynamicPartitioning.{keys}")])
                continue
            buffer = self._buffers.get(keys)
            if buffer is not None and buffer.size + len(record.data) < self.size_limit:
                buffer.data.append(record.data)  # the common case, without _append's slicing
                buffer.arrivals.append(record.arrival)
                buffer.sequence_numbers.append(record.sequence_number)
                buffer.size += len(record.data)
            else:
                self._append(keys, [record.data], record.arrival, [record.sequence_number])

    def put_batch(
        self,
        data: list[bytes],
        arrival: dt.datetime,
        *,
        sequence_prefix: str,
        partition: tuple[tuple[str, str], ...] | None = None,
    ) -> None:
        """Records that arrived together (a bulk delivery such as DMS's full load): the same
        buffering, partitioning, conversion and keys as :meth:`put` with one arrival time, without
        per-record Python work. Sequence numbers are ``<sequence_prefix>-<index:09d>``."""
        if not data:
            return
        self.stats.received += len(data)
        self._deliver_due(arrival)
        numbers = _Numbers(sequence_prefix, 0, len(data))
        if partition is not None:
            self._append(partition, data, arrival, numbers)
            return
        groups: dict[tuple[tuple[str, str], ...], list[int]] = {}
        for index, keys in enumerate(self._partitions(data)):
            if isinstance(keys, str):
                record = Record(data[index], arrival, numbers[index])
                self._errors("partitioning-failed", [(record, f"DynamicPartitioning.{keys}")])
            else:
                groups.setdefault(keys, []).append(index)
        for keys, indices in groups.items():
            chosen = [numbers[i] for i in indices]
            self._append(keys, [data[i] for i in indices], arrival, chosen)

    def _append(
        self,
        partition: tuple[tuple[str, str], ...],
        data: list[bytes],
        arrival: dt.datetime,
        numbers: list[str] | _Numbers,
    ) -> None:
        """Add records of one arrival time to a partition's buffer, delivering each time the
        buffer reaches the size hint (so a bulk append yields the objects one-by-one would)."""
        start = 0
        while start < len(data):
            buffer = self._buffers.get(partition)
            if buffer is None:
                buffer = self._buffers[partition] = _Buffer()
                due = arrival + self.interval
                if self._next_due is None or due < self._next_due:
                    self._next_due = due
            # the records up to and including the one that reaches the limit
            totals = list(accumulate(map(len, data[start:]), initial=buffer.size))
            reached = bisect_left(totals, self.size_limit, lo=1)
            end = start + min(reached, len(totals) - 1)
            size = totals[end - start]
            buffer.data.extend(data[start:end])
            buffer.arrivals.extend([arrival] * (end - start))
            buffer.sequence_numbers.extend(
                numbers.span(start, end) if isinstance(numbers, _Numbers) else numbers[start:end]
            )
            buffer.size = size
            if size >= self.size_limit:
                self._flush(partition)
            start = end

    def _partitions(self, data: list[bytes]) -> list[tuple[tuple[str, str], ...] | str]:
        """Each record's partition keys, or the reason it has none (``MetadataExtraction…``).

        The query runs over the whole batch in Arrow when every record parses with string values;
        otherwise record by record, so each failure gets its own reason.
        """
        if not self.dynamic:
            return [()] * len(data)
        fast = self._partitions_arrow(data)
        return fast if fast is not None else [self._partition_one(d) for d in data]

    def _partitions_arrow(self, data: list[bytes]) -> list[tuple[tuple[str, str], ...]] | None:
        def struct_for(paths: list[list[str]]) -> pa.DataType:
            fields: dict[str, list[list[str]]] = {}
            for path in paths:
                fields.setdefault(path[0], []).append(path[1:])
            return pa.struct([
                pa.field(name, pa.string() if rest == [[]] else struct_for(rest))
                for name, rest in fields.items()
            ])  # fmt: skip

        paths = sorted({tuple(path) for path, _ in self.partition_query.values()})
        if any(a != b and b[: len(a)] == a for a in paths for b in paths):
            return None  # one key's value holds another's: leave it to the exact path
        schema = pa.schema(list(struct_for([list(p) for p in paths])))
        options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
        joined = joined_lines(data)
        if not all_objects(joined):
            return None  # per record: each gets its reason
        try:
            table = pj.read_json(io.BytesIO(joined), parse_options=options)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return None
        if table.num_rows != len(data):
            return None
        columns = []
        for name, (path, default) in self.partition_query.items():
            array: Any = table.column(path[0]).combine_chunks()
            for step in path[1:]:
                array = pc.struct_field(array, step)
            if default is not None:
                array = pc.fill_null(array, default)
            if array.null_count:
                return None  # some record has no value: per record, with its reason
            values = array.to_pylist()
            if any(partition_value_problem(v) for v in set(values)):
                return None  # per record, with its reason
            columns.append((name, values))
        names = [name for name, _ in columns]
        return [
            tuple(zip(names, values, strict=True))
            for values in zip(*(v for _, v in columns), strict=True)
        ]

    def _partition_one(self, data: bytes) -> tuple[tuple[str, str], ...] | str:
        try:
            document = json.loads(data)
        except ValueError:
            return "MetadataExtractionFailed: record is not valid JSON"
        keys = []
        for name, (path, default) in self.partition_query.items():
            value = extract(document, path)
            if value is None:
                value = default
            if value is None or isinstance(value, dict | list):
                return f"MetadataExtractionFailed: no value for partition key {name}"
            if problem := partition_value_problem(str(value)):
                return f"MetadataExtractionFailed: the value of partition key {name} {problem}"
            keys.append((name, str(value)))
        return tuple(keys)

    def _deliver_due(self, now: dt.datetime) -> None:
        if self._next_due is None or now < self._next_due:
            return  # checked per record: only scan the buffers when one can be due
        for partition in [
            p for p, b in self._buffers.items() if now - b.first_arrival >= self.interval
        ]:
            self._flush(partition)
        firsts = [b.first_arrival for b in self._buffers.values() if b.data]
        self._next_due = min(firsts) + self.interval if firsts else None

    def drain(self) -> None:
        """Deliver every buffer now (the interval has passed for all of them)."""
        for partition in list(self._buffers):
            self._flush(partition)

    # ------------------------------------------------------------------------ delivery
    def _key_prefix(self, template: str, when: dt.datetime, partition: dict[str, str],
                    error_type: str | None = None, seed: str = "") -> str:  # fmt: skip
        return key_prefix(template, when, partition, dynamic=self.dynamic,
                          error_type=error_type, seed=seed)  # fmt: skip

    def _object_key(self, prefix: str, when: dt.datetime, seed: str, extension: str) -> str:
        return object_key(self.name, prefix, when, seed, extension)

    def _flush(self, partition: tuple[tuple[str, str], ...]) -> None:
        buffer = self._buffers.pop(partition, None)
        if not buffer or not buffer.data:
            return
        when = buffer.first_arrival
        seed = f"{self.name}|{partition}|{buffer.sequence_numbers[0]}|{when.isoformat()}"
        good, bad = self._convert(buffer)
        if bad:
            self._errors("format-conversion-failed", bad)
        if good is None:
            return
        prefix = self._key_prefix(self.prefix, when, dict(partition), seed=seed)
        key = self._object_key(prefix, when, seed, self.extension)
        self._world.client("s3").put_object(Bucket=self.bucket, Key=key, Body=good)
        self.stats.objects += 1
        self.stats.keys.append(key)

    def _convert(self, buffer: _Buffer) -> tuple[bytes | None, list[tuple[Record, str]]]:
        """The object body for the records that convert, and the failures with reasons."""
        if self.schema is None:  # no conversion: bytes as they came
            self.stats.delivered += len(buffer.data)
            return b"".join(buffer.data), []
        bad: list[tuple[Record, str]] = []
        tables: list[pa.Table] = []
        try:
            if buffer.data:
                payload = joined_lines(buffer.data)
                tables.append(convert_lines(payload, len(buffer.data), self.schema))
        except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError):
            tables = []  # find the culprits one by one
            for index, data in enumerate(buffer.data):
                try:
                    tables.append(convert([one_line(data)], self.schema))
                except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as exc:
                    bad.append((buffer.record(index), f"DataFormatConversion.InvalidSchema: {exc}"))
        rows = sum(t.num_rows for t in tables)
        if not rows:
            return None, bad
        sink = io.BytesIO()
        pq.write_table(pa.concat_tables(tables), sink, compression=self.compression)
        self.stats.delivered += rows
        return sink.getvalue(), bad

    def _errors(self, error_type: str, failures: list[tuple[Record, str]]) -> None:
        if not failures:
            return
        when = failures[0][0].arrival
        seed = f"{self.name}|error|{error_type}|{failures[0][0].sequence_number}|{when.isoformat()}"
        lines = []
        for record, reason in failures:
            code, _, message = reason.partition(": ")
            entry: dict[str, Any] = {
                "attemptsMade": 1,
                "arrivalTimestamp": int(record.arrival.timestamp() * 1000),
                "errorCode": code,
                "errorMessage": message or code,
                "attemptEndingTimestamp": int(record.arrival.timestamp() * 1000),
                "rawData": base64.b64encode(record.data).decode(),
                "sequenceNumber": record.sequence_number,
            }
            if error_type == "format-conversion-failed" and self.schema is not None:
                entry["dataCatalogTable"] = {
                    "databaseName": self.catalog["DatabaseName"],
                    "tableName": self.catalog["TableName"],
                    "versionId": "LATEST",
                }
            lines.append(json.dumps(entry))
            self.stats.failed[code] += 1
        prefix = self._key_prefix(self.error_prefix, when, {}, error_type=error_type, seed=seed)
        key = self._object_key(prefix, when, seed, "")
        body = ("\n".join(lines) + "\n").encode()
        self._world.client("s3").put_object(Bucket=self.bucket, Key=key, Body=body)
        self.stats.error_objects += 1
        self.stats.error_keys.append(key)
        logger.warning("%s: %d records to %s (%s)", self.name, len(failures), key, error_type)
