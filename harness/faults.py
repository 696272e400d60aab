"""Faults a scenario injects where AWS would produce them, and the record of what each one cost.

A scenario's ``faults:`` section (validated like every other key) turns a happy path into a
failure drill. Each fault is injected at the place AWS produces it, so the pipeline's real code
paths react, and every injected record is followed until something catches it:

* ``kinesis`` — the embedded Kinesis answers a share of ``PutRecords`` entries, of whole
  ``PutRecords`` calls and of ``GetRecords`` calls on the CDC stream with
  ``ProvisionedThroughputExceededException`` (:mod:`emulation.kinesis.faults`). The producer,
  Firehose's reader, the harness's own reads and the Flink connector retry with backoff.
* ``dms`` — DMS delivers at least once: after a task restart it delivers again every change
  since its last checkpoint (``redelivered``, a contiguous run of changes, as a restart from a
  checkpoint does); its parallel apply threads put changes of *different* keys out of commit order
  (``out_of_order``: a change is written after the next one to three changes of other keys; the
  order per partition key, which Kinesis guarantees, is kept); and changes held up (a stalled
  apply thread, a lagging replica) arrive only after the window has closed (``late``: written
  after every other change of the window, DMS's ``timestamp`` the moment it finally read them,
  ``commit-timestamp`` and the row unchanged). The anomaly job then counts a late sale into a day
  it has already judged; the run measures what that changed (``faults.dms.late_cost``).
* ``events`` — EventBridge delivers at least once: a share of the S3 events that start the
  forecast and enrichment workflows is delivered twice (``duplicate_deliveries``), so two
  executions run for one object; the workflows must attach to the jobs the first one started and
  write the same export, never a second one (:func:`emulation.events.deliver_twice`).
* ``bad_records`` — records a broken producer puts on the CDC stream among the real ones: a DMS
  message cut off mid-way (``not_json``), a change of a table nobody replicates
  (``unknown_table``), a sale without its ``quantity`` (``missing_field``), a quantity that is text
  (``wrong_type``), a negative quantity, a record over Kinesis's 1 MiB limit (``oversized``), and a
  shop event with a ``schema_version`` readers do not know. Each bad record is built from a real
  message of the window (same shape, same metadata), with a sale id and a transaction id no real
  record has, so it can be found again in every error output.

Which hop is meant to catch what (and the run checks that something did):

=========================  =========================================================
``not_json``               Firehose (``DynamicPartitioning.MetadataExtractionFailed``), the job
``unknown_table``          the Glue job (``unknown table``)
``missing_field``          the Glue job (``missing field``), the anomaly job
``wrong_type``             Firehose (``DataFormatConversion.InvalidSchema``), the anomaly job
``negative_quantity``      the Glue job (``not positive``), the anomaly job
``oversized``              the producer (``RecordTooLarge``)
``unknown_schema_version`` the anomaly job (the Glue job reads DMS's ``sales``, not shop events)
=========================  =========================================================

* ``glue`` — a Glue run fails *after* its script has finished (a lost executor, a node taken back
  while the run commits), so its output is written and the run says ``FAILED``
  (``failed_runs``: per job, how many of its first runs; :mod:`emulation.glue.faults`). The
  forecast-input job, which only its schedule starts, is retried by Glue itself (its
  ``MaxRetries``); the export and enrichment jobs by the workflows that started them. Either way
  the job runs again on the same input and must write the same bytes, nothing doubled.

* ``sagemaker`` — the next AutoML jobs fail as SageMaker's internal errors make them fail
  (``failed_automl_jobs``). The forecast workflow starts such a training once more, as a new job
  (``<name>-r1``); when that fails too, it publishes a failure notice to the alarm topic and
  fails, and the run reads the notice as the topic's subscribers would receive it and reports the
  forecast as failed and the enrichment as not started (nothing to enrich).

* ``flink`` — the anomaly job is killed mid-stream (``crashes``), each time after Managed Flink
  took a snapshot of it, and started again from its latest snapshot (``StartApplication`` with
  ``RESTORE_FROM_LATEST_SNAPSHOT``): its shard positions and the detector's state come back from
  the snapshot, and what it had emitted since is emitted again (its sinks are at-least-once).
  The job reads the stream in parts (the embedded Kinesis holds the rest back), so each
  snapshot falls in the middle of the stream. Consumers keep one outlier per ``outlier_id``; the
  run counts what they removed. ``task_failures`` drills the other recovery Managed Flink relies
  on: after a checkpoint, Kinesis answers the job's reads with ``InternalFailure`` until its
  source gives up and the task fails; Flink restarts the job *in place* from that checkpoint
  (its restart strategy, no new start of the application) and reads the part again.

* ``schema_drift`` — someone alters a replicated table in the middle of the window
  (``ALTER TABLE sales ADD COLUMN promo_code …``, ``… MODIFY quantity VARCHAR(12)``). From that
  change on, DMS writes the table's rows in their new shape (the new column where it has a value;
  the changed column in its new type's JSON rendering, a ``STRING`` column as a JSON string) and,
  with the endpoint's ``IncludeTableAlterOperations``, a control record per DDL in its own
  shape: ``record-type: control``, ``operation: add-column`` or ``column-type-change``,
  ``partition-key-type: task-id``, and with ``IncludeControlDetails`` the table's new
  definition (``control.table-def``: columns with DMS's types, primary key). What each consumer
  does with it is AWS's behaviour, measured, not assumed: Firehose's OpenX SerDe reads a number
  sent as a string into the catalog's numeric column and drops a column the catalog does not
  have (the summary counts the values so lost); the Glue job and the anomaly job pass control
  records by (they are not changes of the data) and read numbers sent as strings.

* ``world`` — the local world's endpoint goes down in the middle of the window while the producer
  is writing (``restarts``, each an outage of ``outage_seconds``) and comes back on the same port
  with its state, as a service that restarts keeps what it acknowledged (streams with their
  records and sequence numbers, buckets, catalog, jobs). boto3's own retries give up within a
  second; the producer rides the outage out (:class:`emulation.kinesis.Producer`), and the run
  proves the stream holds every record once, in order per key, and every later stage reads the
  state from before the restart. Only the embedded moto can be restarted (its backends live in
  the harness's process).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import pyarrow as pa
from pydantic import Field, field_validator, model_validator

from emulation.dms import DmsSettings
from pipeline.contracts.cdc import PRIMARY_KEYS, TABLES
from simulator.spec import ScenarioModel

logger = logging.getLogger(__name__)

BAD_RECORD_KINDS = ("not_json", "unknown_table", "missing_field", "wrong_type",
                    "negative_quantity", "oversized", "unknown_schema_version")  # fmt: skip
#: Kinds a DMS-only stream can carry (``unknown_schema_version`` needs the shop's direct events).
DMS_BAD_RECORD_KINDS = BAD_RECORD_KINDS[:-1]
BadRecordKind = Literal["not_json", "unknown_table", "missing_field", "wrong_type",
                        "negative_quantity", "oversized", "unknown_schema_version"]  # fmt: skip
UNKNOWN_TABLE = "coupons"  # a table of the source database that the pipeline does not replicate
UNKNOWN_SCHEMA_VERSION = 99
OVERSIZED_BYTES = 1024 * 1024 + 512  # over Kinesis's 1 MiB per record (data + partition key)
Share = Annotated[float, Field(ge=0.0, le=1.0)]
# A throttle rate of 1 would refuse every call for ever; the retries could never succeed.
ThrottleRate = Annotated[float, Field(ge=0.0, lt=1.0)]


class KinesisFaults(ScenarioModel):
    """Throttling on the CDC stream, as a shard over its limits answers."""

    put_records_entries: ThrottleRate = Field(
        default=0.0, description="share of PutRecords entries failed with the throttling code"
    )
    put_records_calls: ThrottleRate = Field(
        default=0.0, description="share of whole PutRecords calls refused (HTTP 400)"
    )
    get_records_calls: ThrottleRate = Field(
        default=0.0, description="share of GetRecords calls refused (HTTP 400)"
    )

    @property
    def active(self) -> bool:
        return any((self.put_records_entries, self.put_records_calls, self.get_records_calls))


class DmsFaults(ScenarioModel):
    """DMS's at-least-once, parallel delivery."""

    redelivered: Share = Field(
        default=0.0, description="share of the window's changes delivered again after a restart"
    )
    out_of_order: Share = Field(
        default=0.0, description="share of changes written after later changes of other keys"
    )
    late: Share = Field(
        default=0.0, description="share of changes delivered only after the window closed"
    )

    @property
    def active(self) -> bool:
        return bool(self.redelivered or self.out_of_order or self.late)


