"""The run spine through the CLI: summary and report, expectations, refusals, determinism."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from emulation.kinesisanalyticsv2.application import _flink_home
from harness.files import sha256_file
from harness.run import RunDir
from harness.runner import RunDirectoryError, artifact_hashes, run
from harness.scenario import load_scenario, parse_scenario
from tests.conftest import REPO

SUMMARY_KEYS = {
    "scenario",
    "seed",
    "version",
    "counts",
    "reconciliation",
    "anomaly",
    "forecast",
    "stages",
    "artifacts",
}


def dfp(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env or dict(os.environ),
        timeout=600,
    )


def _without_wall_times(summary: dict) -> dict:
    copy = json.loads(json.dumps(summary))
    for stage in copy["stages"].values():
        stage.pop("seconds")
    copy["world_state"].pop("seconds")
    return copy


@pytest.mark.e2e
@pytest.mark.world  # through the CLI, against whatever endpoint the environment names
def test_dfp_run_writes_summary_and_report_and_guards_its_directory(tmp_path: Path) -> None:
    """The CLI around the spine: exit codes, files, the occupied directory. The stages' content
    is checked on the session's shared smoke run below."""
    out = tmp_path / "run"
    result = dfp("run", "smoke", "--out", str(out), "--until", "stream")
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary.keys() >= SUMMARY_KEYS
    assert summary["scenario"] == "smoke"
    assert summary["seed"] == load_scenario("smoke").seed
    assert summary["status"] == "succeeded"
    assert summary["reconciliation"]["ok"] is True
    assert list(summary["stages"]) == sorted(summary["stages"])  # sorted keys, stable bytes
    assert set(summary["stages"]) == {"world", "provision", "simulate", "stream"}
    assert "stack.json" in summary["artifacts"]
    # The window went through the producer into the stream, and the stream holds all of it.
    counts = summary["counts"]
    produced = counts["dms_cdc"]["out"]
    assert produced == summary["simulation"]["stream_records"] > 0
    assert counts["kinesis_producer"]["in"] == produced == counts["kinesis_producer"]["out"]
    assert counts["kinesis_cdc"]["in"] == produced
    assert summary["stream"]["ordered_per_partition_key"] is True
    assert "simulation/cdc/stream.ndjson" in summary["artifacts"]
    assert "simulation/truth/anomalies.parquet" in summary["artifacts"]
    report = (out / "report.html").read_text()
    assert "smoke" in report and "provision" in report
    # Self-contained: nothing is loaded from elsewhere (plotly.js itself is inline).
    markup = re.sub(r"<script>.*?</script>", "", report, flags=re.S)  # inline code aside
    assert "<script src" not in markup and "<link" not in markup
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", markup)
    assert "Plotly" in report and "dfpForecastFigure" in report
    # A second run into the same directory is refused without --force ...
    again = dfp("run", "smoke", "--out", str(out))
    assert again.returncode == 2
    assert "--force" in again.stderr
    # ... and replaces it with --force (quickly: --until stops after provisioning).
    again = dfp("run", "smoke", "--out", str(out), "--force", "--until", "provision")
    assert again.returncode == 0, again.stderr
    assert list(json.loads((out / "summary.json").read_text())["stages"]) == ["provision", "world"]


@pytest.mark.e2e
def test_the_smoke_run_stages_every_record_and_reconciles(smoke_run) -> None:
    summary = smoke_run.summary
    assert summary["status"] == "succeeded", summary["expectations"]
    assert summary["reconciliation"]["ok"] is True
    stages = summary["stages"]
    assert {"world", "provision", "simulate", "stream", "staging", "anomaly", "etl", "forecast",
            "enrich"} == stages.keys()  # fmt: skip
    assert all(s["status"] == "succeeded" for s in stages.values())
    counts = summary["counts"]
    # Every CDC record (full load and window) is in the staged bucket exactly once, in the
    # Firehose key layout, as Parquet with the catalog's schema.
    staging = summary["staging"]
    assert staging["exactly_once"] and staging["key_layout_ok"] and staging["catalog_schema_ok"]
    assert staging["error_objects"] == 0
    assert sum(staging["rows"].values()) == counts["s3_staged"]["in"]
    assert (
        counts["firehose_staged"]["in"] == counts["dms_load"]["out"] + counts["kinesis_cdc"]["in"]
    )
    # The forecast datasets exist and their demand is what was sold (ground truth).
    etl = summary["etl"]
    assert etl["state"] == "SUCCEEDED" and etl["demand_matches_truth"]
    assert etl["rows"]["item_metadata"] == etl["items"] > 0
    assert etl["rows"]["related_time_series"] > etl["rows"]["target_time_series"]  # + horizon
    assert ".dfp-output" not in summary["artifacts"]  # the marker is not a run artifact


