"""Glue job runs that execute the job's script, which moto never does.

``glue.start_job_run`` through boto3 against the embedded world starts the real script: it is read
from the job's ``Command.ScriptLocation`` in S3 (as Glue does), run in this process's local Spark
session (:mod:`emulation.glue.spark`) with the ``awsglue`` shim on ``sys.path`` and
``--JOB_NAME``, ``--JOB_RUN_ID`` and the run's arguments (job defaults overlaid by the call's) in
``sys.argv``. ``get_job_run`` reports ``RUNNING``, then ``SUCCEEDED``, or ``FAILED`` with the
script's error as ``ErrorMessage``. Runs execute one at a time (one Spark session per process;
``sys.argv`` is process-wide).

A failed run is retried as Glue retries it when the job's ``MaxRetries`` allows: a new run of the
job with the same arguments, ``Id`` ``<first run's id>_attempt_<n>``, ``Attempt`` n and
``PreviousRunId`` the run it retries; the failed run stays ``FAILED``. Runs can be failed on
purpose after their script has finished (:mod:`emulation.glue.faults`). A world that settles
(before it stops or resets) waits for the runs under way and retries none that fails meanwhile
(:func:`wait_for_running_jobs`).

Against an external endpoint moto's server cannot be extended from here: :func:`run_job` runs a
job the same way and returns its final state without going through ``StartJobRun``.

Not emulated: ``BatchStopJobRun``, worker types and capacity, timeouts, Glue's delay before a
retry, job bookmarks, continuous logging, ``--extra-py-files``/``--additional-python-modules``,
Glue versions other than the local one.
"""

from __future__ import annotations

import datetime as dt
import logging
import runpy
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulation._managed_state import embedded_client, follow_tracker
from emulation._patching import moto_patch
from emulation.glue.faults import take_failure

logger = logging.getLogger(__name__)

SHIM_DIR = Path(__file__).with_name("shim")
_run_lock = threading.Lock()
_running: str | None = None  # the job whose script runs now (one at a time: _run_lock)


def running_job() -> str | None:
    """The Glue job whose script this process runs now, if any (for a progress display)."""
    return _running


_executing: set[threading.Thread] = set()  # runs StartJobRun started whose script still runs
_executing_lock = threading.Lock()
_settling = threading.Event()  # the world is settling: a failed run is not retried


def running_jobs() -> list[str]:
    """The threads of the runs ``StartJobRun`` started whose script has not ended."""
    with _executing_lock:
        return sorted(thread.name for thread in _executing if thread.is_alive())


def wait_for_running_jobs(timeout: float) -> list[str]:
    """Retry no failed run, and wait up to ``timeout`` seconds for the runs still executing; the
    names of those that did not end. A run cannot be cut short (its Spark jobs share the
    process's session), and one left running would read and write the next world's buckets,
    which have the same names. :func:`accept_retries` undoes the first part."""
    _settling.set()
    deadline = time.monotonic() + timeout
    while True:
        with _executing_lock:
            running = [thread for thread in _executing if thread.is_alive()]
        if not running or time.monotonic() >= deadline:
            return sorted(thread.name for thread in running)
        for thread in running:  # a retry started meanwhile is found by the next pass
            thread.join(max(0.0, deadline - time.monotonic()))


def accept_retries() -> None:
    """The world goes on: failed runs are retried again as their job's ``MaxRetries`` allows."""
    _settling.clear()


@dataclass
class RunOutcome:
    state: str  # SUCCEEDED or FAILED
    error: str | None
    started: dt.datetime
    completed: dt.datetime