class EventsFaults(ScenarioModel):
    """EventBridge's at-least-once delivery to the workflows."""

    duplicate_deliveries: Share = Field(
        default=0.0, description="share of matched events delivered to their workflow twice"
    )

    @property
    def active(self) -> bool:
        return bool(self.duplicate_deliveries)


class GlueFaults(ScenarioModel):
    """Glue runs that fail after their script has finished (a lost executor, a node taken
    back): their output is written and the run says ``FAILED``."""

    failed_runs: dict[str, Annotated[int, Field(ge=0, le=3)]] = Field(
        default_factory=dict,
        description="Glue job (its key in deploy/stack.yaml) → how many of its first runs fail",
    )

    @property
    def active(self) -> bool:
        return any(self.failed_runs.values())


class SageMakerFaults(ScenarioModel):
    """AutoML jobs that fail as SageMaker's internal errors make them fail."""

    failed_automl_jobs: int = Field(
        default=0, ge=0, le=3, description="how many of the next AutoML jobs fail"
    )

    @property
    def active(self) -> bool:
        return bool(self.failed_automl_jobs)


class FlinkFaults(ScenarioModel):
    """The anomaly job dies mid-stream (a lost task manager, a host taken back) and Managed Flink
    starts it again from its latest snapshot."""

    crashes: int = Field(
        default=0, ge=0, le=3,
        description="how many times the job is killed mid-stream, each after a snapshot",
    )  # fmt: skip
    task_failures: int = Field(
        default=0, ge=0, le=2,
        description="how many times a task fails mid-stream (Kinesis failing its reads), each "
                    "after a checkpoint; Flink restarts the job in place from its latest "
                    "checkpoint (that one, or a periodic one taken since)",
    )  # fmt: skip

    @property
    def failures(self) -> int:
        """Failures the job recovers from: each brings one more DMS heartbeat after it."""
        return self.crashes + self.task_failures

    @property
    def active(self) -> bool:
        return bool(self.failures)


