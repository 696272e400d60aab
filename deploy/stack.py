"""The one stack description (``deploy/stack.yaml``), validated, and its physical names.

Both the local world's provisioning and the CDK app read this, so the names, shard counts and
wiring that were tested locally are the ones deployed. Physical names need the account and region,
which come from STS and configuration at run time, never from code.
"""

from __future__ import annotations

import json
import os
import re
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

import pipeline

STACK_FILE = Path(__file__).with_name("stack.yaml")
_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,30}$"
_REFERENCE = re.compile(r"\{(bucket|role|job|stream|topic):([a-z0-9-]+)\}")


class StackError(ValueError):
    """The stack description is invalid (names the file and key)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StreamSpec(_Strict):
    shards: int = Field(ge=1, le=500)
    retention_hours: int = Field(default=24, ge=24, le=8760)


class BucketSpec(_Strict):
    pass


class WorkflowAccess(_Strict):
    """What a workflow's tasks reach, declared (the CDK app grants exactly this; a test checks
    it against the definition's task resources)."""

    starts_jobs: list[str] = Field(default_factory=list)  # Glue jobs it starts and polls
    reads_trigger: bool = False  # reads the S3 object whose event started it
    sagemaker: bool = False  # AutoML jobs, models, transform jobs under the stack's prefix
    passes_roles: list[str] = Field(default_factory=list)  # roles it hands to SageMaker
    notifies: list[str] = Field(default_factory=list)  # topics it publishes its failures to


class StateMachineSpec(_Strict):
    definition: str
    timeout_seconds: int = Field(default=21600, ge=1, le=31_536_000)
    access: WorkflowAccess = WorkflowAccess()

    def definition_path(self) -> Path:
        return Path(pipeline.__file__).parent / self.definition


class RuleSpec(_Strict):
    description: str = ""
    bucket: str
    prefix: str = ""
    target: str
    # Constant settings handed to the target with the event (an InputTransformer): values may
    # name resources as {bucket:KEY}, {role:KEY}, {job:KEY}, {topic:KEY}.
    input: dict[str, str | int | float | bool] | None = None


class CheckpointSpec(_Strict):
    """Managed Flink's ``CheckpointConfiguration`` with ``ConfigurationType: CUSTOM``; an
    application without one gets the service's ``DEFAULT`` (on, every 60 s, 5 s pause)."""

    enabled: bool = True
    interval_ms: int = Field(default=60_000, ge=1)
    min_pause_ms: int = Field(default=5_000, ge=0)


class FlinkApplicationSpec(_Strict):
    """A Managed Flink application: entry file (relative to the pipeline package), parallelism
    and the property groups its job reads (values may name {stream:KEY}, {bucket:KEY},
    {region}); its checkpointing, and whether the service keeps snapshots of it (taken when it
    stops, restored when it starts)."""

    entry: str
    parallelism: int = Field(default=1, ge=1, le=64)
    property_groups: dict[str, dict[str, str]]
    checkpoints: CheckpointSpec | None = None
    snapshots: bool = True

    def checkpoint_configuration(self) -> dict[str, Any]:
        """The ``CheckpointConfiguration`` the service is given (CloudFormation's spelling)."""
        if self.checkpoints is None:
            return {"configurationType": "DEFAULT"}
        return {
            "configurationType": "CUSTOM",
            "checkpointingEnabled": self.checkpoints.enabled,
            "checkpointInterval": self.checkpoints.interval_ms,
            "minPauseBetweenCheckpoints": self.checkpoints.min_pause_ms,
        }

    def entry_path(self) -> Path:
        return Path(pipeline.__file__).parent / self.entry


class AlertSpec(_Strict):
    """A QuickSight-style alert over the analysis data (the run evaluates it through Athena)."""

    description: str = ""
    kind: Literal["outliers_per_product_day"]
    threshold: int = Field(ge=1)


class RoleSpec(_Strict):
    """An IAM role a service assumes (its policies are written in the CDK app)."""

    service: str = Field(pattern=r"^[a-z0-9-]+$")


class TopicSpec(_Strict):
    """An SNS topic: where the stack's alarms and the workflows' failure notices go."""

    description: str = ""


class TableSpec(_Strict):
    partition_key: str
    sort_key: str | None = None
    ttl_attribute: str | None = None


