"""EventBridge → Step Functions targets: S3 notifications and PutEvents start executions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from emulation import World
from emulation.events import ValidationException, put_targets, state

ECHO = {"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True}}}


def _machine(world: World, name: str = "echo") -> str:
    return world.client("stepfunctions").create_state_machine(
        name=name,
        definition=json.dumps(ECHO),
        roleArn=f"arn:aws:iam::{world.account_id}:role/sfn",
    )["stateMachineArn"]


def _executions(world: World, arn: str, count: int = 1) -> list[dict[str, Any]]:
    sfn = world.client("stepfunctions")

    def finished() -> list[dict[str, Any]] | None:
        listed = sfn.list_executions(stateMachineArn=arn)["executions"]
        if len(listed) < count or any(e["status"] == "RUNNING" for e in listed):
            return None
        return [sfn.describe_execution(executionArn=e["executionArn"]) for e in listed]

    return aws_wait(world, finished, f"{count} finished execution(s) of {arn}")


def aws_wait(world: World, probe, what: str):
    return world.wait_for(probe, what=what, timeout=30)


def _bucket(world: World, name: str) -> str:
    s3 = world.client("s3")
    create: dict[str, Any] = {"Bucket": name}
    if world.region != "us-east-1":
        create["CreateBucketConfiguration"] = {"LocationConstraint": world.region}
    s3.create_bucket(**create)
    s3.put_bucket_notification_configuration(
        Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    return name


def test_s3_object_created_starts_execution_with_the_s3_event(aws: World) -> None:
    bucket = _bucket(aws, "forecast-input")
    machine = _machine(aws)
    aws.client("events").put_rule(
        Name="on-input",
        EventPattern=json.dumps(
            {
                "source": ["aws.s3"],
                "detail-type": ["Object Created"],
                "detail": {"bucket": {"name": [bucket]}, "object": {"key": [{"prefix": "input/"}]}},
            }
        ),
    )
    put_targets(aws, "on-input", [{"Id": "wf", "Arn": machine, "RoleArn": "arn:aws:iam::1:role/e"}])
    s3 = aws.client("s3")
    s3.put_object(Bucket=bucket, Key="other/ignored.csv", Body=b"x")
    s3.put_object(Bucket=bucket, Key="input/target.csv", Body=b"item_id,timestamp,demand\n")

    (execution,) = _executions(aws, machine)
    assert execution["status"] == "SUCCEEDED"
    event = json.loads(execution["input"])
    assert event["source"] == "aws.s3"
    assert event["detail-type"] == "Object Created"
    assert event["account"] == aws.account_id
    assert event["region"] == aws.region
    assert event["detail"]["bucket"]["name"] == bucket
    assert event["detail"]["object"]["key"] == "input/target.csv"
    assert event["detail"]["object"]["size"] == len(b"item_id,timestamp,demand\n")
    head = s3.head_object(Bucket=bucket, Key="input/target.csv")
    assert event["detail"]["object"]["etag"] == head["ETag"].strip('"')
    assert event["time"].endswith("Z") and "T" in event["time"]  # ISO-8601 as AWS sends it
    # Against an external moto the relay thread records the delivery just after the execution
    # it started, which may already have finished: wait for the record, not only the execution.
    deliveries = aws_wait(
        aws, lambda: list(state(aws.account_id, aws.region).deliveries) or None, "the delivery"
    )
    assert [d.error for d in deliveries] == [None]


def test_put_events_starts_execution_with_the_event(aws: World) -> None:
    machine = _machine(aws)
    events = aws.client("events")
    events.put_rule(Name="orders", EventPattern=json.dumps({"source": ["shop.orders"]}))
    put_targets(aws, "orders", [{"Id": "wf", "Arn": machine}])
    response = events.put_events(
        Entries=[
            {"Source": "shop.orders", "DetailType": "OrderPlaced", "Detail": json.dumps({"n": 7})},
            {"Source": "shop.other", "DetailType": "Ignored", "Detail": json.dumps({"n": 0})},
        ]
    )
    assert response["FailedEntryCount"] == 0
    (execution,) = _executions(aws, machine)
    event = json.loads(execution["input"])
    assert event["detail"] == {"n": 7}
    assert event["detail-type"] == "OrderPlaced"
    assert event["id"] == response["Entries"][0]["EventId"]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"Input": json.dumps({"fixed": True})}, {"fixed": True}),
        ({"InputPath": "$.detail"}, {"n": 3, "who": "x"}),
        (
            {
                "InputTransformer": {
                    "InputPathsMap": {"who": "$.detail.who"},
                    "InputTemplate": '{"customer": <who>}',
                }
            },
            {"customer": "x"},
        ),
    ],
    ids=["Input", "InputPath", "InputTransformer"],
)
def test_target_input_options_shape_the_execution_input(aws: World, extra, expected) -> None:
    machine = _machine(aws)
    aws.client("events").put_rule(Name="shaped", EventPattern=json.dumps({"source": ["shop"]}))
    put_targets(aws, "shaped", [{"Id": "wf", "Arn": machine, **extra}])
    aws.client("events").put_events(
        Entries=[{"Source": "shop", "DetailType": "T", "Detail": json.dumps({"n": 3, "who": "x"})}]
    )
    (execution,) = _executions(aws, machine)
    assert json.loads(execution["input"]) == expected


def test_rule_with_two_state_machine_targets_starts_both(aws: World) -> None:
    first, second = _machine(aws, "first"), _machine(aws, "second")
    aws.client("events").put_rule(Name="fan", EventPattern=json.dumps({"source": ["fan"]}))
    put_targets(aws, "fan", [{"Id": "a", "Arn": first}, {"Id": "b", "Arn": second}])
    aws.client("events").put_events(Entries=[{"Source": "fan", "DetailType": "T", "Detail": "{}"}])
    assert len(_executions(aws, first)) == 1
    assert len(_executions(aws, second)) == 1


def test_conflicting_input_options_are_rejected_at_put_targets(aws: World) -> None:
    aws.client("events").put_rule(Name="bad", EventPattern=json.dumps({"source": ["x"]}))
    with pytest.raises(ValidationException, match="only one of"):
        put_targets(
            aws,
            "bad",
            [{"Id": "wf", "Arn": _machine(aws), "Input": "{}", "InputPath": "$.detail"}],
        )


def test_at_least_once_a_matched_event_can_start_its_target_twice(aws: World) -> None:
    from emulation.events import deliver_twice

    if aws.kind != "embedded":
        pytest.skip("duplicate deliveries are injected inside the embedded moto only; this "
                    "session's own run of this test covers it")  # fmt: skip

    bucket = _bucket(aws, "twice")
    machine = _machine(aws)
    aws.client("events").put_rule(
        Name="on-twice",
        EventPattern=json.dumps(
            {
                "source": ["aws.s3"],
                "detail-type": ["Object Created"],
                "detail": {"bucket": {"name": [bucket]}},
            }
        ),
    )
    put_targets(aws, "on-twice", [{"Id": "wf", "Arn": machine, "RoleArn": "arn:aws:iam::1:role/e"}])
    deliver_twice(aws.account_id, aws.region, 1.0, seed=3)
    aws.client("s3").put_object(Bucket=bucket, Key="a.csv", Body=b"x")
    first, second = _executions(aws, machine, count=2)
    assert first["input"] == second["input"]  # the same event, delivered again
    deliveries = state(aws.account_id, aws.region).deliveries
    assert [d.duplicate for d in deliveries] == [False, True]
    deliver_twice(aws.account_id, aws.region, 0.0, seed=3)  # off: one execution per event
    aws.client("s3").put_object(Bucket=bucket, Key="b.csv", Body=b"x")
    assert len(_executions(aws, machine, count=3)) == 3
