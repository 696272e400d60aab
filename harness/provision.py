"""Provision the stack description into the local world.

The same :mod:`deploy.stack` description drives the CDK app, so what a run provisions here carries
the names, shard counts and wiring that are deployed. Provisioning is idempotent: re-running it on
an endpoint that already holds the stack updates what can change and keeps the rest.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from botocore.exceptions import ClientError

from deploy.stack import ResolvedStack, Stack, rule_input_transformer, s3_object_created_pattern
from emulation import World
from emulation.events import put_targets

logger = logging.getLogger(__name__)

_ALREADY = {
    "ResourceInUseException",
    "BucketAlreadyOwnedByYou",
    "EntityAlreadyExists",
    "AlreadyExistsException",
}


def _exists_ok(call: Any, **kwargs: Any) -> bool:
    """Call; True if it created something, False if the resource already existed."""
    try:
        call(**kwargs)
        return True
    except ClientError as exc:
        if exc.response["Error"]["Code"] in _ALREADY:
            return False
        raise


def _trust(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": f"{service}.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )


def inbox_queue_name(names: ResolvedStack, topic: str) -> str:
    """The local world's queue subscribed to ``topic``: it stands in for the people subscribed
    on AWS (by e-mail), so a run or a test can read what they would have been sent."""
    return names.stack.name(f"{topic}-inbox")


def _topics(world: World, stack: Stack, names: ResolvedStack) -> None:
    sns, sqs = world.client("sns"), world.client("sqs")
    for key in stack.topics:
        topic = sns.create_topic(Name=names.topic_name(key))["TopicArn"]
        queue = sqs.create_queue(QueueName=inbox_queue_name(names, key))["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]  # fmt: skip
        subscribed = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
        if not any(s["Endpoint"] == queue_arn for s in subscribed):
            sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)


def provision(world: World, stack: Stack) -> ResolvedStack:
    """Create (or bring up to date) every resource of ``stack`` in ``world``."""
    names = stack.resolve(world.account_id, world.region)
    kinesis = world.client("kinesis")
    s3 = world.client("s3")
    iam = world.client("iam")
    sfn = world.client("stepfunctions")
    events = world.client("events")
    dynamodb = world.client("dynamodb")
    glue = world.client("glue")

    _topics(world, stack, names)
    for key, spec in stack.streams.items():
        created = _exists_ok(
            kinesis.create_stream, StreamName=names.stream_name(key), ShardCount=spec.shards
        )
        if created and spec.retention_hours > 24:
            kinesis.increase_stream_retention_period(
                StreamName=names.stream_name(key), RetentionPeriodHours=spec.retention_hours
            )

    notified = {rule.bucket for rule in stack.rules.values()}
    for key in stack.buckets:
        bucket = names.bucket(key)
        create: dict[str, Any] = {"Bucket": bucket}
        if world.region != "us-east-1":  # S3's one region without a location constraint
            create["CreateBucketConfiguration"] = {"LocationConstraint": world.region}
        _exists_ok(s3.create_bucket, **create)
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        )
        if key in notified:
            s3.put_bucket_notification_configuration(
                Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
            )

    for key, role in stack.roles.items():
        _exists_ok(
            iam.create_role,
            RoleName=names.role_name(key),
            AssumeRolePolicyDocument=_trust(role.service),
        )

    for key, spec in stack.state_machines.items():
        _exists_ok(
            iam.create_role,
            RoleName=names.role_name(f"{key}-sfn"),
            AssumeRolePolicyDocument=_trust("states"),
        )
        definition = spec.definition_path().read_text()
        arn = names.state_machine_arn(key)
        try:
            sfn.describe_state_machine(stateMachineArn=arn)
            sfn.update_state_machine(stateMachineArn=arn, definition=definition)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "StateMachineDoesNotExist":
                raise
            sfn.create_state_machine(
                name=names.state_machine_name(key),
                definition=definition,
                roleArn=names.role_arn(f"{key}-sfn"),
                type="STANDARD",
            )

    for key, rule in stack.rules.items():
        pattern = s3_object_created_pattern(names.bucket(rule.bucket), rule.prefix)
        events.put_rule(
            Name=names.rule_name(key),
            EventPattern=json.dumps(pattern),
            State="ENABLED",
            Description=rule.description,
        )
        _exists_ok(
            iam.create_role,
            RoleName=names.role_name(f"{key}-events"),
            AssumeRolePolicyDocument=_trust("events"),
        )
        target: dict[str, Any] = {
            "Id": "workflow",
            "Arn": names.state_machine_arn(rule.target),
            "RoleArn": names.role_arn(f"{key}-events"),
        }
        settings = names.rule_input(key, local=True)
        if settings is not None:
            target["InputTransformer"] = rule_input_transformer(settings)
        put_targets(world, names.rule_name(key), [target])

    for key, table in stack.tables.items():
        keys = [(table.partition_key, "HASH")]
        if table.sort_key:
            keys.append((table.sort_key, "RANGE"))
        created = _exists_ok(
            dynamodb.create_table,
            TableName=names.table_name(key),
            KeySchema=[{"AttributeName": name, "KeyType": kind} for name, kind in keys],
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n, _ in keys],
            BillingMode="PAY_PER_REQUEST",
            SSESpecification={"Enabled": True},
        )
        if created and table.ttl_attribute:
            dynamodb.update_time_to_live(
                TableName=names.table_name(key),
                TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
            )

    results = names.bucket(stack.athena.results_bucket)
    athena = world.client("athena")
    # Athena answers an existing name with a generic InvalidRequestException: look first.
    existing = {w["Name"] for w in athena.list_work_groups().get("WorkGroups", [])}
    if names.workgroup_name() not in existing:
        athena.create_work_group(
            Name=names.workgroup_name(),
            Configuration={
                "ResultConfiguration": {
                    "OutputLocation": f"s3://{results}/",
                    "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"},
                },
                "EnforceWorkGroupConfiguration": True,
            },
        )

    _exists_ok(glue.create_database, DatabaseInput={"Name": stack.glue.database})
    for name in stack.glue.tables:
        table_input = names.glue_table_input(name)
        if not _exists_ok(
            glue.create_table, DatabaseName=stack.glue.database, TableInput=table_input
        ):
            glue.update_table(DatabaseName=stack.glue.database, TableInput=table_input)

    for key, job in stack.glue.jobs.items():
        location = names.script_location(key)
        bucket, _, object_key = location[5:].partition("/")
        s3.put_object(Bucket=bucket, Key=object_key, Body=job.script_path().read_bytes())
        _exists_ok(
            iam.create_role,
            RoleName=names.role_name(f"{key}-glue"),
            AssumeRolePolicyDocument=_trust("glue"),
        )
        definition = names.glue_job_definition(
            key, role_arn=names.role_arn(f"{key}-glue"), script_location=location
        )
        if not _exists_ok(glue.create_job, Name=names.job_name(key), **definition):
            glue.update_job(JobName=names.job_name(key), JobUpdate=definition)
        if job.schedule:
            _exists_ok(
                glue.create_trigger,
                Name=names.job_name(f"{key}-schedule"),
                Type="SCHEDULED",
                Schedule=job.schedule,
                Actions=[{"JobName": names.job_name(key)}],
                StartOnCreation=True,
            )

    firehose = world.client("firehose")
    for key, spec in stack.delivery_streams.items():
        role = names.role_arn(f"{key}-firehose")
        _exists_ok(
            iam.create_role,
            RoleName=names.role_name(f"{key}-firehose"),
            AssumeRolePolicyDocument=_trust("firehose"),
        )
        destination = names.delivery_destination(
            key, bucket_arn=names.bucket_arn(spec.bucket), role_arn=role, region=world.region
        )
        _exists_ok(
            firehose.create_delivery_stream,
            DeliveryStreamName=names.delivery_stream_name(key),
            DeliveryStreamType="KinesisStreamAsSource",
            KinesisStreamSourceConfiguration={
                "KinesisStreamARN": names.stream_arn(spec.source),
                "RoleARN": role,
            },
            ExtendedS3DestinationConfiguration=destination,
        )
    logger.info("provisioned stack %r in %s/%s", stack.prefix, names.account, names.region)
    return names
