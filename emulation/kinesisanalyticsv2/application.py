"""A Managed Flink application run locally: same entry file, same properties, a mini-cluster.

:class:`LocalApplication` takes what ``CreateApplication`` would (the Python entry file, the
property groups, parallelism, the dependency jar) and runs it as Managed Flink does, in its own
process group:

* the property groups, minus ``kinesis.analytics.flink.run.options`` (which the service itself
  reads), are written to ``application_properties.json`` in the working directory and the job
  runs with ``IS_LOCAL`` set there, the convention of AWS's Python samples;
* the entry file runs through :mod:`.launcher`, which gives the job's execution environment the
  settings the service owns (parallelism, checkpointing, the snapshot to restore), as Managed
  Flink's runtime does; the job's code is the same;
* a private ``FLINK_HOME`` puts the dependency jar (Managed Flink's ``jarfile``) and the
  application's own Java code on the classpath next to PyFlink's own jars, with
  ``parallelism.default`` in its ``config.yaml``;
* the venv's ``bin`` leads ``PATH`` so the Python UDF workers run the same interpreter;
* everything the job prints goes to ``job.log``; :meth:`LocalApplication.stop` stops the whole
  process group; a job that dies on its own is reported with the log's tail;
* Flink's temporary folders (``minicluster_*``, the RPC jar, I/O spill) are in a ``tmp-*`` folder
  that :meth:`LocalApplication.start` creates in the working directory, not the machine's
  ``/tmp``, and :meth:`LocalApplication.stop` removes that folder: a run leaves nothing behind;
* :meth:`LocalApplication.sink_progress` reads the job's operator metrics from Flink's REST API
  (the dashboard Managed Flink links to): the event-time watermark its sink writers have reached
  and how many records they received, so a caller can tell when the job has processed its input
  even when it writes nothing.

Checkpoints and snapshots, as Managed Flink takes them:

* checkpointing follows the application's ``CheckpointConfiguration`` (:class:`Checkpoints`:
  Managed Flink's ``DEFAULT`` is on, every 60 s, 5 s minimum pause; exactly-once barriers) into
  ``checkpoints/`` in the working directory, the latest retained when the job ends;
* :meth:`LocalApplication.create_snapshot` (``CreateApplicationSnapshot``) takes a Flink savepoint
  of the running job into ``snapshots/NAME``; :meth:`LocalApplication.stop` with
  ``snapshot=NAME`` is ``StopApplication`` without ``Force``: a stop-with-savepoint;
  :meth:`LocalApplication.list_snapshots` is ``ListApplicationSnapshots``;
* :meth:`LocalApplication.start` takes the ``ApplicationRestoreConfiguration``
  (``SKIP_RESTORE_FROM_SNAPSHOT``, ``RESTORE_FROM_LATEST_SNAPSHOT``,
  ``RESTORE_FROM_CUSTOM_SNAPSHOT`` with a ``SnapshotName``) and restores the snapshot through
  ``execution.state-recovery.path``; the latest snapshot when there is none starts without state;
* :meth:`LocalApplication.kill` ends the job with no snapshot, as a crash does;
* :meth:`LocalApplication.trigger_checkpoint` takes a checkpoint now (Flink's REST API), and
  :meth:`LocalApplication.restarts` says how often Flink restarted the job in place (a task that
  failed, recovered from the latest checkpoint within the running application) and
  :meth:`LocalApplication.restored_checkpoint` which checkpoint it recovered from.

A failing job is restarted by Flink from its latest checkpoint, at most
``Checkpoints.restart_attempts`` times (Managed Flink retries without limit; locally a broken job
must end so the run can report it).

Not emulated: scaling, the application's IAM role (the world's dummy credentials are used),
CloudWatch logging and metrics, application versions and updates, snapshot ARNs (enhanced
snapshots), snapshot retention limits.

Listening: the local mini-cluster's REST API and blob server (PyFlink's local executor does not
apply ``rest.bind-address`` or ``jobmanager.bind-host`` from the configuration file; measured with
``ss -ltnp``) and the gRPC servers of the Python function runner (Apache Beam's, which binds the
wildcard address in code) bind every interface; the job's processes run with
:mod:`emulation.loopback` preloaded, which turns those binds into loopback binds.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from emulation.loopback import preloaded

logger = logging.getLogger(__name__)

# The application's state folders in its working directory. What is in them depends on when
# Flink happened to take a checkpoint, so they are runtime state, never a run's data.
CHECKPOINTS = "checkpoints"
SNAPSHOTS = "snapshots"
STATE_FOLDERS = (CHECKPOINTS, SNAPSHOTS)
HOME_FOLDER = "flink-home"  # the local cluster's home in the working directory: conf, lib, log

RUN_OPTIONS = "kinesis.analytics.flink.run.options"
LAUNCHER = Path(__file__).with_name("launcher.py")  # the service's configuration, then the entry


class ApplicationFailed(RuntimeError):
    """The job process ended on its own; the message carries the end of its log."""


class InvalidArgumentException(ValueError):
    """A request's value is not acceptable (Managed Flink's error code)."""


class ResourceNotFoundException(LookupError):
    """The named snapshot does not exist."""


class ResourceInUseException(RuntimeError):
    """The application is not in a state that allows the request (e.g. no running job)."""


class InvalidApplicationConfigurationException(RuntimeError):
    """The request needs a setting the application does not have (snapshots disabled)."""


RESTORE_TYPES = ("SKIP_RESTORE_FROM_SNAPSHOT", "RESTORE_FROM_LATEST_SNAPSHOT",
                 "RESTORE_FROM_CUSTOM_SNAPSHOT")  # fmt: skip
_SNAPSHOT_NAME = re.compile(r"^[a-zA-Z0-9_.-]{1,256}$")


@dataclass(frozen=True)
class Checkpoints:
    """The application's ``CheckpointConfiguration`` (Managed Flink's ``DEFAULT`` values) and
    whether snapshots are enabled (``ApplicationSnapshotConfiguration``)."""

    enabled: bool = True
    interval_ms: int = 60_000
    min_pause_ms: int = 5_000
    snapshots: bool = True
    restart_attempts: int = 3  # local only: Managed Flink restarts without limit


@dataclass(frozen=True)
class Snapshot:
    """One entry of ``ListApplicationSnapshots``."""

    name: str
    status: str  # READY (a snapshot that failed is not listed)
    created: float  # epoch seconds
    path: str  # the savepoint's location

    def describe(self) -> dict[str, Any]:
        return {"SnapshotName": self.name, "SnapshotStatus": self.status,
                "SnapshotCreationTimestamp": self.created}  # fmt: skip


@dataclass
class ApplicationSpec:
    name: str
    entry: Path  # the Python file the run options name
    property_groups: list[dict[str, Any]]
    jar: Path
    parallelism: int = 1
    python_path: list[Path] = field(default_factory=list)
    checkpoints: Checkpoints = field(default_factory=Checkpoints)
    # The application's own Java code (the anomaly detection). On AWS it is compiled into the
    # one ``jarfile`` with the connector; locally the connector is a jar of its own.
    libraries: list[Path] = field(default_factory=list)


def _flink_home(
    workdir: Path,
    jars: list[Path],
    parallelism: int,
    tmp: Path,
    checkpoints: Checkpoints | None = None,
    restore: str | None = None,
) -> Path:
    import pyflink

    package = Path(pyflink.__file__).parent
    home = workdir / HOME_FOLDER
    (home / "lib").mkdir(parents=True, exist_ok=True)
    (home / "conf").mkdir(exist_ok=True)
    for existing in (home / "lib").iterdir():
        existing.unlink()
    for library in sorted((package / "lib").glob("*.jar")):
        (home / "lib" / library.name).symlink_to(library)
    for jar in jars:
        (home / "lib" / jar.name).symlink_to(jar.resolve())
    if not (home / "opt").exists():
        (home / "opt").symlink_to(package / "opt")
    # PyFlink's own configuration (JVM module opens for Java 17, logging), with the
    # application's parallelism and enough slots for it.
    for item in (package / "conf").iterdir():
        if item.is_file():
            shutil.copy(item, home / "conf" / item.name)
    config = yaml.safe_load((package / "conf" / "config.yaml").read_text()) or {}
    config.setdefault("parallelism", {})["default"] = parallelism
    config.setdefault("taskmanager", {})["numberOfTaskSlots"] = max(4, parallelism)
    # Temporary files in the working directory: Flink's default is the machine's temporary
    # folder, where every run left a minicluster folder and an RPC jar behind.
    config["io"] = {**config.get("io", {}), "tmp": {"dirs": str(tmp)}}
    config.setdefault("env", {}).setdefault("java", {}).setdefault("opts", {})
    jvm = config["env"]["java"]["opts"]
    # C1 only, as the local Glue's Spark: a local application lives for seconds to minutes, and
    # the C2 compiler's work at start-up is most of its JVM's CPU (measured on this machine: the
    # job test 22 → 16 CPU seconds, wall 20 → 18 s). Room in the code cache so a long job keeps
    # compiling. benchmarks/anomaly_job.py runs its own JVM with the full JIT.
    jvm["all"] = (f"{jvm.get('all', '')} -Djava.io.tmpdir={tmp} -XX:TieredStopAtLevel=1 "
                  "-XX:ReservedCodeCacheSize=256m").strip()  # fmt: skip
    # The dashboard's metrics (what sink_progress and records_received read) refreshed every
    # second rather than Flink's ten: a run learns sooner that the job is done.
    config.setdefault("metrics", {}).setdefault("fetcher", {})["update-interval"] = 1000
    # The REST API takes no jar to run (Managed Flink's dashboard does not either) and answers
    # no other site's page: Flink's defaults (submission on, CORS "*") let any web page open in
    # a browser here upload a jar and run it. The service's own calls (checkpoints, savepoints,
    # metrics) are not a browser's and need neither.
    config["web"] = {**config.get("web", {}), "submit": {"enable": False},
                     "access-control-allow-origin": f"http://{LOOPBACK}"}  # fmt: skip
    checkpoints = checkpoints or Checkpoints()
    execution = config.setdefault("execution", {})
    execution["checkpointing"] = {
        "dir": (workdir / CHECKPOINTS).as_uri(),
        "savepoint-dir": (workdir / SNAPSHOTS).as_uri(),
        "mode": "EXACTLY_ONCE",
        "externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "min-pause": f"{checkpoints.min_pause_ms} ms",
    }
    if checkpoints.enabled:
        execution["checkpointing"]["interval"] = f"{checkpoints.interval_ms} ms"
    config["restart-strategy"] = {
        "type": "fixed-delay",
        "fixed-delay": {"attempts": checkpoints.restart_attempts, "delay": "1 s"},
    }
    if restore is not None:
        execution["state-recovery"] = {"path": restore}
    (home / "conf" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=True))
    return home


LOOPBACK = "127.0.0.1"
_REST_LINE = re.compile(r"Rest endpoint listening at [^:\s]+:(\d+)")
_WRITER_METRIC = re.compile(r"^\d+\.(.+__Writer)\.(currentInputWatermark|numRecordsIn)$")


@dataclass(frozen=True)
class SinkProgress:
    """What the job's sink writers have seen, from Flink's operator metrics."""

    watermark: int  # the least event-time watermark (epoch ms) any writer has received
    records: int  # records the writers received, summed over writers and subtasks


class LocalApplication:
    def __init__(self, spec: ApplicationSpec, workdir: Path, environment: dict[str, str]):
        self.spec = spec
        # Absolute: the job runs with the working directory as its cwd, so a relative path
        # (``dfp run --out runs/smoke``) would point FLINK_HOME somewhere else.
        self.workdir = workdir.resolve()
        self.environment = environment
        self.process: subprocess.Popen | None = None
        self.log_path = workdir / "job.log"
        self.started: float | None = None
        self._rest: str | None = None
        # The job's temporary folder: created by start() as a new folder of its own, so that
        # stop() removes only what this object made, never a folder that was there before.
        self.scratch: Path | None = None
        self.restored_from: str | None = None  # the snapshot the running job started from
        self.starts = 0
        self.flink_logs = self.workdir / HOME_FOLDER / "log"

    def start(
        self,
        restore: str = "SKIP_RESTORE_FROM_SNAPSHOT",
        snapshot_name: str | None = None,
    ) -> LocalApplication:
        """``StartApplication`` with its ``ApplicationRestoreConfiguration``."""
        if self.process is not None and self.process.poll() is None:
            raise ResourceInUseException(f"application {self.spec.name} is already running")
        restored = self._restore_path(restore, snapshot_name)
        self.workdir.mkdir(parents=True, exist_ok=True)
        groups = [g for g in self.spec.property_groups if g["PropertyGroupId"] != RUN_OPTIONS]
        (self.workdir / "application_properties.json").write_text(json.dumps(groups, indent=1))
        self.scratch = Path(tempfile.mkdtemp(prefix="tmp-", dir=self.workdir))
        self._rest = None  # a new mini-cluster listens elsewhere
        # Flink's logs of this start in a folder of their own: a restart's mini-cluster
        # listens elsewhere, and its REST address is read from its log.
        self.starts += 1
        self.flink_logs = self.workdir / HOME_FOLDER / "log"
        if self.starts > 1:
            self.flink_logs = self.flink_logs / f"start-{self.starts}"
        home = _flink_home(self.workdir, [self.spec.jar, *self.spec.libraries],
                           self.spec.parallelism, self.scratch, self.spec.checkpoints,
                           restored)  # fmt: skip
        self.restored_from = restored
        env = {**os.environ, **self.environment}
        env["IS_LOCAL"] = "true"
        env["FLINK_HOME"] = str(home)
        env["FLINK_LOG_DIR"] = str(self.flink_logs)
        env.pop("FLINK_CONF_DIR", None)
        env.pop("FLINK_LIB_DIR", None)
        env["AWS_CBOR_ENABLED"] = "false"  # moto speaks JSON to the Java SDK
        env["TMPDIR"] = str(self.scratch)  # PyFlink's own temporary files
        env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
        paths = [str(p) for p in self.spec.python_path] + [env.get("PYTHONPATH", "")]
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        env = preloaded(env)  # the JVM's and Beam's wildcard listeners on loopback
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, str(LAUNCHER), str(self.spec.entry)],
            cwd=self.workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() takes the JVMs with it
        )
        log.close()
        self.started = time.monotonic()
        logger.info("application %s started (pid %d)%s", self.spec.name, self.process.pid,
                    f" from {restored}" if restored else "")  # fmt: skip
        return self

    # -- snapshots ---------------------------------------------------------------------------

    def _index(self) -> Path:
        return self.workdir / SNAPSHOTS / "index.json"

    def list_snapshots(self) -> list[Snapshot]:
        """``ListApplicationSnapshots``: the application's snapshots, newest first."""
        if not self._index().is_file():
            return []
        entries = [Snapshot(**e) for e in json.loads(self._index().read_text())]
        return sorted(entries, key=lambda e: e.created, reverse=True)

    def _restore_path(self, restore: str, snapshot_name: str | None) -> str | None:
        if restore not in RESTORE_TYPES:
            raise InvalidArgumentException(
                f"ApplicationRestoreType {restore!r} is not one of {', '.join(RESTORE_TYPES)}"
            )
        if restore == "SKIP_RESTORE_FROM_SNAPSHOT":
            return None
        snapshots = self.list_snapshots()
        if restore == "RESTORE_FROM_LATEST_SNAPSHOT":
            if not snapshots:
                logger.info("application %s has no snapshot: it starts without state",
                            self.spec.name)  # fmt: skip
                return None
            return snapshots[0].path
        if not snapshot_name:
            raise InvalidArgumentException("RESTORE_FROM_CUSTOM_SNAPSHOT needs a SnapshotName")
        for snapshot in snapshots:
            if snapshot.name == snapshot_name:
                return snapshot.path
        raise ResourceNotFoundException(
            f"application {self.spec.name} has no snapshot {snapshot_name!r} "
            f"(it has: {', '.join(s.name for s in snapshots) or 'none'})"
        )

    def _check_snapshot_name(self, name: str) -> None:
        if not self.spec.checkpoints.snapshots:
            raise InvalidApplicationConfigurationException(
                f"application {self.spec.name} has snapshots disabled (SnapshotsEnabled false)"
            )
        if not _SNAPSHOT_NAME.match(name):
            raise InvalidArgumentException(
                f"SnapshotName {name!r} must match [a-zA-Z0-9_.-]+ (1 to 256 characters)"
            )
        if any(s.name == name for s in self.list_snapshots()):
            raise InvalidArgumentException(f"snapshot {name!r} already exists")

    def _running_job(self) -> str:
        self.check()
        if self.rest_url() is not None:
            try:
                running = [j["jid"] for j in self._get("/jobs/overview")["jobs"]
                           if j["state"] == "RUNNING"]  # fmt: skip
            except (OSError, ValueError, KeyError):
                running = []
            if len(running) == 1:
                return running[0]
        raise ResourceInUseException(f"application {self.spec.name} has no running job")

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        request = urllib.request.Request(
            f"{self.rest_url()}{path}", data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def _completed(self, status: dict[str, Any], what: str) -> dict[str, Any] | None:
        """The operation of a finished asynchronous REST call (a savepoint, a checkpoint), None
        while it runs; raises :class:`ApplicationFailed` with Flink's cause when it failed."""
        if status["status"]["id"] != "COMPLETED":
            return None
        operation = status.get("operation") or {}
        if "failure-cause" in operation:
            cause = operation["failure-cause"].get("stack-trace", "")
            raise ApplicationFailed(f"{what} of {self.spec.name} failed: {cause[:2000]}")
        return operation

    def _savepoint(self, name: str, path: str, body: dict[str, Any], timeout: float) -> Snapshot:
        job = self._running_job()
        target = self.workdir / SNAPSHOTS / name
        trigger = self._post(f"/jobs/{job}{path}", body | {"formatType": "CANONICAL"})
        deadline = time.monotonic() + timeout
        location = None
        while location is None:
            try:
                status = self._get(f"/jobs/{job}/savepoints/{trigger['request-id']}")
            except OSError:
                # A stopped job's mini-cluster ends with the job: the savepoint is complete
                # once its metadata is written.
                location = self._written_savepoint(target)
                if location is None and self.process is not None and self.process.poll() is None:
                    time.sleep(0.2)
                    continue
                if location is None:
                    raise ApplicationFailed(
                        f"snapshot {name} of {self.spec.name}: the job ended without it; "
                        f"{self.log_tail()}"
                    ) from None
                break
            operation = self._completed(status, f"snapshot {name}")
            if operation is not None:
                location = operation["location"]
            elif time.monotonic() > deadline:
                raise ApplicationFailed(f"snapshot {name} of {self.spec.name} timed out")
            else:
                time.sleep(0.2)
        snapshot = Snapshot(name, "READY", time.time(), location)
        index = [s.__dict__ for s in reversed(self.list_snapshots())] + [snapshot.__dict__]
        target.parent.mkdir(parents=True, exist_ok=True)
        self._index().write_text(json.dumps(index, indent=1) + "\n")
        logger.info("application %s: snapshot %s at %s", self.spec.name, name, snapshot.path)
        return snapshot

    @staticmethod
    def _written_savepoint(target: Path) -> str | None:
        found = sorted(target.glob("*/_metadata"))
        return found[-1].parent.as_uri() if found else None

    def create_snapshot(self, name: str, timeout: float = 120) -> Snapshot:
        """``CreateApplicationSnapshot``: a savepoint of the running job; the job goes on."""
        self._check_snapshot_name(name)
        target = (self.workdir / SNAPSHOTS / name).as_uri()
        return self._savepoint(name, "/savepoints",
                               {"target-directory": target, "cancel-job": False},
                               timeout)  # fmt: skip

    def trigger_checkpoint(self, timeout: float = 60) -> int:
        """A checkpoint of the running job now (Flink's ``POST /jobs/:id/checkpoints``; Managed
        Flink takes them on its interval): returns its id once it is complete. A drill uses it
        to put a checkpoint where it wants one rather than wait for the interval."""
        job = self._running_job()
        trigger = self._post(f"/jobs/{job}/checkpoints", {"checkpointType": "FULL"})
        deadline = time.monotonic() + timeout
        while True:
            status = self._get(f"/jobs/{job}/checkpoints/{trigger['request-id']}")
            operation = self._completed(status, "checkpoint")
            if operation is not None:
                logger.info("application %s: checkpoint %s", self.spec.name,
                            operation.get("checkpointId"))  # fmt: skip
                return int(operation["checkpointId"])
            if time.monotonic() > deadline:
                raise ApplicationFailed(f"checkpoint of {self.spec.name} timed out")
            time.sleep(0.2)

    def restarts(self) -> int | None:
        """How many times Flink has restarted the job in place since this start (its
        ``numRestarts`` metric: a failed task, recovered from the latest checkpoint); None while
        the job or the metric is not there."""
        try:
            jobs = [j["jid"] for j in self._get("/jobs/overview")["jobs"]
                    if j["state"] not in ("FINISHED", "CANCELED", "FAILED")]  # fmt: skip
            if len(jobs) != 1:
                return None
            metrics = self._get(f"/jobs/{jobs[0]}/metrics?get=numRestarts")
            return int(float(metrics[0]["value"])) if metrics else None
        except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
            logger.debug("no restart count from %s yet: %s", self._rest, exc)
            return None

    def restored_checkpoint(self) -> int | None:
        """The id of the checkpoint or savepoint the running job last restored from (Flink's
        ``GET /jobs/:id/checkpoints``, ``latest.restored``): after an in-place restart, the
        latest *completed* one, which can be a periodic checkpoint taken after the one a drill
        triggered. None before any restore, or while the job is not there."""
        try:
            restored = self._get(f"/jobs/{self._running_job()}/checkpoints")["latest"]["restored"]
            return int(restored["id"]) if restored else None
        except (OSError, ValueError, KeyError, TypeError, ResourceInUseException) as exc:
            logger.debug("no restored checkpoint from %s: %s", self._rest, exc)
            return None

    def check(self) -> None:
        """Raise :class:`ApplicationFailed` if the job process has ended by itself."""
        if self.process is not None and self.process.poll() is not None:
            raise ApplicationFailed(
                f"application {self.spec.name} exited with {self.process.returncode}: "
                f"{self.log_tail()}"
            )

    def rest_url(self) -> str | None:
        """The job's Flink REST API (the dashboard's), once the mini-cluster has started it."""
        if self._rest is None:
            for log in sorted(self.flink_logs.glob("*.log")):
                match = _REST_LINE.search(log.read_text(errors="replace"))
                if match:
                    self._rest = f"http://{LOOPBACK}:{match.group(1)}"
                    break
        return self._rest

    def _get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.rest_url()}{path}", timeout=5) as response:
            return json.load(response)

    def sink_progress(self) -> SinkProgress | None:
        """The running job's sink writers: the least watermark they have received and the records
        they received (None before the job runs or while its metrics are not yet reported).

        A record a writer has received is written once the writer flushes, and every record an
        operator emits before a watermark reaches the writer before it; so once the watermark has
        passed the input's last event time and the output streams hold ``records`` more records,
        the job has processed and written everything it read."""
        if self.rest_url() is None:
            return None
        try:
            running = [j["jid"] for j in self._get("/jobs/overview")["jobs"]
                       if j["state"] == "RUNNING"]  # fmt: skip
            if len(running) != 1:
                return None
            job = running[0]
            marks: list[int] = []
            records = 0
            writers = 0
            for vertex in self._get(f"/jobs/{job}")["vertices"]:
                base = f"/jobs/{job}/vertices/{vertex['id']}/metrics"
                wanted = [m["id"] for m in self._get(base) if _WRITER_METRIC.match(m["id"])]
                if not wanted:
                    continue
                for metric in self._get(f"{base}?get={','.join(wanted)}"):
                    kind = _WRITER_METRIC.match(metric["id"]).group(2)
                    if kind == "numRecordsIn":
                        records += int(float(metric["value"]))
                        writers += 1
                    else:
                        marks.append(int(float(metric["value"])))
        except (OSError, ValueError, KeyError) as exc:
            logger.debug("no sink progress from %s yet: %s", self._rest, exc)
            return None
        if not writers or len(marks) != writers:
            return None
        return SinkProgress(watermark=min(marks), records=records)

    def records_received(self, operator: str) -> int | None:
        """Records the running job's operator ``operator`` (the head of its task chain) has
        received since this start: Flink's ``numRecordsIn``, summed over its subtasks; None
        while the job or its metrics are not there yet."""
        try:
            job = self._running_job()
            for vertex in self._get(f"/jobs/{job}")["vertices"]:
                if vertex["name"].startswith(operator):
                    base = f"/jobs/{job}/vertices/{vertex['id']}/subtasks/metrics"
                    metrics = self._get(f"{base}?get=numRecordsIn&agg=sum")
                    return int(float(metrics[0]["sum"])) if metrics else None
        except (ResourceInUseException, OSError, ValueError, KeyError, IndexError) as exc:
            logger.debug("no record count from %s yet: %s", self._rest, exc)
        return None

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace").splitlines()
        wanted = [line for line in text if "WARN" not in line and line.strip()]
        return "\n".join(wanted[-lines:])

    def kill(self) -> None:
        """The job dies as in a crash: no snapshot, nothing flushed; the process group is
        killed. Its checkpoints and snapshots stay for the next start."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
            logger.info("application %s killed", self.spec.name)
        self.stop()

    def stop(self, timeout: float = 30, snapshot: str | None = None) -> Snapshot | None:
        """Stop the job's process group; then remove its temporary folder (Flink's mini-cluster
        files and RPC jar, tens of megabytes that nothing reads after the job).

        ``snapshot`` names a snapshot to take as the job stops (``StopApplication`` without
        ``Force`` when snapshots are enabled: Flink's stop-with-savepoint, which flushes the
        sinks and ends the job cleanly)."""
        taken = None
        if snapshot is not None:
            self._check_snapshot_name(snapshot)
            target = (self.workdir / SNAPSHOTS / snapshot).as_uri()
            taken = self._savepoint(snapshot, "/stop",
                                    {"targetDirectory": target, "drain": False},
                                    timeout=max(timeout, 120))  # fmt: skip
        if self.process is None:
            return taken
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=timeout)
            except ProcessLookupError:
                pass
            logger.info("application %s stopped", self.spec.name)
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
        return taken

    def __enter__(self) -> LocalApplication:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def with_endpoint(groups: list[dict[str, Any]], endpoint: str) -> list[dict[str, Any]]:
    """Property groups with ``aws.endpoint`` wherever ``aws.region`` is: the local world."""
    out = []
    for group in groups:
        values = dict(group["PropertyMap"])
        if "aws.region" in values:
            values["aws.endpoint"] = endpoint
        out.append({"PropertyGroupId": group["PropertyGroupId"], "PropertyMap": values})
    return out