#: DMS's data types (as ``control.table-def`` names them) for the contract's Arrow types.
DMS_TYPES = {
    "int32": "INT32", "int64": "INT64", "double": "REAL8", "string": "STRING",
    "date32[day]": "DATE", "timestamp[s, tz=UTC]": "DATETIME", "bool": "BOOLEAN",
}  # fmt: skip
DriftType = Literal["STRING", "INT64"]
_IDENTIFIER = r"^[a-z_][a-z0-9_]{0,62}$"


class NewColumn(ScenarioModel):
    """``ALTER TABLE … ADD COLUMN``: a nullable column, filled for ``filled`` of the rows."""

    name: str = Field(pattern=_IDENTIFIER)
    type: DriftType = "STRING"
    filled: Share = Field(default=0.3, description="share of later rows that carry a value")


class TypeChange(ScenarioModel):
    """``ALTER TABLE … MODIFY column type``: later rows carry the column in its new type."""

    column: str = Field(pattern=_IDENTIFIER)
    type: DriftType = "STRING"


class SchemaDrift(ScenarioModel):
    """DDL on a replicated table during the window, as DMS delivers it."""

    table: str = Field(default="sales", description="the replicated table that is altered")
    at: float = Field(
        default=0.5,
        gt=0.0,
        lt=1.0,
        description="share of the table's window changes written before the DDL",
    )
    add_column: NewColumn | None = None
    change_type: TypeChange | None = None

    @model_validator(mode="after")
    def _applies_to_the_table(self) -> SchemaDrift:
        if self.table not in TABLES:
            raise ValueError(f"table: {self.table!r} is not a replicated "
                             f"table (the tables: {', '.join(TABLES)})")  # fmt: skip
        if self.add_column is None and self.change_type is None:
            raise ValueError("give add_column, change_type or both")
        schema = TABLES[self.table]
        if self.add_column is not None and self.add_column.name in schema.names:
            raise ValueError(f"add_column.name: {self.table} already has a "
                             f"column {self.add_column.name!r}")  # fmt: skip
        change = self.change_type
        if change is not None:
            if change.column not in schema.names:
                raise ValueError(f"change_type.column: {self.table} has no "
                                 f"column {change.column!r} (its columns: "
                                 f"{', '.join(schema.names)})")  # fmt: skip
            if change.column == PRIMARY_KEYS[self.table]:
                raise ValueError(
                    f"change_type.column: {change.column!r} is "
                    f"the primary key of {self.table}, which keys every change"
                )
            kind = schema.field(change.column).type
            if change.type == "INT64" and not pa.types.is_integer(kind):
                raise ValueError(
                    f"change_type.type: INT64 widens an integer "
                    f"column, and {change.column} is {DMS_TYPES.get(str(kind), kind)}"
                )
            if DMS_TYPES.get(str(kind)) == change.type:
                raise ValueError(f"change_type.type: {change.column} is already {change.type}")
        return self


class WorldFaults(ScenarioModel):
    """The local world's endpoint restarts mid-window, keeping its state."""

    restarts: int = Field(
        default=0,
        ge=0,
        le=3,
        description="how many times the endpoint restarts while the producer writes",
    )
    outage_seconds: float = Field(
        default=2.0, gt=0.0, le=20.0, description="how long the endpoint is down each time"
    )

    @property
    def active(self) -> bool:
        return bool(self.restarts)


class BadRecords(ScenarioModel):
    """Broken records among the real ones: ``rate`` of the window's records, at least one of
    each kind listed, the kinds taking turns."""

    rate: Share = 0.02
    kinds: list[BadRecordKind] = Field(
        default_factory=lambda: list(DMS_BAD_RECORD_KINDS), min_length=1
    )

    @field_validator("kinds")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a bad-record kind is listed more than once")
        return value


