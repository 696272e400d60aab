"""Glue job: staged CDC tables → the forecast datasets (target, related, item metadata).

Arguments (all required, exact names as Glue passes them):
  --staged_path     s3:// prefix of the staged CDC table (partitioned by table=…/dt=…)
  --output_path     s3:// prefix under which the datasets of this version are written
  --manifest_path   s3:// prefix where the manifest goes (its arrival starts the forecast)
  --frequency       D, W, M, 3M or Y (pipeline.contracts.periods)
  --horizon         forecast horizon in periods (the related series must cover it)
  --start_date      first date of history to use (yyyy-MM-dd)
  --end_date        last date of history (yyyy-MM-dd); also names the dataset version
  --quantiles       forecast quantiles, comma-separated (e.g. 0.1,0.5,0.9)
  --dimensions      optional: forecast dimensions, comma-separated (``store_id``): a series per
                    item and store, AutoML's ``GroupingAttributeNames``

Writes, under ``<output_path>/<end_date>/``, the three Amazon Forecast datasets (CSV, no header) and
``automl_input/`` (SageMaker AutoML V2's single CSV with a header); the staged changes it could
not apply, each with its reason, under ``rejected/`` (JSON lines; counted in the manifest's
``changes``, with the copies of redelivered changes it removed); then the manifest
``<manifest_path>/<end_date>.json``, whose arrival starts the forecast workflow. The manifest's
``id`` hashes the request and the data, so the same input names the same AutoML job and changed
data a new one. A rerun on the same input whose manifest is already published writes nothing:
same dataset version, same bytes, and no second forecast.
"""

import hashlib
import json
import logging
import sys

from awsglue.context import GlueContext
from awsglue.job import Job
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext
from pyspark.sql import functions as F

from pipeline.contracts.periods import FREQUENCIES
from pipeline.etl.publish import publish_single_part, published_text
from pipeline.etl.transforms import (
    REJECT,
    automl_input,
    change_counts,
    check_dimensions,
    current_rows,
    dms_changes,
    item_metadata,
    reject_reasons,
    rejected_changes,
    related_time_series,
    staged_schema_ddl,
    target_time_series,
    validate_staged,
    with_files,
)

logger = logging.getLogger(__name__)
ARGS = ["staged_path", "output_path", "manifest_path", "frequency", "horizon", "start_date",
        "end_date", "quantiles"]  # fmt: skip


