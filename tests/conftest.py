"""Shared test helpers. The world fixtures come from the harness's pytest plugin."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parent.parent

# Property tests: derandomised under CI (and wherever DFP_HYPOTHESIS_PROFILE=ci), so that a random
# draw can never turn CI red or green; exploring with fresh draws everywhere else. A failure
# found while exploring is kept as an @example on the test.
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(
    os.environ.get("DFP_HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def moto_server(env: dict[str, str] | None = None) -> Iterator[str]:
    """A separately started ``moto_server`` process on a free loopback port."""
    port = free_port()
    exe = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen(
        [str(exe), "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("moto_server did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def embedded_only(world: Any, what: str) -> Any:
    """``world`` when it is the embedded one, whose own server carries ``what``; otherwise the
    test is skipped saying so (a ``moto_server`` started elsewhere has moto's server alone)."""
    if world.kind != "embedded":
        pytest.skip(
            f"{what} is the embedded world's own server's (a moto_server started elsewhere has "
            "moto's alone); this test covers it in the embedded world"
        )
    return world


def signed_request(world: Any, service: str, method: str, path: str, data: bytes,
                   headers: dict[str, str]) -> tuple[int, str | None, bytes]:  # fmt: skip
    """A request signed for ``service`` as an SDK signs it and sent as it is, whatever its body:
    the status, the answer's content type and its body."""
    import urllib.error
    import urllib.request

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method=method, url=f"{world.endpoint_url}{path}", data=data,
                         headers=headers)  # fmt: skip
    SigV4Auth(Credentials("testing", "testing"), service, world.region).add_auth(request)
    prepared = request.prepare()
    sent = urllib.request.Request(prepared.url, data=prepared.body or None, method=method,
                                  headers=dict(prepared.headers))  # fmt: skip
    try:
        with urllib.request.urlopen(sent, timeout=30) as answer:
            return answer.status, answer.headers["Content-Type"], answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def hand_made_request(
    world: Any, service: str, target: str, body: dict | bytes
) -> tuple[int, dict]:
    """A signed JSON-protocol request (``target``: ``SageMaker.CreateAutoMLJobV2``) whose body is
    sent as it is, as a hand-made client sends it: an SDK's serializer refuses values of the
    wrong kind before they leave (bytes: sent as they are, JSON or not). The status and the
    decoded answer, its keys in lower case (AWS's JSON errors spell ``message`` either way; an
    answer that is not JSON as ``page``)."""
    import json

    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, _, raw = signed_request(world, service, "POST", "/", data, {
        "X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"})  # fmt: skip
    try:
        decoded = json.loads(raw or b"{}")
    except ValueError:  # a server error's HTML page: shown as it came
        return status, {"page": raw[:500].decode(errors="replace")}
    return status, {key.lower(): value for key, value in decoded.items()}


@pytest.fixture(scope="session")
def smoke_run(world, tmp_path_factory):
    """One full ``smoke`` run per session, shared by the tests that only read its results."""
    from harness.runner import run
    from harness.scenario import load_scenario

    world.reset()
    result = run(load_scenario("smoke"), tmp_path_factory.mktemp("smoke") / "run", world=world)
    stages = result.summary["stages"]
    if stages["forecast"]["status"] != "succeeded":
        errors = result.out_dir / "errors.log"
        pytest.fail(
            "the session's smoke run did not forecast: "
            + "; ".join(f"{name} {s['status']}: {s.get('error') or s.get('reason', '')}"
                        for name, s in stages.items() if s["status"] != "succeeded")
            + ("\n" + errors.read_text()[-4000:] if errors.exists() else ""),
        )  # fmt: skip
    return result


