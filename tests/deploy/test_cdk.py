"""The CDK app: the synthesized template agrees with the local world, ships the bundle's bytes,
and passes cdk-nag and cfn-lint (``dfp deploy synth`` through the CDK CLI, offline)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from deploy.bundle import MANIFEST_FILE, flink_run_options, manifest_sha256
from deploy.promote import CDK_DIR
from deploy.stack import load_stack
from emulation import World
from emulation.events import list_targets
from harness.provision import provision
from harness.stages.anomaly import application_checkpoints
from tests.deploy.conftest import Synthesized, resolve

# Only AWS has these: where Glue finds the pipeline package (locally it is imported directly) and
# continuous logging.
AWS_ONLY_JOB_ARGUMENTS = {"--extra-py-files", "--enable-continuous-cloudwatch-log"}


def _settings(input_template: str) -> dict[str, Any]:
    """The constant settings of a rule's input template (the event placeholder made null)."""
    return json.loads(input_template.replace("<aws.events.event.json>", "null"))["settings"]


def test_local_world_and_template_agree(aws: World, synthesized: Synthesized) -> None:
    stack = load_stack(synthesized.bundle / "stack.yaml")
    names = provision(aws, stack)
    t = resolve(synthesized.template, aws.account_id, aws.region)
    synthesized_t = Synthesized(synthesized.bundle, synthesized.out_dir, t)

    kinesis = aws.client("kinesis")
    streams = synthesized_t.resources("AWS::Kinesis::Stream").values()
    assert {s["Name"] for s in streams} == {names.stream_name(k) for k in stack.streams}
    for s in streams:
        local = kinesis.describe_stream_summary(StreamName=s["Name"])["StreamDescriptionSummary"]
        assert local["OpenShardCount"] == s["ShardCount"]
        assert local["RetentionPeriodHours"] == s["RetentionPeriodHours"]

    buckets = {b["BucketName"] for b in synthesized_t.resources("AWS::S3::Bucket").values()}
    local_buckets = {b["Name"] for b in aws.client("s3").list_buckets()["Buckets"]}
    assert {names.bucket(k) for k in stack.buckets} <= buckets & local_buckets

    sfn = aws.client("stepfunctions")
    machines = synthesized_t.resources("AWS::StepFunctions::StateMachine").values()
    assert {m["StateMachineName"] for m in machines} == {
        names.state_machine_name(k) for k in stack.state_machines
    }
    for machine in machines:
        arn = f"arn:aws:states:{aws.region}:{aws.account_id}:stateMachine:"
        local = sfn.describe_state_machine(stateMachineArn=arn + machine["StateMachineName"])
        deployed = synthesized.asset_file(machine["DefinitionS3Location"]["Key"]).read_text()
        assert deployed == local["definition"]  # the same file, byte for byte

    events = aws.client("events")
    for rule in synthesized_t.resources("AWS::Events::Rule").values():
        key = next(k for k in stack.rules if names.rule_name(k) == rule["Name"])
        local = events.describe_rule(Name=rule["Name"])
        assert json.loads(local["EventPattern"]) == rule["EventPattern"]
        (local_target,) = list_targets(aws, rule["Name"])
        deployed = _settings(rule["Targets"][0]["InputTransformer"]["InputTemplate"])
        here = _settings(local_target["InputTransformer"]["InputTemplate"])
        overrides = stack.local.rule_input.get(key, {})
        assert set(deployed) == set(here)
        for setting, value in deployed.items():
            expected = overrides.get(setting, value)
            assert here[setting] == expected, (key, setting)

    glue = aws.client("glue")
    s3 = aws.client("s3")
    jobs = synthesized_t.resources("AWS::Glue::Job").values()
    assert {j["Name"] for j in jobs} == {names.job_name(k) for k in stack.glue.jobs}
    for job in jobs:
        local = glue.get_job(JobName=job["Name"])["Job"]
        assert local["GlueVersion"] == job["GlueVersion"]
        deployed_args = {
            k: v for k, v in job["DefaultArguments"].items() if k not in AWS_ONLY_JOB_ARGUMENTS
        }
        assert deployed_args == local["DefaultArguments"]
        bucket, _, key = local["Command"]["ScriptLocation"][5:].partition("/")
        local_script = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        asset_key = job["Command"]["ScriptLocation"].rsplit("/", 1)[1]
        assert synthesized.asset_file(asset_key).read_bytes() == local_script
    for trigger in synthesized_t.resources("AWS::Glue::Trigger").values():
        local = glue.get_trigger(Name=trigger["Name"])["Trigger"]
        assert local["Schedule"] == trigger["Schedule"]

    for table in synthesized_t.resources("AWS::Glue::Table").values():
        spec = table["TableInput"]
        local = glue.get_table(DatabaseName=table["DatabaseName"], Name=spec["Name"])["Table"]
        assert local["StorageDescriptor"]["Columns"] == spec["StorageDescriptor"]["Columns"]
        assert local["StorageDescriptor"]["Location"] == spec["StorageDescriptor"]["Location"]
        assert local["PartitionKeys"] == spec["PartitionKeys"]

    firehose = aws.client("firehose")
    for stream in synthesized_t.resources("AWS::KinesisFirehose::DeliveryStream").values():
        described = firehose.describe_delivery_stream(
            DeliveryStreamName=stream["DeliveryStreamName"]
        )
        local = described["DeliveryStreamDescription"]["Destinations"][0][
            "ExtendedS3DestinationDescription"
        ]
        deployed = stream["ExtendedS3DestinationConfiguration"]
        for field in ("Prefix", "ErrorOutputPrefix", "BufferingHints"):
            assert local[field] == deployed[field], field
        schema = deployed["DataFormatConversionConfiguration"]["SchemaConfiguration"]
        local_schema = local["DataFormatConversionConfiguration"]["SchemaConfiguration"]
        assert (local_schema["DatabaseName"], local_schema["TableName"]) == (
            schema["DatabaseName"], schema["TableName"],
        )  # fmt: skip

    dynamodb = aws.client("dynamodb")
    for table in synthesized_t.resources("AWS::DynamoDB::Table").values():
        local = dynamodb.describe_table(TableName=table["TableName"])["Table"]
        assert local["KeySchema"] == table["KeySchema"]
        ttl = dynamodb.describe_time_to_live(TableName=table["TableName"])
        assert (
            ttl["TimeToLiveDescription"]["AttributeName"]
            == (table["TimeToLiveSpecification"]["AttributeName"])
        )

    for workgroup in synthesized_t.resources("AWS::Athena::WorkGroup").values():
        local = aws.client("athena").get_work_group(WorkGroup=workgroup["Name"])["WorkGroup"]
        assert (
            local["Configuration"]["ResultConfiguration"]["OutputLocation"]
            == (workgroup["WorkGroupConfiguration"]["ResultConfiguration"]["OutputLocation"])
        )

    for app in synthesized_t.resources("AWS::KinesisAnalyticsV2::Application").values():
        key = next(k for k in stack.applications if stack.name(k) == app["ApplicationName"])
        groups = app["ApplicationConfiguration"]["EnvironmentProperties"]["PropertyGroups"]
        run_options = next(g for g in groups if g["PropertyGroupId"].startswith("kinesis."))
        assert run_options["PropertyMap"] == flink_run_options(key, stack)
        deployed = [g for g in groups if g is not run_options]
        # The local application reads the same groups, with only the stack's local overrides.
        local = names.application_properties(key, local=True)
        overrides = stack.local.application_properties.get(key, {})
        assert [g["PropertyGroupId"] for g in deployed] == [g["PropertyGroupId"] for g in local]
        for mine, theirs in zip(deployed, local, strict=True):
            changed = {
                k for k in mine["PropertyMap"] if mine["PropertyMap"][k] != theirs["PropertyMap"][k]
            }
            assert changed <= set(overrides.get(mine["PropertyGroupId"], {})), changed
        assert (
            app["ApplicationConfiguration"]["FlinkApplicationConfiguration"][
                "ParallelismConfiguration"
            ]["Parallelism"]
            == stack.applications[key].parallelism
        )
        # The local Managed Flink checkpoints and keeps snapshots as the deployed one does.
        flink_config = app["ApplicationConfiguration"]["FlinkApplicationConfiguration"]
        checkpoints = flink_config["CheckpointConfiguration"]
        here = application_checkpoints(stack.applications[key])
        if checkpoints["ConfigurationType"] == "DEFAULT":
            assert (here.enabled, here.interval_ms, here.min_pause_ms) == (True, 60_000, 5_000)
        else:
            assert (here.enabled, here.interval_ms, here.min_pause_ms) == (
                checkpoints["CheckpointingEnabled"], checkpoints["CheckpointInterval"],
                checkpoints["MinPauseBetweenCheckpoints"])  # fmt: skip
        snapshots = app["ApplicationConfiguration"]["ApplicationSnapshotConfiguration"]
        assert snapshots["SnapshotsEnabled"] is here.snapshots

    (function,) = [
        f for f in synthesized_t.resources("AWS::Lambda::Function").values()
        if f.get("FunctionName") == stack.name("api")
    ]  # fmt: skip
    # `dfp serve` builds its settings from the same environment
    assert function["Environment"]["Variables"] == names.api_environment()
    assert function["Handler"] == stack.api.entry_point()


