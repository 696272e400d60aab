"""Streaming: the Managed Flink anomaly application and its alarm.

A part of :class:`deploy.app.DemandForecastingStack`: its resources are created at the stack's
scope, so their logical ids do not depend on how the code is organised."""

from __future__ import annotations

import json

import aws_cdk as cdk
import aws_cdk.aws_cloudwatch as cloudwatch
import aws_cdk.aws_iam as iam
import aws_cdk.aws_kinesisanalyticsv2 as flink
import aws_cdk.aws_logs as logs

from deploy.bundle import (
    flink_run_options,
)
from deploy.cdk import common
from deploy.cdk.common import Common


class Streaming(Common):
    """Streaming: the Managed Flink anomaly application and its alarm."""

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
                "propertyGroupId": common.RUN_OPTIONS_GROUP,
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
                runtime_environment=common.FLINK_RUNTIME,
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
                        "checkpointConfiguration": app.checkpoint_configuration(),
                        "monitoringConfiguration": {
                            "configurationType": "CUSTOM",
                            "logLevel": "INFO",
                            "metricsLevel": "APPLICATION",
                        },
                    },
                    "applicationSnapshotConfiguration": {"snapshotsEnabled": app.snapshots},
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