# ------------------------------------------------------------------ children beside the session
# Two tests each wait on a whole child process: the suite against an external moto, and
# `dfp validate` on a bundle. They spend most of their time waiting, so their children start
# beside the rest of the session and the tests only collect the results. Under pytest-xdist the
# controller starts both as soon as a worker has collected (pytest_xdist_node_collection_finished)
# and the tests, scheduled last, read the results from a shared folder; in one process the
# external suite starts when collection ends and `dfp validate` when its test runs.
class Child:
    """A child process whose output goes to a file (a temporary one unless ``log`` is given)."""

    def __init__(
        self, command: list[str], env: dict[str, str] | None = None, log: Path | None = None
    ) -> None:
        import tempfile

        self.log = log.open("w+") if log else tempfile.TemporaryFile(mode="w+")  # noqa: SIM115
        # At a lower priority than the session's own two workers: a child's result is read by
        # a test scheduled last, while the session's smoke run is the suite's critical path.
        self.process = subprocess.Popen(
            ["nice", "-n", "10", *command], cwd=REPO, env=env, stdout=self.log,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

    def result(self, timeout: float) -> tuple[int, str]:
        """The child's exit code and output (waits for it)."""
        code = self.process.wait(timeout=timeout)
        self.log.seek(0)
        return code, self.log.read()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        self.log.close()


EXTERNAL_ACCOUNT = "210987654321"
EXTERNAL_REGION = "eu-central-1"
EXTERNAL_TEST = "test_external_endpoint.py::test_suite_passes_against_an_external_moto_server"


class ExternalSuite(Child):
    """The suite's world tests in a child pytest against a separately started ``moto_server``
    (non-default account and region)."""

    def __init__(self, folder: Path | None = None) -> None:
        self._server = moto_server({**os.environ, "MOTO_ACCOUNT_ID": EXTERNAL_ACCOUNT})
        self.url = self._server.__enter__()
        env = {**os.environ, "AWS_ENDPOINT_URL": self.url, "AWS_REGION": EXTERNAL_REGION,
               "AWS_DEFAULT_REGION": EXTERNAL_REGION}  # fmt: skip
        super().__init__(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             # the tests that talk to the endpoint; the rest cannot behave differently there
             "-m", "world and not e2e and not endpoint_free",
             "--ignore", str(REPO / "tests" / "emulation" / "test_external_endpoint.py"),
             # Left out for time, each proved here by a cheaper test: the CDK synthesis (30 s) is
             # the same on any endpoint, provisioning on this one is tests/deploy/test_stack.py;
             # the anomaly job (20 s) reads and writes Kinesis through the connector that
             # test_kinesis_connector.py runs here.
             "--deselect", "tests/deploy/test_cdk.py::test_local_world_and_template_agree",
             "--deselect",
             "tests/pipeline/test_anomaly_job.py::test_the_job_runs_in_local_managed_flink",
             # Its snapshots and restore are Flink's and the local service's, the same on any
             # endpoint (45 s).
             "--deselect",
             "tests/pipeline/test_anomaly_job.py::test_a_killed_job_restarts_from_its_latest_snapshot",
             # Spark's semantics inside a Glue run (its cache, the job's own validation message)
             # and the shop-event path (the smoke run's hops with one more producer) do not
             # depend on the endpoint; test_run_job_works_on_any_endpoint and
             # test_same_scenario_and_seed_give_the_same_summary prove the Glue job and a run here.
             "--deselect",
             "tests/emulation/test_glue_jobs.py::test_a_run_never_sees_rows_an_earlier_run_cached",
             "--deselect",
             "tests/emulation/test_glue_jobs.py::test_forecast_input_job_names_the_file_whose_column_has_the_wrong_type",
             "--deselect",
             "tests/emulation/test_glue_jobs.py::test_forecast_input_job_sets_aside_rows_missing_a_column_naming_file_and_column",
             "--deselect",
             "tests/harness/test_run.py::test_direct_shop_events_share_the_stream_and_reconcile",
             # Three forecast-input Glue runs (30 s): whether a rerun rewrites what it published
             # is the job's logic, the same on any endpoint; test_run_job_works_on_any_endpoint
             # runs a Glue job here.
             "--deselect",
             "tests/emulation/test_glue_jobs.py::test_forecast_input_rerun_on_the_same_input_publishes_nothing",
             str(REPO / "tests")],
            env,
            folder / "log" if folder else None,
        )  # fmt: skip

    def close(self) -> None:
        super().close()
        self._server.__exit__(None, None, None)


VALIDATE_TEST = (
    "test_validate.py::test_validate_runs_the_bundles_code_and_promotion_accepts_only_it"
)
#: ``dfp validate``'s scenario, given as a path: the library's ``real-retail`` (real data through
#: every stage). Its test also stands for that scenario in ``tests/e2e/test_scenarios.py``, so the
#: session runs it once.
VALIDATE_SCENARIO = REPO / "scenarios" / "real-retail.yaml"


