"""Bundles are reproducible, verified against their manifest, and unpack to the code that runs."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from deploy.bundle import (
    FLINK_JAR,
    MANIFEST_FILE,
    BundleError,
    build_bundle,
    deterministic_zip,
    extract_pipeline,
    pipeline_digest,
    pipeline_sources,
    verify_bundle,
)
from deploy.stack import load_stack


def test_building_twice_gives_the_same_manifest_and_bytes(bundle_dir: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    build_bundle(again)
    assert (again / MANIFEST_FILE).read_bytes() == (bundle_dir / MANIFEST_FILE).read_bytes()
    for path in json.loads((again / MANIFEST_FILE).read_text())["artifacts"]:
        assert (again / path).read_bytes() == (bundle_dir / path).read_bytes(), path


def test_manifest_lists_every_deployable_artifact(bundle_dir: Path) -> None:
    manifest = json.loads((bundle_dir / MANIFEST_FILE).read_text())
    stack = load_stack()
    kinds = {path: entry["kind"] for path, entry in manifest["artifacts"].items()}
    for job in stack.glue.jobs.values():
        assert kinds[f"glue/{job.script}"] == "glue-script"
    for machine in stack.state_machines.values():
        assert kinds[f"states/{machine.definition}"] == "state-machine-definition"
        # unchanged: the deployed definition is the file itself
        assert (bundle_dir / f"states/{machine.definition}").read_bytes() == (
            machine.definition_path().read_bytes()
        )
    assert {kinds[f"flink/{key}.zip"] for key in stack.applications} == {"flink-application"}
    assert kinds["lambda/api.zip"] == "lambda-function"
    assert manifest["source"]["pipeline_digest"] == pipeline_digest()
    assert not verify_bundle(bundle_dir)


def test_zips_carry_no_build_time_or_caches() -> None:
    data = deterministic_zip([("b.py", b"2"), ("a.py", b"1")])
    with zipfile.ZipFile(__import__("io").BytesIO(data)) as archive:
        assert [i.filename for i in archive.infolist()] == ["a.py", "b.py"]
        assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    assert all("__pycache__" not in name for name, _ in pipeline_sources())


def test_flink_zip_holds_the_entry_the_package_and_the_jar(tmp_path: Path) -> None:
    jar = tmp_path / "deps.jar"
    jar.write_bytes(b"PK\x05\x06" + b"\0" * 18)  # any jar: the bundle ships it as it is
    out = build_bundle(tmp_path / "b", flink_jar=jar)
    assert out["incomplete"] == []
    with zipfile.ZipFile(tmp_path / "b" / "flink" / "anomaly.zip") as archive:
        names = set(archive.namelist())
        assert archive.read(f"lib/{FLINK_JAR}") == jar.read_bytes()
    assert {"pipeline/anomaly/main.py", "lib/pipeline.zip", f"lib/{FLINK_JAR}"} == names
    with pytest.raises(BundleError, match="no such jar"):
        build_bundle(tmp_path / "c", flink_jar=tmp_path / "missing.jar")


def test_a_changed_byte_is_found_and_named(bundle_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "bundle"
    build_bundle(copy)
    script = copy / "glue" / "etl" / "forecast_input.py"
    data = bytearray(script.read_bytes())
    data[10] ^= 0x01
    script.write_bytes(bytes(data))
    (copy / "stray.txt").write_text("x")
    problems = verify_bundle(copy)
    assert any(str(script) in p and "differs from the manifest" in p for p in problems)
    assert any("stray.txt: not in the manifest" in p for p in problems)
    with pytest.raises(BundleError, match=r"forecast_input\.py"):
        extract_pipeline(copy, tmp_path / "x")


def test_extracted_package_is_the_bundled_code(bundle_dir: Path, tmp_path: Path) -> None:
    package = extract_pipeline(bundle_dir, tmp_path / "src")
    manifest = json.loads((bundle_dir / MANIFEST_FILE).read_text())
    assert pipeline_digest(package) == manifest["source"]["pipeline_digest"]
    assert (package / "forecast" / "workflow.asl.json").read_bytes() == (
        bundle_dir / "states" / "forecast" / "workflow.asl.json"
    ).read_bytes()


def test_not_a_bundle_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=r"no manifest"):
        verify_bundle(tmp_path)
    (tmp_path / MANIFEST_FILE).write_text('{"format": 99}')
    with pytest.raises(BundleError, match=r"manifest\.json: format 99"):
        verify_bundle(tmp_path)
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "x").write_text("x")
    with pytest.raises(BundleError, match="not empty"):
        build_bundle(occupied)