class Faults(ScenarioModel):
    """The ``faults:`` section of a scenario; absent, nothing is injected."""

    kinesis: KinesisFaults = KinesisFaults()
    dms: DmsFaults = DmsFaults()
    events: EventsFaults = EventsFaults()
    glue: GlueFaults = GlueFaults()
    sagemaker: SageMakerFaults = SageMakerFaults()
    flink: FlinkFaults = FlinkFaults()
    world: WorldFaults = WorldFaults()
    bad_records: BadRecords | None = None
    schema_drift: SchemaDrift | None = None

    @property
    def active(self) -> bool:
        return (self.kinesis.active or self.dms.active or self.events.active
                or self.glue.active or self.sagemaker.active or self.flink.active
                or self.world.active or self.bad_records is not None
                or self.schema_drift is not None)  # fmt: skip

    @property
    def in_the_world(self) -> list[str]:
        """The faults injected inside the embedded moto (throttling, duplicate deliveries,
        failed Glue runs and AutoML jobs): a world whose service is elsewhere cannot carry
        them."""
        return [name for name in IN_THE_WORLD if getattr(self, name).active]


#: Faults injected inside the embedded moto, and the service each one needs served there.
IN_THE_WORLD = {"kinesis": "kinesis", "events": "events", "glue": "glue",
                "sagemaker": "sagemaker", "flink": "kinesis", "world": "kinesis"}  # fmt: skip


# ------------------------------------------------------------------------------ the stream
@dataclass
class StreamRecord:
    """One record the producer puts on the CDC stream."""

    partition_key: str
    data: bytes
    source: str  # "dms", "shop" or "fault"


@dataclass
class BadRecord:
    """An injected bad record and where it was caught (hop, reason)."""

    kind: str
    data: bytes
    partition_key: str
    table: str
    transaction_id: int | None
    sale_id: int | None
    caught: list[tuple[str, str]] = field(default_factory=list)

    @property
    def identity(self) -> tuple[str, str, str]:
        """How the staging check names the record once staged (see ``harness.stages.staging``)."""
        if self.transaction_id is None:
            return (self.table, "shop", str(self.sale_id))
        return (self.table, "cdc", str(self.transaction_id))


