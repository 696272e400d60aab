"""Glue job: a forecast export joined with the staged data, laid out for Athena.

Started (through the enrichment workflow) by the S3 event of a forecast export. Arguments:
  --export_path   s3:// URI of the export file (``…/exports/<version>/<name>_part0.csv``)
  --staged_path   s3:// prefix of the staged CDC table
  --output_path   s3:// prefix of the ``forecast_enriched`` table (partitioned by version)
  --recent_days   days of actuals averaged into ``recent_daily_demand``

A forecast by store (a ``store_id`` column in the export) is enriched per item and store.
Writes Parquet under ``<output_path>/version=<version>/`` (the version is the export's folder
name), replacing that partition only: a rerun for the same export gives the same rows, never
duplicates, and other versions stay.
"""

import sys

from awsglue.context import GlueContext
from awsglue.job import Job
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext
from pyspark.sql import functions as F

from pipeline.contracts.cdc import DIMENSIONS
from pipeline.contracts.staged import FORECAST_ENRICHED_COLUMNS
from pipeline.etl.transforms import (
    REJECT,
    current_rows,
    dms_changes,
    enrich_forecast,
    read_forecast_export,
    reject_reasons,
    staged_schema_ddl,
    validate_staged,
    with_files,
)

ARGS = ["export_path", "staged_path", "output_path", "recent_days"]


def export_version(export_path: str) -> str:
    """``s3://b/exports/2025-02-05/x_part0.csv`` → ``2025-02-05`` (the folder of the file)."""
    parts = export_path.rstrip("/").split("/")
    if len(parts) < 2 or not parts[-2]:
        raise ValueError(f"--export_path {export_path!r}: expected …/<version>/<file>.csv")
    return parts[-2]


def main(argv: list[str]) -> None:
    args = getResolvedOptions(argv, ARGS)
    glue = GlueContext(SparkContext.getOrCreate())
    spark = glue.spark_session
    job = Job(glue)
    job.init(args["JOB_NAME"], args)
    version = export_version(args["export_path"])

    export = spark.read.option("header", "true").csv(args["export_path"])
    # Read once (cached by the validating pass): the four tables are read from it, and each
    # pass over the staged table opens every object in it again.
    staged = with_files(spark.read.schema(staged_schema_ddl()).parquet(args["staged_path"]))
    staged = staged.cache()
    validate_staged(staged)
    # The changes the forecast-input job applied (it reports the ones it set aside).
    forecast = read_forecast_export(export)
    dimensions = tuple(c for c in forecast.columns if c in DIMENSIONS)
    checked = reject_reasons(dms_changes(staged), dimensions)
    valid = checked.where(checked[REJECT].isNull())
    enriched = enrich_forecast(
        forecast,
        current_rows(valid, "products"),
        current_rows(valid, "campaigns"),
        current_rows(valid, "sales"),
        int(args["recent_days"]),
        current_rows(valid, "stores"),
    )
    columns = [F.col(name).cast(kind).alias(name) for name, kind in FORECAST_ENRICHED_COLUMNS]
    target = f"{args['output_path'].rstrip('/')}/version={version}/"
    enriched.select(*columns).orderBy("item_id", "store_id", "date").coalesce(1).write.mode(
        "overwrite"
    ).parquet(target)
    job.commit()


if __name__ == "__main__":
    main(sys.argv)
