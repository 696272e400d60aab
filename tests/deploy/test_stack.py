"""The stack description validates, and provisioning creates exactly what it describes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from deploy.stack import STACK_FILE, StackError, load_stack
from emulation import World
from harness.provision import provision


def test_stack_description_loads() -> None:
    stack = load_stack()
    assert stack.streams["cdc"].shards >= 1
    assert stack.rules["forecast-input-created"].target in stack.state_machines
    assert stack.state_machines["forecast"].definition_path().is_file()


def test_stack_errors_name_file_and_key(tmp_path: Path) -> None:
    text = (Path(load_stack.__code__.co_filename).with_name("stack.yaml")).read_text()
    broken = tmp_path / "stack.yaml"
    broken.write_text(text.replace("target: forecast", "target: nowhere"))
    with pytest.raises(StackError, match=r"stack\.yaml: .*rules\.forecast-input-created\.target"):
        load_stack(broken)
    broken.write_text(text.replace("shards: 2", "shardz: 2"))
    with pytest.raises(StackError, match=r"streams\.cdc\.shardz: Extra inputs"):
        load_stack(broken)


def test_provisioned_world_matches_the_stack_description(aws: World) -> None:
    stack = load_stack()
    names = provision(aws, stack)
    kinesis = aws.client("kinesis")
    for key, spec in stack.streams.items():
        summary = kinesis.describe_stream_summary(StreamName=names.stream_name(key))
        assert summary["StreamDescriptionSummary"]["OpenShardCount"] == spec.shards
        assert summary["StreamDescriptionSummary"]["StreamARN"] == names.stream_arn(key)
    buckets = {b["Name"] for b in aws.client("s3").list_buckets()["Buckets"]}
    assert {names.bucket(k) for k in stack.buckets} <= buckets
    sfn = aws.client("stepfunctions")
    for key, spec in stack.state_machines.items():
        described = sfn.describe_state_machine(stateMachineArn=names.state_machine_arn(key))
        assert described["definition"] == spec.definition_path().read_text()  # same bytes
    events = aws.client("events")
    for key, rule in stack.rules.items():
        pattern = json.loads(events.describe_rule(Name=names.rule_name(key))["EventPattern"])
        assert pattern["detail"]["bucket"]["name"] == [names.bucket(rule.bucket)]
        assert pattern["detail"]["object"]["key"] == [{"prefix": rule.prefix}]
    for key, table in stack.tables.items():
        ttl = aws.client("dynamodb").describe_time_to_live(TableName=names.table_name(key))
        assert ttl["TimeToLiveDescription"]["AttributeName"] == table.ttl_attribute
    assert aws.client("glue").get_database(Name=stack.glue.database)["Database"]["Name"]


def test_provisioning_twice_is_idempotent(aws: World) -> None:
    stack = load_stack()
    first = provision(aws, stack)
    second = provision(aws, stack)
    assert first.names == second.names
    machines = aws.client("stepfunctions").list_state_machines()["stateMachines"]
    assert len(machines) == len(stack.state_machines)


def test_forecast_input_object_starts_the_forecast_workflow(aws: World) -> None:
    """S3 → EventBridge → Step Functions, wired from the stack description."""
    stack = load_stack()
    names = provision(aws, stack)
    rule = stack.rules["forecast-input-created"]
    bucket = names.bucket(rule.bucket)
    aws.client("s3").put_object(Bucket=bucket, Key=f"{rule.prefix}target.csv", Body=b"a,b\n")
    sfn = aws.client("stepfunctions")
    arn = names.state_machine_arn(rule.target)

    def finished():
        listed = sfn.list_executions(stateMachineArn=arn)["executions"]
        return [e for e in listed if e["status"] != "RUNNING"]

    (execution,) = aws.wait_for(finished, what="the forecast workflow execution")
    described = sfn.describe_execution(executionArn=execution["executionArn"])
    started_with = json.loads(described["input"])
    assert started_with["event"]["detail"]["object"]["key"] == f"{rule.prefix}target.csv"
    assert started_with["event"]["detail"]["bucket"]["name"] == bucket
    assert started_with["settings"] == names.rule_input("forecast-input-created", local=True)
    assert started_with["settings"]["role_arn"] == names.role_arn("sagemaker")
    # A CSV is not a manifest: the workflow stops at once, saying so.
    assert described["status"] == "FAILED"
    assert described["error"] == "InvalidManifest"
    # A folder marker (zero bytes, key ending in "/") is ignored.
    aws.client("s3").put_object(Bucket=bucket, Key=rule.prefix, Body=b"")

    def two_finished():
        listed = sfn.list_executions(stateMachineArn=arn)["executions"]
        done = [e for e in listed if e["status"] != "RUNNING"]
        return done if len(done) == 2 else None

    runs = aws.wait_for(two_finished, what="the folder-marker execution")
    folder = next(e for e in runs if e["executionArn"] != execution["executionArn"])
    assert sfn.describe_execution(executionArn=folder["executionArn"])["status"] == "SUCCEEDED"


def test_application_properties_resolve_from_the_stack() -> None:
    names = load_stack().resolve("210987654321", "eu-central-1")
    on_aws = {g["PropertyGroupId"]: g["PropertyMap"]
              for g in names.application_properties("anomaly", local=False)}  # fmt: skip
    local = {g["PropertyGroupId"]: g["PropertyMap"]
             for g in names.application_properties("anomaly", local=True)}  # fmt: skip
    consumer = on_aws["consumer.config.0"]
    assert consumer["input.stream.arn"] == names.stream_arn("cdc")
    assert consumer["aws.region"] == "eu-central-1"
    assert consumer["source.init.position"] == "LATEST"
    assert local["consumer.config.0"]["source.init.position"] == "TRIM_HORIZON"
    assert on_aws["errors.config.0"]["output.stream.arn"].endswith(":stream/dfp-anomaly-errors")
    assert on_aws["detector.config.0"]["profiles.uri"].startswith(
        f"s3://{names.bucket('analysis')}/"
    )


def _task_resources(node: object) -> list[str]:
    """Every task ``Resource`` in a state machine definition (nested states included)."""
    found: list[str] = []
    if isinstance(node, dict):
        if node.get("Type") == "Task" and isinstance(node.get("Resource"), str):
            found.append(node["Resource"])
        for value in node.values():
            found += _task_resources(value)
    elif isinstance(node, list):
        for value in node:
            found += _task_resources(value)
    return found


def _handed(stack, machine: str, kind: str) -> set[str]:
    """The ``{kind:KEY}`` references the rules that start ``machine`` hand it."""
    return {
        value[len(kind) + 2 : -1]
        for rule in stack.rules.values()
        if rule.target == machine
        for value in (rule.input or {}).values()
        if isinstance(value, str) and value.startswith(f"{{{kind}:")
    }


def test_declared_workflow_access_is_what_the_definitions_call(stack) -> None:
    """The CDK app grants each workflow its declared access; the declaration must be exactly what
    its definition's tasks call and what the rules that start it hand over."""
    for key, machine in stack.state_machines.items():
        resources = _task_resources(json.loads(machine.definition_path().read_text()))
        access = machine.access
        glue_calls = any(":glue:" in r for r in resources)
        assert glue_calls == bool(access.starts_jobs), key
        assert any("s3:getObject" in r for r in resources) == access.reads_trigger, key
        assert any(":sagemaker:" in r for r in resources) == access.sagemaker, key
        assert _handed(stack, key, "job") == set(access.starts_jobs), key
        publishes = any(":sns:publish" in r for r in resources)
        assert publishes == bool(access.notifies), key
        assert _handed(stack, key, "topic") == set(access.notifies), key
        if access.sagemaker:
            assert access.passes_roles, f"{key}: SageMaker jobs need a role passed to them"


def test_a_job_bucket_that_is_not_declared_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text(STACK_FILE.read_text().replace("      reads: [staged]\n", "", 1))
    with pytest.raises(StackError) as refused:
        load_stack(path)
    assert "glue.jobs.forecast-input" in str(refused.value) and "staged" in str(refused.value)


def test_a_job_a_workflow_retries_may_not_retry_itself(tmp_path: Path) -> None:
    """Glue's retries under a workflow's would multiply the runs: refused, naming the key."""
    raw = yaml.safe_load(STACK_FILE.read_text())
    raw["glue"]["jobs"]["forecast-export"]["max_retries"] = 2
    path = tmp_path / "stack.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(StackError, match=r"glue\.jobs\.forecast-export\.max_retries: the "
                       r"workflow 'forecast' starts this job"):  # fmt: skip
        load_stack(path)