class FaultLog:
    """What a run injected and what caught it; becomes the summary's ``faults`` section."""

    def __init__(self, faults: Faults, seed: int) -> None:
        self.faults = faults
        self.seed = seed
        self.bad: list[BadRecord] = []
        self._by_data: dict[bytes, BadRecord] = {}
        self._by_change: dict[tuple[str, int], BadRecord] = {}
        self.redelivered: Counter[tuple[str, str, str]] = Counter()  # staged identity → copies
        self.redelivered_records = 0
        self.restart_after: int | None = None  # the DMS change after which the task restarted
        self.out_of_order = 0
        self.late: dict[bytes, bytes] = {}  # late record → the same change delivered on time
        self.late_cost: dict[str, Any] | None = None
        self.throttling: dict[str, int] = {}
        self.deliveries: dict[str, int] = {}  # EventBridge: events delivered, delivered twice
        self.client_retries: dict[str, dict[str, int]] = {}
        self.glue_runs: dict[str, dict[str, int]] = {}  # job key → runs, failed, injected…
        self.glue_seen: dict[str, set[str]] = {}  # job key → run ids from before this run
        self.automl_failed = 0  # AutoML jobs failed on purpose
        self.duplicates_removed: dict[str, int] = {}
        self.flink: dict[str, Any] = {}  # the anomaly job's crashes and restores
        self.schema_drift: dict[str, Any] = {}  # the DDL, its control records, what it cost
        self.world: dict[str, Any] = {}  # the endpoint's restarts and what riding them out cost
        self.control: Counter[tuple[str, str, str]] = Counter()  # staged identity of each

    # ----------------------------------------------------------------- bookkeeping
    def add_bad(self, record: BadRecord) -> None:
        self.bad.append(record)
        self._by_data[record.data] = record
        if record.transaction_id is not None:
            self._by_change[(record.table, record.transaction_id)] = record

    def caught(self, hop: str, reason: str, *, data: bytes | None = None,
               table: str | None = None, transaction_id: Any = None) -> bool:  # fmt: skip
        """Note that ``hop`` caught a record (by its bytes, or by table and transaction id);
        returns whether it was an injected bad record."""
        record = None
        if data is not None:
            record = self._by_data.get(data)
        if record is None and table is not None and transaction_id is not None:
            try:
                record = self._by_change.get((table, int(transaction_id)))
            except (TypeError, ValueError):
                record = None
        if record is None:
            return False
        record.caught.append((hop, reason))
        return True

    def is_bad(self, data: bytes) -> bool:
        return data in self._by_data

    def summary(self) -> dict[str, Any]:
        by_kind: dict[str, dict[str, Any]] = {}
        for record in self.bad:
            entry = by_kind.setdefault(record.kind, {"injected": 0, "caught": 0, "by": Counter()})
            entry["injected"] += 1
            entry["caught"] += bool(record.caught)
            entry["by"].update({hop for hop, _ in record.caught})
        missed = [
            {"kind": r.kind, "partition_key": r.partition_key, "sale_id": r.sale_id,
             "transaction_id": r.transaction_id}
            for r in self.bad if not r.caught
        ]  # fmt: skip
        return {
            "injected": len(self.bad)
            + self.redelivered_records
            + self.out_of_order
            + len(self.late)
            + sum(n for k, n in self.throttling.items() if k.endswith("_throttled"))
            + self.deliveries.get("delivered_twice", 0)
            + sum(runs.get("failed_on_purpose", 0) for runs in self.glue_runs.values())
            + self.automl_failed
            + self.flink.get("crashes", 0)
            + self.flink.get("task_failures", 0)
            + len(self.schema_drift.get("ddl", ()))
            + self.world.get("restarts", 0),
            "bad_records": {
                "injected": len(self.bad),
                "caught": sum(1 for r in self.bad if r.caught),
                "missed": len(missed),
                "missed_records": missed[:20],
                "by_kind": {
                    kind: {
                        "injected": e["injected"],
                        "caught": e["caught"],
                        "caught_by": dict(sorted(e["by"].items())),
                    }
                    for kind, e in sorted(by_kind.items())
                },
                "reasons": [
                    {"kind": r.kind, "hop": hop, "reason": reason[:200]}
                    for r in self.bad
                    for hop, reason in r.caught[:3]
                ][:60],
            },
            "dms": {
                "redelivered": self.redelivered_records,
                "restart_after_change": self.restart_after,
                "out_of_order": self.out_of_order,
                "late": len(self.late),
                **({"late_cost": self.late_cost} if self.late_cost is not None else {}),
            },
            "kinesis": dict(sorted(self.throttling.items())),
            "events": dict(sorted(self.deliveries.items())),
            "glue": dict(sorted(self.glue_runs.items())),
            "sagemaker": {"automl_jobs_failed_on_purpose": self.automl_failed},
            "flink": self.flink,
            "schema_drift": self.schema_drift,
            "world": self.world,
            "retries": self.client_retries,
            "duplicates_removed": self.duplicates_removed,
        }


def _fresh_ids(messages: list[dict[str, Any]]) -> tuple[int, int]:
    """A sale id and a transaction id above every one the window carries."""
    sale, txn = 0, 0
    for message in messages:
        data = message.get("data") if "metadata" in message else message
        if isinstance(data, dict) and isinstance(data.get("sale_id"), int):
            sale = max(sale, data["sale_id"])
        meta = message.get("metadata") or {}
        if isinstance(meta.get("transaction-id"), int):
            txn = max(txn, meta["transaction-id"])
    return sale + 1_000_000, txn + 1_000_000


def _template(records: list[StreamRecord], messages: list[dict[str, Any]], source: str,
              test) -> tuple[dict[str, Any] | None, str]:  # fmt: skip
    """The first message of ``source`` that passes ``test``, and its partition key."""
    for record, message in zip(records, messages, strict=True):
        if record.source == source and test(message):
            return message, record.partition_key
    return None, ""


def _is_sale_insert(message: dict[str, Any]) -> bool:
    meta = message.get("metadata") or {}
    return meta.get("table-name") == "sales" and meta.get("operation") == "insert"


def _render(message: dict[str, Any], formatted: bool) -> bytes:
    if formatted:  # DMS's "json" message format: tab-indented
        return json.dumps(message, indent="\t").encode()
    return json.dumps(message, separators=(",", ":")).encode()


def _dms_partition_key(message: dict[str, Any], template_key: str, template_id: Any) -> str:
    """The partition key DMS would give ``message``: the template's, with its primary key value
    replaced (primary-key partitioning) or unchanged (schema-table)."""
    sale_id = str(message["data"].get("sale_id", ""))
    if str(template_id) and template_key.endswith(str(template_id)):
        return template_key[: len(template_key) - len(str(template_id))] + sale_id
    return template_key


