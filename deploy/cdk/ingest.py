"""Ingest: the Kinesis streams and DMS Serverless from the source database.

A part of :class:`deploy.app.DemandForecastingStack`: its resources are created at the stack's
scope, so their logical ids do not depend on how the code is organised."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import aws_cdk.aws_dms as dms
import aws_cdk.aws_iam as iam
import aws_cdk.aws_kinesis as kinesis

from deploy.cdk.common import Common
from pipeline.contracts.cdc import TABLES as CDC_TABLES


class Ingest(Common):
    """Ingest: the Kinesis streams and DMS Serverless from the source database."""

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