def test_same_scenario_and_seed_give_the_same_summary(tmp_path: Path, aws) -> None:
    scenario = load_scenario("smoke")
    first = run(scenario, tmp_path / "a", world=aws, until="staging").summary
    aws.reset()
    second = run(scenario, tmp_path / "b", world=aws, until="staging").summary
    assert _without_wall_times(first) == _without_wall_times(second)
    assert first["artifacts"] == second["artifacts"]


def test_parquet_artifacts_are_hashed_by_their_content_not_their_bytes(tmp_path: Path) -> None:
    """Spark's Parquet footers list encodings in an order that changes from one JVM to the
    next: the same rows must hash the same however the file was laid out; other rows not."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = pa.table({"item_id": ["a", "b", "c"], "p50": [1.0, 2.5, None]})
    for name, options in (("a", {"compression": "snappy", "row_group_size": 1}),
                          ("b", {"compression": "zstd", "use_dictionary": False})):  # fmt: skip
        (tmp_path / name / "forecast").mkdir(parents=True)
        pq.write_table(rows, tmp_path / name / "forecast" / "part.parquet", **options)
    first, second = (tmp_path / name / "forecast" / "part.parquet" for name in "ab")
    assert first.read_bytes() != second.read_bytes()
    assert artifact_hashes(tmp_path / "a") == artifact_hashes(tmp_path / "b")
    pq.write_table(rows.slice(0, 2), second)
    assert artifact_hashes(tmp_path / "a") != artifact_hashes(tmp_path / "b")
    # A file that is not readable Parquet (cut short) is hashed by its bytes, never raising.
    second.write_bytes(first.read_bytes()[:-9])
    assert artifact_hashes(tmp_path / "b")["forecast/part.parquet"] == sha256_file(second)


def test_runtime_state_is_not_a_run_artifact(tmp_path: Path) -> None:
    """Whether Flink took a checkpoint depends on how long the job ran (a slow machine or a
    slower endpoint takes one, a fast run none); the world's saved state holds made-up ids.
    Neither may make two runs of the same seed differ; the data beside them is hashed."""
    layout = RunDir(tmp_path)
    for folder in (layout.world_state, *layout.flink_state):
        (folder / "chk-1").mkdir(parents=True)
        (folder / "chk-1" / "_metadata").write_bytes(b"timing")
    (layout.flink / "job.log").write_text("log")
    (layout.flink / "application_properties.json").write_text("[]")
    layout.outliers.parent.mkdir()
    layout.outliers.write_text("[]")
    # ...nor may the rest of the application's working directory (its properties and the local
    # cluster's config name the world's port, a new one in each process) or a log.
    home = _flink_home(layout.flink, [tmp_path / "connector.jar"], 1, tmp_path / "tmp")
    assert (home / "conf" / "config.yaml").is_file()
    (tmp_path / "errors.log").write_text("Traceback at 12:00:01")
    assert set(artifact_hashes(tmp_path)) == {"anomaly/outliers.json"}
    # ...and those are the folders the application is configured to write its state to.
    config = yaml.safe_load((home / "conf" / "config.yaml").read_text())["execution"]
    written = {config["checkpointing"]["dir"], config["checkpointing"]["savepoint-dir"]}
    assert written == {folder.as_uri() for folder in layout.flink_state}


def test_unmet_expectation_fails_the_run_and_names_it(tmp_path: Path) -> None:
    text = (REPO / "scenarios" / "smoke.yaml").read_text().split("expectations:")[0] + (
        "expectations:\n"
        "  - {path: anomaly.precision, min: 0.9}\n  - {path: stages.world.seconds, max: -1}\n"
        "  - {path: stages.world.status, equals: succeeded}\n"
    )
    scenario_file = tmp_path / "strict.yaml"
    scenario_file.write_text(text)
    out = tmp_path / "run"
    result = dfp("run", str(scenario_file), "--out", str(out), "--until", "world")
    assert result.returncode == 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "failed"
    by_path = {e["path"]: e for e in summary["expectations"]}
    assert by_path["stages.world.seconds"]["ok"] is False
    assert "> max -1" in by_path["stages.world.seconds"]["reason"]
    assert by_path["stages.world.status"]["ok"] is True
    assert by_path["anomaly.precision"]["ok"] is None  # not produced by a run stopped early
    assert (out / "report.html").is_file()


def test_failing_stage_is_recorded_and_later_stages_skipped(tmp_path: Path, aws) -> None:
    def broken(ctx) -> None:
        raise ValueError("staged file s3://b/k.parquet lacks column quantity")

    def never(ctx) -> None:
        raise AssertionError("must not run after a failure")

    scenario = load_scenario("smoke")
    result = run(scenario, tmp_path / "r", world=aws, stages=[("etl", broken), ("after", never)])
    stages = result.summary["stages"]
    assert not result.ok
    assert stages["etl"]["status"] == "failed"
    assert "lacks column quantity" in stages["etl"]["error"]
    assert stages["after"]["status"] == "skipped"
    assert "ValueError" in (tmp_path / "r" / "errors.log").read_text()
    assert (tmp_path / "r" / "summary.json").is_file()


def test_a_stage_whose_input_was_not_given_is_skipped_saying_why(tmp_path: Path, aws) -> None:
    """A stage that ran and chose not to give its output (a forecast that failed as a drill
    asked) leaves the stages that need it nothing to do: skipped with the reason, not failed.
    A stage run before its input's giver stays an error."""
    from harness.run import StageSpec

    def no_export(ctx) -> None:
        ctx.summary["forecast"] = {"outcome": "the forecast workflow failed: AutoMLJobFailed"}

    def needs_export(ctx) -> None:
        raise AssertionError("must not run without an export")

    scenario = load_scenario("smoke")
    stages = [StageSpec("forecast", no_export, gives=("export_key",)),
              StageSpec("enrich", needs_export, needs=("export_key",))]  # fmt: skip
    result = run(scenario, tmp_path / "r", world=aws, stages=stages)
    enrich = result.summary["stages"]["enrich"]
    assert result.summary["stages"]["forecast"]["status"] == "succeeded"
    assert enrich["status"] == "skipped"
    assert enrich["reason"] == ("needs export_key, which stage forecast did not give (the "
                                "forecast workflow failed: AutoMLJobFailed)")  # fmt: skip

    early = run(scenario, tmp_path / "early", world=aws,
                stages=[StageSpec("enrich", needs_export, needs=("export_key",))])  # fmt: skip
    assert early.summary["stages"]["enrich"]["status"] == "failed"


