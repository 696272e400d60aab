"""Counts per hop and their reconciliation.

Every hop of a run (producer → stream → Firehose → staged bucket → …) reports what it received,
wrote and rejected, with the reasons. Within a hop, ``in`` must equal ``out + rejected``; along a
declared link, what the downstream hop received must equal what the upstream hop wrote. Anything
short is *lost*, anything over is *duplicated*, and either makes the run's reconciliation fail.

At-least-once delivery is accounted for, not hidden: a hop that delivers copies of what it
received (DMS after a task restart) counts them as ``redelivered``; a hop that drops copies it
recognises (the Glue job applying changes by transaction id) counts them as
``duplicates_removed``. A record that is not data for a hop and ends there by design (a DMS
control record at the Glue job) is ``consumed``. So
``in + redelivered = out + rejected + duplicates_removed + consumed``. ``retried``
and ``throttled`` say what the hop's retries cost (they move no records).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Hop:
    """The counts of one hop."""

    name: str
    received: int = 0
    written: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    redelivered: int = 0
    duplicates_removed: int = 0
    retried: int = 0
    throttled: int = 0
    consumed: int = 0

    def add(self, *, received: int = 0, written: int = 0, redelivered: int = 0,
            duplicates_removed: int = 0, retried: int = 0, throttled: int = 0,
            consumed: int = 0) -> None:  # fmt: skip
        self.received += received
        self.consumed += consumed
        self.written += written
        self.redelivered += redelivered
        self.duplicates_removed += duplicates_removed
        self.retried += retried
        self.throttled += throttled

    @property
    def gap(self) -> int:
        """Records neither written, rejected nor removed as copies (negative: more came out)."""
        return (self.received + self.redelivered - self.written - self.rejected
                - self.duplicates_removed - self.consumed)  # fmt: skip

    def reject(self, reason: str, count: int = 1) -> None:
        self.rejected += count
        self.reasons[reason] += count

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"in": self.received, "out": self.written, "rejected": self.rejected}
        if self.reasons:
            out["reasons"] = dict(sorted(self.reasons.items()))
        for name in ("redelivered", "duplicates_removed", "consumed", "retried", "throttled"):
            if getattr(self, name):  # shown when something happened (fault runs)
                out[name] = getattr(self, name)
        return out


class Ledger:
    """All hops of a run and the links between them."""

    def __init__(self) -> None:
        self._hops: dict[str, Hop] = {}
        self._links: list[tuple[tuple[str, ...], str]] = []
        self._extra: list[tuple[str, int, int]] = []
        self._lock = threading.Lock()

    def hop(self, name: str) -> Hop:
        with self._lock:
            if name not in self._hops:
                self._hops[name] = Hop(name)
            return self._hops[name]

    def link(self, upstream: str | list[str], downstream: str) -> None:
        """Declare that what ``upstream`` wrote (summed, if several) must arrive downstream."""
        sources = [upstream] if isinstance(upstream, str) else list(upstream)
        for name in [*sources, downstream]:
            self.hop(name)
        self._links.append((tuple(sources), downstream))

    def discrepancy(self, problem: str, *, lost: int = 0, duplicated: int = 0) -> None:
        """Record a mismatch found by content (not by counts), e.g. records swapped in transit."""
        with self._lock:
            self._extra.append((problem, lost, duplicated))

    def counts(self) -> dict[str, dict[str, Any]]:
        return {name: self._hops[name].as_dict() for name in sorted(self._hops)}

    def reconcile(self) -> dict[str, Any]:
        lost = duplicated = 0
        problems: list[str] = []
        for hop in sorted(self._hops.values(), key=lambda h: h.name):
            gap = hop.gap
            if gap > 0:
                lost += gap
                problems.append(f"{hop.name}: {gap} received but neither written nor rejected")
            elif gap < 0:
                duplicated += -gap
                problems.append(f"{hop.name}: {-gap} more written or rejected than received")
        for sources, downstream in self._links:
            upstream = " + ".join(sources)
            sent = sum(self._hops[name].written for name in sources)
            arrived = self._hops[downstream].received
            if arrived < sent:
                lost += sent - arrived
                problems.append(f"{upstream} → {downstream}: {sent - arrived} lost")
            elif arrived > sent:
                duplicated += arrived - sent
                problems.append(f"{upstream} → {downstream}: {arrived - sent} duplicated")
        for problem, extra_lost, extra_duplicated in self._extra:
            lost += extra_lost
            duplicated += extra_duplicated
            problems.append(problem)
        return {
            "ok": lost == 0 and duplicated == 0 and not self._extra,
            "lost": lost,
            "duplicated": duplicated,
            "problems": problems,
        }
