"""Serving: the DynamoDB cache and the forecast API (API Gateway + Lambda).

A part of :class:`deploy.app.DemandForecastingStack`: its resources are created at the stack's
scope, so their logical ids do not depend on how the code is organised."""

from __future__ import annotations

import aws_cdk as cdk
import aws_cdk.aws_apigateway as apigw
import aws_cdk.aws_dynamodb as dynamodb
import aws_cdk.aws_iam as iam
import aws_cdk.aws_lambda as lambda_

from deploy.cdk import common
from deploy.cdk.common import Common, ack


class Serving(Common):
    """Serving: the DynamoDB cache and the forecast API (API Gateway + Lambda)."""

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
                sort_key=dynamodb.Attribute(name=spec.sort_key, type=dynamodb.AttributeType.STRING)
                if spec.sort_key
                else None,
                billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
                encryption=dynamodb.TableEncryption.AWS_MANAGED,
                time_to_live_attribute=spec.ttl_attribute,
                point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                    point_in_time_recovery_enabled=True
                ),
                removal_policy=cdk.RemovalPolicy.RETAIN,
            )
        return tables

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
            runtime=common.LAMBDA_RUNTIME,
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
        ack(
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
        ack(
            api,
            "AwsSolutions-APIG3",
            "WAF is an account-level choice (web ACL shared across APIs); callers are IAM-signed",
        )
        ack(
            api,
            "AwsSolutions-COG4",
            "the API uses IAM authorization (signed requests), not a Cognito user pool",
        )
        ack(
            api,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs]",
            "API Gateway's account-level logging role; AWS maintains that policy for it",
        )
