"""Kinesis shards that stay whole under concurrent writers (an in-process moto patch).

moto's ``Shard.put_record`` numbers a record "last sequence number + 1" without a lock (its own
comment says it is not safe for concurrency): two ``PutRecords`` calls that reach the same shard at
the same time — a Flink sink with parallel writers, the producer beside a job's sink — can get the
same sequence number, and the second record silently replaces the first. ``get_records`` iterates
the shard's records while a writer may be inserting. On AWS a shard sequences every write and
loses none, so here both run under one lock per shard.

A shard closed by resharding (``SplitShard``, ``MergeShards``, ``UpdateShardCount``) ends: once a
reader has read its last record, AWS answers ``GetRecords`` without a ``NextShardIterator``, which
is how a consumer knows to go on with the children. moto hands out iterators forever; here a
closed shard's iterator past its last record is ``None``, as on AWS. And a write goes to the open
shard whose hash key range holds the key: moto routes it to the first shard of any state whose
range holds it, so after a split every write still lands in the closed parent. A split or a merge
leaves the records where they were written: moto moves a split shard's records into its children
and copies merged shards' records into the new one, so a consumer reading parents before children
(as Kinesis consumers must) would read them twice, or under new sequence numbers.

Not emulated: the per-shard write and read limits (see :mod:`emulation.kinesis`).
"""

from __future__ import annotations

import functools
import hashlib
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

    from moto.kinesis.models import KinesisBackend, Stream
    from moto.kinesis.utils import decompose_shard_iterator

    original_route = Stream.get_shard_for_key

    @functools.wraps(original_route)
    def get_shard_for_key(self: Any, partition_key: str, explicit_hash_key: str) -> Any:
        shard = original_route(self, partition_key, explicit_hash_key)  # validates the key
        if shard is None or shard.is_open:
            return shard
        # moto's first match is a closed shard: the key belongs to the open one covering it.
        key = (int(explicit_hash_key) if explicit_hash_key
               else int(hashlib.md5(partition_key.encode("utf-8")).hexdigest(), 16))  # fmt: skip
        for candidate in self.shards.values():
            if candidate.is_open and candidate.starting_hash <= key < candidate.ending_hash:
                return candidate
        return shard

    Stream.get_shard_for_key = get_shard_for_key

    original_split, original_merge = Stream.split_shard, Stream.merge_shards

    @functools.wraps(original_split)
    def split_shard(self: Any, shard_to_split: str, new_starting_hash_key: str) -> None:
        kept = self.shards[shard_to_split].records if shard_to_split in self.shards else None
        before = set(self.shards)
        original_split(self, shard_to_split, new_starting_hash_key)
        for key in set(self.shards) - before:
            self.shards[key].records.clear()  # a child starts empty
        self.shards[shard_to_split].records = kept

    @functools.wraps(original_merge)
    def merge_shards(self: Any, shard_to_merge: str, adjacent_shard_to_merge: str) -> None:
        before = set(self.shards)
        original_merge(self, shard_to_merge, adjacent_shard_to_merge)
        for key in set(self.shards) - before:
            self.shards[key].records.clear()

    Stream.split_shard, Stream.merge_shards = split_shard, merge_shards

    original_get = KinesisBackend.get_records

    @functools.wraps(original_get)
    def get_records(self: Any, stream_arn: str | None, shard_iterator: str,
                    limit: int | None) -> Any:  # fmt: skip
        next_iterator, records, behind = original_get(self, stream_arn, shard_iterator, limit)
        if next_iterator is None:
            return next_iterator, records, behind
        stream_name, shard_id, position = decompose_shard_iterator(next_iterator)
        named = None if stream_name in ("", "None") else stream_name
        shard = self.describe_stream(stream_arn=stream_arn, stream_name=named).get_shard(shard_id)
        if not shard.is_open and int(position) >= shard.get_max_sequence_number():
            return None, records, behind  # the closed shard is read to its end
        return next_iterator, records, behind

    KinesisBackend.get_records = get_records
