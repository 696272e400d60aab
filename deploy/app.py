"""The AWS CDK app: the whole architecture from the stack description and a bundle.

``cdk synth --app "python -m deploy.app" -c bundle=BUNDLE_DIR`` (``dfp deploy synth`` runs it).
Everything that has a name or a size comes from ``deploy/stack.yaml`` as read from the bundle,
through the same :class:`deploy.stack.ResolvedStack` the local world is provisioned with (the
account and region are CloudFormation pseudo parameters here). Every piece of code comes from the
bundle: each asset carries the manifest's sha256 as its hash, and the stack's ``dfp:bundle``
metadata lists the manifest's hash and every artifact's, so a template names exactly the bytes
that were validated.

Deliberate differences from the local world, all of them about where code lives or what only AWS
has: Glue scripts and the Flink and Lambda zips are CDK assets (in the CDK staging bucket, keyed
by hash) rather than objects in the artifacts bucket; Glue jobs get ``--extra-py-files`` (the
pipeline package) which the local Glue runs import directly; the Flink application gets its
``kinesis.analytics.flink.run.options`` group; logging, tracing, alarms, access logs and KMS keys
exist only here. The source database of DMS is given at deploy time (parameters, defaults from
the ``source_database`` context). QuickSight has no CDK support for the dashboards used here;
the README's deploy section says how to set them up.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import aws_cdk.aws_apigateway as apigw
import aws_cdk.aws_athena as athena
import aws_cdk.aws_cloudwatch as cloudwatch
import aws_cdk.aws_cloudwatch_actions as cw_actions
import aws_cdk.aws_dms as dms
import aws_cdk.aws_dynamodb as dynamodb
import aws_cdk.aws_events as events
import aws_cdk.aws_glue as glue
import aws_cdk.aws_iam as iam
import aws_cdk.aws_kinesis as kinesis
import aws_cdk.aws_kinesisanalyticsv2 as flink
import aws_cdk.aws_kinesisfirehose as firehose
import aws_cdk.aws_kms as kms
import aws_cdk.aws_lambda as lambda_
import aws_cdk.aws_logs as logs
import aws_cdk.aws_s3 as s3
import aws_cdk.aws_s3_assets as s3_assets
import aws_cdk.aws_sns as sns
import aws_cdk.aws_stepfunctions as sfn
from constructs import Construct

from deploy.bundle import (
    MANIFEST_FILE,
    flink_run_options,
    manifest_sha256,
    read_manifest,
)
from deploy.stack import (
    ResolvedStack,
    Stack,
    load_stack,
    rule_input_transformer,
    s3_object_created_pattern,
)
from pipeline.contracts.cdc import TABLES as CDC_TABLES
from pipeline.runtimes import RUNTIMES

STACK_ID = "DemandForecasting"
FLINK_RUNTIME = RUNTIMES["flink"].aws_runtime
LAMBDA_RUNTIME = lambda_.Runtime(RUNTIMES["serving"].aws_runtime, lambda_.RuntimeFamily.PYTHON)
RUN_OPTIONS_GROUP = "kinesis.analytics.flink.run.options"
# Where an asset key lands: the CDK staging bucket; its objects are addressed by content hash.
_STAGING_OBJECTS = "staging bucket objects are content-addressed by hash; the key is not known"


def cfn_props(value: Any) -> Any:
    """An API-shaped request body (PascalCase, as :class:`deploy.stack.ResolvedStack` builds it)
    as an L1 construct's property value (jsii's camelCase: ``BucketARN`` → ``bucketArn``).

    Only identifier keys change; free-form maps such as job arguments (``--name``) keep theirs.
    """
    if isinstance(value, list):
        return [cfn_props(item) for item in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        if key[:1].isupper():
            key = key[:-3] + "Arn" if key.endswith("ARN") else key
            key = key[0].lower() + key[1:]
        out[key] = cfn_props(item)
    return out


def _ack(scope: Construct, rule: str, reason: str) -> None:
    """Acknowledge a cdk-nag finding on ``scope``, with the reason next to it."""
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=rule, reason=reason))


class DemandForecastingStack(cdk.Stack):
    """Every resource of the architecture; see the module docstring."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: Stack,
        bundle: Path,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.spec = spec
        self.bundle = bundle
        self.manifest = read_manifest(bundle)
        self.names = ResolvedStack(
            spec, cdk.Aws.ACCOUNT_ID, cdk.Aws.REGION, partition=cdk.Aws.PARTITION
        )
        # The same names as cdk-nag prints them in finding ids (pseudo parameters in brackets).
        self.nag_names = ResolvedStack(
            spec, "<AWS::AccountId>", "<AWS::Region>", partition="<AWS::Partition>"
        )
        self.template_options.metadata = {
            "dfp:bundle": {
                "manifest_sha256": manifest_sha256(bundle),
                "pipeline_digest": self.manifest["source"]["pipeline_digest"],
                "artifacts": {
                    p: a["sha256"] for p, a in sorted(self.manifest["artifacts"].items())
                },
            }
        }
        self.key = kms.Key(
            self,
            "Key",
            alias=f"alias/{spec.prefix}",
            enable_key_rotation=True,
            description="Encrypts the pipeline's logs, alarm topic and Glue job data.",
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(f"logs.{cdk.Aws.REGION}.amazonaws.com")],
                actions=[
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                resources=["*"],  # a key policy's resource is the key itself
            )
        )
        self.alarm_topic = sns.Topic(
            self,
            "Alarms",
            topic_name=spec.name("alarms"),
            master_key=self.key,
            enforce_ssl=True,
        )
        self.streams = self._streams()
        self.buckets = self._buckets()
        self._glue_catalog()
        self.jobs = self._glue_jobs()
        self.state_machines = self._state_machines()
        self._rules()
        self._delivery_streams()
        self._flink_applications()
        self.tables = self._tables()
        self._athena()
        self._api()
        self._dms()

    # -------------------------------------------------------------------------- helpers
    def asset(self, path: str) -> s3_assets.Asset:
        """The bundle's artifact ``path`` as an asset whose hash is the manifest's sha256."""
        entry = self.manifest["artifacts"][path]
        construct_id = "Asset-" + path.replace("/", "-").replace(".", "-")
        existing = self.node.try_find_child(construct_id)
        if existing is not None:
            return existing  # type: ignore[return-value]
        return s3_assets.Asset(
            self,
            construct_id,
            path=str(self.bundle / path),
            asset_hash=entry["sha256"],
            asset_hash_type=cdk.AssetHashType.CUSTOM,
        )

    def grant_code(self, role: iam.IRole, *assets: s3_assets.Asset) -> None:
        """Let ``role`` read its code from CDK's asset bucket, whose object keys are hashes."""
        for asset in assets:
            asset.grant_read(role)
        for finding in ("Action::s3:GetBucket*", "Action::s3:GetObject*", "Action::s3:List*",
                        "Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-"
                        "<AWS::AccountId>-<AWS::Region>/*"):  # fmt: skip
            _ack(role, f"AwsSolutions-IAM5[{finding}]", _STAGING_OBJECTS)

    def alarm(
        self,
        construct_id: str,
        name: str,
        description: str,
        metric: cloudwatch.Metric,
        *,
        threshold: float,
        comparison: cloudwatch.ComparisonOperator,
        missing: cloudwatch.TreatMissingData,
    ) -> None:
        """A one-period alarm that notifies the alarm topic."""
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            alarm_name=name,
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=comparison,
            treat_missing_data=missing,
        )
        alarm.add_alarm_action(cw_actions.SnsAction(self.alarm_topic))

    def artifact_sha256(self, path: str) -> str:
        return str(self.manifest["artifacts"][path]["sha256"])

    def log_group(self, construct_id: str, name: str) -> logs.LogGroup:
        return logs.LogGroup(
            self,
            construct_id,
            log_group_name=name,
            retention=logs.RetentionDays.THREE_MONTHS,
            encryption_key=self.key,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )

    def role(self, construct_id: str, service: str, name: str) -> iam.Role:
        return iam.Role(
            self,
            construct_id,
            role_name=name,
            assumed_by=iam.ServicePrincipal(f"{service}.amazonaws.com"),
        )

    def bucket_objects(self, key: str, prefix: str = "") -> str:
        return f"arn:{cdk.Aws.PARTITION}:s3:::{self.names.bucket(key)}/{prefix}*"

    def grant_bucket(
        self, role: iam.IRole, key: str, *, write: bool, prefix: str = "", why: str = ""
    ) -> None:
        """Read (and write) objects under ``prefix`` of one of the stack's buckets."""
        actions = ["s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"]
        if write:
            actions += ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=actions,
                resources=[self.buckets[key].bucket_arn, self.bucket_objects(key, prefix)],
            )
        )
        _ack(
            role,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::{self.nag_names.bucket(key)}"
            f"/{prefix}*]",
            why or "object keys under the prefix carry dates and versions known only at run time",
        )

    # ---------------------------------------------------------------------- resources
    def _streams(self) -> dict[str, kinesis.Stream]:
        streams = {}
        for key, spec in self.spec.streams.items():
            streams[key] = kinesis.Stream(
                self,
                f"Stream-{key}",
                stream_name=self.names.stream_name(key),
                shard_count=spec.shards,
                retention_period=cdk.Duration.hours(spec.retention_hours),
                # AWS's aws/kinesis key: a customer key would bill every consumer's and
                # producer's calls, and nothing here requires one (cdk-nag KDS3).
                encryption=kinesis.StreamEncryption.MANAGED,
                stream_mode=kinesis.StreamMode.PROVISIONED,
            )
        return streams

    def _buckets(self) -> dict[str, s3.Bucket]:
        access_logs = s3.Bucket(
            self,
            "AccessLogs",
            bucket_name=self.names.bucket("access-logs"),
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        _ack(access_logs, "AwsSolutions-S1", "this bucket is the access log target itself")
        notified = {rule.bucket for rule in self.spec.rules.values()}
        buckets = {}
        for key in self.spec.buckets:
            buckets[key] = s3.Bucket(
                self,
                f"Bucket-{key}",
                bucket_name=self.names.bucket(key),
                encryption=s3.BucketEncryption.S3_MANAGED,
                block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                enforce_ssl=True,
                versioned=True,
                server_access_logs_bucket=access_logs,
                server_access_logs_prefix=f"{key}/",
                removal_policy=cdk.RemovalPolicy.RETAIN,
            )
            if key in notified:
                # S3 → EventBridge as a bucket property (CDK's event_bridge_enabled would add a
                # custom-resource Lambda to set the same thing).
                cfn_bucket = buckets[key].node.default_child
                cfn_bucket.add_property_override(  # type: ignore[union-attr]
                    "NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True
                )
        return buckets

    def _glue_catalog(self) -> None:
        d = self.spec
        database = glue.CfnDatabase(
            self,
            "GlueDatabase",
            catalog_id=cdk.Aws.ACCOUNT_ID,
            database_input=glue.CfnDatabase.DatabaseInputProperty(name=d.glue.database),
        )
        for name in d.glue.tables:
            table = glue.CfnTable(
                self,
                f"GlueTable-{name}",
                catalog_id=cdk.Aws.ACCOUNT_ID,
                database_name=d.glue.database,
                table_input={"name": name},
            )
            # The whole TableInput exactly as the local world creates it (same API shape).
            table.add_property_override("TableInput", self.names.glue_table_input(name))
            table.node.add_dependency(database)

    def _glue_security(self) -> glue.CfnSecurityConfiguration:
        return glue.CfnSecurityConfiguration(
            self,
            "GlueSecurity",
            name=self.spec.name("glue"),
            encryption_configuration={
                "cloudWatchEncryption": {
                    "cloudWatchEncryptionMode": "SSE-KMS",
                    "kmsKeyArn": self.key.key_arn,
                },
                "jobBookmarksEncryption": {
                    "jobBookmarksEncryptionMode": "CSE-KMS",
                    "kmsKeyArn": self.key.key_arn,
                },
                "s3Encryptions": [{"s3EncryptionMode": "SSE-S3"}],
            },
        )

    def _job_buckets(self, key: str) -> set[str]:
        """The buckets a job touches: those its arguments name, and those of the rules whose
        workflow starts it (the workflow hands it paths in that rule's bucket)."""
        d = self.spec
        text = json.dumps(d.glue.jobs[key].arguments)
        touched = {b for b in d.buckets if f"{{bucket:{b}}}" in text}
        for rule in d.rules.values():
            rule_text = json.dumps(rule.input or {})
            if f"{{job:{key}}}" in rule_text:
                touched.add(rule.bucket)
                touched |= {b for b in d.buckets if f"{{bucket:{b}}}" in rule_text}
        return touched

    def _glue_jobs(self) -> dict[str, glue.CfnJob]:
        d = self.spec
        security = self._glue_security()
        library = self.asset("pipeline.zip")
        jobs = {}
        for key, spec in d.glue.jobs.items():
            script = self.asset(f"glue/{spec.script}")
            role = self.role(f"GlueRole-{key}", "glue", self.names.role_name(f"{key}-glue"))
            self.grant_code(role, script, library)
            for bucket in sorted(self._job_buckets(key)):
                self.grant_bucket(role, bucket, write=True)
            catalog = f"arn:{cdk.Aws.PARTITION}:glue:{cdk.Aws.REGION}:{cdk.Aws.ACCOUNT_ID}"
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=[
                        "glue:GetDatabase",
                        "glue:GetTable",
                        "glue:GetTables",
                        "glue:GetPartitions",
                        "glue:BatchCreatePartition",
                        "glue:CreatePartition",
                        "glue:UpdateTable",
                    ],
                    resources=[
                        f"{catalog}:catalog",
                        f"{catalog}:database/{d.glue.database}",
                        f"{catalog}:table/{d.glue.database}/*",
                    ],
                )
            )
            _ack(
                role,
                "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:glue:<AWS::Region>:"
                f"<AWS::AccountId>:table/{d.glue.database}/*]",
                "the jobs read and register partitions of the pipeline's own database's tables",
            )
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=[
                        "logs:CreateLogGroup",
                        "logs:CreateLogStream",
                        "logs:PutLogEvents",
                        "logs:AssociateKmsKey",
                    ],
                    resources=[
                        f"arn:{cdk.Aws.PARTITION}:logs:{cdk.Aws.REGION}:{cdk.Aws.ACCOUNT_ID}:"
                        "log-group:/aws-glue/*"
                    ],
                )
            )
            _ack(
                role,
                "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:"
                "<AWS::AccountId>:log-group:/aws-glue/*]",
                "Glue names its log groups per security configuration and job run",
            )
            self.key.grant_encrypt_decrypt(role)
            for action in ("kms:ReEncrypt*", "kms:GenerateDataKey*"):
                _ack(
                    role,
                    f"AwsSolutions-IAM5[Action::{action}]",
                    "CDK's encrypt/decrypt grant, on the stack's own key only",
                )
            definition = self.names.glue_job_definition(
                key,
                role_arn=role.role_arn,
                script_location=script.s3_object_url,
                extra_arguments={
                    "--extra-py-files": library.s3_object_url,
                    "--enable-continuous-cloudwatch-log": "true",
                },
            )
            job = glue.CfnJob(
                self,
                f"GlueJob-{key}",
                name=self.names.job_name(key),
                role=definition["Role"],
                command=cfn_props(definition["Command"]),
                default_arguments=definition["DefaultArguments"],
                glue_version=definition["GlueVersion"],
                execution_property=cfn_props(definition["ExecutionProperty"]),
                security_configuration=security.ref,
                worker_type="G.1X",
                number_of_workers=2,
                timeout=120,
            )
            jobs[key] = job
            if spec.schedule:
                glue.CfnTrigger(
                    self,
                    f"GlueSchedule-{key}",
                    name=self.names.job_name(f"{key}-schedule"),
                    type="SCHEDULED",
                    schedule=spec.schedule,
                    start_on_creation=True,
                    actions=[glue.CfnTrigger.ActionProperty(job_name=job.ref)],
                )
        return jobs

    def _sagemaker_role(self) -> None:
        d = self.spec
        for key, spec in d.roles.items():
            role = self.role(f"Role-{key}", spec.service, self.names.role_name(key))
            if spec.service == "sagemaker":
                for bucket in sorted(
                    {r.bucket for r in d.rules.values() if r.target == "forecast"}
                ):
                    self.grant_bucket(role, bucket, write=True)
                role.add_to_principal_policy(
                    iam.PolicyStatement(
                        actions=[
                            "logs:CreateLogGroup",
                            "logs:CreateLogStream",
                            "logs:PutLogEvents",
                            "logs:DescribeLogStreams",
                        ],
                        resources=[
                            f"arn:{cdk.Aws.PARTITION}:logs:{cdk.Aws.REGION}:"
                            f"{cdk.Aws.ACCOUNT_ID}:log-group:/aws/sagemaker/*"
                        ],
                    )
                )
                _ack(
                    role,
                    "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:"
                    "<AWS::AccountId>:log-group:/aws/sagemaker/*]",
                    "SageMaker names a log group per job type",
                )
                role.add_to_principal_policy(
                    iam.PolicyStatement(
                        actions=["cloudwatch:PutMetricData"],
                        resources=["*"],  # PutMetricData supports no resource-level scoping
                        conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
                    )
                )
                _ack(
                    role,
                    "AwsSolutions-IAM5[Resource::*]",
                    "cloudwatch:PutMetricData has no resource scope; limited by namespace",
                )

    def _state_machines(self) -> dict[str, sfn.CfnStateMachine]:
        d = self.spec
        self._sagemaker_role()
        machines = {}
        for key, spec in d.state_machines.items():
            definition = self.asset(f"states/{spec.definition}")
            role = self.role(f"StatesRole-{key}", "states", self.names.role_name(f"{key}-sfn"))
            self._grant_workflow(role, key, (self.bundle / f"states/{spec.definition}").read_text())
            log_group = self.log_group(f"StatesLogs-{key}", f"/aws/vendedlogs/states/{d.name(key)}")
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=[
                        "logs:CreateLogDelivery",
                        "logs:GetLogDelivery",
                        "logs:UpdateLogDelivery",
                        "logs:DeleteLogDelivery",
                        "logs:ListLogDeliveries",
                        "logs:PutResourcePolicy",
                        "logs:DescribeResourcePolicies",
                        "logs:DescribeLogGroups",
                        "xray:PutTraceSegments",
                        "xray:PutTelemetryRecords",
                        "xray:GetSamplingRules",
                        "xray:GetSamplingTargets",
                    ],
                    resources=["*"],  # log delivery and X-Ray actions support no resource scope
                )
            )
            _ack(
                role,
                "AwsSolutions-IAM5[Resource::*]",
                "CloudWatch log delivery and X-Ray actions have no resource-level scope",
            )
            machine = sfn.CfnStateMachine(
                self,
                f"StateMachine-{key}",
                state_machine_name=self.names.state_machine_name(key),
                state_machine_type="STANDARD",
                role_arn=role.role_arn,
                definition_s3_location=sfn.CfnStateMachine.S3LocationProperty(
                    bucket=definition.s3_bucket_name, key=definition.s3_object_key
                ),
                logging_configuration=sfn.CfnStateMachine.LoggingConfigurationProperty(
                    level="ALL",
                    include_execution_data=False,
                    destinations=[
                        sfn.CfnStateMachine.LogDestinationProperty(
                            cloud_watch_logs_log_group=sfn.CfnStateMachine.CloudWatchLogsLogGroupProperty(
                                log_group_arn=log_group.log_group_arn
                            )
                        )
                    ],
                ),
                tracing_configuration=sfn.CfnStateMachine.TracingConfigurationProperty(
                    enabled=True
                ),
            )
            machine.node.add_dependency(role.node.find_child("DefaultPolicy"))
            machines[key] = machine
            for metric in ("ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"):
                self.alarm(
                    f"Alarm-{key}-{metric}",
                    d.name(f"{key}-{metric}"),
                    f"The {key} workflow has {metric} executions.",
                    cloudwatch.Metric(
                        namespace="AWS/States",
                        metric_name=metric,
                        dimensions_map={"StateMachineArn": machine.attr_arn},
                        statistic="Sum",
                        period=cdk.Duration.minutes(5),
                    ),
                    threshold=1,
                    comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    missing=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
        return machines

    def _grant_workflow(self, role: iam.Role, key: str, definition: str) -> None:
        """What a workflow's tasks call, read from its definition and scoped to the stack."""
        d = self.spec
        region, account, part = cdk.Aws.REGION, cdk.Aws.ACCOUNT_ID, cdk.Aws.PARTITION
        started_jobs = set()
        for rule in d.rules.values():
            if rule.target == key:
                for value in (rule.input or {}).values():
                    for job in d.glue.jobs:
                        if value == f"{{job:{job}}}":
                            started_jobs.add(job)
        if "glue:startJobRun" in definition or "glue:getJobRun" in definition:
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=[
                        "glue:StartJobRun",
                        "glue:GetJobRun",
                        "glue:GetJobRuns",
                        "glue:BatchStopJobRun",
                    ],
                    resources=[
                        f"arn:{part}:glue:{region}:{account}:job/{self.names.job_name(job)}"
                        for job in sorted(started_jobs)
                    ],
                )
            )
        if "s3:getObject" in definition:
            for rule in d.rules.values():
                if rule.target == key:
                    role.add_to_principal_policy(
                        iam.PolicyStatement(
                            actions=["s3:GetObject"],
                            resources=[self.bucket_objects(rule.bucket, rule.prefix)],
                        )
                    )
                    _ack(
                        role,
                        f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::"
                        f"{self.nag_names.bucket(rule.bucket)}/{rule.prefix}*]",
                        "the workflow reads the object whose event started it",
                    )
        if "sagemaker:" in definition:
            prefix = d.prefix
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=[
                        "sagemaker:CreateAutoMLJobV2",
                        "sagemaker:DescribeAutoMLJobV2",
                        "sagemaker:CreateModel",
                        "sagemaker:DescribeModel",
                        "sagemaker:CreateTransformJob",
                        "sagemaker:DescribeTransformJob",
                        "sagemaker:AddTags",
                    ],
                    resources=[
                        f"arn:{part}:sagemaker:{region}:{account}:{kind}/{prefix}-*"
                        for kind in ("automl-job", "model", "transform-job")
                    ],
                )
            )
            for kind in ("automl-job", "model", "transform-job"):
                _ack(
                    role,
                    f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:"
                    f"<AWS::AccountId>:{kind}/{prefix}-*]",
                    "job and model names end in the manifest id, known only at run time",
                )
            for role_key in d.roles:
                role.add_to_principal_policy(
                    iam.PolicyStatement(
                        actions=["iam:PassRole"],
                        resources=[self.names.role_arn(role_key)],
                        conditions={
                            "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
                        },
                    )
                )

    def _rules(self) -> None:
        d = self.spec
        for key, rule in d.rules.items():
            machine = self.state_machines[rule.target]
            role = self.role(f"EventsRole-{key}", "events", self.names.role_name(f"{key}-events"))
            role.add_to_principal_policy(
                iam.PolicyStatement(actions=["states:StartExecution"], resources=[machine.attr_arn])
            )
            target: dict[str, Any] = {
                "arn": machine.attr_arn,
                "id": "workflow",
                "roleArn": role.role_arn,
            }
            settings = self.names.rule_input(key, local=False)
            if settings is not None:
                transformer = rule_input_transformer(settings)
                target["inputTransformer"] = {"inputTemplate": transformer["InputTemplate"]}
            events.CfnRule(
                self,
                f"Rule-{key}",
                name=self.names.rule_name(key),
                description=rule.description,
                state="ENABLED",
                event_pattern=s3_object_created_pattern(
                    self.names.bucket(rule.bucket), rule.prefix
                ),
                targets=[target],
            )

    def _delivery_streams(self) -> None:
        d = self.spec
        catalog = f"arn:{cdk.Aws.PARTITION}:glue:{cdk.Aws.REGION}:{cdk.Aws.ACCOUNT_ID}"
        for key, spec in d.delivery_streams.items():
            role = self.role(
                f"FirehoseRole-{key}", "firehose", self.names.role_name(f"{key}-firehose")
            )
            self.streams[spec.source].grant_read(role)
            self.grant_bucket(
                role,
                spec.bucket,
                write=True,
                why="Firehose writes objects under date-partitioned prefixes",
            )
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions"],
                    resources=[
                        f"{catalog}:catalog",
                        f"{catalog}:database/{d.glue.database}",
                        f"{catalog}:table/{d.glue.database}/{spec.glue_table}",
                    ],
                )
            )
            log_group = self.log_group(f"FirehoseLogs-{key}", f"/aws/kinesisfirehose/{d.name(key)}")
            log_group.grant_write(role)
            destination = cfn_props(
                self.names.delivery_destination(
                    key,
                    bucket_arn=self.buckets[spec.bucket].bucket_arn,
                    role_arn=role.role_arn,
                    region=cdk.Aws.REGION,
                )
            )
            # On AWS only: delivery logs, and no second compression of Parquet (SNAPPY inside).
            destination["compressionFormat"] = "UNCOMPRESSED"
            destination["cloudWatchLoggingOptions"] = {
                "enabled": True,
                "logGroupName": log_group.log_group_name,
                "logStreamName": "delivery",
            }
            stream = firehose.CfnDeliveryStream(
                self,
                f"DeliveryStream-{key}",
                delivery_stream_name=self.names.delivery_stream_name(key),
                delivery_stream_type="KinesisStreamAsSource",
                kinesis_stream_source_configuration={
                    "kinesisStreamArn": self.streams[spec.source].stream_arn,
                    "roleArn": role.role_arn,
                },
                extended_s3_destination_configuration=destination,
            )
            stream.node.add_dependency(role.node.find_child("DefaultPolicy"))
            _ack(
                stream,
                "AwsSolutions-KDF1",
                "a delivery stream with a Kinesis source is encrypted by its source stream's KMS "
                "key; Firehose server-side encryption applies only to Direct PUT",
            )

    def _flink_applications(self) -> None:
        d = self.spec
        for key, app in d.applications.items():
            code = self.asset(f"flink/{key}.zip")
            role = self.role(
                f"FlinkRole-{key}", "kinesisanalytics", self.names.role_name(f"{key}-flink")
            )
            self.grant_code(role, code)
            groups = self.names.application_properties(key, local=False)
            text = json.dumps(app.property_groups)
            for stream_key, stream in self.streams.items():
                ref = f"{{stream:{stream_key}}}"
                if ref not in text:
                    continue
                if any(
                    ref in values.get("input.stream.arn", "")
                    for values in app.property_groups.values()
                ):
                    stream.grant_read(role)
                else:
                    stream.grant_write(role)
            for bucket in d.buckets:
                if f"{{bucket:{bucket}}}" in text:
                    self.grant_bucket(
                        role,
                        bucket,
                        write=False,
                        prefix="profiles/",
                        why="the job reads its detector profiles",
                    )
            log_group = self.log_group(f"FlinkLogs-{key}", f"/aws/kinesis-analytics/{d.name(key)}")
            log_stream = logs.LogStream(
                self, f"FlinkLogStream-{key}", log_group=log_group, log_stream_name="application"
            )
            log_group.grant_write(role)
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["logs:DescribeLogGroups", "logs:DescribeLogStreams"],
                    resources=[log_group.log_group_arn],
                )
            )
            run_options = {
                "propertyGroupId": RUN_OPTIONS_GROUP,
                "propertyMap": flink_run_options(key, d),
            }
            groups_cfn = [run_options] + [
                {"propertyGroupId": g["PropertyGroupId"], "propertyMap": g["PropertyMap"]}
                for g in groups
            ]
            application = flink.CfnApplication(
                self,
                f"FlinkApplication-{key}",
                application_name=d.name(key),
                application_description=(
                    f"{key} (code sha256 {self.artifact_sha256(f'flink/{key}.zip')})"
                ),
                runtime_environment=FLINK_RUNTIME,
                service_execution_role=role.role_arn,
                application_configuration={
                    "applicationCodeConfiguration": {
                        "codeContent": {
                            "s3ContentLocation": {
                                "bucketArn": f"arn:{cdk.Aws.PARTITION}:s3:::{code.s3_bucket_name}",
                                "fileKey": code.s3_object_key,
                            }
                        },
                        "codeContentType": "ZIPFILE",
                    },
                    "environmentProperties": {"propertyGroups": groups_cfn},
                    "flinkApplicationConfiguration": {
                        "parallelismConfiguration": {
                            "configurationType": "CUSTOM",
                            "parallelism": app.parallelism,
                            "parallelismPerKpu": 1,
                            "autoScalingEnabled": False,
                        },
                        "checkpointConfiguration": {"configurationType": "DEFAULT"},
                        "monitoringConfiguration": {
                            "configurationType": "CUSTOM",
                            "logLevel": "INFO",
                            "metricsLevel": "APPLICATION",
                        },
                    },
                    "applicationSnapshotConfiguration": {"snapshotsEnabled": True},
                },
            )
            application.node.add_dependency(role.node.find_child("DefaultPolicy"))
            flink.CfnApplicationCloudWatchLoggingOption(
                self,
                f"FlinkLogging-{key}",
                application_name=application.ref,
                cloud_watch_logging_option={
                    "logStreamArn": (
                        f"arn:{cdk.Aws.PARTITION}:logs:{cdk.Aws.REGION}:{cdk.Aws.ACCOUNT_ID}:"
                        f"log-group:{log_group.log_group_name}:log-stream:"
                        f"{log_stream.log_stream_name}"
                    )
                },
            )
            self.alarm(
                f"Alarm-{key}-downtime",
                d.name(f"{key}-downtime"),
                f"The {key} Flink application is not running.",
                cloudwatch.Metric(
                    namespace="AWS/KinesisAnalytics",
                    metric_name="downtime",
                    dimensions_map={"Application": application.ref},
                    statistic="Maximum",
                    period=cdk.Duration.minutes(5),
                ),
                threshold=0,
                comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                missing=cloudwatch.TreatMissingData.BREACHING,
            )

    def _tables(self) -> dict[str, dynamodb.Table]:
        tables = {}
        for key, spec in self.spec.tables.items():
            tables[key] = dynamodb.Table(
                self,
                f"Table-{key}",
                table_name=self.names.table_name(key),
                partition_key=dynamodb.Attribute(
                    name=spec.partition_key, type=dynamodb.AttributeType.STRING
                ),
                billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
                encryption=dynamodb.TableEncryption.AWS_MANAGED,
                time_to_live_attribute=spec.ttl_attribute,
                point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                    point_in_time_recovery_enabled=True
                ),
                removal_policy=cdk.RemovalPolicy.RETAIN,
            )
        return tables

    def _athena(self) -> None:
        d = self.spec
        athena.CfnWorkGroup(
            self,
            "Workgroup",
            name=self.names.workgroup_name(),
            state="ENABLED",
            work_group_configuration={
                "enforceWorkGroupConfiguration": True,
                "publishCloudWatchMetricsEnabled": True,
                "resultConfiguration": {
                    "outputLocation": f"s3://{self.names.bucket(d.athena.results_bucket)}/",
                    "encryptionConfiguration": {"encryptionOption": "SSE_S3"},
                },
            },
        )

    def _api(self) -> None:
        d = self.spec
        if d.api is None:
            return
        api_spec = d.api
        code = self.asset("lambda/api.zip")
        role = self.role("ApiRole", "lambda", self.names.role_name("api-lambda"))
        log_group = self.log_group("ApiFunctionLogs", f"/aws/lambda/{d.name('api')}")
        log_group.grant_write(role)
        function = lambda_.Function(
            self,
            "ApiFunction",
            function_name=d.name("api"),
            runtime=LAMBDA_RUNTIME,
            handler=api_spec.entry_point(),
            code=lambda_.Code.from_bucket(code.bucket, code.s3_object_key),
            role=role,
            memory_size=api_spec.memory_mb,
            timeout=cdk.Duration.seconds(api_spec.timeout_seconds),
            environment=self.names.api_environment(),
            log_group=log_group,
            tracing=lambda_.Tracing.ACTIVE,
            description=f"forecast API (code sha256 {self.artifact_sha256('lambda/api.zip')})",
        )
        self.grant_code(role, code)
        _ack(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray trace segment actions have no resource-level scope",
        )
        self.tables[api_spec.cache_table].grant_read_write_data(role)
        part, region, account = cdk.Aws.PARTITION, cdk.Aws.REGION, cdk.Aws.ACCOUNT_ID
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "athena:StartQueryExecution",
                    "athena:GetQueryExecution",
                    "athena:GetQueryResults",
                    "athena:StopQueryExecution",
                ],
                resources=[
                    f"arn:{part}:athena:{region}:{account}:workgroup/{self.names.workgroup_name()}"
                ],
            )
        )
        catalog = f"arn:{part}:glue:{region}:{account}"
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["glue:GetDatabase", "glue:GetTable", "glue:GetPartitions"],
                resources=[
                    f"{catalog}:catalog",
                    f"{catalog}:database/{d.glue.database}",
                    f"{catalog}:table/{d.glue.database}/forecast_enriched",
                ],
            )
        )
        # CDK makes the function depend on its role and the role's policy; the role is already
        # referenced, so depend on the policy alone (cfn-lint W3005).
        policy = role.node.find_child("DefaultPolicy").node.default_child
        function.node.default_child.add_override(  # type: ignore[union-attr]
            "DependsOn", [self.get_logical_id(policy)]
        )
        enriched = d.glue.tables["forecast_enriched"]
        self.grant_bucket(
            role,
            enriched.bucket,
            write=False,
            prefix=enriched.prefix,
            why="the API reads the enriched forecast's partitions",
        )
        self.grant_bucket(
            role,
            d.athena.results_bucket,
            write=True,
            prefix=api_spec.results_prefix,
            why="Athena writes each query's result under the API's prefix",
        )

        access_logs = self.log_group("ApiAccessLogs", f"/aws/apigateway/{d.name('api')}")
        api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=d.name("api"),
            description="Forecast API",
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=cdk.RemovalPolicy.RETAIN,
            deploy_options=apigw.StageOptions(
                stage_name="v1",
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=False,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                tracing_enabled=True,
                throttling_rate_limit=50,
                throttling_burst_limit=100,
            ),
            default_method_options=apigw.MethodOptions(
                authorization_type=apigw.AuthorizationType.IAM
            ),
        )
        validator = api.add_request_validator(
            "Validator", validate_request_parameters=True, validate_request_body=True
        )
        integration = apigw.LambdaIntegration(function, proxy=True)
        forecast = api.root.add_resource("forecast").add_resource("{item_id}")
        forecast.add_method(
            "GET",
            integration,
            request_validator=validator,
            request_parameters={"method.request.path.item_id": True},
        )
        api.root.add_resource("products").add_method(
            "GET",
            integration,
            request_validator=validator,
            request_parameters={"method.request.querystring.q": False},
        )
        _ack(
            api,
            "AwsSolutions-APIG3",
            "WAF is an account-level choice (web ACL shared across APIs); callers are IAM-signed",
        )
        _ack(
            api,
            "AwsSolutions-COG4",
            "the API uses IAM authorization (signed requests), not a Cognito user pool",
        )
        _ack(
            api,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs]",
            "API Gateway's account-level logging role; AWS maintains that policy for it",
        )

    def _dms(self) -> None:
        """DMS Serverless from the source database (parameters) to the CDC stream."""
        d = self.spec
        context = self.node.try_get_context("source_database") or {}
        engine = context.get("engine", "postgres")
        if engine not in {"postgres", "mysql"}:
            raise ValueError(f"context source_database.engine: {engine!r} is not postgres or mysql")

        def parameter(name: str, kind: str, default: Any, description: str) -> cdk.CfnParameter:
            props: dict[str, Any] = {"type": kind, "description": description}
            if default is not None:
                props["default"] = default
            return cdk.CfnParameter(self, name, **props)

        host = parameter(
            "SourceHost",
            "String",
            context.get("host", "source.example.internal"),
            "Host name of the source database",
        )
        port = parameter(
            "SourcePort",
            "Number",
            context.get("port", 5432 if engine == "postgres" else 3306),
            "Port of the source database",
        )
        database = parameter(
            "SourceDatabase", "String", context.get("database", "retail"), "Database name"
        )
        schema = parameter(
            "SourceSchema",
            "String",
            context.get("schema", "retail"),
            "Schema holding the sales, products and campaigns tables",
        )
        secret = parameter(
            "SourceCredentialsArn",
            "String",
            context.get("secret_arn"),
            "Secrets Manager secret with the source database's credentials",
        )
        subnets = parameter(
            "DmsSubnetIds",
            "List<AWS::EC2::Subnet::Id>",
            ",".join(context["subnet_ids"]) if "subnet_ids" in context else None,
            "Subnets DMS runs in (reaching the source database)",
        )
        groups = parameter(
            "DmsSecurityGroupIds",
            "List<AWS::EC2::SecurityGroup::Id>",
            ",".join(context["security_group_ids"]) if "security_group_ids" in context else None,
            "Security groups of DMS",
        )

        secret_role = self.role("DmsSecretRole", f"dms.{cdk.Aws.REGION}", d.name("dms-secret-role"))
        secret_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue"], resources=[secret.value_as_string]
            )
        )
        target_role = self.role("DmsTargetRole", "dms", d.name("dms-target-role"))
        self.streams["cdc"].grant_write(target_role)
        settings = {
            "secretsManagerSecretId": secret.value_as_string,
            "secretsManagerAccessRoleArn": secret_role.role_arn,
        }
        source = dms.CfnEndpoint(
            self,
            "DmsSource",
            endpoint_identifier=d.name("source"),
            endpoint_type="source",
            engine_name=engine,
            server_name=host.value_as_string,
            port=port.value_as_number,
            database_name=database.value_as_string,
            ssl_mode="require",
            postgre_sql_settings=settings if engine == "postgres" else None,
            my_sql_settings=settings if engine == "mysql" else None,
        )
        target = dms.CfnEndpoint(
            self,
            "DmsTarget",
            endpoint_identifier=d.name("cdc-stream"),
            endpoint_type="target",
            engine_name="kinesis",
            kinesis_settings={
                "streamArn": self.streams["cdc"].stream_arn,
                "messageFormat": "json-unformatted",
                "serviceAccessRoleArn": target_role.role_arn,
                "includePartitionValue": True,
                "partitionIncludeSchemaTable": True,
                "includeControlDetails": False,
                "includeTransactionDetails": False,
            },
        )
        subnet_group = dms.CfnReplicationSubnetGroup(
            self,
            "DmsSubnets",
            replication_subnet_group_identifier=d.name("dms"),
            replication_subnet_group_description="Subnets of the DMS replication",
            subnet_ids=subnets.value_as_list,
        )
        mappings = {
            "rules": [
                {
                    "rule-type": "selection",
                    "rule-id": str(i + 1),
                    "rule-name": table,
                    "object-locator": {"schema-name": schema.value_as_string, "table-name": table},
                    "rule-action": "include",
                }
                for i, table in enumerate(sorted(CDC_TABLES))
            ]
        }
        dms.CfnReplicationConfig(
            self,
            "DmsReplication",
            replication_config_identifier=d.name("cdc"),
            replication_type="full-load-and-cdc",
            source_endpoint_arn=source.ref,
            target_endpoint_arn=target.ref,
            table_mappings=mappings,
            compute_config={
                "maxCapacityUnits": 4,
                "minCapacityUnits": 1,
                "multiAz": False,
                "replicationSubnetGroupId": subnet_group.ref,
                "vpcSecurityGroupIds": groups.value_as_list,
            },
        )


