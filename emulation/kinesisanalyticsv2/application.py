"""A Managed Flink application run locally: same entry file, same properties, a mini-cluster.

:class:`LocalApplication` takes what ``CreateApplication`` would (the Python entry file, the
property groups, parallelism, the dependency jar) and runs it as Managed Flink does, in its own
process group:

* the property groups, minus ``kinesis.analytics.flink.run.options`` (which the service itself
  reads), are written to ``application_properties.json`` in the working directory and the job
  runs with ``IS_LOCAL`` set there, the convention of AWS's Python samples;
* a private ``FLINK_HOME`` puts the dependency jar on the classpath next to PyFlink's own jars
  (Managed Flink's ``jarfile``), with ``parallelism.default`` in its ``config.yaml``;
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

Not emulated: snapshots and restore, scaling, the application's IAM role (the world's dummy
credentials are used), CloudWatch logging and metrics, application versions and updates.

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

RUN_OPTIONS = "kinesis.analytics.flink.run.options"


class ApplicationFailed(RuntimeError):
    """The job process ended on its own; the message carries the end of its log."""


@dataclass
class ApplicationSpec:
    name: str
    entry: Path  # the Python file the run options name
    property_groups: list[dict[str, Any]]
    jar: Path
    parallelism: int = 1
    python_path: list[Path] = field(default_factory=list)


def _flink_home(workdir: Path, jar: Path, parallelism: int, tmp: Path) -> Path:
    import pyflink

    package = Path(pyflink.__file__).parent
    home = workdir / "flink-home"
    (home / "lib").mkdir(parents=True, exist_ok=True)
    (home / "conf").mkdir(exist_ok=True)
    for existing in (home / "lib").iterdir():
        existing.unlink()
    for library in sorted((package / "lib").glob("*.jar")):
        (home / "lib" / library.name).symlink_to(library)
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
    jvm["all"] = f"{jvm.get('all', '')} -Djava.io.tmpdir={tmp}".strip()
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

    def start(self) -> LocalApplication:
        self.workdir.mkdir(parents=True, exist_ok=True)
        groups = [g for g in self.spec.property_groups if g["PropertyGroupId"] != RUN_OPTIONS]
        (self.workdir / "application_properties.json").write_text(json.dumps(groups, indent=1))
        self.scratch = Path(tempfile.mkdtemp(prefix="tmp-", dir=self.workdir))
        home = _flink_home(self.workdir, self.spec.jar, self.spec.parallelism, self.scratch)
        env = {**os.environ, **self.environment}
        env["IS_LOCAL"] = "true"
        env["FLINK_HOME"] = str(home)
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
            [sys.executable, str(self.spec.entry)],
            cwd=self.workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() takes the JVMs with it
        )
        log.close()
        self.started = time.monotonic()
        logger.info("application %s started (pid %d)", self.spec.name, self.process.pid)
        return self

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
            for log in sorted((self.workdir / "flink-home" / "log").glob("*.log")):
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

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace").splitlines()
        wanted = [line for line in text if "WARN" not in line and line.strip()]
        return "\n".join(wanted[-lines:])

    def stop(self, timeout: float = 30) -> None:
        """Stop the job's process group; then remove its temporary folder (Flink's mini-cluster
        files and RPC jar, tens of megabytes that nothing reads after the job)."""
        if self.process is None:
            return
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