def main(argv: list[str]) -> None:
    args = getResolvedOptions(argv, ARGS)
    # Optional, as Glue scripts take optional arguments: resolved only when passed.
    given = getResolvedOptions(argv, ["dimensions"])["dimensions"] if "--dimensions" in argv else ""
    dimensions = check_dimensions([d.strip() for d in given.split(",") if d.strip()])
    if args["frequency"] not in FREQUENCIES:
        raise ValueError(
            f"--frequency {args['frequency']!r}: expected one of {sorted(FREQUENCIES)}"
        )
    glue = GlueContext(SparkContext.getOrCreate())
    spark = glue.spark_session
    job = Job(glue)
    job.init(args["JOB_NAME"], args)

    # The contract's schema, not whatever the first file says: a file lacking a column then shows
    # as nulls (those rows are rejected, naming the column), and a wrong type fails naming the
    # file and column.
    # Read once: every pass over the staged table opens each of its objects again (small ones,
    # Firehose's buffers), so the validating pass fills a cache that every later pass reads.
    staged = with_files(spark.read.schema(staged_schema_ddl()).parquet(args["staged_path"]))
    staged = staged.cache()
    control = validate_staged(staged)
    checked = reject_reasons(dms_changes(staged), dimensions)
    changes = {**change_counts(checked), "control_records": control}
    valid = checked.where(checked[REJECT].isNull())
    products = current_rows(valid, "products")
    campaigns = current_rows(valid, "campaigns")
    sales = current_rows(valid, "sales")
    stores = current_rows(valid, "stores")

    frequency, horizon = args["frequency"], int(args["horizon"])
    quantiles = _quantiles(args["quantiles"])
    start, end = args["start_date"], args["end_date"]
    datasets = {
        "target_time_series": target_time_series(
            sales, products, frequency, start, end, stores, dimensions
        ),
        "related_time_series": related_time_series(
            products, campaigns, frequency, start, end, horizon, sales, stores, dimensions
        ),
        "item_metadata": item_metadata(products),
    }
    datasets = {name: frame.cache() for name, frame in datasets.items()}
    datasets["automl_input"] = automl_input(
        datasets["target_time_series"],
        datasets["related_time_series"],
        datasets["item_metadata"],
        dimensions,
        stores,
    )
    automl = datasets["automl_input"]
    content = automl.select(F.sum(F.xxhash64(*automl.columns)).alias("h")).first()["h"]
    request = {
        "version": end,
        "frequency": frequency,
        "horizon": horizon,
        "quantiles": quantiles,
        "content": content,
    }
    if dimensions:  # only then: the ids of inputs without dimensions stay as they were
        request["dimensions"] = list(dimensions)
    manifest_id = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()[:24]
    manifest_path = f"{args['manifest_path'].rstrip('/')}/{end}.json"
    if _published_id(published_text(spark, manifest_path)) == manifest_id:
        # A rerun on the same input (Glue retrying a run that failed after it published, an
        # operator's rerun): the datasets the manifest names are complete, since it is written
        # last, and a forecast may be reading them. Rewriting them would pull them from under
        # it, and a new manifest would start a second forecast: publish nothing.
        logger.info("manifest %s already published for this input (id %s): nothing to write",
                    manifest_path, manifest_id)  # fmt: skip
        job.commit()
        return
    version = f"{args['output_path'].rstrip('/')}/{end}"
    locations = {}
    for name, frame in datasets.items():
        location = f"{version}/{name}/"
        key = ["item_id", *dimensions, "timestamp"] if name != "item_metadata" else ["item_id"]
        ordered = frame.orderBy(*[c for c in key if c in frame.columns])
        ordered.coalesce(1).write.mode("overwrite").option(
            "header", "true" if name == "automl_input" else "false"
        ).option("dateFormat", "yyyy-MM-dd").csv(location)
        locations[name] = location
    if sum(changes["rejected"].values()):
        changes["rejected_location"] = f"{version}/rejected/"
        rejected_changes(checked).coalesce(1).write.mode("overwrite").json(
            changes["rejected_location"]
        )
    manifest = {
        "id": manifest_id,
        "version": end,
        "frequency": frequency,
        "horizon": horizon,
        "quantiles": quantiles,
        "forecast_quantiles": [f"p{round(q * 100, 6):g}" for q in quantiles],
        "domain": "RETAIL",
        "datasets": locations,
        "schemas": {name: frame.columns for name, frame in datasets.items()},
        "changes": changes,
        "dimensions": list(dimensions),
        "automl": {
            "input": locations["automl_input"],
            # TimeSeriesConfig as the workflow passes it to CreateAutoMLJobV2.
            "time_series_config": {
                "TargetAttributeName": "demand",
                "TimestampAttributeName": "timestamp",
                "ItemIdentifierAttributeName": "item_id",
                **({"GroupingAttributeNames": list(dimensions)} if dimensions else {}),
            },
        },
    }
    # Spark's temporary files go next to the datasets, not under the manifest prefix, whose
    # every new object is an event that starts the forecast.
    staging = f"{version}/_manifest"
    spark.createDataFrame([(json.dumps(manifest, sort_keys=True),)], ["value"]).coalesce(
        1
    ).write.mode("overwrite").text(staging)
    publish_single_part(spark, staging, manifest_path)
    job.commit()


def _published_id(text: str | None) -> str | None:
    """The ``id`` of a published manifest's text (``None`` for none, or for one unreadable)."""
    try:
        return json.loads(text).get("id") if text else None
    except (ValueError, AttributeError):
        return None


def _quantiles(text: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--quantiles {text!r}: expected numbers like 0.1,0.5,0.9") from None
    if not values or any(not 0.01 <= q <= 0.99 for q in values) or sorted(set(values)) != values:
        raise ValueError(f"--quantiles {text!r}: expected increasing values in 0.01-0.99")
    return values


if __name__ == "__main__":
    main(sys.argv)
