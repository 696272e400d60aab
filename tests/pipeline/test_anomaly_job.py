"""The anomaly job: its detection step without Flink, and the whole job in a local Managed Flink."""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from emulation import World
from emulation.kinesis import read_stream
from emulation.kinesisanalyticsv2 import ConnectorMissing, connector_jar, detection_jar
from emulation.kinesisanalyticsv2.application import (
    ApplicationSpec,
    Checkpoints,
    InvalidApplicationConfigurationException,
    InvalidArgumentException,
    LocalApplication,
    ResourceNotFoundException,
    with_endpoint,
)
from emulation.kinesisanalyticsv2.launcher import service_configuration
from harness.provision import provision
from pipeline.anomaly.detector import DetectorConfig, Profile, profiles_document
from pipeline.anomaly.step import AnomalyDetection
from tests.conftest import REPO

PROFILES = {
    "P1": Profile(line_qty_p99=3, price_reference=10.0, units_by_weekday=(2.0,) * 7),
    "P2": Profile(line_qty_p99=2, price_reference=5.0, units_by_weekday=(30.0,) * 7,
                  dispersion=50.0),
}  # fmt: skip
DAY = dt.datetime(2025, 3, 3, tzinfo=dt.UTC)  # a Monday


def dms(table: str, row: dict, op: str = "insert", when: dt.datetime = DAY) -> str:
    stamp = when.isoformat().replace("+00:00", "Z")
    return json.dumps({"data": row, "metadata": {
        "timestamp": stamp, "record-type": "data", "operation": op,
        "partition-key-type": "primary-key", "schema-name": "shop", "table-name": table,
        "transaction-id": 7}})  # fmt: skip


def sale(sale_id: int, product: str, qty: int, price: float, when: dt.datetime) -> str:
    row = {"sale_id": sale_id, "product_id": product, "quantity": qty, "unit_price": price,
           "channel": "web", "sold_at": when.isoformat().replace("+00:00", "Z")}  # fmt: skip
    return dms("sales", row, when=when)


def lines() -> list[str]:
    t = DAY + dt.timedelta(hours=9)
    return [
        sale(1, "P1", 2, 10.0, t),
        sale(2, "P1", 40, 10.0, t + dt.timedelta(minutes=5)),  # spike
        sale(3, "P1", 1, 99.0, t + dt.timedelta(minutes=6)),  # price glitch
        "{not json",
        sale(4, "P1", -3, 10.0, t + dt.timedelta(minutes=7)),
        dms("products", {"product_id": "P1", "name": "x"}),
        dms("sales", {"sale_id": 1, "product_id": "P1"}, op="delete"),
        # The next day: P2 (30 units a day) sold nothing on the 3rd: a drop once the day closes.
        sale(5, "P1", 1, 10.0, DAY + dt.timedelta(days=1, minutes=20)),
        # DMS heartbeats (ignored as data) move event time on past the last sale.
        *[heartbeat(DAY + dt.timedelta(days=1, minutes=30 + i)) for i in range(2)],
    ]


def heartbeat(when: dt.datetime) -> str:
    return dms("awsdms_heartbeat", {"hb_timestamp": when.isoformat()}, op="update", when=when)


def test_detection_step_flags_rejects_ignores_and_closes_days() -> None:
    step = AnomalyDetection(PROFILES, DetectorConfig(), lateness=600)
    rows = [row for line in lines() for row in step.process(line)]
    outliers = [(r.product_id, r.reason) for r in rows if r.kind == "outlier"]
    assert ("P1", "spike") in outliers and ("P1", "price_glitch") in outliers
    assert ("P2", "drop") in outliers  # the 3rd closed when the 4th's 00:20 sale arrived
    rejected = sorted(r.reason for r in rows if r.kind == "rejected")
    assert len(rejected) == 2
    assert rejected[0].startswith("malformed JSON") and "not positive" in rejected[1]
    assert len(rows) == len(outliers) + 2  # the products row and the delete produce nothing


@pytest.fixture(scope="module")
def jar():
    try:
        detection_jar()
        return connector_jar()
    except ConnectorMissing as exc:
        pytest.skip(f"{exc}; test_detection_step_flags_rejects_ignores_and_closes_days covers the "
                    "detection without Flink")  # fmt: skip


def _read(world: World, stream: str) -> list[dict]:
    return [json.loads(r["data"]) for r in read_stream(world.client("kinesis"), stream)]


def _provisioned_job(aws: World, stack, jar, workdir: Path) -> tuple[Any, LocalApplication]:
    """The stack provisioned, the profiles where the job's properties point, and the job (not
    started) as the run's anomaly stage builds it."""
    names = provision(aws, stack)
    aws.client("s3").put_object(Bucket=names.bucket("analysis"), Key="profiles/latest.json",
                                Body=json.dumps(profiles_document(PROFILES)).encode())  # fmt: skip
    app = stack.applications["anomaly"]
    spec = ApplicationSpec(
        name=names.stack.name("anomaly"),
        entry=app.entry_path(),
        property_groups=with_endpoint(
            names.application_properties("anomaly", local=True), aws.endpoint_url
        ),
        jar=jar,
        parallelism=app.parallelism,
        python_path=[REPO],
        libraries=[detection_jar()],
    )
    return names, LocalApplication(spec, workdir, aws.environment())


