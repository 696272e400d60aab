"""Publishing a Spark output as one named object, for the Glue scripts.

Spark writes ``part-…`` files into a directory; the objects other steps react to (the forecast
manifest, the forecast export) must appear under a fixed name in one step, so that their S3 event
means "complete". Through the Hadoop file system of the ``s3://`` path, as on Glue.
"""


def publish_single_part(spark, source_dir: str, target: str) -> None:
    """Move the one ``part-`` file of ``source_dir`` to ``target``; drop ``source_dir``."""
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    path = jvm.org.apache.hadoop.fs.Path(source_dir)
    fs = path.getFileSystem(conf)
    parts = [s.getPath() for s in fs.listStatus(path) if s.getPath().getName().startswith("part-")]
    if len(parts) != 1:
        raise RuntimeError(f"{source_dir}: expected one part file, found {len(parts)}")
    destination = jvm.org.apache.hadoop.fs.Path(target)
    if fs.exists(destination):  # deleting a missing file can leave a folder marker behind
        fs.delete(destination, False)
    fs.rename(parts[0], destination)
    fs.delete(path, True)
