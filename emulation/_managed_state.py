"""Taking over the state of moto's ``ManagedState`` models (job runs, query executions).

moto advances such a model through fixed states on every describe call. A gap-filler that really
runs the work instead attaches a tracker (any object with a ``state`` attribute) as ``_dfp``; the
model then reports the tracker's state and stops advancing by itself.
"""

from __future__ import annotations

from typing import Any


def follow_tracker(model: type) -> None:
    """Make instances of ``model`` report ``self._dfp.state`` when a tracker is attached."""
    original_status = model.status
    original_advance = model.advance

    def status_get(self: Any) -> str:
        tracked = getattr(self, "_dfp", None)
        return tracked.state if tracked else original_status.fget(self)

    def status_set(self: Any, value: str) -> None:
        if not getattr(self, "_dfp", None):
            original_status.fset(self, value)

    def advance(self: Any) -> None:
        if not getattr(self, "_dfp", None):
            original_advance(self)

    model.status = property(status_get, status_set)
    model.advance = advance