def execute_script(
    script: str, job_name: str, run_id: str, arguments: dict[str, str], endpoint: str, region: str
) -> RunOutcome:
    """Run a Glue script's source as Glue would; never raises for the script's own errors."""
    from emulation.glue.spark import spark_session

    global _running
    started = dt.datetime.now(dt.UTC)
    with _run_lock, tempfile.TemporaryDirectory() as tmp:
        _running = job_name
        path = Path(tmp) / f"{job_name}.py"
        path.write_text(script)
        argv = [str(path), "--JOB_NAME", job_name, "--JOB_RUN_ID", run_id]
        for key, value in arguments.items():
            argv += [key if key.startswith("--") else f"--{key}", value]
        saved_argv, saved_path = sys.argv, list(sys.path)
        sys.argv = argv
        sys.path.insert(0, str(SHIM_DIR))
        spark = None
        try:
            spark = spark_session(endpoint, region)
            runpy.run_path(str(path), run_name="__main__")
            state, error = "SUCCEEDED", None
        except SystemExit as exc:
            ok = exc.code in (0, None)
            state, error = ("SUCCEEDED", None) if ok else ("FAILED", f"SystemExit: {exc.code}")
        except Exception as exc:
            state, error = "FAILED", _error_message(exc)
            logger.warning("Glue job %s run %s failed: %s", job_name, run_id, error)
            logger.debug("%s", traceback.format_exc())
        finally:
            # On AWS every run is its own Spark application; here runs share one session, so
            # what a run cached must not outlive it: a later run reading the same path would
            # get the cached, stale rows (Spark matches cached data by plan, not by content).
            if spark is not None:
                spark.catalog.clearCache()
            _running = None
            sys.argv = saved_argv
            sys.path[:] = saved_path
            for name in [m for m in sys.modules if m == "awsglue" or m.startswith("awsglue.")]:
                del sys.modules[name]
    return RunOutcome(state, error, started, dt.datetime.now(dt.UTC))


def _error_message(exc: Exception) -> str:
    """Glue's ErrorMessage: the exception, without pages of Java stack trace."""
    text = f"{type(exc).__name__}: {exc}"
    if len(text) <= 2000:
        return text
    causes = [line.strip() for line in text.splitlines() if line.strip().startswith("Caused by:")]
    return text[:1000].rstrip() + (" … " + causes[-1] if causes else " …")


def _script_from_s3(client: Any, location: str) -> str:
    if not location.startswith("s3://"):
        raise ValueError(f"ScriptLocation {location!r} is not an s3:// path")
    bucket, _, key = location[5:].partition("/")
    return client.get_object(Bucket=bucket, Key=key)["Body"].read().decode()


def run_job(world: Any, job_name: str, arguments: dict[str, str] | None = None) -> RunOutcome:
    """Run a job synchronously through the world's API (any endpoint)."""
    job = world.client("glue").get_job(JobName=job_name)["Job"]
    merged = {**job.get("DefaultArguments", {}), **(arguments or {})}
    script = _script_from_s3(world.client("s3"), job["Command"]["ScriptLocation"])
    run_id = f"jr_local_{int(time.time() * 1000)}"
    return execute_script(script, job_name, run_id, merged, world.endpoint_url, world.region)


# ------------------------------------------------------------------------ embedded moto patch
@dataclass
class _Run:
    state: str = "RUNNING"
    error: str | None = None
    started: dt.datetime | None = None
    completed: dt.datetime | None = None
    attempt: int = 0  # Glue's Attempt: 0 for a started run, n for its n-th retry
    first_id: str = ""  # the id of the run this one retries (or its own)


