"""One tuned local Spark 3.5 session per process, reading and writing ``s3://`` at the world.

Glue scripts address data as ``s3://bucket/key``; locally those paths go through hadoop-aws (S3A)
to the world's endpoint with path-style access and dummy credentials. The jars come from Maven at
set-up (``emulation/glue/jars/pom.xml`` → ``.dfp/jars``). The session is tuned for small local
data: ``local[2]``, no UI, few shuffle partitions, UTC, driver bound to loopback, Hadoop's
working files in a folder of its own that goes when the process ends (:func:`scratch_dir`).

Not emulated: Glue's own Spark extensions (DynamicFrame, job bookmarks, Glue Catalog as the
metastore), worker types and autoscaling.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from emulation.safety import check_endpoint

logger = logging.getLogger(__name__)

JARS_ENV = "DFP_JARS_DIR"
LOG4J2 = Path(__file__).with_name("log4j2.properties")  # the session's logging
_REQUIRED_JARS = ("hadoop-aws-3.3.4.jar", "aws-java-sdk-bundle-1.12.262.jar")
_lock = threading.Lock()
_session: Any = None
_endpoint: str | None = None
_scratch: Path | None = None


class SparkSetupError(RuntimeError):
    """Spark cannot be started for Glue jobs (names what is missing)."""


def jars_dir() -> Path:
    default = Path(__file__).resolve().parents[2] / ".dfp" / "jars"
    return Path(os.environ.get(JARS_ENV, default))


def _jars() -> list[str]:
    folder = jars_dir()
    missing = [name for name in _REQUIRED_JARS if not (folder / name).is_file()]
    if missing:
        raise SparkSetupError(
            f"missing {', '.join(missing)} in {folder}; run ./bootstrap.sh setup (it fetches them "
            "with Maven from emulation/glue/jars/pom.xml)"
        )
    return [str(folder / name) for name in _REQUIRED_JARS]


def scratch_dir() -> Path:
    """The session's own folder for Hadoop's working files, made once per process and removed
    when it ends.

    Left to their defaults, the S3A committer stages each job's list of uploads under
    ``tmp/staging`` of the cluster's file system, here the local one, relative to the directory
    the process started in, and its task files under ``/tmp/hadoop-<user>``: whatever a job
    could not clean up stayed there (a run from a checkout left ``tmp/staging/<user>/<job>``
    folders in it).
    """
    global _scratch
    if _scratch is None:
        _scratch = Path(tempfile.mkdtemp(prefix="dfp-spark-"))
        atexit.register(_remove_scratch, _scratch)
    return _scratch


def _remove_scratch(folder: Path) -> None:
    """Remove ``folder``, which :func:`scratch_dir` made; at the process's end nothing uses it."""
    shutil.rmtree(folder, ignore_errors=True)


def spark_session(endpoint_url: str, region: str) -> Any:
    """The process's Spark session, configured for the world at ``endpoint_url``."""
    global _session, _endpoint
    endpoint_url = check_endpoint(endpoint_url)  # s3a is Java: the guard is applied here
    with _lock:
        if _session is not None:
            if _endpoint != endpoint_url:
                # Another world (``dfp run --all`` starts one per scenario in this process):
                # Hadoop caches a file system per bucket, built for the old endpoint, and would
                # keep calling a server that is gone. Close them; the next use builds new ones.
                hadoop = _session.sparkContext._jsc.hadoopConfiguration()
                hadoop.set("fs.s3a.endpoint", endpoint_url)
                _session.sparkContext._jvm.org.apache.hadoop.fs.FileSystem.closeAll()
                _endpoint = endpoint_url
            return _session
        from pyspark.sql import SparkSession

        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        # Everything Spark listens on stays on loopback (not the host's resolved address).
        os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
        builder = (
            SparkSession.builder.master("local[2]")
            .appName("dfp-glue")
            .config("spark.jars", ",".join(_jars()))
            .config("spark.ui.enabled", "false")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.sql.shuffle.partitions", "4")
            # One session serves every job run of a process (a test worker runs dozens): Spark's
            # 1 GiB default heap ran out in a late, larger job (OutOfMemoryError, then every
            # later job of that worker failed with its JVM gone). Heap is reserved, not used.
            .config("spark.driver.memory", os.environ.get("DFP_SPARK_DRIVER_MEMORY", "3g"))
            .config("spark.sql.session.timeZone", "UTC")
            # C1 only starts fast; its code cache then defaults to 48 MiB, which a long session
            # (a test suite, many job runs) fills, and the JVM stops compiling: every later job
            # runs interpreted, several times slower. Room for the whole session's code.
            # Logging: errors only from the JVM's start (LOG4J2), not WARN until setLogLevel.
            .config(
                "spark.driver.extraJavaOptions",
                "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=256m -Duser.timezone=UTC "
                f"-Dlog4j2.configurationFile={LOG4J2.as_uri()}",
            )
            .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
            .config("spark.hadoop.fs.s3.impl", "org.apache.hadoop.fs.s3a.S3AFileSystem")
            .config("spark.hadoop.fs.s3a.impl", "org.apache.hadoop.fs.s3a.S3AFileSystem")
            .config("spark.hadoop.fs.s3a.endpoint", endpoint_url)
            .config("spark.hadoop.fs.s3a.endpoint.region", region)
            .config("spark.hadoop.fs.s3a.path.style.access", "true")
            .config("spark.hadoop.fs.s3a.connection.ssl.enabled", "false")
            .config(
                "spark.hadoop.fs.s3a.aws.credentials.provider",
                "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
            )
            .config("spark.hadoop.fs.s3a.access.key", "testing")
            .config("spark.hadoop.fs.s3a.secret.key", "testing")
            .config("spark.hadoop.fs.s3a.change.detection.mode", "none")
            .config("spark.hadoop.fs.s3a.committer.name", "directory")
            .config("spark.hadoop.hadoop.tmp.dir", str(scratch_dir() / "hadoop"))
            .config(
                "spark.hadoop.fs.s3a.committer.staging.tmp.path",
                (scratch_dir() / "staging").as_uri(),
            )
            .config("spark.ui.showConsoleProgress", "false")
        )
        _session = builder.getOrCreate()
        _session.sparkContext.setLogLevel("ERROR")
        _endpoint = endpoint_url
        logger.info("local Spark %s session for %s", _session.version, endpoint_url)
        return _session


def spark_progress() -> str:
    """The process's Spark work in progress, e.g. ``Spark stage 42: 150 of 194 tasks``; empty
    when there is none (no session, or between jobs). A Glue job of a real dataset runs for
    minutes, and a progress display can say how far its current stage is."""
    session = _session
    if session is None:
        return ""
    try:
        tracker = session.sparkContext.statusTracker()
        stages = [tracker.getStageInfo(i) for i in sorted(tracker.getActiveStageIds())]
    except Exception:  # the session is stopping: nothing to say
        return ""
    return ", ".join(f"Spark stage {info.stageId}: {info.numCompletedTasks} of {info.numTasks} "
                     "tasks" for info in stages if info is not None)  # fmt: skip