def _put(aws: World, names: Any, part: list[str]) -> None:
    for i, line in enumerate(part):
        aws.client("kinesis").put_record(StreamARN=names.stream_arn("cdc"), Data=line.encode(),
                                         PartitionKey=f"k{i % 3}")  # fmt: skip


def test_the_job_runs_in_local_managed_flink(aws: World, stack, jar, tmp_path: Path) -> None:
    names, job = _provisioned_job(aws, stack, jar, tmp_path / "flink")
    _put(aws, names, lines())
    # The last heartbeat's second, less the job's one-second watermark delay.
    final = int((DAY + dt.timedelta(days=1, minutes=31)).timestamp() * 1000) - 1000
    with job:
        deadline = time.monotonic() + 180
        outliers, rejected, progress = [], [], None
        # Done by the job's own metrics, as the run's anomaly stage decides it, not by counting
        # the outputs this test expects: a too-early signal shows as missing outputs below.
        while time.monotonic() < deadline:
            job.check()
            progress = job.sink_progress()
            outliers = _read(aws, names.stream_name("outliers"))
            rejected = _read(aws, names.stream_name("anomaly-errors"))
            if (
                progress
                and progress.watermark >= final
                and (len(outliers) + len(rejected) >= progress.records)
            ):
                break
            time.sleep(1)
        # Flink's temporary files are in the job's working directory while it runs …
        assert list(job.scratch.glob("minicluster_*"))
        # … and its REST API takes no jar to run, nor answers another site's page
        with urllib.request.urlopen(f"{job.rest_url()}/config", timeout=10) as answer:
            assert json.load(answer)["features"]["web-submit"] is False
        upload = urllib.request.Request(f"{job.rest_url()}/jars/upload", data=b"", method="POST")
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(upload, timeout=10)
        evil = urllib.request.Request(f"{job.rest_url()}/jobs/overview",
                                      headers={"Origin": "http://evil.example"})  # fmt: skip
        with urllib.request.urlopen(evil, timeout=10) as answer:
            allowed = answer.headers.get("Access-Control-Allow-Origin")
        assert allowed == "http://127.0.0.1", allowed
    # … and gone once it has stopped
    assert not job.scratch.exists()
    assert progress is not None and progress.records == 5, (progress, job.log_tail())
    assert job.rest_url().startswith("http://127.0.0.1:")
    assert sorted((o["product_id"], o["reason"]) for o in outliers) == [
        ("P1", "price_glitch"), ("P1", "spike"), ("P2", "drop")
    ], job.log_tail()  # fmt: skip
    spike = next(o for o in outliers if o["reason"] == "spike")
    assert spike["sale_id"] == 2 and spike["quantity"] == 40 and spike["score"] > 1
    assert spike["sold_at"] == "2025-03-03T09:05:00Z" and spike["source"] == "dms"
    assert sorted(r["reason"].split(":")[0] for r in rejected) == [
        "malformed JSON", "quantity -3 is not positive"]  # fmt: skip
    assert all(r["job"] == "anomaly" and r["raw"] for r in rejected)
    assert json.loads((tmp_path / "flink" / "application_properties.json").read_text())
    assert sys.executable


