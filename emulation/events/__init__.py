"""EventBridge → Step Functions targets, which moto does not deliver.

moto routes EventBridge events to SQS, logs, other buses and API destinations, but a rule whose
target is a state machine raises ``NotImplementedError`` (HTTP 500 on ``PutEvents``; silently
nothing on S3 notifications). This gap-filler makes such targets start the state machine with the
event as input, the way AWS does:

* **Embedded moto** (same process): moto's rule dispatch is extended so a ``states`` target starts
  an execution in moto's own Step Functions backend. ``ListTargetsByRule`` shows the real target.
* **External moto server** (``AWS_ENDPOINT_URL`` points at a ``moto_server``): its code cannot be
  extended from here, so :func:`put_targets` registers a relay queue (SQS, which moto does deliver
  to) as the rule's target, and a relay thread starts the execution for each event it receives.
  ``ListTargetsByRule`` then shows the relay queue ``dfp-events-relay-…``, tagged with the state
  machine's ARN.
* **LocalStack and other endpoints** deliver to Step Functions themselves; targets pass through.

Target input follows AWS: the whole event by default, or ``Input`` (constant JSON), ``InputPath``
(dotted JSONPath such as ``$.detail``) or ``InputTransformer``. The event is put in AWS's shape
first: ``time`` as ISO-8601 (``2026-11-28T06:00:00Z``), not moto's epoch float, and an S3 object's
``etag`` under that name, not moto's ``eTag``.

EventBridge delivers at least once. :func:`deliver_twice` makes the embedded world deliver a share
of matched events to their state machine targets a second time (a second execution with the same
input, as a duplicate delivery starts on AWS), drawn from a seeded generator; each
:class:`Delivery` says whether it was such a copy (fault scenarios use it).

Not emulated: retry policies and dead-letter queues of targets, the target's ``RoleArn``
permissions (never checked), event archives and replays for state machine targets, and
``InputPath`` expressions beyond dotted paths (filters, wildcards).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from emulation._patching import moto_patch
from emulation.store import STORE

if TYPE_CHECKING:
    from emulation.world import World

logger = logging.getLogger(__name__)

RELAY_QUEUE_PREFIX = "dfp-events-relay-"
_TAG_STATE_MACHINE = "dfp:state-machine-arn"
_TAG_RULE = "dfp:rule"
_TAG_OPTIONS = "dfp:input-options-"  # + two digits: the target's input options, JSON, chunked
_TAG_CHUNK = 250
_TAG_MAX_CHUNKS = 40


class ValidationException(ValueError):
    """A target definition AWS would reject (named like AWS's error code)."""


@dataclass
class Delivery:
    """One event handed to a state machine target."""

    rule: str
    target_id: str
    state_machine_arn: str
    execution_arn: str | None
    error: str | None = None
    duplicate: bool = False  # a second delivery of the same event (at-least-once)


@dataclass
class EventsState:
    """Per-account, per-region state of this gap-filler."""

    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    twice: float = 0.0  # share of matched events delivered a second time
    draws: Any = None  # the seeded generator that picks them

    def record(self, delivery: Delivery) -> None:
        with self.lock:
            self.deliveries.append(delivery)

    def again(self) -> bool:
        """Whether this delivery is to be repeated (at-least-once)."""
        with self.lock:
            return bool(self.twice) and self.draws.random() < self.twice


def state(account: str, region: str) -> EventsState:
    """The deliveries made so far in ``account``/``region`` (reset with the world)."""
    return STORE.get("events", account, region, EventsState)


def deliver_twice(account: str, region: str, share: float, seed: int) -> None:
    """Deliver ``share`` of matched events to state machine targets twice (0 stops it)."""
    import random

    events = state(account, region)
    with events.lock:
        events.twice = share
        events.draws = random.Random(f"{seed}|events")


def is_state_machine_arn(arn: str) -> bool:
    parts = arn.split(":")
    return len(parts) >= 7 and parts[2] == "states" and parts[5] == "stateMachine"


# --------------------------------------------------------------------------------- event input
def aws_event(event: dict[str, Any]) -> dict[str, Any]:
    """The event as AWS sends it to a target.

    moto renders ``time`` as epoch seconds and the S3 object's ETag as ``eTag``; AWS sends
    ISO-8601 UTC and ``etag``. Workflows written against AWS's shape must see AWS's shape.
    """
    out = copy.deepcopy(event)
    if isinstance(out.get("time"), int | float):
        out["time"] = datetime.fromtimestamp(out["time"], tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    obj = out.get("detail", {}).get("object") if out.get("source") == "aws.s3" else None
    if isinstance(obj, dict) and "eTag" in obj and "etag" not in obj:
        obj["etag"] = obj.pop("eTag")
    return out


def _resolve_path(document: Any, path: str) -> Any:
    if path in ("$", "$."):
        return document
    if not path.startswith("$."):
        raise ValidationException(f"InputPath {path!r} must start with '$.'")
    node = document
    for step in path[2:].split("."):
        if not step or any(c in step for c in "[]*?()@"):
            raise ValidationException(
                f"InputPath {path!r}: only dotted paths are emulated (step {step!r})"
            )
        if not isinstance(node, dict) or step not in node:
            return None
        node = node[step]
    return node


def validate_target(target: dict[str, Any]) -> None:
    """Reject input options AWS rejects at ``PutTargets`` time."""
    given = [k for k in ("Input", "InputPath", "InputTransformer") if k in target]
    if len(given) > 1:
        raise ValidationException(
            f"target {target.get('Id')!r}: only one of Input, InputPath, InputTransformer "
            f"may be set (got {', '.join(given)})"
        )
    if "Input" in target:
        try:
            json.loads(target["Input"])
        except ValueError as exc:
            raise ValidationException(
                f"target {target.get('Id')!r}: Input is not valid JSON ({exc})"
            ) from None
    if "InputPath" in target:
        _resolve_path({}, target["InputPath"])


_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")


def render_input_template(
    event: dict[str, Any], transformer: dict[str, Any], rule_name: str
) -> str:
    """Apply an ``InputTransformer`` as EventBridge does.

    A placeholder inside a JSON string is replaced by the value's text; outside a string by the
    value as JSON (so strings get quotes). Missing paths give ``null`` (empty inside a string).
    Predefined placeholders: ``aws.events.rule-name``, ``aws.events.event`` and
    ``aws.events.event.json``.
    """
    values: dict[str, Any] = {
        name: _resolve_path(event, path)
        for name, path in transformer.get("InputPathsMap", {}).items()
    }
    values.setdefault("aws.events.rule-name", rule_name)
    values.setdefault("aws.events.event", event)
    values.setdefault("aws.events.event.json", event)
    template = transformer.get("InputTemplate", "")
    out: list[str] = []
    position = 0
    for match in _PLACEHOLDER.finditer(template):
        name = match.group(1)
        if name not in values:
            continue
        before = template[position : match.start()]
        out.append(before)
        value = values[name]
        prefix = "".join(out)
        inside_string = len(re.findall(r'(?<!\\)"', prefix)) % 2 == 1
        if inside_string:
            text = "" if value is None else value if isinstance(value, str) else json.dumps(value)
            out.append(json.dumps(text)[1:-1])
        else:
            out.append(json.dumps(value))
        position = match.end()
    out.append(template[position:])
    return "".join(out)


def target_input(event: dict[str, Any], target: dict[str, Any], rule_name: str = "") -> str:
    """The execution input AWS would give ``target`` for ``event``, as a JSON string."""
    validate_target(target)
    if "Input" in target:
        return target["Input"]
    if "InputPath" in target:
        return json.dumps(_resolve_path(event, target["InputPath"]))
    if "InputTransformer" in target:
        return render_input_template(event, target["InputTransformer"], rule_name)
    return json.dumps(event)


# ------------------------------------------------------------------------- embedded moto patch


@moto_patch("events")
def install_in_process() -> None:
    """Extend the in-process moto so rules deliver to state machine targets (idempotent)."""
    from moto.events.models import Rule

    original = Rule.send_to_targets

    def send_to_targets(self, original_event, transform_input: bool = True):  # type: ignore[no-untyped-def]
        states = [t for t in self.targets if is_state_machine_arn(t["Arn"])]
        if not states:
            return original(self, original_event, transform_input)
        if getattr(self, "state", "ENABLED") != "ENABLED":
            return None
        if not self.event_pattern.matches_event(original_event):
            return None
        for target in states:
            _start_in_process(self, target, original_event)
        others = [t for t in self.targets if not is_state_machine_arn(t["Arn"])]
        if others:
            shadow = copy.copy(self)
            shadow.targets = others
            original(shadow, original_event, transform_input)
        return None

    Rule.send_to_targets = send_to_targets


def _start_in_process(rule: Any, target: dict[str, Any], event: dict[str, Any]) -> None:
    from moto.stepfunctions.responses import get_backend

    events = state(rule.account_id, rule.region_name)
    copies = 2 if events.again() else 1
    for copy_number in range(copies):
        try:
            payload = target_input(aws_event(event), target, rule.name)
            backend = get_backend(rule.account_id, rule.region_name)
            execution = backend.start_execution(target["Arn"], str(uuid.uuid4()), payload)
            events.record(Delivery(rule.name, target["Id"], target["Arn"],
                                   execution.execution_arn, duplicate=copy_number > 0))  # fmt: skip
            logger.debug("rule %s started %s", rule.name, execution.execution_arn)
        except Exception as exc:  # AWS drops a failed delivery after retries; we keep the reason
            logger.warning("rule %s could not start %s: %s", rule.name, target["Arn"], exc)
            events.record(Delivery(rule.name, target["Id"], target["Arn"], None,
                                   f"{type(exc).__name__}: {exc}",
                                   duplicate=copy_number > 0))  # fmt: skip


# ------------------------------------------------------------------- external moto: SQS relay
class Relay:
    """Starts state machine executions for events that an external moto delivered to SQS."""

    def __init__(self, world: World, poll_seconds: float = 0.2) -> None:
        self._world = world
        self._poll = poll_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tags: dict[str, dict[str, str]] = {}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="dfp-events-relay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def forget(self) -> None:
        """Drop cached queue tags (after a world reset the queues are gone)."""
        self._tags.clear()

    def relay_target(self, rule: str, bus: str, target: dict[str, Any]) -> dict[str, Any]:
        """Create the relay queue for ``target`` and return the SQS target to register instead."""
        sqs = self._world.client("sqs")
        digest = hashlib.sha256(f"{bus}/{rule}/{target['Id']}".encode()).hexdigest()[:20]
        tags = {_TAG_STATE_MACHINE: target["Arn"], _TAG_RULE: rule}
        options = {k: target[k] for k in ("Input", "InputPath", "InputTransformer") if k in target}
        encoded = json.dumps(options, sort_keys=True)
        chunks = [encoded[i : i + _TAG_CHUNK] for i in range(0, len(encoded), _TAG_CHUNK)]
        if len(chunks) > _TAG_MAX_CHUNKS:
            raise ValidationException(
                f"target {target['Id']!r}: input options longer than "
                f"{_TAG_CHUNK * _TAG_MAX_CHUNKS} characters cannot be relayed"
            )
        tags.update({f"{_TAG_OPTIONS}{i:02d}": chunk for i, chunk in enumerate(chunks)})
        url = sqs.create_queue(QueueName=RELAY_QUEUE_PREFIX + digest, tags=tags)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        # The relay applies the input options itself, so the queue receives the whole event.
        return {"Id": target["Id"], "Arn": arn}

    def _loop(self) -> None:
        while not self._stop.wait(self._poll):
            try:
                self.pump()
            except Exception as exc:  # the endpoint may be resetting or going away
                logger.debug("events relay poll failed: %s", exc)

    def pump(self) -> int:
        """Deliver what is waiting in the relay queues now; returns how many were delivered."""
        sqs = self._world.client("sqs")
        urls = sqs.list_queues(QueueNamePrefix=RELAY_QUEUE_PREFIX).get("QueueUrls", [])
        delivered = 0
        for url in urls:
            tags = self._tags.get(url)
            if tags is None:
                tags = self._tags[url] = sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            for message in messages:
                self._deliver(tags, message["Body"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                delivered += 1
        return delivered

    def _deliver(self, tags: dict[str, str], body: str) -> None:
        world = self._world
        arn = tags[_TAG_STATE_MACHINE]
        rule = tags.get(_TAG_RULE, "")
        record = state(world.account_id, world.region).record
        try:
            encoded = "".join(tags[k] for k in sorted(tags) if k.startswith(_TAG_OPTIONS))
            target = {"Id": rule, "Arn": arn, **json.loads(encoded or "{}")}
            payload = target_input(aws_event(json.loads(body)), target, rule)
            execution = world.client("stepfunctions").start_execution(
                stateMachineArn=arn, name=str(uuid.uuid4()), input=payload
            )
            record(Delivery(rule, rule, arn, execution["executionArn"]))
        except Exception as exc:
            logger.warning("events relay could not start %s: %s", arn, exc)
            record(Delivery(rule, rule, arn, None, f"{type(exc).__name__}: {exc}"))


# ------------------------------------------------------------------------------- public API
def put_targets(
    world: World, rule: str, targets: list[dict[str, Any]], event_bus_name: str = "default"
) -> dict[str, Any]:
    """``events.put_targets`` that makes state machine targets work on every local endpoint."""
    for target in targets:
        validate_target(target)
    relay = world.events_relay
    if relay is not None:
        targets = [
            relay.relay_target(rule, event_bus_name, t) if is_state_machine_arn(t["Arn"]) else t
            for t in targets
        ]
    return world.client("events").put_targets(
        Rule=rule, EventBusName=event_bus_name, Targets=targets
    )


def list_targets(world: World, rule: str, event_bus_name: str = "default") -> list[dict[str, Any]]:
    """The rule's targets as :func:`put_targets` was given them: a relayed state machine target
    is read back from its relay queue (its ARN and input options), so callers see the same
    targets on every endpoint."""
    targets = world.client("events").list_targets_by_rule(Rule=rule, EventBusName=event_bus_name)
    sqs = None
    found = []
    for target in targets.get("Targets", []):
        queue = target["Arn"].rsplit(":", 1)[-1]
        if not (target["Arn"].startswith("arn:aws:sqs:") and queue.startswith(RELAY_QUEUE_PREFIX)):
            found.append(target)
            continue
        sqs = sqs or world.client("sqs")
        url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        tags = sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
        encoded = "".join(tags[k] for k in sorted(tags) if k.startswith(_TAG_OPTIONS))
        found.append({"Id": target["Id"], "Arn": tags[_TAG_STATE_MACHINE],
                      **json.loads(encoded or "{}")})  # fmt: skip
    return found
