"""The anomaly job's step, without Flink: one record in, output rows out.

The Flink job (:mod:`pipeline.anomaly.main`) runs this step's Java twin
(``pipeline/anomaly/detection``: ``Detection``) over records in event-time order and writes each
row to the outliers stream or the error stream by its ``kind``; the harness runs this step
in-process as the reference the job must match, and benchmarks time it alone. Nothing here
imports Flink, so all of it is testable in plain Python.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from typing import NamedTuple

from pipeline.anomaly.detector import (
    CampaignChange,
    Detector,
    DetectorConfig,
    Outlier,
    ProductChange,
    Profile,
    Rejected,
    Sale,
    parse,
)
from pipeline.contracts.staged import OUTLIER_COLUMNS

logger = logging.getLogger(__name__)


class OutputRow(NamedTuple):
    """One row the job emits: an outlier (to the outliers stream) or a rejected record (to the
    error stream, with the reason and the raw record)."""

    kind: str  # "outlier" or "rejected"
    product_id: str | None
    sale_id: int | None
    quantity: int | None
    unit_price: float | None
    channel: str | None
    sold_at: str | None  # ISO-8601 with Z
    reason: str
    score: float | None
    source: str | None
    raw: str | None
    outlier_id: str | None  # stable across restarts and replays: the key consumers keep once

    @classmethod
    def outlier(cls, o: Outlier) -> OutputRow:
        return cls("outlier", o.product_id, o.sale_id, o.quantity, o.unit_price, o.channel,
                   o.sold_at.isoformat().replace("+00:00", "Z"), o.reason, float(o.score),
                   o.source, None, o.outlier_id)  # fmt: skip

    @classmethod
    def rejected(cls, reason: str, line: str) -> OutputRow:
        return cls("rejected", None, None, None, None, None, None, reason, None, None, line, None)


OUTPUT_FIELDS = list(OutputRow._fields)

# The outliers table as the job declares it: the catalog table's columns (the contract), in its
# order, with Flink SQL types. ``sold_at`` travels as ISO text in the JSON record; Firehose's
# conversion turns it into the catalog's timestamp.
_FLINK_TYPES = {"bigint": "BIGINT", "int": "INT", "double": "DOUBLE", "string": "STRING",
                "timestamp": "STRING"}  # fmt: skip


def outliers_columns_sql() -> str:
    r"""``\`sale_id\` BIGINT, \`product_id\` STRING, …`` for the outliers table's DDL."""
    return ", ".join(f"`{name}` {_FLINK_TYPES[kind]}" for name, kind in OUTLIER_COLUMNS)


def event_time(line: str, sale: Sale | None) -> dt.datetime | None:
    if sale is not None:
        return sale.sold_at
    try:
        message = json.loads(line)
        stamp = (message.get("metadata") or {}).get("timestamp") or message.get("sold_at")
        return dt.datetime.fromisoformat(str(stamp).replace("Z", "+00:00")) if stamp else None
    except (ValueError, AttributeError, TypeError):
        return None


class AnomalyDetection:
    """The detection step as a plain object (the Flink operator wraps it; tests call it)."""

    def __init__(
        self,
        profiles: dict[str, Profile],
        config: DetectorConfig,
        lateness: int,
        max_gap_days: int = 7,
    ):
        self.detector = Detector(profiles, config)
        self.lateness = dt.timedelta(seconds=lateness)
        self.max_gap_days = max_gap_days
        self.open_day: dt.date | None = None
        self.max_time: dt.datetime | None = None
        self.skipped_days = 0

    def process(self, line: str) -> list[OutputRow]:
        result = parse(line.encode())
        out: list[OutputRow] = []
        sale = result if isinstance(result, Sale) else None
        if isinstance(result, CampaignChange | ProductChange):
            self.detector.learn(result)
        if isinstance(result, Rejected):
            out.append(OutputRow.rejected(result.reason, line))
        when = event_time(line, sale)
        if when is not None:
            out += self._advance(when)
        if sale is not None:
            out += [OutputRow.outlier(o) for o in self.detector.process(sale)]
        return out

    def _advance(self, when: dt.datetime) -> list[OutputRow]:
        """Close every day whose end (plus lateness) the event time has passed."""
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        if self.max_time is None or when > self.max_time:
            self.max_time = when
        if self.open_day is None:
            self.open_day = when.date()
            return []
        out = []
        # Days strictly before this one are complete. After a silence longer than max_gap_days
        # (an outage, or a record stamped far in the future) the silent days are not evaluated:
        # no data is not a drop, and a year-5000 stamp must not make the job close a million
        # days one by one.
        try:
            closable = (self.max_time - self.lateness).astimezone(dt.UTC).date()
        except OverflowError:  # a stamp in year 1: nothing can close before it
            return []
        if (closable - self.open_day).days > self.max_gap_days:
            out += [OutputRow.outlier(o) for o in self.detector.end_of_day(self.open_day)]
            skipped = (closable - self.open_day).days - 1
            self.skipped_days += skipped
            logger.warning(
                "event time jumped from %s to %s: %d silent days not evaluated for drops",
                self.open_day, self.max_time, skipped,
            )  # fmt: skip
            self.open_day = closable
        while self.open_day < closable:
            out += [OutputRow.outlier(o) for o in self.detector.end_of_day(self.open_day)]
            self.open_day += dt.timedelta(days=1)
        return out


@dataclass
class Held:
    """What a Python form of the detection operator keeps between records, as one value of its
    keyed state: the detection, the records waiting for the watermark, the timer it set. The
    job's operator is Java now (``DetectFunction``, the same fields); this is the form
    ``benchmarks/anomaly_job.py`` measures beside it, here (not in a ``__main__``) so that the
    Python workers can unpickle it."""

    step: AnomalyDetection
    pending: list[tuple[int, int, str]] = field(default_factory=list)  # heap: (time, arrival, line)
    arrivals: int = 0
    timer: int | None = None  # the one event-time timer set (earliest pending)
