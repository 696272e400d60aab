"""The runtime table: which AWS runtime each stage targets and what stands in for it locally.

One place states the versions; the harness (to start local stand-ins) and ``deploy/`` (to pick
AWS runtimes) both read them from here, and a test checks the package pins agree.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Runtime:
    """One row of the runtime table."""

    service: str
    aws_runtime: str
    local_stand_in: str
    local_package: str | None = None
    local_version: str | None = None


RUNTIMES: dict[str, Runtime] = {
    "flink": Runtime(
        service="Managed Service for Apache Flink",
        aws_runtime="FLINK-2_2",
        local_stand_in="PyFlink mini-cluster with flink-connector-aws-kinesis-streams",
        local_package="apache-flink",
        local_version="2.2.1",
    ),
    "flink_kinesis_connector": Runtime(
        service="Kinesis table connector for Flink 2.x",
        aws_runtime="flink-connector-aws-kinesis-streams 6.x (-2.0)",
        local_stand_in="the same jar, built by Maven, pointed at the local endpoint",
    ),
    "glue": Runtime(
        service="AWS Glue",
        aws_runtime="5.1",
        local_stand_in="PySpark local session with a local awsglue shim",
        local_package="pyspark",
        local_version="3.5.6",
    ),
    "forecast": Runtime(
        service="SageMaker Canvas / AutoML V2 time-series",
        aws_runtime="CreateAutoMLJobV2 TimeSeriesForecastingJobConfig",
        local_stand_in="statsforecast behind the same calls",
        local_package="statsforecast",
        local_version="2.1.1",
    ),
    "serving": Runtime(
        service="AWS Lambda (the forecast API behind API Gateway)",
        aws_runtime="python3.14",
        local_stand_in="the same handler served by dfp serve",
    ),
    "athena": Runtime(
        service="Amazon Athena",
        aws_runtime="engine version 3 (Trino dialect)",
        local_stand_in="DuckDB over the same S3 data, SQL translated by sqlglot",
        local_package="duckdb",
        local_version="1.5.5",
    ),
    "aws_endpoint": Runtime(
        service="S3, Kinesis, Firehose, DynamoDB, EventBridge, Step Functions, Glue Catalog",
        aws_runtime="AWS",
        local_stand_in="moto server (embedded) or LocalStack 4.14.0 (docker-compose)",
        local_package="moto",
    ),
}

LOCALSTACK_IMAGE = "localstack/localstack:4.14.0"
PYTHON_VERSION_GLUE = "3.11"
PYTHON_VERSION_FLINK = "3.12"
