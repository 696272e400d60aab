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
docs/deploy.md says how to set them up.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import aws_cdk.aws_iam as iam
import aws_cdk.aws_kms as kms
import aws_cdk.aws_sns as sns
from constructs import Construct

from deploy.bundle import (
    MANIFEST_FILE,
    manifest_sha256,
    read_manifest,
)
from deploy.cdk.common import ack, cfn_props
from deploy.cdk.forecast import Forecast
from deploy.cdk.ingest import Ingest
from deploy.cdk.lake import Lake
from deploy.cdk.serving import Serving
from deploy.cdk.streaming import Streaming
from deploy.stack import (
    ResolvedStack,
    Stack,
    load_stack,
)

STACK_ID = "DemandForecasting"

__all__ = ["STACK_ID", "DemandForecastingStack", "ack", "build_app", "cfn_props"]


class DemandForecastingStack(Ingest, Lake, Forecast, Streaming, Serving):
    """Every resource of the architecture, built room by room (``deploy/cdk/``); see the module
    docstring."""

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
        self.topics = {
            key: sns.Topic(
                self,
                "Alarms" if key == "alarms" else f"Topic-{key}",
                topic_name=spec.name(key),
                master_key=self.key,
                enforce_ssl=True,
            )
            for key in spec.topics
        }
        self.alarm_topic = self.topics["alarms"]
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