def bad_record(kind: str, template: dict[str, Any], template_key: str, *, sale_id: int,
               txn: int, formatted: bool) -> BadRecord:  # fmt: skip
    """One bad record of ``kind`` built from a real message (a DMS sale insert, or a shop event
    for ``unknown_schema_version``)."""
    message = json.loads(json.dumps(template))
    if kind == "unknown_schema_version":
        message.update(sale_id=sale_id, schema_version=UNKNOWN_SCHEMA_VERSION,
                       event_id=f"fault-{sale_id}")  # fmt: skip
        data = json.dumps(message, separators=(",", ":")).encode()
        from pipeline.contracts.staged import ECOMMERCE_PARTITION

        return BadRecord(kind, data, template_key, ECOMMERCE_PARTITION, None, sale_id)
    template_id = message["data"].get("sale_id")
    message["data"]["sale_id"] = sale_id
    meta = message["metadata"]
    meta["transaction-id"] = txn
    for name in ("prev-transaction-id",):
        if name in meta:
            meta[name] = txn - 1
    key = _dms_partition_key(message, template_key, template_id)
    table = "sales"
    if kind == "unknown_table":
        table = meta["table-name"] = UNKNOWN_TABLE
        message["data"] = {"coupon_id": sale_id, "code": f"SAVE{sale_id % 100}",
                           "discount": 0.1}  # fmt: skip
        key = key.replace("sales", UNKNOWN_TABLE)
    elif kind == "missing_field":
        message["data"].pop("quantity", None)
    elif kind == "wrong_type":
        message["data"]["quantity"] = "three"
    elif kind == "negative_quantity":
        message["data"]["quantity"] = -abs(int(message["data"].get("quantity") or 1)) - 1
    elif kind == "oversized":
        message["data"]["note"] = "x" * OVERSIZED_BYTES
    data = _render(message, formatted)
    if kind == "not_json":  # a message cut off mid-way, as a crashed writer leaves it
        data = data[: len(data) // 2]
    return BadRecord(kind, data, key, table, txn, sale_id)


def inject(records: list[StreamRecord], faults: Faults, seed: int, *, formatted: bool,
           log: FaultLog, window_end: dt.datetime,
           settings: DmsSettings | None = None) -> list[StreamRecord]:  # fmt: skip
    """The window's records with the DMS and bad-record faults applied (same seed, same list).

    Schema drift comes first: it changes what DMS renders, and DMS's own faults (redelivery,
    reordering, lateness) then act on what it rendered."""
    rng = random.Random(f"{seed}|faults")
    out = list(records)
    if faults.schema_drift is not None:
        out = _schema_drift(out, faults.schema_drift, random.Random(f"{seed}|schema-drift"),
                            log, formatted, settings or DmsSettings(), seed)  # fmt: skip
    dms = faults.dms
    if dms.late:
        out = _late(out, dms.late, rng, log, window_end, formatted)
    if dms.out_of_order:
        out = _out_of_order(out, dms.out_of_order, rng, log)
    if dms.redelivered:
        out = _redeliver(out, dms.redelivered, rng, log)
    if faults.bad_records is not None:
        out = _bad_records(out, faults.bad_records, rng, formatted, log)
    return out


def _count(share: float, population: int) -> int:
    return 0 if not share or not population else max(1, round(share * population))


def _out_of_order(records: list[StreamRecord], share: float, rng: random.Random,
                  log: FaultLog) -> list[StreamRecord]:  # fmt: skip
    dms = [i for i, r in enumerate(records) if r.source == "dms"]
    chosen = sorted(rng.sample(dms, _count(share, len(dms))), reverse=True)
    out = list(records)
    for index in chosen:  # from the end, so earlier indices stay valid
        record = out[index]
        steps = rng.randint(1, 3)
        target = index
        while target + 1 < len(out) and steps:
            if out[target + 1].partition_key == record.partition_key:
                break  # never past a later change of the same key: Kinesis keeps that order
            target += 1
            steps -= 1
        if target > index:
            out.insert(target, out.pop(index))
            log.out_of_order += 1
    return out


LATE_SPREAD_SECONDS = 300.0  # late changes are read within five minutes after the window


def _late(records: list[StreamRecord], share: float, rng: random.Random, log: FaultLog,
          window_end: dt.datetime, formatted: bool) -> list[StreamRecord]:  # fmt: skip
    """Changes held up until the window closed, written after all others (per key order kept:
    only a key's last change in the window can be late)."""
    last_of_key = {r.partition_key: i for i, r in enumerate(records) if r.source == "dms"}
    candidates = sorted(last_of_key.values())
    chosen = set(rng.sample(candidates, _count(share, len(candidates))))
    if not chosen:
        return records
    step = min(0.1, LATE_SPREAD_SECONDS / len(chosen))
    late = []
    for n, index in enumerate(sorted(chosen)):
        record = records[index]
        message = json.loads(record.data)
        stamp = window_end.astimezone(dt.UTC) + dt.timedelta(seconds=1 + n * step)
        message["metadata"]["timestamp"] = stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        data = _render(message, formatted)
        log.late[data] = record.data
        late.append(StreamRecord(record.partition_key, data, "dms"))
    return [r for i, r in enumerate(records) if i not in chosen] + late


def _staged_identity(data: bytes) -> tuple[str, str, str] | None:
    message = json.loads(data)
    meta = message.get("metadata") or {}
    if meta.get("transaction-id") is None:
        return None
    return (meta["table-name"], "cdc", str(meta["transaction-id"]))


def _redeliver(records: list[StreamRecord], share: float, rng: random.Random,
               log: FaultLog) -> list[StreamRecord]:  # fmt: skip
    """A task restart: the changes since the last checkpoint are written again."""
    dms = [i for i, r in enumerate(records) if r.source == "dms"]
    count = _count(share, len(dms))
    if not count:
        return records
    restart = rng.randint(count, len(dms))  # restarted after this many changes were written
    replay = [records[i] for i in dms[restart - count : restart]]
    at = dms[restart - 1] + 1
    log.restart_after = restart
    log.redelivered_records = len(replay)
    for record in replay:
        identity = _staged_identity(record.data)
        if identity is not None:
            log.redelivered[identity] += 1
    return [*records[:at], *(StreamRecord(r.partition_key, r.data, "dms") for r in replay),
            *records[at:]]  # fmt: skip


def _bad_records(records: list[StreamRecord], spec: BadRecords, rng: random.Random,
                 formatted: bool, log: FaultLog) -> list[StreamRecord]:  # fmt: skip
    messages = [json.loads(r.data) for r in records]  # the real records: all JSON
    sale, sale_key = _template(records, messages, "dms", _is_sale_insert)
    shop, shop_key = _template(records, messages, "shop", lambda m: "schema_version" in m)
    needs_sale = [k for k in spec.kinds if k != "unknown_schema_version"]
    if needs_sale and sale is None:
        raise ValueError("faults.bad_records: the window has no DMS sale to build bad records from")
    if "unknown_schema_version" in spec.kinds and shop is None:
        raise ValueError("faults.bad_records: unknown_schema_version needs the shop's events "
                         "(ecommerce.direct_events)")  # fmt: skip
    count = max(len(spec.kinds), round(spec.rate * len(records)))
    next_sale, next_txn = _fresh_ids(messages)
    positions = sorted(rng.randrange(len(records) + 1) for _ in range(count))
    out: list[StreamRecord] = []
    taken = 0
    clock: dict[str, Any] = {}  # the latest timestamps seen: a bad record is stamped like them
    for index, (record, message) in enumerate([*zip(records, messages, strict=True),
                                               (None, None)]):  # fmt: skip
        while taken < count and positions[taken] == index:
            kind = spec.kinds[taken % len(spec.kinds)]
            template, key = (
                (shop, shop_key) if kind == "unknown_schema_version" else (sale, sale_key)
            )
            bad = bad_record(kind, _restamped(template, clock), key, sale_id=next_sale + taken,
                             txn=next_txn + taken, formatted=formatted)  # fmt: skip
            log.add_bad(bad)
            out.append(StreamRecord(bad.partition_key, bad.data, "fault"))
            taken += 1
        if record is not None:
            out.append(record)
            if record.source == "dms":
                meta = message.get("metadata") or {}
                clock.update((k, meta[k]) for k in ("timestamp", "commit-timestamp") if k in meta)
    return out


def _restamped(template: dict[str, Any], clock: dict[str, Any]) -> dict[str, Any]:
    """``template`` with the stream's current time: a bad record arrives among its neighbours."""
    if not clock:
        return template
    message = json.loads(json.dumps(template))
    moment = clock["timestamp"]
    if "metadata" in message:
        message["metadata"].update(clock)
        if isinstance(message.get("data"), dict) and "sold_at" in message["data"]:
            message["data"]["sold_at"] = moment[:19] + "Z"
    elif "sold_at" in message:
        message["sold_at"] = moment[:19] + "Z"
    return message


# ------------------------------------------------------------------------------ schema drift
def dms_task_id(seed: int) -> str:
    """A DMS replication task's resource id (26 upper-case letters and digits), fixed by seed."""
    digest = hashlib.sha256(f"{seed}|dms-task".encode()).digest()
    return base64.b32encode(digest).decode()[:26]


def _table_def(schema: pa.Schema, primary_key: str) -> dict[str, Any]:
    """``control.table-def`` as DMS writes it with ``IncludeControlDetails``."""
    return {
        "columns": {f.name: {"type": DMS_TYPES.get(str(f.type), "STRING"), "nullable": f.nullable}
                    for f in schema},
        "primary-key": [primary_key],
    }  # fmt: skip


def _drifted_schema(spec: SchemaDrift, base: pa.Schema, steps: int) -> pa.Schema:
    """The table's schema after the first ``steps`` DDL statements of ``spec``."""
    schema = base
    ddl = [d for d in ("add_column", "change_type") if getattr(spec, d) is not None][:steps]
    arrow = {"STRING": pa.string(), "INT64": pa.int64()}
    if "add_column" in ddl:
        column = spec.add_column
        assert column is not None
        schema = schema.append(pa.field(column.name, arrow[column.type]))
    if "change_type" in ddl:
        change = spec.change_type
        assert change is not None
        index = schema.get_field_index(change.column)
        schema = schema.set(index, schema.field(index).with_type(arrow[change.type]))
    return schema


def _control_record(spec: SchemaDrift, operation: str, schema: pa.Schema, stamp: str,
                    settings: DmsSettings, task_id: str) -> tuple[str, dict[str, Any]]:  # fmt: skip
    """A DMS control record for one DDL statement, and its Kinesis partition key (the task's id:
    a control record belongs to the task, not to a row)."""
    key = task_id
    if settings.partition_include_schema_table:
        key = f"{task_id}.{settings.schema_name}.{spec.table}"
    metadata: dict[str, Any] = {
        "timestamp": stamp, "record-type": "control", "operation": operation,
        "partition-key-type": "task-id",
    }  # fmt: skip
    if settings.include_partition_value:
        metadata["partition-key-value"] = task_id
    metadata.update({"schema-name": settings.schema_name, "table-name": spec.table})
    message: dict[str, Any] = {}
    if settings.include_control_details:
        message["control"] = {"table-def": _table_def(schema, PRIMARY_KEYS[spec.table])}
    message["metadata"] = metadata
    return key, message


def _schema_drift(records: list[StreamRecord], spec: SchemaDrift, rng: random.Random,
                  log: FaultLog, formatted: bool, settings: DmsSettings,
                  seed: int) -> list[StreamRecord]:  # fmt: skip
    """DDL on ``spec.table`` after ``spec.at`` of its window changes: later rows in the new
    shape, and DMS's control records where the DDL happened (when the endpoint asks for them)."""
    messages = [json.loads(r.data) if r.source == "dms" else None for r in records]
    ours = [i for i, m in enumerate(messages)
            if m is not None and (m.get("metadata") or {}).get("table-name") == spec.table
            and (m.get("metadata") or {}).get("record-type") == "data"]  # fmt: skip
    first = int(len(ours) * spec.at)
    if first >= len(ours):
        raise ValueError(f"faults.schema_drift: the window has no change of table {spec.table} "
                         f"after the DDL (it has {len(ours)}; at = {spec.at})")  # fmt: skip
    base = TABLES[spec.table]
    after = ours[first:]
    out = list(records)
    added = changed = 0
    for index in after:
        message = messages[index]
        assert message is not None
        data = message.get("data")
        if not isinstance(data, dict):
            continue
        column = spec.add_column
        if column is not None and rng.random() < column.filled:
            data[column.name] = (f"PROMO{rng.randint(10, 99)}" if column.type == "STRING"
                                 else rng.randint(1, 1000))  # fmt: skip
            added += 1
        elif column is not None and settings.include_null_and_empty:
            data[column.name] = None
        change = spec.change_type
        if change is not None and data.get(change.column) is not None:
            if change.type == "STRING":  # DMS renders a character column as a JSON string
                data[change.column] = str(data[change.column])
            changed += 1
        out[index] = StreamRecord(records[index].partition_key, _render(message, formatted), "dms")
    statements = []
    if spec.add_column is not None:
        statements.append(("add-column",
                           f"ALTER TABLE {spec.table} ADD COLUMN {spec.add_column.name} "
                           f"{spec.add_column.type}"))  # fmt: skip
    if spec.change_type is not None:
        was = DMS_TYPES.get(str(base.field(spec.change_type.column).type))
        statements.append(("column-type-change",
                           f"ALTER TABLE {spec.table} MODIFY {spec.change_type.column} "
                           f"{spec.change_type.type} (was {was})"))  # fmt: skip
    controls: list[StreamRecord] = []
    if settings.include_table_alter_operations:
        first_message = messages[after[0]]
        assert first_message is not None
        stamp = first_message["metadata"]["timestamp"]
        task_id = dms_task_id(seed)
        for step, (operation, _) in enumerate(statements, start=1):
            key, message = _control_record(spec, operation, _drifted_schema(spec, base, step),
                                           stamp, settings, task_id)  # fmt: skip
            controls.append(StreamRecord(key, _render(message, formatted), "control"))
            log.control[(spec.table, "control", operation)] += 1
    position = after[0]
    log.schema_drift = {
        "table": spec.table,
        "ddl": [sql for _, sql in statements],
        "before_change": first + 1,  # the table's window change the DDL came before (1-based)
        "control_records": len(controls),
        "drifted_records": len(after),
        "new_column_values": added,
        "changed_type_values": changed,
    }
    return [*out[:position], *controls, *out[position:]]
