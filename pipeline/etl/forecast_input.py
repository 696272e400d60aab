"""Glue job: staged CDC tables → the forecast datasets (target, related, item metadata).

Arguments (all required, exact names as Glue passes them):
  --staged_path     s3:// prefix of the staged CDC table (partitioned by table=…/dt=…)
  --output_path     s3:// prefix under which the datasets of this version are written
  --manifest_path   s3:// prefix where the manifest goes (its arrival starts the forecast)
  --frequency       D or W
  --horizon         forecast horizon in periods (the related series must cover it)
  --start_date      first date of history to use (yyyy-MM-dd)
  --end_date        last date of history (yyyy-MM-dd); also names the dataset version
"""

import json
import sys

from awsglue.context import GlueContext
from awsglue.job import Job
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext

from pipeline.etl.transforms import (
    FREQUENCIES,
    current_rows,
    item_metadata,
    related_time_series,
    staged_schema_ddl,
    target_time_series,
    validate_staged,
)

ARGS = ["staged_path", "output_path", "manifest_path", "frequency", "horizon", "start_date",
        "end_date"]  # fmt: skip


def main(argv: list[str]) -> None:
    args = getResolvedOptions(argv, ARGS)
    if args["frequency"] not in FREQUENCIES:
        raise ValueError(
            f"--frequency {args['frequency']!r}: expected one of {sorted(FREQUENCIES)}"
        )
    glue = GlueContext(SparkContext.getOrCreate())
    spark = glue.spark_session
    job = Job(glue)
    job.init(args["JOB_NAME"], args)

    # The contract's schema, not whatever the first file says: a file lacking a column then shows
    # as nulls that validate_staged names, and a wrong type fails naming the file and column.
    staged = spark.read.schema(staged_schema_ddl()).parquet(args["staged_path"])
    for table in ("products", "campaigns", "sales"):
        validate_staged(staged, table)
    products = current_rows(staged, "products")
    campaigns = current_rows(staged, "campaigns")
    sales = current_rows(staged, "sales")

    frequency, horizon = args["frequency"], int(args["horizon"])
    start, end = args["start_date"], args["end_date"]
    datasets = {
        "target_time_series": target_time_series(sales, products, frequency, start, end),
        "related_time_series": related_time_series(
            products, campaigns, frequency, start, end, horizon
        ),
        "item_metadata": item_metadata(products),
    }
    version = f"{args['output_path'].rstrip('/')}/{end}"
    locations = {}
    for name, frame in datasets.items():
        location = f"{version}/{name}/"
        ordered = (
            frame.orderBy(*frame.columns[:2])
            if name != "item_metadata"
            else frame.orderBy("item_id")
        )
        ordered.coalesce(1).write.mode("overwrite").option("header", "false").option(
            "dateFormat", "yyyy-MM-dd"
        ).csv(location)
        locations[name] = location
    manifest = {
        "version": end,
        "frequency": frequency,
        "horizon": horizon,
        "domain": "RETAIL",
        "datasets": locations,
        "schemas": {name: frame.columns for name, frame in datasets.items()},
    }
    manifest_path = f"{args['manifest_path'].rstrip('/')}/{end}.json"
    spark.createDataFrame([(json.dumps(manifest, sort_keys=True),)], ["value"]).coalesce(
        1
    ).write.mode("overwrite").text(manifest_path + ".tmp")
    _publish(spark, manifest_path + ".tmp", manifest_path)
    job.commit()


def _publish(spark, source_dir: str, target: str) -> None:
    """Move the single text part to ``target``: one object whose arrival starts the forecast."""
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    path = jvm.org.apache.hadoop.fs.Path(source_dir)
    fs = path.getFileSystem(conf)
    part = next(
        s.getPath() for s in fs.listStatus(path) if s.getPath().getName().startswith("part-")
    )
    destination = jvm.org.apache.hadoop.fs.Path(target)
    fs.delete(destination, False)
    fs.rename(part, destination)
    fs.delete(path, True)


if __name__ == "__main__":
    main(sys.argv)