@moto_patch("glue")
def install_in_process() -> None:
    """Make the in-process moto execute job scripts on ``StartJobRun`` (idempotent)."""
    from moto.glue.models import FakeJob, FakeJobRun

    original_start = FakeJob.start_job_run
    original_as_dict = FakeJobRun.as_dict

    def start_job_run(self, *args: Any, _dfp_retry: Any = None, **kwargs: Any) -> str:
        run_id = original_start(self, *args, **kwargs)
        run = next(r for r in self.job_runs if r.job_run_id == run_id)
        run._dfp = _Run(started=dt.datetime.now(dt.UTC), first_id=run_id)
        if _dfp_retry is not None:  # Glue's own retry of a failed run
            failed: Any = _dfp_retry
            run._dfp.attempt = failed._dfp.attempt + 1
            run._dfp.first_id = failed._dfp.first_id
            run.job_run_id = run_id = f"{failed._dfp.first_id}_attempt_{run._dfp.attempt}"
            run.previous_run_id = failed.job_run_id
        thread = threading.Thread(
            target=_executing_run, args=(self, run), name=f"glue-{run_id}", daemon=True
        )
        with _executing_lock:
            _executing.add(thread)
        thread.start()
        return run_id

    def as_dict(self: Any) -> dict[str, Any]:
        out = original_as_dict(self)
        tracked = getattr(self, "_dfp", None)
        if tracked:
            out["JobRunState"] = tracked.state
            out["StartedOn"] = tracked.started
            out["GlueVersion"] = "5.1"
            out["Attempt"] = tracked.attempt
            if tracked.completed:
                out["CompletedOn"] = tracked.completed
                took = tracked.completed - tracked.started
                out["ExecutionTime"] = int(took.total_seconds())
            else:
                out.pop("CompletedOn", None)
            if tracked.error:
                out["ErrorMessage"] = tracked.error
        return out

    FakeJob.start_job_run = start_job_run
    follow_tracker(FakeJobRun)
    FakeJobRun.as_dict = as_dict


def _executing_run(job: Any, run: Any) -> None:
    try:
        _execute_in_process(job, run)
    finally:
        with _executing_lock:
            _executing.discard(threading.current_thread())


def _execute_in_process(job: Any, run: Any) -> None:
    tracked: _Run = run._dfp
    region = job.backend.region_name
    try:
        s3 = embedded_client("s3", region)
        script = _script_from_s3(s3, job.command["ScriptLocation"])
        outcome = execute_script(
            script,
            job.name,
            run.job_run_id,
            {**(job.default_arguments or {}), **(run.arguments or {})},
            s3.meta.endpoint_url,
            region,
        )
        error = outcome.error
        injected = None
        if outcome.state == "SUCCEEDED":  # only a run that did its work is failed on purpose
            injected = take_failure(job.backend.account_id, region, job.name)
        if injected:
            logger.info("Glue job %s run %s fails after its script: %s", job.name,
                        run.job_run_id, injected)  # fmt: skip
            error = injected
        tracked.error = error
        state = "FAILED" if error else outcome.state
    except Exception as exc:  # the script could not even be fetched
        tracked.error = f"{type(exc).__name__}: {exc}"
        state = "FAILED"
    tracked.completed = dt.datetime.now(dt.UTC)
    tracked.state = state  # last: a reader seeing the final state sees everything else too
    if state == "FAILED" and tracked.attempt < int(job.max_retries or 0):
        _retry(job, run)


def _retry(job: Any, run: Any) -> None:
    """Glue's retry of the failed ``run``: the same job and arguments, the next attempt."""
    if _settling.is_set():
        logger.info("Glue job %s run %s not retried: the local world is settling", job.name,
                    run.job_run_id)  # fmt: skip
        return
    try:
        retry = job.start_job_run(
            allocated_capacity=run.allocated_capacity,
            max_capacity=run.max_capacity,
            timeout=run.timeout,
            worker_type=run.worker_type,
            security_configuration=run.security_configuration,
            number_of_workers=run.number_of_workers,
            notification_property=run.notification_property,
            previous_run_id=run.job_run_id,
            arguments=run.arguments,
            _dfp_retry=run,
        )
    except Exception as exc:  # e.g. another run of the job started meanwhile
        logger.warning("Glue could not retry job %s run %s: %s", job.name, run.job_run_id, exc)
        return
    logger.info("Glue retries job %s: run %s (MaxRetries %s)", job.name, retry, job.max_retries)
