"""Throttling on demand: Kinesis answering ``ProvisionedThroughputExceededException``.

An in-process moto patch.

A shard over its limits (1 MiB/s or 1,000 records/s in, five reads a second out) refuses work: a
``PutRecords`` call gets some entries back with ``ErrorCode`` set to the throttling code (or, when
the whole call is over, an HTTP 400 with that code), and a ``GetRecords`` call an HTTP 400. Local
endpoints never do this, so the retry paths of every client (the producer, Firehose's reader, the
Flink connector) would never run. :func:`throttle` makes the embedded Kinesis refuse a share of
each for the streams named, and counts what it refused.

Which entries and calls are refused is drawn from a random generator seeded per stream: the same
sequence of calls gets the same answers, so a single producer sees the same throttling on every
run. Reads come from several clients at once and their order varies; their throttling changes
only how long reads take, never what they return.

:func:`hold_reads` keeps the records after a given position of each shard out of ``GetRecords``
answers, as if they had not arrived yet: a drill can let a consumer read a stream part by part
(the records are there for everyone else: only reads of that stream are held).

:func:`fail_reads` makes every ``GetRecords`` on a stream answer ``InternalFailure`` (HTTP 500,
as a Kinesis having a bad moment does) until it is called off: a consumer's SDK retries, then
gives up, and what the consumer does next (a Flink source fails its task, and Flink restarts the
job from its latest checkpoint) is what a drill looks at.

Not emulated: the actual limits (nothing is refused unless asked for), ``LimitExceededException``
on control-plane calls, and ``KMSThrottlingException``.
"""

from __future__ import annotations

import functools
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from emulation._patching import moto_patch
from emulation.store import STORE

THROTTLED = "ProvisionedThroughputExceededException"


@dataclass
class Rates:
    """Shares of refused work on one stream."""

    put_records_entries: float = 0.0
    put_records_calls: float = 0.0
    get_records_calls: float = 0.0
    seed: int = 0


@dataclass
class _Throttling:
    rates: dict[str, Rates] = field(default_factory=dict)
    refused: Counter[str] = field(default_factory=Counter)  # "<stream>:<what>" → count
    calls: Counter[str] = field(default_factory=Counter)  # "<stream>:<api>" → calls seen
    _random: dict[tuple[str, str], random.Random] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # stream → shard → the last sequence number GetRecords may return (None: nothing)
    holds: dict[str, dict[str, int | None]] = field(default_factory=dict)
    failing: set[str] = field(default_factory=set)  # streams whose reads answer InternalFailure
    failed_reads: Counter[str] = field(default_factory=Counter)  # stream → reads so answered

    def draw(self, stream: str, what: str) -> float:
        key = (stream, what)
        if key not in self._random:
            self._random[key] = random.Random(f"{self.rates[stream].seed}|{stream}|{what}")
        return self._random[key].random()


def _state(account: str, region: str) -> _Throttling:
    return STORE.get("kinesis-faults", account, region, _Throttling)


def throttle(account: str, region: str, stream: str, rates: Rates) -> None:
    """Refuse a share of the work on ``stream`` from now on (all zero: stop refusing)."""
    state = _state(account, region)
    with state.lock:
        state.rates[stream] = rates
        for key in [k for k in state._random if k[0] == stream]:
            del state._random[key]
        for counter in (state.refused, state.calls):
            for key in [k for k in counter if k.startswith(f"{stream}:")]:
                del counter[key]


def hold_reads(
    account: str, region: str, stream: str, visible: dict[str, str | None] | None
) -> None:
    """From now on, ``GetRecords`` on ``stream`` returns no record after ``visible[shard]`` (the
    last sequence number readers may see; ``None``: none of that shard; a shard not named: all
    of it); ``visible=None`` lets everything through again. The iterators it hands out stay
    where the hold stopped them, so a reader gets the rest once the hold moves."""
    state = _state(account, region)
    with state.lock:
        if visible is None:
            state.holds.pop(stream, None)
        else:
            state.holds[stream] = {
                shard: None if seq is None else int(seq) for shard, seq in visible.items()
            }


def fail_reads(account: str, region: str, stream: str, failing: bool) -> int:
    """From now on (``failing``) or no longer, every ``GetRecords`` on ``stream`` answers
    ``InternalFailure`` (HTTP 500); returns how many reads have been so answered."""
    state = _state(account, region)
    with state.lock:
        if failing:
            state.failing.add(stream)
        else:
            state.failing.discard(stream)
        return state.failed_reads[stream]


def refused(account: str, region: str, stream: str) -> dict[str, int]:
    """What has been refused on ``stream`` (``put_records_entries``, ``put_records_calls``,
    ``get_records_calls``) and out of how many (``…_seen``) since throttling began."""
    state = _state(account, region)
    with state.lock:
        out = {}
        for what in ("put_records_entries", "put_records_calls", "get_records_calls"):
            out[what] = state.refused[f"{stream}:{what}"]
            out[f"{what}_seen"] = state.calls[f"{stream}:{what}"]
        return out


