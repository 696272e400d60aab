"""The lake: buckets, the Glue catalog and jobs, Firehose delivery, the Athena workgroup.

A part of :class:`deploy.app.DemandForecastingStack`: its resources are created at the stack's
scope, so their logical ids do not depend on how the code is organised."""

from __future__ import annotations

import aws_cdk as cdk
import aws_cdk.aws_athena as athena
import aws_cdk.aws_glue as glue
import aws_cdk.aws_iam as iam
import aws_cdk.aws_kinesisfirehose as firehose
import aws_cdk.aws_s3 as s3

from deploy.cdk.common import Common, ack, cfn_props


class Lake(Common):
    """The lake: buckets, the Glue catalog and jobs, Firehose delivery, the Athena workgroup."""

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
        ack(access_logs, "AwsSolutions-S1", "this bucket is the access log target itself")
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

    def _glue_jobs(self) -> dict[str, glue.CfnJob]:
        d = self.spec
        security = self._glue_security()
        library = self.asset("pipeline.zip")
        jobs = {}
        for key, spec in d.glue.jobs.items():
            script = self.asset(f"glue/{spec.script}")
            role = self.role(f"GlueRole-{key}", "glue", self.names.role_name(f"{key}-glue"))
            self.grant_code(role, script, library)
            # Exactly what the stack description declares (checked there against the buckets
            # the job's arguments and its workflow's input name).
            for bucket in sorted(set(spec.reads) - set(spec.writes)):
                self.grant_bucket(role, bucket, write=False)
            for bucket in sorted(spec.writes):
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
            ack(
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
            ack(
                role,
                "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:"
                "<AWS::AccountId>:log-group:/aws-glue/*]",
                "Glue names its log groups per security configuration and job run",
            )
            self.key.grant_encrypt_decrypt(role)
            for action in ("kms:ReEncrypt*", "kms:GenerateDataKey*"):
                ack(
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
                max_retries=definition["MaxRetries"],
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
            ack(
                stream,
                "AwsSolutions-KDF1",
                "a delivery stream with a Kinesis source is encrypted by its source stream's KMS "
                "key; Firehose server-side encryption applies only to Direct PUT",
            )

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
