"""Forecast: the workflows, the rules that start them, the SageMaker execution role.

A part of :class:`deploy.app.DemandForecastingStack`: its resources are created at the stack's
scope, so their logical ids do not depend on how the code is organised."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import aws_cdk.aws_cloudwatch as cloudwatch
import aws_cdk.aws_events as events
import aws_cdk.aws_iam as iam
import aws_cdk.aws_stepfunctions as sfn

from deploy.cdk.common import Common, ack
from deploy.stack import (
    rule_input_transformer,
    s3_object_created_pattern,
)


class Forecast(Common):
    """Forecast: the workflows, the rules that start them, the SageMaker execution role."""

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
                ack(
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
                ack(
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
            self._grant_workflow(role, key)
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
            ack(
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

    def _grant_workflow(self, role: iam.Role, key: str) -> None:
        """What a workflow's tasks reach, as the stack description declares it
        (``state_machines.KEY.access``), scoped to the stack's own resources."""
        d = self.spec
        access = d.state_machines[key].access
        region, account, part = cdk.Aws.REGION, cdk.Aws.ACCOUNT_ID, cdk.Aws.PARTITION
        if access.starts_jobs:
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
                        for job in sorted(access.starts_jobs)
                    ],
                )
            )
        if access.reads_trigger:
            for rule in d.rules.values():
                if rule.target == key:
                    role.add_to_principal_policy(
                        iam.PolicyStatement(
                            actions=["s3:GetObject"],
                            resources=[self.bucket_objects(rule.bucket, rule.prefix)],
                        )
                    )
                    ack(
                        role,
                        f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::"
                        f"{self.nag_names.bucket(rule.bucket)}/{rule.prefix}*]",
                        "the workflow reads the object whose event started it",
                    )
        if access.sagemaker:
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
                ack(
                    role,
                    f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:"
                    f"<AWS::AccountId>:{kind}/{prefix}-*]",
                    "job and model names end in the manifest id, known only at run time",
                )
        for topic in access.notifies:  # the failure notice; also the topic's KMS key use
            self.topics[topic].grant_publish(role)
            ack(
                role,
                "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
                "CDK's publish grant on an encrypted topic, on the stack's own key only",
            )
        for role_key in access.passes_roles:
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["iam:PassRole"],
                    resources=[self.names.role_arn(role_key)],
                    conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
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