class ApiSpec(_Strict):
    """The forecast API: one Lambda function behind API Gateway (proxy integration)."""

    handler: str
    cache_table: str
    cache_ttl_seconds: int = Field(default=3600, ge=1)
    results_prefix: str = Field(default="api/", pattern=r"^([a-z0-9_=-]+/)+$")
    memory_mb: int = Field(default=512, ge=128, le=10240)
    timeout_seconds: int = Field(default=29, ge=1, le=29)  # API Gateway's integration limit

    def handler_path(self) -> Path:
        return Path(pipeline.__file__).parent / self.handler

    def entry_point(self) -> str:
        """The Lambda ``Handler`` setting: the module path of the file, then ``.handler``."""
        module = "pipeline." + self.handler.removesuffix(".py").replace("/", ".")
        return f"{module}.handler"


class AthenaSpec(_Strict):
    workgroup: str = Field(pattern=r"^[a-zA-Z0-9._-]{1,64}$")
    results_bucket: str


class LocalSpec(_Strict):
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    # Rule input values that differ in the local world (e.g. how often a workflow polls a job
    # that takes hours on AWS and seconds here). Keys must exist in the rule's input.
    rule_input: dict[str, dict[str, str | int | float | bool]] = Field(default_factory=dict)
    # Property values that differ for a locally run application (e.g. where reading starts).
    application_properties: dict[str, dict[str, dict[str, str]]] = Field(default_factory=dict)


class GlueTableSpec(_Strict):
    bucket: str
    prefix: str = Field(pattern=r"^([a-z0-9_=-]+/)+$")


class GlueJobSpec(_Strict):
    script: str
    schedule: str | None = Field(default=None, pattern=r"^cron\(.+\)$")
    arguments: dict[str, str] = Field(default_factory=dict)
    # The buckets the job reads, and those it writes (and may delete in): its role gets exactly
    # these. A bucket its arguments or its workflow's input name must be in one of them (checked).
    reads: list[str] = Field(default_factory=list)
    writes: list[str] = Field(default_factory=list)
    # Glue's own retries of a failed run (MaxRetries). A job a workflow starts keeps 0: the
    # workflow polls the run it started and retries it itself, and two layers of retries would
    # run the job up to (1 + n) × (1 + m) times.
    max_retries: int = Field(default=0, ge=0, le=10)

    def script_path(self) -> Path:
        return Path(pipeline.__file__).parent / self.script


class GlueSpec(_Strict):
    database: str = Field(pattern=r"^[a-z_][a-z0-9_]*$")
    tables: dict[str, GlueTableSpec] = Field(default_factory=dict)
    jobs: dict[str, GlueJobSpec] = Field(default_factory=dict)


class DeliveryStreamSpec(_Strict):
    """A Firehose delivery stream with a Kinesis stream source and Parquet conversion."""

    source: str
    bucket: str
    prefix: str
    error_prefix: str = Field(pattern=r".*!\{firehose:error-output-type\}.*")
    partition_query: str | None = None
    buffer_mib: int = Field(default=64, ge=64, le=128)  # 64 MiB minimum with conversion
    buffer_seconds: int = Field(default=300, ge=0, le=900)
    glue_table: str