def test_only_a_side_branch_can_be_left_out_and_only_when_nothing_judges_it(tmp_path) -> None:
    from harness.runner import unjudged_stages

    with pytest.raises(ValueError, match=r"stage 'etl' cannot be left out: only side branches "
                       r"can \(anomaly\)"):  # fmt: skip
        run(load_scenario("smoke"), tmp_path / "r", leave_out=["etl"])
    assert not (tmp_path / "r").exists()  # refused before anything was written
    assert unjudged_stages(load_scenario("smoke")) == []  # it judges the outliers
    assert unjudged_stages(load_scenario("job-retries")) == ["anomaly"]
    # A fault the anomaly job catches keeps it in, whatever the expectations read.
    bad = load_scenario("job-retries").with_changes(faults={"bad_records": {"rate": 0.01}})
    assert unjudged_stages(bad) == []


def test_unsafe_endpoint_is_refused_by_dfp_run(tmp_path: Path) -> None:
    env = {**os.environ, "AWS_ENDPOINT_URL": "https://kinesis.us-east-1.amazonaws.com"}
    result = dfp("run", "smoke", "--out", str(tmp_path / "r"), env=env)
    assert result.returncode == 2
    assert "kinesis.us-east-1.amazonaws.com" in result.stderr
    assert "not a loopback address" in result.stderr
    assert not (tmp_path / "r").exists()


def test_invalid_scenario_is_refused_with_key_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text((REPO / "scenarios" / "smoke.yaml").read_text().replace("products:", "prodcts:"))
    result = dfp("run", str(bad), "--out", str(tmp_path / "r"))
    assert result.returncode == 2
    assert "catalog.prodcts" in result.stderr and "unknown key" in result.stderr


