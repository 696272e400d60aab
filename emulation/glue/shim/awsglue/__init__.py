"""A local stand-in for the parts of AWS Glue's ``awsglue`` library that job scripts use.

Only ``getResolvedOptions``, ``GlueContext(sc).spark_session`` and ``Job.init/commit`` are
provided; it is put on ``sys.path`` by the Glue emulation when it runs a script and is never
deployed (on AWS the real library is there). ``DynamicFrame`` is deliberately absent: scripts use
Spark DataFrames so they run the same in both places.
"""