class Stack(_Strict):
    """The validated stack description."""

    prefix: str = Field(pattern=r"^[a-z][a-z0-9]{1,11}$")
    local: LocalSpec
    streams: dict[str, StreamSpec]
    buckets: dict[str, BucketSpec]
    state_machines: dict[str, StateMachineSpec]
    rules: dict[str, RuleSpec]
    tables: dict[str, TableSpec]
    delivery_streams: dict[str, DeliveryStreamSpec] = Field(default_factory=dict)
    roles: dict[str, RoleSpec] = Field(default_factory=dict)
    topics: dict[str, TopicSpec] = Field(default_factory=dict)
    applications: dict[str, FlinkApplicationSpec] = Field(default_factory=dict)
    alerts: dict[str, AlertSpec] = Field(default_factory=dict)
    api: ApiSpec | None = None
    athena: AthenaSpec
    glue: GlueSpec

    @field_validator(
        "streams",
        "buckets",
        "state_machines",
        "rules",
        "tables",
        "delivery_streams",
        "roles",
        "applications",
    )
    @classmethod
    def _keys_are_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        import re

        for key in value:
            if not re.match(_NAME_PATTERN, key):
                raise ValueError(f"key {key!r} must match {_NAME_PATTERN}")
        return value

    @model_validator(mode="after")
    def _references_exist(self) -> Stack:
        for name, rule in self.rules.items():
            if rule.bucket not in self.buckets:
                raise ValueError(f"rules.{name}.bucket: no bucket {rule.bucket!r}")
            if rule.target not in self.state_machines:
                raise ValueError(f"rules.{name}.target: no state machine {rule.target!r}")
            for key, value in (rule.input or {}).items():
                self._check_references(f"rules.{name}.input.{key}", value)
        for name, overrides in self.local.rule_input.items():
            if name not in self.rules:
                raise ValueError(f"local.rule_input.{name}: no rule {name!r}")
            for key in overrides:
                if key not in (self.rules[name].input or {}):
                    raise ValueError(f"local.rule_input.{name}.{key}: not in the rule's input")
        from pipeline.contracts.staged import GLUE_TABLES

        for name, table in self.glue.tables.items():
            if name not in GLUE_TABLES:
                raise ValueError(f"glue.tables.{name}: no such table in pipeline/contracts")
            if table.bucket not in self.buckets:
                raise ValueError(f"glue.tables.{name}.bucket: no bucket {table.bucket!r}")
        for name, job in self.glue.jobs.items():
            if not job.script_path().is_file():
                raise ValueError(f"glue.jobs.{name}.script: no file {job.script_path()}")
            for arg, value in job.arguments.items():
                self._check_references(f"glue.jobs.{name}.arguments.{arg}", value)
            for field_name in ("reads", "writes"):
                for bucket in getattr(job, field_name):
                    if bucket not in self.buckets:
                        raise ValueError(f"glue.jobs.{name}.{field_name}: no bucket {bucket!r}")
            named = set(_REFERENCE.findall(json.dumps(job.arguments)))
            for rule in self.rules.values():
                if f"{{job:{name}}}" in json.dumps(rule.input or {}):
                    named |= {("bucket", rule.bucket)}
                    named |= set(_REFERENCE.findall(json.dumps(rule.input or {})))
            undeclared = sorted(
                ref for kind, ref in named
                if kind == "bucket" and ref not in {*job.reads, *job.writes}
            )  # fmt: skip
            if undeclared:
                raise ValueError(
                    f"glue.jobs.{name}: its arguments or workflow input name bucket(s) "
                    f"{', '.join(undeclared)}, which neither reads nor writes declares"
                )
        for name, ds in self.delivery_streams.items():
            if ds.source not in self.streams:
                raise ValueError(f"delivery_streams.{name}.source: no stream {ds.source!r}")
            if ds.bucket not in self.buckets:
                raise ValueError(f"delivery_streams.{name}.bucket: no bucket {ds.bucket!r}")
            if ds.glue_table not in self.glue.tables:
                raise ValueError(f"delivery_streams.{name}.glue_table: not in glue.tables")
            if "partitionKeyFromQuery" in ds.prefix and not ds.partition_query:
                raise ValueError(f"delivery_streams.{name}: prefix uses a partition key but "
                                 "no partition_query is given")  # fmt: skip
        for name, app in self.applications.items():
            if not app.entry_path().is_file():
                raise ValueError(f"applications.{name}.entry: no file {app.entry_path()}")
            for group, values in app.property_groups.items():
                for key, value in values.items():
                    self._check_references(f"applications.{name}.{group}.{key}", value)
        for name in self.local.application_properties:
            if name not in self.applications:
                raise ValueError(f"local.application_properties.{name}: no application {name!r}")
        if self.api is not None:
            if not self.api.handler_path().is_file():
                raise ValueError(f"api.handler: no file {self.api.handler_path()}")
            if self.api.cache_table not in self.tables:
                raise ValueError(f"api.cache_table: no table {self.api.cache_table!r}")
        if self.athena.results_bucket not in self.buckets:
            raise ValueError(f"athena.results_bucket: no bucket {self.athena.results_bucket!r}")
        if "alarms" not in self.topics:
            raise ValueError("topics.alarms: required (the stack's alarms notify it)")
        for name, machine in self.state_machines.items():
            if not machine.definition_path().is_file():
                raise ValueError(
                    f"state_machines.{name}.definition: no file {machine.definition_path()}"
                )
            for job in machine.access.starts_jobs:
                if job not in self.glue.jobs:
                    raise ValueError(f"state_machines.{name}.access.starts_jobs: no job {job!r}")
                if self.glue.jobs[job].max_retries:
                    raise ValueError(
                        f"glue.jobs.{job}.max_retries: the workflow {name!r} starts this job and "
                        "retries a failed run itself; Glue's retries would multiply them (use 0)"
                    )
            for role in machine.access.passes_roles:
                if role not in self.roles:
                    raise ValueError(f"state_machines.{name}.access.passes_roles: no role {role!r}")
            for topic in machine.access.notifies:
                if topic not in self.topics:
                    raise ValueError(f"state_machines.{name}.access.notifies: no topic {topic!r}")
        return self

    def _check_references(self, where: str, value: object) -> None:
        kinds = {"bucket": self.buckets, "role": self.roles, "job": self.glue.jobs,
                 "stream": self.streams, "topic": self.topics}  # fmt: skip
        for kind, ref in _REFERENCE.findall(str(value)):
            if ref not in kinds[kind]:
                raise ValueError(f"{where}: no {kind} {ref!r}")

    # ------------------------------------------------------------------------------- names
    def name(self, key: str) -> str:
        return f"{self.prefix}-{key}"

    def bucket_name(self, key: str, account: str, region: str) -> str:
        return f"{self.prefix}-{key}-{account}-{region}"

    def resolve(self, account: str, region: str) -> ResolvedStack:
        return ResolvedStack(self, account, region)