def _wait_for(job: LocalApplication, done, what: str, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        job.check()
        assert time.monotonic() < deadline, (
            f"{what}: not reached; sinks {job.sink_progress()}; {job.log_tail()}"
        )
        time.sleep(0.5)


def test_a_killed_job_restarts_from_its_latest_snapshot(
    aws: World, stack, jar, tmp_path: Path
) -> None:
    """Managed Flink's restart: a snapshot mid-stream, a crash later, a start from the latest
    snapshot. The restored job resumes the shards where the snapshot had them and the detector
    with what it had learnt: it emits again only what came after the snapshot (at-least-once),
    under the same outlier ids, and nothing before it."""
    names, job = _provisioned_job(aws, stack, jar, tmp_path / "flink")
    first_day, rest = lines()[:7], lines()[7:]
    with pytest.raises(ResourceNotFoundException, match="no snapshot 'nope'"):
        job.start("RESTORE_FROM_CUSTOM_SNAPSHOT", "nope")
    with pytest.raises(InvalidArgumentException, match="ApplicationRestoreType"):
        job.start("RESTORE_FROM_YESTERDAY")
    outliers = lambda: _read(aws, names.stream_name("outliers"))  # noqa: E731
    rejected = lambda: _read(aws, names.stream_name("anomaly-errors"))  # noqa: E731
    _put(aws, names, first_day)
    job.start()
    try:
        # The spike and the glitch are out; the 09:07 record waits for event time to pass it, the
        # day's drop for the next day.
        _wait_for(job, lambda: len(outliers()) == 2 and len(rejected()) == 1, "first day")
        with pytest.raises(InvalidArgumentException, match="SnapshotName"):
            job.create_snapshot("mid day")
        mid = job.create_snapshot("mid-day")
        assert [s.name for s in job.list_snapshots()] == ["mid-day"]
        _put(aws, names, rest)
        # Both sinks flush on their own: the crash comes once each has delivered what followed
        # the snapshot (the drop, and the 09:07 record's rejection), or a rejection still in the
        # error sink's buffer would die with the job and come once, not twice.
        _wait_for(job, lambda: len(outliers()) == 3 and len(rejected()) == 2,
                  "the drop and the 09:07 rejection")  # fmt: skip
        job.kill()
        job.start("RESTORE_FROM_LATEST_SNAPSHOT")
        assert job.restored_from == mid.path
        final = int((DAY + dt.timedelta(days=1, minutes=31)).timestamp() * 1000) - 1000

        def finished() -> bool:
            progress = job.sink_progress()
            return progress is not None and progress.watermark >= final

        _wait_for(job, finished, "the restored job's end of input")
        # StopApplication without Force: a snapshot as the job stops, which flushes the sinks.
        job.stop(snapshot="at-stop")
        assert [s.name for s in job.list_snapshots()] == ["at-stop", "mid-day"]
        got = outliers()
    finally:
        job.stop()
    # Only what followed the snapshot came again: the drop, under the same id.
    assert [o["reason"] for o in got] == ["spike", "price_glitch", "drop", "drop"], got
    assert got[2]["outlier_id"] == got[3]["outlier_id"] == "drop:P2:2025-03-03"
    assert {o["outlier_id"] for o in got} == {"spike:2", "price_glitch:3", "drop:P2:2025-03-03"}
    # The malformed record came before the snapshot: once; the 09:07 one after it: twice.
    assert sorted(r["raw"][:5] for r in rejected()) == ['{"dat', '{"dat', "{not "]


def test_the_launcher_hands_the_job_the_service_s_settings_only(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.yaml").write_text(
        "parallelism: {default: 3}\n"
        "execution:\n  checkpointing: {interval: 60000 ms, mode: EXACTLY_ONCE}\n"
        "  state-recovery: {path: 'file:/snapshots/a'}\n"
        "restart-strategy: {type: fixed-delay, fixed-delay: {attempts: 3}}\n"
        "rest: {address: localhost}\ntaskmanager: {numberOfTaskSlots: 4}\n"
        "web: {submit: {enable: false}}\n"
    )
    assert service_configuration(tmp_path) == {
        "web.submit.enable": "false",
        "parallelism.default": "3",
        "execution.checkpointing.interval": "60000 ms",
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "execution.state-recovery.path": "file:/snapshots/a",
        "restart-strategy.type": "fixed-delay",
        "restart-strategy.fixed-delay.attempts": "3",
    }


def test_snapshot_requests_are_checked_as_the_service_checks_them(tmp_path: Path) -> None:
    spec = ApplicationSpec(name="a", entry=Path("main.py"), property_groups=[], jar=Path("x.jar"),
                           checkpoints=Checkpoints(snapshots=False))  # fmt: skip
    app = LocalApplication(spec, tmp_path, {})
    with pytest.raises(InvalidApplicationConfigurationException, match="snapshots disabled"):
        app.create_snapshot("s1")
    with pytest.raises(InvalidArgumentException, match="needs a SnapshotName"):
        app.start("RESTORE_FROM_CUSTOM_SNAPSHOT")
    assert app.list_snapshots() == []
    # RESTORE_FROM_LATEST_SNAPSHOT with none starts without state (no process is needed to
    # see which snapshot a start would restore).
    assert app._restore_path("RESTORE_FROM_LATEST_SNAPSHOT", None) is None


def test_a_relative_working_directory_is_made_absolute(tmp_path: Path, monkeypatch) -> None:
    # dfp run --out runs/smoke gives a relative run directory; the job runs with it as cwd.
    monkeypatch.chdir(tmp_path)
    spec = ApplicationSpec(name="a", entry=Path("main.py"), property_groups=[], jar=Path("x.jar"))
    assert LocalApplication(spec, Path("runs/smoke/flink"), {}).workdir == (
        tmp_path / "runs" / "smoke" / "flink"
    )


def test_a_detector_option_with_a_bad_value_fails_naming_it() -> None:
    from pipeline.anomaly.main import detector_config, option

    config = detector_config({"spike_factor": "2.5", "burst_min": " 5 ", "profiles.uri": "s3://x"})
    assert (config.spike_factor, config.burst_min, config.price_ratio) == (2.5, 5, 3.0)
    for name, value in [("spike_factor", "high"), ("burst_min", "4.5"), ("drop_alpha", "nan"),
                        ("price_ratio", "-3")]:  # fmt: skip
        with pytest.raises(
            ValueError, match=re.escape(f"detector.config.0 {name}: '{value}' is not a")
        ):
            detector_config({name: value})
    with pytest.raises(ValueError, match=re.escape("day.close.lateness.seconds: '10m'")):
        option({"day.close.lateness.seconds": "10m"}, "day.close.lateness.seconds", int, 600)
