"""The hops a run counts, in the order records travel (``summary.json`` → ``counts``).

Each stage records its hops in the ledger (received, written, rejected by reason) and links them
to the hops that feed them; the names live here because links cross stages.
"""

SOURCE_ROWS = "source_rows"  # a replay's sales rows → replayed, set aside by reason, filtered
DMS_CDC = "dms_cdc"  # window changes → DMS messages
SHOP_EVENTS = "shop_events"  # the shop's direct events (when enabled)
BAD_RECORDS = "bad_records"  # records a broken producer put on the stream (fault scenarios)
KINESIS_PRODUCER = "kinesis_producer"  # messages → acknowledged by PutRecords
KINESIS_CDC = "kinesis_cdc"  # records read back from the CDC stream (this run's)
DMS_LOAD = "dms_load"  # the full load
FIREHOSE_STAGED = "firehose_staged"  # records in → Parquet rows, failures by error code
S3_STAGED = "s3_staged"  # rows read back from the staged objects
ANOMALY_JOB = "anomaly_job"  # stream records → accepted, rejected by reason
FIREHOSE_OUTLIERS = "firehose_outliers"  # outliers → Parquet rows in the analysis bucket
GLUE_CDC_APPLY = "glue_cdc_apply"  # staged change records → applied, copies removed, rejected
GLUE_FORECAST_INPUT = "glue_forecast_input"  # target rows
FORECAST_EXPORT = "forecast_export"  # items with a target series → items in the export
FORECAST_ENRICHED = "forecast_enriched"  # export rows → rows of the enriched table
