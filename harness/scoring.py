"""Scoring detected outliers against the simulator's ground truth (the ``anomaly`` summary).

An outlier record is *correct* when it names a sale of an injected anomaly, or is a ``drop`` on a
product-day of an injected drop. A drop flagged on a stock-out day is counted correct too, and
reported separately as ``explained_by_stockout``: the sales really collapsed, for a reason the
truth knows but the stream cannot show (no inventory feed). Recall counts injected anomalies found
at least once; precision counts flagged records.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.anomaly.detector import Outlier


def score(
    outliers: list[Outlier], truth_anomalies: pa.Table, truth_daily: pa.Table
) -> dict[str, Any]:
    truth = truth_anomalies.to_pylist()
    by_sale = {sid: a["anomaly_id"] for a in truth for sid in a["sale_ids"]}
    drops = {(a["product_id"], a["start"].date()): a["anomaly_id"] for a in truth
             if a["type"] == "drop"}  # fmt: skip
    stocked_out = truth_daily.filter(pc.field("stockout"))
    stockouts = set(zip(stocked_out["product_id"].to_pylist(), stocked_out["date"].to_pylist(),
                        strict=True))  # fmt: skip
    found: set[str] = set()
    correct = explained = 0
    for outlier in outliers:
        if outlier.sale_id is not None:
            hit = by_sale.get(outlier.sale_id)
        else:
            key = (outlier.product_id, outlier.sold_at.date())
            hit = drops.get(key)
            if hit is None and key in stockouts:
                explained += 1
                correct += 1
                continue
        if hit:
            correct += 1
            found.add(hit)
    types = {a["anomaly_id"]: a["type"] for a in truth}
    injected = Counter(types.values())
    recall_by_type = {
        kind: sum(1 for a in found if types[a] == kind) / count for kind, count in injected.items()
    }
    # Nothing flagged in a world without anomalies is no false alarm: precision 1, not 0 (which
    # would read as "everything flagged was wrong"). Nothing flagged where there were some: 0.
    precision = correct / len(outliers) if outliers else (0.0 if truth else 1.0)
    recall = len(found) / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "recall_by_type": {k: round(v, 4) for k, v in sorted(recall_by_type.items())},
        "flagged": len(outliers),
        "injected": len(truth),
        "explained_by_stockout": explained,
    }