class BundleValidation(Child):
    """``dfp validate`` of a freshly built bundle on :data:`VALIDATE_SCENARIO`, in ``folder`` (a
    temporary directory of its own, removed on close, when not given)."""

    def __init__(self, folder: Path | None = None) -> None:
        import tempfile

        from deploy.bundle import build_bundle

        self.home = None if folder else tempfile.TemporaryDirectory(prefix="dfp-validate-test-")
        root = folder or Path(self.home.name)
        jar = root / "deps.jar"
        jar.write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip stands in for the jar
        self.bundle = root / "bundle"
        build_bundle(self.bundle, flink_jar=jar)
        super().__init__([sys.executable, "-m", "harness.cli", "validate", str(self.bundle),
                          "--scenario", str(VALIDATE_SCENARIO)],
                         log=folder / "log" if folder else None)  # fmt: skip

    def close(self) -> None:
        super().close()
        if self.home is not None:
            self.home.cleanup()


LOCALSTACK_TEST = "test_localstack.py::test_smoke_runs_on_localstack_like_on_moto"


class LocalStackRun(Child):
    """``dfp run smoke --world localstack`` with its listeners watched
    (``tests/emulation/localstack_child.py``), in ``folder`` (a temporary one when not given)."""

    def __init__(self, folder: Path | None = None) -> None:
        import tempfile

        from emulation.localstack import Installation

        Installation.find()  # not installed: the test says so in its skip reason
        self.home = None if folder else tempfile.TemporaryDirectory(prefix="dfp-localstack-test-")
        self.folder = folder or Path(self.home.name)
        script = REPO / "tests" / "emulation" / "localstack_child.py"
        super().__init__([sys.executable, str(script), str(self.folder)],
                         log=self.folder / "log" if folder else None)  # fmt: skip

    def close(self) -> None:
        super().close()
        if self.home is not None:
            self.home.cleanup()


_CHILDREN = {
    EXTERNAL_TEST: ExternalSuite,
    VALIDATE_TEST: BundleValidation,
    LOCALSTACK_TEST: LocalStackRun,
}
_BESIDE_THE_SESSION = (EXTERNAL_TEST, LOCALSTACK_TEST)
_STARTED = pytest.StashKey[dict[str, "Child | Exception"]]()
_SHARED = "dfp_children"  # the controller's folder of children, as workers find it
_CONTROLLER = pytest.StashKey[dict[str, Any]]()


def _folder_name(test: str) -> str:
    return _CHILDREN[test].__name__


