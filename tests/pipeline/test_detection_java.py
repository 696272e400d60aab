"""The job's detection in the JVM (``pipeline/anomaly/detection``) against the reference detector
(:mod:`pipeline.anomaly.step`): the same rows for the same records, in the same order, on a
simulated world's whole stream and on thousands of hostile records."""

from __future__ import annotations

import datetime as dt
import json
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest

from emulation.kinesisanalyticsv2 import ConnectorMissing, flink_classpath
from harness.simulation import simulate
from harness.stages.anomaly import (
    _second,
    comparable_reason,
    heartbeats,
    history_profiles,
    reference,
)
from pipeline.anomaly.detector import DetectorConfig, profiles_from_document
from pipeline.anomaly.step import AnomalyDetection, OutputRow

REPLAY = "dev.dfpharness.anomaly.Replay"


@pytest.fixture(scope="module")
def classpath() -> str:
    try:
        return flink_classpath()
    except ConnectorMissing as exc:
        pytest.skip(f"{exc}; tests/pipeline/test_detector.py covers the rules in the reference "
                    "detector")  # fmt: skip


def in_java(classpath: str, tmp: Path, lines: list[str], profiles: dict, config: dict | None = None,
            lateness: int = 600, max_gap_days: int = 7) -> list[list[Any]]:  # fmt: skip
    """The JVM detection's rows for ``lines`` processed in this order."""
    source, result = tmp / "replay-in.json", tmp / "replay-out.json"
    source.write_text(json.dumps({"profiles": profiles, "config": config or {}, "lines": lines,
                                  "lateness": lateness, "max_gap_days": max_gap_days}))  # fmt: skip
    subprocess.run(["java", "-XX:TieredStopAtLevel=1", "-cp", classpath, REPLAY, str(source),
                    str(result)], check=True, capture_output=True, timeout=300)  # fmt: skip
    return json.loads(result.read_text())["rows"]


def in_python(lines: list[str], profiles: dict, lateness: int = 600,
              max_gap_days: int = 7) -> list[list[Any]]:  # fmt: skip
    step = AnomalyDetection(profiles_from_document(profiles), DetectorConfig(), lateness,
                            max_gap_days)  # fmt: skip
    return [list(row) for line in lines for row in step.process(line)]


def comparable(rows: list[list[Any]]) -> list[list[Any]]:
    """Rows as the run compares them (:func:`comparable_reason`)."""
    reason = OutputRow._fields.index("reason")
    return [[*row[:reason], comparable_reason(str(row[reason])), *row[reason + 1 :]]
            if row[0] == "rejected" else list(row) for row in rows]  # fmt: skip


def test_the_jvm_detection_matches_the_reference_on_a_simulated_stream(classpath, tmp_path) -> None:
    sim = simulate("smoke", seed=3)
    profiles = history_profiles(sim)
    beats = heartbeats("shop", sim.world.window_end + dt.timedelta(hours=1))
    lines = [*sim.cdc_stream["message"].to_pylist(), *[b.decode() for b in beats]]
    want = [list(row) for row in reference(lines, profiles, {})]  # in event-time order
    ordered = [line for _, line in sorted(enumerate(lines), key=lambda i: (_second(i[1]), i[0]))]
    got = in_java(classpath, tmp_path, ordered, profiles)
    assert {r[7] for r in want if r[0] == "outlier"} >= {"spike", "price_glitch",
                                                         "duplicate_burst"}  # fmt: skip
    assert got == want


# Values a broken producer puts in a field: other types, other forms, out of range.
ODD_VALUES = [
    None, True, False, 0, -1, 1, 7, 2**31, 2**63, -(2**70), 2.0, 2.5, -0.0, 1e300, float("nan"),
    float("inf"), "", " 12 ", "12\n", "+4", "1_000", "3.50", "nan", "-inf", "abc", "١٢", [], [1],
    {}, {"a": "b"}, "P1", "P'2", 'P"3', "é", "\u00a0x", "2025-03-03", "2025-03-03T10:00",
    "2025-03-03 10:00:00.5+02:00", "20250303T100000", "2025-03-03T25:00:00Z",
    "2025-02-30T10:00:00Z", "2025-03-03T10:00:00+05:30", "2025-03-03T10:00:00.1234567Z",
    "2025-03-03T10:00:00-00:30",
]  # fmt: skip
SALE_FIELDS = ["sale_id", "product_id", "quantity", "unit_price", "channel", "sold_at"]