def test_template_names_the_bundle_and_ships_its_bytes(synthesized: Synthesized) -> None:
    manifest = json.loads((synthesized.bundle / MANIFEST_FILE).read_text())
    metadata = synthesized.template["Metadata"]["dfp:bundle"]
    assert metadata["manifest_sha256"] == manifest_sha256(synthesized.bundle)
    assert metadata["artifacts"] == {p: a["sha256"] for p, a in manifest["artifacts"].items()}
    staged = {
        hashlib.sha256(f.read_bytes()).hexdigest()
        for f in synthesized.out_dir.glob("asset.*")
        if f.is_file()
    }
    code = {a["sha256"] for a in manifest["artifacts"].values() if a["kind"] != "stack-description"}
    assert code <= staged


def test_runtimes_come_from_the_runtime_table(synthesized: Synthesized) -> None:
    from pipeline.runtimes import RUNTIMES

    jobs = synthesized.resources("AWS::Glue::Job").values()
    assert {j["GlueVersion"] for j in jobs} == {RUNTIMES["glue"].aws_runtime}
    apps = synthesized.resources("AWS::KinesisAnalyticsV2::Application").values()
    assert {a["RuntimeEnvironment"] for a in apps} == {RUNTIMES["flink"].aws_runtime}


def test_storage_is_encrypted_and_buckets_are_private(synthesized: Synthesized) -> None:
    for logical, bucket in synthesized.resources("AWS::S3::Bucket").items():
        assert bucket["BucketEncryption"], logical
        assert all(bucket["PublicAccessBlockConfiguration"].values()), logical
    for stream in synthesized.resources("AWS::Kinesis::Stream").values():
        assert stream["StreamEncryption"]["EncryptionType"] == "KMS"
    for table in synthesized.resources("AWS::DynamoDB::Table").values():
        assert table["SSESpecification"]["SSEEnabled"] is True