def _exception(message: str) -> Exception:
    """AWS's throttling error (HTTP 400, its code as the error type)."""
    from moto.core.exceptions import JsonRESTError

    return JsonRESTError(THROTTLED, message)  # HTTP 400, like AWS's


def _internal_failure(message: str) -> Exception:
    """Kinesis's ``InternalFailure``: HTTP 500, which SDKs retry and then give up on."""
    from moto.core.exceptions import JsonRESTError

    error = JsonRESTError("InternalFailure", message)
    error.code = 500
    return error


def _stream_name(stream_arn: str | None, stream_name: str | None) -> str:
    """The stream a call is about: by ARN when given (moto then composes iterators with the
    name ``None``), else by name."""
    if stream_arn:
        return str(stream_arn).rsplit("/", 1)[-1]
    return str(stream_name or "")


@moto_patch("kinesis-faults")
def install_in_process() -> None:
    from moto.kinesis.models import KinesisBackend
    from moto.kinesis.utils import compose_shard_iterator, decompose_shard_iterator

    original_put = KinesisBackend.put_records
    original_get = KinesisBackend.get_records

    @functools.wraps(original_put)
    def put_records(self: Any, stream_arn: str, stream_name: str,
                    records: list[dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
        state = _state(self.account_id, self.region_name)
        name = _stream_name(stream_arn, stream_name)
        rates = state.rates.get(name)
        if rates is None or not (rates.put_records_calls or rates.put_records_entries):
            return original_put(self, stream_arn, stream_name, records)
        with state.lock:
            state.calls[f"{name}:put_records_calls"] += 1
            state.calls[f"{name}:put_records_entries"] += len(records)
            if state.draw(name, "calls") < rates.put_records_calls:
                state.refused[f"{name}:put_records_calls"] += 1
                raise _exception(f"Rate exceeded for stream {name} under account "
                                 f"{self.account_id}.")  # fmt: skip
            refused = [state.draw(name, "entries") < rates.put_records_entries for _ in records]
            state.refused[f"{name}:put_records_entries"] += sum(refused)
        accepted = [r for r, no in zip(records, refused, strict=True) if not no]
        written = original_put(self, stream_arn, stream_name, accepted) if accepted else {
            "FailedRecordCount": 0, "Records": []}  # fmt: skip
        results = iter(written["Records"])
        merged = [
            {"ErrorCode": THROTTLED,
             "ErrorMessage": f"Rate exceeded for shard in stream {name} under account "
                             f"{self.account_id}."}
            if no else next(results)
            for no in refused
        ]  # fmt: skip
        return {"FailedRecordCount": written["FailedRecordCount"] + sum(refused),
                "Records": merged}  # fmt: skip

    @functools.wraps(original_get)
    def get_records(self: Any, stream_arn: str | None, shard_iterator: str,
                    limit: int | None) -> Any:  # fmt: skip
        state = _state(self.account_id, self.region_name)
        if state.failing:
            name = _stream_name(stream_arn, decompose_shard_iterator(shard_iterator)[0])
            if name in state.failing:
                with state.lock:
                    state.failed_reads[name] += 1
                raise _internal_failure(f"Internal service failure reading stream {name}.")
        if state.rates:
            name = _stream_name(stream_arn, decompose_shard_iterator(shard_iterator)[0])
            rates = state.rates.get(name)
            if rates is not None and rates.get_records_calls:
                with state.lock:
                    state.calls[f"{name}:get_records_calls"] += 1
                    refuse = state.draw(name, "get") < rates.get_records_calls
                    if refuse:
                        state.refused[f"{name}:get_records_calls"] += 1
                if refuse:
                    raise _exception(f"Rate exceeded for shard in stream {name} under account "
                                     f"{self.account_id}.")  # fmt: skip
        if state.holds:
            name, shard_id, _ = decompose_shard_iterator(shard_iterator)
            name = _stream_name(stream_arn, name)
            held = state.holds.get(name, {})
            if shard_id in held:
                return _held_get(self, stream_arn, shard_iterator, limit, held[shard_id])
        return original_get(self, stream_arn, shard_iterator, limit)

    def _held_get(self: Any, stream_arn: str | None, shard_iterator: str, limit: int | None,
                  last_visible: int | None) -> Any:  # fmt: skip
        stream_name, shard_id, last_read = decompose_shard_iterator(shard_iterator)
        next_iterator, records, behind = original_get(self, stream_arn, shard_iterator, limit)
        visible = [
            r
            for r in records
            if last_visible is not None and int(r.sequence_number) <= last_visible
        ]
        if len(visible) == len(records):
            return next_iterator, records, behind
        named = None if stream_name in ("", "None") else stream_name
        shard = self.describe_stream(stream_arn=stream_arn, stream_name=named
                                     ).get_shard(shard_id)  # fmt: skip
        position = int(visible[-1].sequence_number) if visible else int(last_read)
        return compose_shard_iterator(stream_name, shard, position), visible, behind

    KinesisBackend.put_records = put_records
    KinesisBackend.get_records = get_records