def _reference_row(rng: random.Random, table: str) -> dict[str, Any]:
    if table == "products":
        return {"product_id": rng.choice(["P1", "P2", 5]), "category": rng.choice(["c1", None]),
                "list_price": rng.choice([10.0, None, "x", 0, 30.0])}  # fmt: skip
    return {"campaign_id": rng.choice(["C1", "C2"]), "scope": rng.choice(["product", "category"]),
            "product_id": "P1", "category": "c1", "end_date": "2025-03-20",
            "start_date": rng.choice(["2025-03-01", "x", "20250301"]),
            "discount": rng.choice([0.5, 0.9, 1.5, "0.7"]),
            "channel": rng.choice([None, "web", ""])}  # fmt: skip


def _hostile(rng: random.Random, n: int) -> list[str]:
    """``n`` records around real sales: a field of a sale (or of its DMS envelope, or of a shop
    event) replaced by an odd value or removed; campaign and product changes, some unreadable;
    repeated lines (bursts); text that is not one JSON object."""
    start = dt.datetime(2025, 3, 3, 8, tzinfo=dt.UTC)
    out = []
    for i in range(n):
        stamp = (start + dt.timedelta(minutes=7 * i + rng.randrange(5))).isoformat()
        stamp = stamp.replace("+00:00", "Z")
        row: dict[str, Any] = {
            "sale_id": 1000 + i, "product_id": rng.choice(["P1", "P2", "P3"]),
            "quantity": rng.choice([1, 2, 3, 40]), "channel": rng.choice(["web", "store"]),
            "unit_price": rng.choice([10.0, 5.0, 9.99, 99.0, 0.5]), "sold_at": stamp,
        }  # fmt: skip
        kind = rng.randrange(10)
        if kind < 5:  # one field changed or removed
            field = rng.choice(SALE_FIELDS)
            if rng.random() < 0.15:
                del row[field]
            else:
                row[field] = rng.choice(ODD_VALUES)
        if kind == 9 and rng.random() < 0.5:  # the same line again under another id: a burst
            row["sale_id"] = 5000 + i
        if kind < 8:
            table = rng.choice(["sales"] * 6 + ["products", "campaigns", "other"])
            operations = ["insert", "load", "update", "delete"][: 4 if i % 3 == 0 else 2]
            meta: Any = {"timestamp": stamp, "record-type": rng.choice(["data"] * 9 + ["control"]),
                         "operation": rng.choice(operations), "table-name": table}  # fmt: skip
            if table in ("products", "campaigns"):
                row = _reference_row(rng, table)
            if rng.random() < 0.05:
                meta = rng.choice(ODD_VALUES)
            data = row if rng.random() > 0.05 else rng.choice(ODD_VALUES)
            message: Any = {"data": data, "metadata": meta}
        elif kind == 8:
            version = rng.choice([1, 1.0, "1", True, 2])
            message = {"event_type": "order_line", "schema_version": version, **row}
        else:
            meta = {"timestamp": stamp, "record-type": "data", "operation": "insert",
                    "table-name": "sales"}  # fmt: skip
            message = {"data": row, "metadata": meta}
        text = json.dumps(message)
        if rng.random() < 0.03:
            text = rng.choice([text[: len(text) // 2], text + " x", "[1, 2]", '"x"', "", "{} {}",
                               text.replace("1000", "01000", 1)])  # fmt: skip
        out.append(text)
    return out


def test_the_jvm_detection_matches_the_reference_on_hostile_records(classpath, tmp_path) -> None:
    profiles = {
        "P1": {"line_qty_p99": 3.0, "price_reference": 10.0, "units_by_weekday": [2.0] * 7,
               "dispersion": 1e6, "category": "c1", "list_price": 12.0,
               "promotions": [["C9", "2025-03-01", "2025-03-10", 0.6, "all"]]},
        "P2": {"line_qty_p99": 2.0, "price_reference": 5.0, "units_by_weekday": [30.0] * 7,
               "dispersion": 50.0},
    }  # fmt: skip
    lines = _hostile(random.Random(0), 3000)
    want = in_python(lines, profiles, max_gap_days=3)
    got = in_java(classpath, tmp_path, lines, profiles, max_gap_days=3)
    kinds = {(r[0], str(r[7]).split(":")[0].split(" ")[0]) for r in want}
    assert len(kinds) > 8  # outliers of each rule and rejections of several kinds
    for g, w in zip(comparable(got), comparable(want), strict=False):
        assert g == w
    assert len(got) == len(want)