def test_prepare_refuses_file_as_out_dir(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(RunDirectoryError, match="not a directory"):
        run(parse_scenario((REPO / "scenarios" / "smoke.yaml").read_text()), target)


def test_seed_override_is_recorded(tmp_path: Path) -> None:
    result = dfp("run", "smoke", "--out", str(tmp_path / "r"), "--seed", "99", "--until", "world")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["seed"] == 99
    # A partial run leaves the expectations on later stages unjudged, not passed.
    unjudged = [e for e in summary["expectations"] if e["ok"] is None]
    assert unjudged and all("stopped after world" in e["reason"] for e in unjudged)
    unknown = dfp("run", "smoke", "--out", str(tmp_path / "u"), "--until", "no-such-stage")
    assert unknown.returncode == 2 and "no stage 'no-such-stage'" in unknown.stderr


def test_direct_shop_events_share_the_stream_and_reconcile(tmp_path: Path, aws) -> None:
    text = (REPO / "scenarios" / "smoke.yaml").read_text()
    text += "ecommerce: {direct_events: true, channels: [web, app]}\n"
    scenario = parse_scenario(text, "smoke-direct.yaml")
    summary = run(scenario, tmp_path / "r", world=aws, until="staging").summary
    counts = summary["counts"]
    shop = counts["shop_events"]["out"]
    assert shop > 0
    assert counts["kinesis_cdc"]["in"] == counts["dms_cdc"]["out"] + shop
    assert summary["reconciliation"]["ok"], summary["reconciliation"]
    assert summary["staging"]["rows"]["ecommerce_events"] == shop
    events = (
        (tmp_path / "r" / "simulation" / "events" / "ecommerce.ndjson").read_text().splitlines()
    )
    first = json.loads(events[0])
    assert first["event_type"] == "order_line" and first["channel"] in ("web", "app")
    assert set(first) == {
        "event_type",
        "schema_version",
        "event_id",
        "sale_id",
        "product_id",
        "quantity",
        "unit_price",
        "channel",
        "sold_at",
    }


def test_a_missing_value_fails_its_expectation_in_a_full_run() -> None:
    from harness.runner import evaluate
    from harness.scenario import Expectation

    result = evaluate(Expectation(path="anomaly.precision", min=0.9), {"anomaly": None})
    assert result["ok"] is False and "no value at anomaly.precision" in result["reason"]
    assert evaluate(Expectation(path="a.b", equals=True), {"a": {"b": True}})["ok"] is True
    assert (
        evaluate(Expectation(path="a.b", min=1), {"a": {"b": "x"}})["reason"]
        == "'x' is not a number"
    )


def test_a_replay_counts_its_set_aside_rows_and_lists_them_in_the_run(tmp_path: Path, aws) -> None:
    from tests.simulator.test_source import HOSTILE_SALES, MAPPING, scenario_file

    (tmp_path / "sales.csv").write_text(HOSTILE_SALES)
    path = scenario_file(tmp_path, "sales:\n  path: sales.csv\n" + MAPPING
                         + "bad_rows: set_aside\n")  # fmt: skip
    summary = run(load_scenario(str(path)), tmp_path / "r", world=aws, until="staging").summary
    hop = summary["counts"]["source_rows"]
    assert (hop["in"], hop["out"], hop["rejected"]) == (13, 7, 6)
    assert hop["reasons"]["quantity is below 0"] == 1
    assert summary["simulation"]["source"]["set_aside"] == 6
    assert summary["reconciliation"]["ok"], summary["reconciliation"]
    assert summary["staging"]["rows"]["sales"] == 7
    listed = (tmp_path / "r" / summary["simulation"]["source"]["set_aside_file"]).read_text()
    assert [json.loads(line)["row"] for line in listed.splitlines()] == [8, 9, 10, 11, 12, 13]


def test_the_verdict_table_shows_numbers_to_six_significant_digits() -> None:
    """A ratio computed as 0.8333001036721001 reads 0.8333, a bound read as 1.0 reads 1; six
    digits still show why 0.90004 failed ``max: 0.9``."""
    from harness.cli import _shown

    assert _shown(0.8333001036721001) == "0.8333"
    assert _shown({"min": 1.0}) == '{"min": 1}'
    assert _shown(0.90004) == "0.90004"
    assert _shown([True, None, "x", 234, 2.5]) == '[true, null, "x", 234, 2.5]'


def test_series_keys_are_read_back_as_written(tmp_path: Path) -> None:
    """Item and store ids are text wherever the harness reads a run's CSVs back: ``007`` and
    ``7`` are two items, ``0012`` is no store 12 and ``NA`` is an id, not a gap (Arrow and pandas
    infer numbers and missing values; a replay of real data keeps its codes)."""
    from harness.runs import read_run_csv
    from harness.stages.etl import read_dataset

    body = b"007,0012,2025-01-01,3\n7,0012,2025-01-01,4\nNA,1,2025-01-01,5\n"
    table = read_dataset(body, ["item_id", "store_id", "timestamp", "demand"], "demand")
    assert table["item_id"].to_pylist() == ["007", "7", "NA"]
    assert table["store_id"].to_pylist() == ["0012", "0012", "1"]
    assert table["demand"].to_pylist() == [3.0, 4.0, 5.0]
    assert read_dataset(b"", ["item_id", "demand"], "demand").num_rows == 0

    export = b"item_id,date,p10,p50,p90,mean\n007,2025-01-02,1,2,3,2.5\n7,2025-01-02,1,2,3,2\n"
    frame = read_run_csv(export)
    assert frame["item_id"].tolist() == ["007", "7"]
    assert frame["p50"].dtype.kind in "if" and frame["mean"].tolist() == [2.5, 2.0]

    path = tmp_path / "input.csv"
    path.write_text("item_id,timestamp,demand,category\n007,2025-01-01,3,NA\nNA,2025-01-02,,x\n")
    read = read_run_csv(path, parse_dates=["timestamp"])
    assert read["item_id"].tolist() == ["007", "NA"]
    assert read["demand"].iloc[0] == 3 and read["demand"].isna().iloc[1]
