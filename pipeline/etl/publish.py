"""Publishing a Spark output as one named object, for the Glue scripts.

Spark writes ``part-…`` files into a directory; the objects other steps react to (the forecast
manifest, the forecast export) must appear under a fixed name in one step, so that their S3 event
means "complete". Through the Hadoop file system of the ``s3://`` path, as on Glue.
"""


def publish_single_part(spark, source_dir: str, target: str) -> bool:
    """Move the one ``part-`` file of ``source_dir`` to ``target``; drop ``source_dir``.

    When ``target`` already holds exactly these bytes (a rerun on the same input), it is left
    alone: rewriting it would be a new S3 event, and whatever that event starts would run twice.
    Returns whether ``target`` was written."""
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    path = jvm.org.apache.hadoop.fs.Path(source_dir)
    fs = path.getFileSystem(conf)
    parts = [s.getPath() for s in fs.listStatus(path) if s.getPath().getName().startswith("part-")]
    if len(parts) != 1:
        raise RuntimeError(f"{source_dir}: expected one part file, found {len(parts)}")
    destination = jvm.org.apache.hadoop.fs.Path(target)
    if fs.exists(destination):  # deleting a missing file can leave a folder marker behind
        if _same_bytes(spark, fs, parts[0], destination):
            fs.delete(path, True)
            return False
        fs.delete(destination, False)
    fs.rename(parts[0], destination)
    fs.delete(path, True)
    return True


def _same_bytes(spark, fs, one, other) -> bool:
    if fs.getFileStatus(one).getLen() != fs.getFileStatus(other).getLen():
        return False
    read = spark.read.option("wholetext", "true").text
    return read(one.toString()).first() == read(other.toString()).first()


def published_text(spark, target: str) -> str | None:
    """The text of the single object ``target``, or ``None`` when there is none."""
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    path = jvm.org.apache.hadoop.fs.Path(target)
    if not path.getFileSystem(conf).exists(path):
        return None
    rows = spark.read.text(target, wholetext=True).collect()
    return rows[0].value if rows else ""
