"""One store for the state of every gap-filler, keyed by service, account and region.

Like moto's backends: each gap-filler asks the store for its per-account, per-region state
object; :meth:`Store.reset` forgets all of it, which is what a test's world reset calls.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class Store:
    """Per-(service, account, region) state objects, created on first use."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._state: dict[tuple[str, str, str], Any] = {}

    def get(self, service: str, account: str, region: str, factory: Callable[[], T]) -> T:
        with self._lock:
            key = (service, account, region)
            if key not in self._state:
                self._state[key] = factory()
            return self._state[key]

    def reset(self) -> None:
        with self._lock:
            self._state.clear()


STORE = Store()