class ResolvedStack:
    """The stack's physical names and ARNs in one account and region."""

    def __init__(self, stack: Stack, account: str, region: str, partition: str = "aws") -> None:
        self.stack = stack
        self.account = account
        self.region = region
        self.partition = partition

    def stream_name(self, key: str) -> str:
        return self.stack.name(key)

    def stream_arn(self, key: str) -> str:
        name = self.stream_name(key)
        return f"arn:{self.partition}:kinesis:{self.region}:{self.account}:stream/{name}"

    def bucket(self, key: str) -> str:
        return self.stack.bucket_name(key, self.account, self.region)

    def state_machine_name(self, key: str) -> str:
        return self.stack.name(key)

    def state_machine_arn(self, key: str) -> str:
        return (
            f"arn:{self.partition}:states:{self.region}:{self.account}:stateMachine:"
            f"{self.state_machine_name(key)}"
        )

    def role_name(self, key: str) -> str:
        return self.stack.name(f"{key}-role")

    def role_arn(self, key: str) -> str:
        return f"arn:{self.partition}:iam::{self.account}:role/{self.role_name(key)}"

    def rule_name(self, key: str) -> str:
        return self.stack.name(key)

    def topic_name(self, key: str) -> str:
        return self.stack.name(key)

    def topic_arn(self, key: str) -> str:
        return f"arn:{self.partition}:sns:{self.region}:{self.account}:{self.topic_name(key)}"

    def table_name(self, key: str) -> str:
        return self.stack.name(key)

    def delivery_stream_name(self, key: str) -> str:
        return self.stack.name(key)

    def job_name(self, key: str) -> str:
        return self.stack.name(key)

    def script_location(self, key: str) -> str:
        return f"s3://{self.bucket('artifacts')}/glue/{self.stack.glue.jobs[key].script}"

    def resolve_references(self, value: Any) -> Any:
        """``{bucket:KEY}``, ``{role:KEY}``, ``{job:KEY}``, ``{stream:KEY}``, ``{topic:KEY}`` in
        a string → physical names (ARNs for roles, streams and topics)."""
        if not isinstance(value, str):
            return value
        lookup = {"bucket": self.bucket, "role": self.role_arn, "job": self.job_name,
                  "stream": self.stream_arn, "topic": self.topic_arn}  # fmt: skip
        value = value.replace("{region}", self.region)
        return _REFERENCE.sub(lambda m: lookup[m.group(1)](m.group(2)), value)

    def application_properties(self, key: str, *, local: bool) -> list[dict[str, Any]]:
        """The application's property groups as Managed Flink takes them, resolved; ``local``
        applies ``local.application_properties``."""
        app = self.stack.applications[key]
        overrides = self.stack.local.application_properties.get(key, {}) if local else {}
        groups = []
        for group, values in sorted(app.property_groups.items()):
            merged = {**values, **overrides.get(group, {})}
            groups.append({
                "PropertyGroupId": group,
                "PropertyMap": {k: self.resolve_references(v) for k, v in sorted(merged.items())},
            })  # fmt: skip
        return groups

    def workgroup_name(self) -> str:
        return self.stack.name(self.stack.athena.workgroup)

    def api_environment(self) -> dict[str, str]:
        """The forecast API function's environment (``Settings.from_environment`` reads it)."""
        api = self.stack.api
        if api is None:
            return {}
        results = self.bucket(self.stack.athena.results_bucket)
        return {
            "FORECAST_TABLE": self.table_name(api.cache_table),
            "ATHENA_DATABASE": self.stack.glue.database,
            "ATHENA_OUTPUT": f"s3://{results}/{api.results_prefix}",
            "ATHENA_WORKGROUP": self.workgroup_name(),
            "CACHE_TTL_SECONDS": str(api.cache_ttl_seconds),
        }

    def glue_table_input(self, name: str) -> dict[str, Any]:
        """The Data Catalog ``TableInput`` of one of ``glue.tables`` (columns from the contracts),
        in the shape both the Glue API and CloudFormation take."""
        from pipeline.contracts.staged import GLUE_TABLES

        columns, partitions = GLUE_TABLES[name]
        spec = self.stack.glue.tables[name]
        parquet = "org.apache.hadoop.hive.ql.io.parquet"
        return {
            "Name": name,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE"},
            "PartitionKeys": [{"Name": n, "Type": t} for n, t in partitions],
            "StorageDescriptor": {
                "Columns": [{"Name": n, "Type": t} for n, t in columns],
                "Location": f"s3://{self.bucket(spec.bucket)}/{spec.prefix}",
                "InputFormat": f"{parquet}.MapredParquetInputFormat",
                "OutputFormat": f"{parquet}.MapredParquetOutputFormat",
                "SerdeInfo": {"SerializationLibrary": f"{parquet}.serde.ParquetHiveSerDe"},
            },
        }

    def job_arguments(self, key: str) -> dict[str, str]:
        """The job's default arguments with resource references resolved."""
        return {
            arg: self.resolve_references(value)
            for arg, value in self.stack.glue.jobs[key].arguments.items()
        }

    # ---------------------------------------------------- request bodies, one per resource
    # Shaped like the service API's request (PascalCase); local provisioning sends them with
    # boto3, the CDK app passes them to its L1 constructs (deploy.app.cfn_props), adding only
    # what exists on AWS alone (logging, encryption, assets). One builder, so the two sides
    # cannot drift.
    def glue_job_definition(
        self, key: str, *, role_arn: str, script_location: str, extra_arguments: dict | None = None
    ) -> dict[str, Any]:
        """``CreateJob``'s body (without ``Name``) for the job ``key``."""
        from pipeline.runtimes import RUNTIMES

        return {
            "Role": role_arn,
            "Command": {"Name": "glueetl", "ScriptLocation": script_location, "PythonVersion": "3"},
            "DefaultArguments": {
                "--job-language": "python",
                **self.job_arguments(key),
                **(extra_arguments or {}),
            },
            "GlueVersion": RUNTIMES["glue"].aws_runtime,
            "ExecutionProperty": {"MaxConcurrentRuns": 1},
            "MaxRetries": self.stack.glue.jobs[key].max_retries,
        }

    def delivery_destination(
        self, key: str, *, bucket_arn: str, role_arn: str, region: str
    ) -> dict[str, Any]:
        """``ExtendedS3DestinationConfiguration`` of the delivery stream ``key``: prefixes,
        buffering, Parquet conversion with the catalog table's schema, dynamic partitioning."""
        spec = self.stack.delivery_streams[key]
        destination: dict[str, Any] = {
            "RoleARN": role_arn,
            "BucketARN": bucket_arn,
            "Prefix": spec.prefix,
            "ErrorOutputPrefix": spec.error_prefix,
            "BufferingHints": {
                "SizeInMBs": spec.buffer_mib,
                "IntervalInSeconds": spec.buffer_seconds,
            },
            "DataFormatConversionConfiguration": {
                "Enabled": True,
                "SchemaConfiguration": {
                    "DatabaseName": self.stack.glue.database,
                    "TableName": spec.glue_table,
                    "RoleARN": role_arn,
                    "Region": region,
                    "VersionId": "LATEST",
                },
                "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
                "OutputFormatConfiguration": {
                    "Serializer": {"ParquetSerDe": {"Compression": "SNAPPY"}}
                },
            },
        }
        if spec.partition_query:
            destination["DynamicPartitioningConfiguration"] = {"Enabled": True}
            destination["ProcessingConfiguration"] = {
                "Enabled": True,
                "Processors": [
                    {
                        "Type": "MetadataExtraction",
                        "Parameters": [
                            {"ParameterName": "MetadataExtractionQuery",
                             "ParameterValue": spec.partition_query},
                            {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"},
                        ],
                    }
                ],
            }  # fmt: skip
        return destination

    def bucket_arn(self, key: str) -> str:
        return f"arn:{self.partition}:s3:::{self.bucket(key)}"

    def rule_input(self, key: str, *, local: bool) -> dict[str, Any] | None:
        """The constant settings a rule hands its target, resolved; ``local`` applies
        ``local.rule_input`` overrides."""
        settings = dict(self.stack.rules[key].input or {})
        if not settings:
            return None
        if local:
            settings.update(self.stack.local.rule_input.get(key, {}))
        return {k: self.resolve_references(v) for k, v in settings.items()}

    @cached_property
    def names(self) -> dict[str, Any]:
        """Every physical name, as written to a run's ``stack.json``."""
        s = self.stack
        return {
            "account": self.account,
            "region": self.region,
            "streams": {k: self.stream_arn(k) for k in s.streams},
            "buckets": {k: self.bucket(k) for k in s.buckets},
            "state_machines": {k: self.state_machine_arn(k) for k in s.state_machines},
            "rules": {k: self.rule_name(k) for k in s.rules},
            "tables": {k: self.table_name(k) for k in s.tables},
            "delivery_streams": {k: self.delivery_stream_name(k) for k in s.delivery_streams},
            "glue_jobs": {k: self.job_name(k) for k in s.glue.jobs},
            "roles": {k: self.role_arn(k) for k in s.roles},
            "topics": {k: self.topic_arn(k) for k in s.topics},
            "glue_database": s.glue.database,
            "athena_workgroup": self.workgroup_name(),
        }

    def to_json(self) -> str:
        return json.dumps(self.names, indent=2, sort_keys=True) + "\n"


def s3_object_created_pattern(bucket: str, prefix: str) -> dict[str, Any]:
    """The EventBridge pattern for S3 'Object Created' events on ``bucket`` under ``prefix``."""
    detail: dict[str, Any] = {"bucket": {"name": [bucket]}}
    if prefix:
        detail["object"] = {"key": [{"prefix": prefix}]}
    return {"source": ["aws.s3"], "detail-type": ["Object Created"], "detail": detail}


def rule_input_transformer(settings: dict[str, Any]) -> dict[str, Any]:
    """The target's input: ``{"event": <the S3 event>, "settings": {...}}``.

    The event stays whole (the workflow reads bucket, key and etag from it) and the settings are
    constants from the stack description, so the state machine file itself names no resource.
    """
    constants = json.dumps(settings, sort_keys=True)
    return {"InputTemplate": '{"event": <aws.events.event.json>, "settings": ' + constants + "}"}


def stack_file() -> Path:
    """The stack description in use: ``DFP_STACK_FILE`` (a bundle's copy, when ``dfp validate``
    runs a bundle) or the one in this package."""
    configured = os.environ.get("DFP_STACK_FILE")
    return Path(configured) if configured else STACK_FILE


def load_stack(path: Path | None = None) -> Stack:
    """Load and validate the stack description; errors name the file and the key path."""
    path = path or stack_file()
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise StackError(f"{path}: cannot read the stack description: {exc}") from None
    try:
        return Stack.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise StackError(f"{path}: {problems}") from None