def build_app(bundle: Path | None = None, *, outdir: str | None = None) -> cdk.App:
    """The CDK app over ``bundle`` (its stack description and artifacts); without ``bundle``,
    the ``bundle`` context value the CDK CLI hands over (``-c bundle=DIR``)."""
    from cdk_nag import AwsSolutionsChecks

    # Access logs are granted to S3's logging service by bucket policy, not a legacy ACL.
    context = {"@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True}
    app = cdk.App(outdir=outdir, context=context) if outdir else cdk.App(context=context)
    bundle = bundle or app.node.try_get_context("bundle") or os.environ.get("DFP_BUNDLE")
    if not bundle:
        raise SystemExit("no bundle: pass -c bundle=DIR (dfp deploy synth does)")
    bundle = Path(bundle).resolve()
    if not (bundle / MANIFEST_FILE).is_file():
        raise SystemExit(f"{bundle}: not a bundle (no {MANIFEST_FILE}); build one with dfp bundle")
    description = load_stack(bundle / "stack.yaml")
    DemandForecastingStack(
        app,
        STACK_ID,
        spec=description,
        bundle=bundle,
        stack_name=f"{description.prefix}-demand-forecasting",
        description="Demand Forecasting & Planning (dfp-harness)",
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app


if __name__ == "__main__":
    build_app().synth()
