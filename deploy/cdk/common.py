"""Helpers every room uses: code assets, roles, log groups, alarms, bucket grants.

A part of :class:`deploy.app.DemandForecastingStack`: its resources are created at the stack's
scope, so their logical ids do not depend on how the code is organised."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
import aws_cdk.aws_cloudwatch as cloudwatch
import aws_cdk.aws_cloudwatch_actions as cw_actions
import aws_cdk.aws_iam as iam
import aws_cdk.aws_kinesis as kinesis
import aws_cdk.aws_kms as kms
import aws_cdk.aws_lambda as lambda_
import aws_cdk.aws_logs as logs
import aws_cdk.aws_s3 as s3
import aws_cdk.aws_s3_assets as s3_assets
import aws_cdk.aws_sns as sns
from constructs import Construct

from deploy.stack import (
    ResolvedStack,
    Stack,
)
from pipeline.runtimes import RUNTIMES

# Where an asset key lands: the CDK staging bucket; its objects are addressed by content hash.
_STAGING_OBJECTS = "staging bucket objects are content-addressed by hash; the key is not known"
FLINK_RUNTIME = RUNTIMES["flink"].aws_runtime
LAMBDA_RUNTIME = lambda_.Runtime(RUNTIMES["serving"].aws_runtime, lambda_.RuntimeFamily.PYTHON)
RUN_OPTIONS_GROUP = "kinesis.analytics.flink.run.options"


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


def ack(scope: Construct, rule: str, reason: str) -> None:
    """Acknowledge a cdk-nag finding on ``scope``, with the reason next to it."""
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=rule, reason=reason))


class Common(cdk.Stack):
    """The stack's shared state and helpers (set by :class:`deploy.app.DemandForecastingStack`)."""

    spec: Stack
    bundle: Path
    manifest: dict[str, Any]
    names: ResolvedStack
    nag_names: ResolvedStack
    key: kms.Key
    alarm_topic: sns.Topic
    topics: dict[str, sns.Topic]
    streams: dict[str, kinesis.Stream]
    buckets: dict[str, s3.Bucket]

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
            ack(role, f"AwsSolutions-IAM5[{finding}]", _STAGING_OBJECTS)

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
        ack(
            role,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::{self.nag_names.bucket(key)}"
            f"/{prefix}*]",
            why or "object keys under the prefix carry dates and versions known only at run time",
        )
