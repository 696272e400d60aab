"""``GlueContext``: here only a holder of the Spark session."""

from __future__ import annotations

from typing import Any


class GlueContext:
    def __init__(self, spark_context: Any) -> None:
        from pyspark.sql import SparkSession

        self.spark_context = spark_context
        self.spark_session = SparkSession.builder.getOrCreate()

    def get_logger(self) -> Any:
        import logging

        return logging.getLogger("awsglue")
