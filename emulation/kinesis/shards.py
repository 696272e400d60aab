"""Kinesis shards that stay whole under concurrent writers (an in-process moto patch).

moto's ``Shard.put_record`` numbers a record "last sequence number + 1" without a lock (its own
comment says it is not safe for concurrency): two ``PutRecords`` calls that reach the same shard at
the same time — a Flink sink with parallel writers, the producer beside a job's sink — can get the
same sequence number, and the second record silently replaces the first. ``get_records`` iterates
the shard's records while a writer may be inserting. On AWS a shard sequences every write and
loses none, so here both run under one lock per shard.

Not emulated: the per-shard write and read limits (see :mod:`emulation.kinesis`).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from emulation._patching import moto_patch

_LOCKS_GUARD = threading.Lock()


def _lock_of(shard: Any) -> threading.RLock:
    lock = shard.__dict__.get("_dfp_lock")
    if lock is None:
        with _LOCKS_GUARD:
            lock = shard.__dict__.setdefault("_dfp_lock", threading.RLock())
    return lock


def _serialised(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _lock_of(self):
            return method(self, *args, **kwargs)

    return call


@moto_patch("kinesis")
def install_in_process() -> None:
    from moto.kinesis.models import Shard

    for name in ("put_record", "get_records", "get_sequence_number_at"):
        setattr(Shard, name, _serialised(getattr(Shard, name)))