@pytest.mark.skipif(
    not (CDK_DIR / "node_modules" / ".bin" / "cdk").is_file(),
    reason="the AWS CDK CLI is not installed (./bootstrap.sh setup installs it from npm)",
)
def test_dfp_deploy_synth_passes_offline(bundle_dir: Path, cli_synth) -> None:
    """The CLI path: cdk synth with cdk-nag, cfn-lint, asset check; no credentials at all."""
    assert cli_synth.returncode == 0, cli_synth.stderr[-3000:]
    report = json.loads((cli_synth.out_dir / "synth.json").read_text())
    assert report["ok"] and not report["cfn_lint"] and not report["nag_violations"]
    assert report["manifest_sha256"] == manifest_sha256(bundle_dir)
    assert all(a["reason"] for a in report["nag_acknowledged"])
    assert "glue/etl/forecast_input.py" in report["assets"]


def test_an_unacknowledged_finding_fails_synthesis(
    bundle_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """cdk-nag gates synthesis: without the reasons written next to the wildcards, it fails."""
    import importlib

    import deploy.app
    from deploy.promote import _nag_violations

    for room in ("common", "ingest", "lake", "forecast", "streaming", "serving"):
        module = importlib.import_module(f"deploy.cdk.{room}")
        if hasattr(module, "ack"):
            monkeypatch.setattr(module, "ack", lambda *_: None)
    monkeypatch.setattr(deploy.app, "ack", lambda *_: None)
    out = tmp_path / "cdk.out"
    with pytest.raises(Exception, match="ValidationFailed"):
        deploy.app.build_app(bundle_dir, outdir=str(out)).synth()
    rules = {v["rule"].split("[")[0] for v in _nag_violations(out / "validation-report.json")}
    assert "AwsSolutions-IAM5" in rules
