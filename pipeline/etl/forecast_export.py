"""Glue job: the batch transform's forecast → the forecast export (Amazon Forecast layout).

Started by the forecast workflow once the transform job has completed. Arguments (exact names):
  --transform_output  s3:// prefix holding the transform's ``*.out`` file(s)
  --export_path       s3:// prefix of this export (``…/exports/<version>/``)
  --export_name       the export job's name (names the files, as Forecast does)
  --export_time       the export's timestamp, ISO-8601 (names the files; from the workflow, so a
                      rerun writes the same names)
  --staging_path      s3:// prefix for Spark's work files, outside the export prefix

Writes ``<export_name>_<yyyy-MM-ddTHH-mm-ssZ>_part0.csv`` (header ``item_id,date,p10,p50,p90``;
a forecast by store has ``store_id`` after ``item_id``) into ``export_path``. The file is built
under ``staging_path`` and moved into place last, so the export prefix never holds a half-written
file or a work file, and the one object that lands there (whose S3 event starts the enrichment)
means the export is complete.
"""

import datetime as dt
import sys

from awsglue.context import GlueContext
from awsglue.job import Job
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext

from pipeline.etl.publish import publish_single_part
from pipeline.etl.transforms import forecast_export

ARGS = ["transform_output", "export_path", "export_name", "export_time", "staging_path"]


def export_file_name(name: str, when: str) -> str:
    """``<ExportJobName>_<yyyy-MM-ddTHH-mm-ssZ>_part0.csv``."""
    stamp = dt.datetime.fromisoformat(when.replace("Z", "+00:00")).astimezone(dt.UTC)
    return f"{name}_{stamp:%Y-%m-%dT%H-%M-%SZ}_part0.csv"


def main(argv: list[str]) -> None:
    args = getResolvedOptions(argv, ARGS)
    glue = GlueContext(SparkContext.getOrCreate())
    spark = glue.spark_session
    job = Job(glue)
    job.init(args["JOB_NAME"], args)

    source = args["transform_output"].rstrip("/") + "/*.out"
    rows = spark.read.option("header", "true").option("inferSchema", "false").csv(source)
    export = forecast_export(rows)
    export = export.orderBy(*export.columns[: export.columns.index("date") + 1])
    target = args["export_path"].rstrip("/")
    staging = args["staging_path"].rstrip("/")
    export.coalesce(1).write.mode("overwrite").option("header", "true").csv(staging)
    publish_single_part(
        spark, staging, f"{target}/{export_file_name(args['export_name'], args['export_time'])}"
    )
    job.commit()


if __name__ == "__main__":
    main(sys.argv)