class Awaited:
    """A child the xdist controller started: its exit code and log appear in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.bundle = folder / "bundle"  # where a BundleValidation builds its bundle

    def result(self, timeout: float) -> tuple[int, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (self.folder / "error").exists():
                raise RuntimeError((self.folder / "error").read_text())
            if (self.folder / "rc").exists():
                return int((self.folder / "rc").read_text()), (self.folder / "log").read_text()
            time.sleep(1)
        raise TimeoutError(f"the child in {self.folder} did not finish in {timeout:.0f} s")

    def close(self) -> None:
        """The controller stops it at the end of the session."""


def pytest_configure_node(node: Any) -> None:
    """xdist controller: one shared folder for the children, handed to every worker."""
    state = node.config.stash.setdefault(_CONTROLLER, {})
    if "dir" not in state:
        import tempfile

        state["dir"] = tempfile.TemporaryDirectory(prefix="dfp-children-")
        state["started"] = []
    node.workerinput[_SHARED] = state["dir"].name


def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    """xdist controller: start the children of the selected tests once, as soon as one worker
    has collected."""
    import threading

    state = node.config.stash.get(_CONTROLLER, {})
    if "dir" not in state or state.get("launched") or os.environ.get("AWS_ENDPOINT_URL"):
        return
    state["launched"] = True
    for test, kind in _CHILDREN.items():
        if not any(nodeid.endswith(test) for nodeid in ids):
            continue
        folder = Path(state["dir"].name) / _folder_name(test)
        folder.mkdir()
        try:
            process = kind(folder)
        except Exception as exc:  # reported by the test that needs the child
            (folder / "error").write_text(f"{type(exc).__name__}: {exc}")
            continue
        state["started"].append(process)

        def finish(process: Child = process, folder: Path = folder) -> None:
            code = process.process.wait()
            process.log.flush()
            (folder / "rc.tmp").write_text(str(code))
            (folder / "rc.tmp").rename(folder / "rc")

        threading.Thread(target=finish, daemon=True, name=f"child-{kind.__name__}").start()


def _under_xdist(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


#: The tests that read the session's smoke run (``smoke_run``): under pytest-xdist one worker runs
#: them all, so the session makes one smoke run. Collection fails naming a reader not listed here.
SMOKE_READERS = (
    "tests/e2e/test_browser.py::",
    "tests/e2e/test_forecast_run.py::",
    "tests/e2e/test_notebooks.py::",
    "tests/e2e/test_world_command.py::",
    "tests/harness/test_run.py::test_the_smoke_run_stages_every_record_and_reconciles",
    "tests/e2e/test_scenarios.py::test_scenario_meets_its_expectations[smoke]",
    "tests/emulation/test_localstack.py::test_smoke_runs_on_localstack_like_on_moto",
)


def _reads_the_smoke_run(nodeid: str) -> bool:
    return nodeid.startswith(SMOKE_READERS)


def _order(item: pytest.Item) -> int:
    """The whole runs first, so that none of them is the tail; the tests that only collect a
    child's result last, so that no worker waits on one while there is other work."""
    if any(item.nodeid.endswith(test) for test in _CHILDREN):
        return 2
    return 0 if _reads_the_smoke_run(item.nodeid) else 1


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every reader of the session's smoke run is in :data:`SMOKE_READERS`; the tests are ordered
    by :func:`_order` (the same order in every pytest-xdist worker, as xdist requires)."""
    unlisted = [
        item.nodeid
        for item in items
        if ("smoke_run" in getattr(item, "fixturenames", ()) or item.nodeid.endswith("[smoke]"))
        and not _reads_the_smoke_run(item.nodeid)
    ]
    if unlisted:
        raise pytest.UsageError(
            "these tests read the session's smoke run but are not in SMOKE_READERS "
            f"(tests/conftest.py): {', '.join(unlisted)}"
        )
    items.sort(key=_order)  # stable: within a rank the collection order stays


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """pytest-xdist's load scheduling, but the smoke run's readers are one unit of work (xdist's
    own ``xdist_group`` does not take effect with pytest 9.2: it renames node ids through an
    attribute pytest no longer reads)."""
    from xdist.scheduler import LoadScopeScheduling

    class SmokeReadersTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "smoke" if _reads_the_smoke_run(nodeid) else nodeid

    return SmokeReadersTogether(config, log)


def pytest_collection_finish(session: pytest.Session) -> None:
    started: dict[str, Child | Exception] = {}
    session.config.stash[_STARTED] = started
    if os.environ.get("AWS_ENDPOINT_URL"):
        return  # this session is itself against an external endpoint
    if _under_xdist(session.config):
        return  # every worker collects every test: each child starts when its test runs
    for test in _BESIDE_THE_SESSION:
        kind = _CHILDREN[test]
        if any(item.nodeid.endswith(test) for item in session.items):
            try:
                started[test] = kind()
            except Exception as exc:  # reported by the test that needs the child
                started[test] = exc


@contextmanager
def child(config: pytest.Config, test: str) -> Iterator[Child | Awaited]:
    """The child started for ``test`` by the xdist controller or at collection, or a new one
    (closed after use)."""
    shared = getattr(config, "workerinput", {}).get(_SHARED)
    folder = Path(shared) / _folder_name(test) if shared else None
    if folder is not None and folder.exists():
        yield Awaited(folder)
        return
    started = config.stash.get(_STARTED, {})
    process = started.pop(test) if test in started else _CHILDREN[test]()
    if isinstance(process, Exception):
        raise process
    try:
        yield process
    finally:
        process.close()


def pytest_sessionfinish(session: pytest.Session) -> None:
    for process in session.config.stash.get(_STARTED, {}).values():
        if isinstance(process, Child):
            process.close()
    controller = session.config.stash.get(_CONTROLLER, {})
    for process in controller.get("started", []):
        process.close()
    if "dir" in controller:
        controller["dir"].cleanup()
