"""LocalStack as a second engine (``dfp run --world localstack``, :mod:`emulation.localstack`).

The whole-run test needs LocalStack installed by set-up (Python 3.13); without it, it says so in
its skip reason and the tests above it still cover what does not need LocalStack: the world's
routing, the environment its subprocesses get, the refusals, the loopback preload for Node.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from emulation import World
from emulation.localstack import (
    HOME_ENV,
    LOCALSTACK_SERVICES,
    MOTO_SERVICES,
    Installation,
    LocalStackServer,
    LocalStackUnavailable,
)
from emulation.loopback import LIBRARY, library
from emulation.safety import UnsafeEndpointError, local_environment
from emulation.world import WorldError
from pipeline.contracts.local_guard import endpoint_variable
from tests.conftest import LOCALSTACK_TEST, REPO, child


def _installed() -> str | None:
    try:
        Installation.find()
    except LocalStackUnavailable as exc:
        return str(exc)
    return None


# ------------------------------------------------------------------------------ without LocalStack
def test_every_service_is_served_by_exactly_one_engine() -> None:
    assert not set(LOCALSTACK_SERVICES) & set(MOTO_SERVICES)
    # what the community edition lacks, or what the harness's gap-fillers must do themselves
    assert {"dynamodb", "glue", "athena", "sagemaker", "sagemaker-runtime",
            "firehose"} <= set(MOTO_SERVICES)  # fmt: skip
    assert {"s3", "kinesis", "events", "stepfunctions"} <= set(LOCALSTACK_SERVICES)


def test_boto3_per_service_variables_are_named_by_service_id() -> None:
    assert endpoint_variable("dynamodb") == "AWS_ENDPOINT_URL_DYNAMODB"
    assert endpoint_variable("kinesisanalyticsv2") == "AWS_ENDPOINT_URL_KINESIS_ANALYTICS_V2"
    assert endpoint_variable("dms") == "AWS_ENDPOINT_URL_DATABASE_MIGRATION_SERVICE"
    assert endpoint_variable("stepfunctions") == "AWS_ENDPOINT_URL_SFN"
    assert endpoint_variable("sagemaker-runtime") == "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"


def test_subprocesses_get_the_worlds_routes_and_nothing_inherited() -> None:
    base = {"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:1", "PATH": "/bin"}
    env = local_environment(
        "http://127.0.0.1:4566", "eu-west-1", base=base,
        routes={"dynamodb": "http://127.0.0.1:5000", "glue": "http://localhost:5000/"},
    )  # fmt: skip
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4566"
    assert env["AWS_ENDPOINT_URL_DYNAMODB"] == "http://127.0.0.1:5000"
    assert env["AWS_ENDPOINT_URL_GLUE"] == "http://localhost:5000"
    assert "AWS_ENDPOINT_URL_S3" not in env  # the caller's own route is not the world's
    with pytest.raises(UnsafeEndpointError, match=r"dynamodb\.us-east-1\.amazonaws\.com"):
        local_environment(
            "http://127.0.0.1:4566", "eu-west-1", base={},
            routes={"dynamodb": "https://dynamodb.us-east-1.amazonaws.com"},
        )  # fmt: skip


def test_a_localstack_world_refuses_an_endpoint_and_unknown_engines() -> None:
    with pytest.raises(WorldError, match="starts its own endpoint"):
        World(endpoint_url="http://127.0.0.1:4566", region="us-east-1", engine="localstack")
    with pytest.raises(WorldError, match="unknown world engine 'docker'"):
        World(region="us-east-1", engine="docker")


def test_missing_installation_names_what_is_missing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(HOME_ENV, str(tmp_path))
    with pytest.raises(LocalStackUnavailable, match=r"Python 3\.13") as refused:
        Installation.find()
    assert str(tmp_path) in str(refused.value)
    env = {**os.environ, HOME_ENV: str(tmp_path)}
    env.pop("AWS_ENDPOINT_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "smoke", "--world", "localstack",
         "--out", str(tmp_path / "run")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Python 3.13" in done.stdout + done.stderr
    assert not (tmp_path / "run").exists()  # refused before anything was written
    env["DFP_WORLD"] = "docker"
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "smoke", "--out", str(tmp_path / "run")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2 and "'docker'" in done.stdout + done.stderr, done.stderr


def test_localstack_never_uses_a_folder_that_exists(tmp_path: Path) -> None:
    """Its folder is deleted at stop, so it must be one the server created."""
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("someone's file")
    fake = Installation(tmp_path / "no-install")
    server = LocalStackServer(forward_url="http://127.0.0.1:1", scratch=taken, installation=fake)
    with pytest.raises(FileExistsError):
        server.start()
    server.stop()
    assert (taken / "keep.txt").read_text() == "someone's file"


@pytest.mark.parametrize(
    "call",
    ["server.listen(0)", "server.listen({port: 0})", "server.listen(0, '0.0.0.0')",
     "server.listen({port: 0, host: '::'})"],
)  # fmt: skip
def test_node_servers_listen_on_loopback_only(call: str) -> None:
    """The preload LocalStack's Node helper gets: its servers take no address option."""
    script = (
        "const net = require('net'); const server = net.createServer();"
        "server.on('listening', () => {"
        " console.log(server.address().address); server.close(); });"
        f"{call};"
    )
    preload = REPO / "emulation" / "localstack" / "loopback.cjs"
    done = subprocess.run(
        ["node", "--require", str(preload), "-e", script],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert done.stdout.strip() == "127.0.0.1"


# ---------------------------------------------------------------------------------- a whole run
_MISSING = _installed() or (
    None if library() is not None else f"{LIBRARY} is not built (no C compiler at set-up)"
)
# Differences between the engines' artifacts, each with its reason (the README's parity table).
ACCOUNT_NAMED = {"stack.json", "forecast/manifest.json"}  # bucket names carry the account


def _flink_endpoints(run_dir: Path) -> set[str]:
    """The endpoints the anomaly job's properties name (its working directory is no artifact)."""
    groups = json.loads((run_dir / "flink" / "application_properties.json").read_text())
    return {g["PropertyMap"]["aws.endpoint"] for g in groups if "aws.endpoint" in g["PropertyMap"]}


def _same_but_account(a: Path, b: Path, accounts: tuple[str, str]) -> bool:
    return a.read_text().replace(*accounts) == b.read_text()


@pytest.mark.e2e
@pytest.mark.skipif(_MISSING is not None, reason=f"cannot run LocalStack here: {_MISSING}")
def test_smoke_runs_on_localstack_like_on_moto(request: pytest.FixtureRequest, smoke_run) -> None:
    """Started beside the session (``tests/conftest.py``); compared with the session's run.
    Everything is read inside the block: the child's folder goes when it closes."""
    with child(request.config, LOCALSTACK_TEST) as run:
        code, output = run.result(timeout=1500)
        folder = run.folder
        out = folder / "run"
        assert code == 0, output[-6000:]
        summary = json.loads((out / "summary.json").read_text())
        assert summary["status"] == "succeeded"
        endpoint = summary["endpoint"]
        assert endpoint["kind"] == "localstack"
        assert endpoint["routed"]["dynamodb"] == "embedded moto"
        assert summary["reconciliation"]["lost"] == 0

        # The forecaster's endpoint answers InvokeEndpoint in a LocalStack world too, routed
        # to the embedded moto or sent to LocalStack's own endpoint, which forwards it.
        invoked = json.loads((folder / "invoke.json").read_text())
        assert "error" not in invoked, invoked
        assert invoked["job"] == "Completed" and "sagemaker-runtime" in invoked["routes"]
        assert invoked["routed"] == invoked["through_localstack"]
        assert invoked["routed"].startswith("item_id,timestamp,p10,p50,p90,mean\n")

        # Only loopback listeners, in every process of the run, sampled throughout it.
        listeners = json.loads((folder / "listeners.json").read_text())
        assert listeners["samples"] > 30  # a sample a second over a run of minutes
        names = {name for name, _ in listeners["listeners"]}
        assert "node" in names  # LocalStack's Kinesis helper was seen, and seen contained
        loopback = ("127.", "[::1]", "[::ffff:127.")
        wildcard = [(n, a) for n, a in listeners["listeners"] if not a.startswith(loopback)]
        assert not wildcard, wildcard
        # Nothing left behind: LocalStack's folder is gone, its fixed S3 folder never made.
        assert not (out / ".localstack").exists()
        assert not Path("/tmp/localstack-s3-storage").exists()

        # The same data as the embedded run, but for the differences the parity table explains.
        moto = smoke_run.summary
        assert summary["counts"] == moto["counts"]
        assert summary["reconciliation"] == moto["reconciliation"]
        assert summary["anomaly"]["precision"] == moto["anomaly"]["precision"]
        assert summary["forecast"]["metrics"] == moto["forecast"]["metrics"]
        mine, theirs = summary["artifacts"], moto["artifacts"]
        assert set(mine) == set(theirs)
        accounts = (json.loads((smoke_run.out_dir / "stack.json").read_text())["account"],
                    json.loads((out / "stack.json").read_text())["account"])  # fmt: skip
        for name in sorted(mine):
            if mine[name] == theirs[name]:
                continue
            if name in ACCOUNT_NAMED:
                assert _same_but_account(smoke_run.out_dir / name, out / name, accounts), name
            else:
                pytest.fail(f"{name} differs between the engines without a known reason")
        # The job reads and writes through each engine's own endpoint.
        (mine_endpoint,), (moto_endpoint,) = (
            _flink_endpoints(out),
            _flink_endpoints(smoke_run.out_dir),
        )
        assert mine_endpoint != moto_endpoint
        assert all(e.startswith("http://127.0.0.1:") for e in (mine_endpoint, moto_endpoint))
