"""The local AWS world: one endpoint every stage talks plain boto3 to.

``AWS_ENDPOINT_URL`` unset: an embedded moto server is started in this process on a free loopback
port, with Step Functions execution switched on and ``MOTO_PORT`` set to that port (moto's Step
Functions interpreter calls other services at ``http://localhost:$MOTO_PORT``). Set: that endpoint
is used as it is (LocalStack from ``docker-compose.yml``, or a ``moto_server`` started elsewhere),
after the safety guard has accepted it.

``engine="localstack"`` (``dfp run --world localstack``, ``DFP_WORLD=localstack``): the embedded
moto server starts as above and LocalStack 4.14.0 beside it, on loopback, from set-up's
installation (:mod:`emulation.localstack`); the world's endpoint is LocalStack's, and the services
LocalStack's community edition lacks (DynamoDB, Glue, Athena, SageMaker, DMS, Managed Flink,
Firehose's Kinesis-source delivery) are routed to the embedded moto with boto3's per-service
variables (:attr:`World.routes`).

Either way the world is health-checked before use, its account id is read from STS (never
assumed), and :meth:`World.reset` returns it to empty between tests. An embedded world starts
empty even after another one in the same process (moto's backends outlive its server).

Not emulated here: anything about the services themselves (see the gap-fillers in the sibling
packages). A LocalStack endpoint cannot be reset through its community API beyond what
``/_localstack/state/reset`` offers; tests against it should use unique names.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import boto3
import botocore.session
from botocore.config import Config

# Importing a gap-filler that patches the in-process server registers its patch.
import emulation.athena
import emulation.glue.jobs
import emulation.glue.search
import emulation.kinesis.faults
import emulation.kinesis.shards
import emulation.s3
import emulation.sagemaker
import emulation.stepfunctions
from emulation import events as events_gap
from emulation._patching import install_all as install_gap_fillers
from emulation.loopback import free_port, port_is_free
from emulation.safety import (
    DUMMY_ACCESS_KEY_ID,
    DUMMY_SECRET_ACCESS_KEY,
    LOCAL_RUN_ENV,
    check_endpoint,
    install_request_guard,
    local_environment,
)
from emulation.store import STORE

logger = logging.getLogger(__name__)
T = TypeVar("T")

ENDPOINT_ENV = "AWS_ENDPOINT_URL"
ENGINES = ("moto", "localstack")
_MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}}
_embedded_lock = threading.Lock()
_embedded_owner: World | None = None


def _until(deadline: float) -> float:
    """Seconds left before ``deadline`` (a ``time.monotonic()`` value), never negative."""
    return max(0.0, deadline - time.monotonic())


def _serve(server: Any) -> None:
    """Start moto's server thread and wait until it listens.

    ``ThreadedMotoServer.start`` waits for its thread to signal that it listens; when the port
    cannot be bound, werkzeug ends that thread (``SystemExit``) before it signals, and ``start``
    then waits forever: ``dfp world --port P`` on a busy port hung without a word. Here the
    thread's end is noticed and the bind failure raised."""
    failed: list[BaseException] = []

    def entry() -> None:
        try:
            server._server_entry()
        except BaseException as exc:  # werkzeug exits the thread when it cannot bind
            failed.append(exc)

    thread = threading.Thread(target=entry, daemon=True, name="moto-server")
    server._thread = thread
    thread.start()
    while not server._server_ready_event.wait(0.05):
        if not thread.is_alive():
            cause = failed[0].__context__ or failed[0] if failed else None
            raise OSError(f"127.0.0.1:{server._port} could not be bound: {cause!r}")


class WorldError(RuntimeError):
    """The local world could not be started, reached or reset."""


def region_from_environment() -> str | None:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None


class World:
    """A running local AWS world. Use as a context manager, or call start/stop.

    ``region`` is required unless ``AWS_REGION``/``AWS_DEFAULT_REGION`` is set: the harness passes
    the stack description's local region, so no region is written into code.
    """

    def __init__(
        self,
        endpoint_url: str | None = None,
        region: str | None = None,
        *,
        startup_timeout: float = 30.0,
        embedded: bool = False,
        port: int | None = None,
        engine: str = "moto",
        scratch: Path | None = None,
        log_file: Path | None = None,
    ) -> None:
        """``embedded``: start the in-process world even when ``AWS_ENDPOINT_URL`` is set;
        ``port``: the embedded world's loopback port (a free one when not given);
        ``engine``: ``moto``, or ``localstack`` (LocalStack beside the embedded moto);
        ``scratch``: LocalStack's folder (must not exist; deleted at stop), a temporary one if
        not given; ``log_file``: where LocalStack's log is kept."""
        if engine not in ENGINES:
            raise WorldError(f"unknown world engine {engine!r}; choose one of {', '.join(ENGINES)}")
        self.engine = engine
        if engine == "localstack":
            if endpoint_url:
                raise WorldError("a localstack world starts its own endpoint; pass no endpoint_url")
            embedded = True  # LocalStack is started here, beside the embedded moto
        given = None if embedded else (endpoint_url or os.environ.get(ENDPOINT_ENV) or None)
        if embedded and endpoint_url:
            raise WorldError("an embedded world has no endpoint_url to connect to")
        # The guard runs before anything else: a refused endpoint never receives a request.
        self._external_url = check_endpoint(given) if given else None
        resolved_region = region or region_from_environment()
        if not resolved_region:
            raise WorldError(
                "no region: pass one or set AWS_REGION (the harness uses the stack description's)"
            )
        self.region: str = resolved_region
        self._startup_timeout = startup_timeout
        self._port = port
        self._server: Any = None
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self._account_id: str | None = None
        self.endpoint_url: str = self._external_url or ""
        self.kind: str = "embedded" if self._external_url is None else "unknown"
        # Services served at another endpoint than endpoint_url (service → endpoint)
        self.routes: dict[str, str] = {}
        self._moto_url = ""
        self._scratch = scratch
        self._log_file = log_file
        self._localstack: Any = None
        self._previous_account: str | None = None
        self.events_relay: events_gap.Relay | None = None
        self._started = False
        self._set_local_run = False
        self._previous_local_run: str | None = None

    # ------------------------------------------------------------------------------ lifecycle
    def start(self) -> World:
        if self._started:
            return self
        if self._external_url is None:
            self._start_embedded()
        self._moto_url = self.endpoint_url if self._external_url is None else ""
        if self.engine == "localstack":
            try:
                self._start_localstack()
            except BaseException:
                self.stop()
                raise
        self._wait_healthy()
        if self.kind not in ("embedded", "localstack"):
            self.kind = self._detect_kind()
        if self._external_url is None:
            # moto's backends and the gap-fillers' store live as long as the process, not the
            # server: a world started after another one in this process (``dfp run --all``
            # starts one per scenario) must not find the previous one's buckets, executions and
            # jobs. A world of its own starts empty.
            status, body = self._http("POST", "/moto-api/reset", base=self._moto_url)
            if status not in (200, 201):
                raise WorldError(f"moto reset failed: HTTP {status} {body!r}")
            STORE.reset()
        if self._moto_url or self.kind == "moto":  # a moto of ours, or an external one
            self._configure_moto()
        if self.kind == "moto":
            self.events_relay = events_gap.Relay(self)
            self.events_relay.start()
        self._account_id = self.client("sts").get_caller_identity()["Account"]
        self._started = True
        # Deployed code run in this process (Glue scripts, the API handler) guards its clients
        # by this variable, as subprocesses do through environment().
        self._previous_local_run = os.environ.get(LOCAL_RUN_ENV)
        os.environ[LOCAL_RUN_ENV] = self.endpoint_url
        self._set_local_run = True
        atexit.register(self.stop)
        logger.info(
            "world ready: %s endpoint %s, account %s, region %s",
            self.kind,
            self.endpoint_url,
            self._account_id,
            self.region,
        )
        return self

    def _start_embedded(self) -> None:
        global _embedded_owner
        from emulation.server import WorldServer

        with _embedded_lock:
            if _embedded_owner is not None:
                raise WorldError(
                    "an embedded world is already running in this process (MOTO_PORT is "
                    "process-wide); reuse it or stop it first"
                )
            install_gap_fillers()  # each registered in-process patch, once per process
            emulation.sagemaker.accept_background_jobs()  # an earlier world may have settled
            emulation.glue.jobs.accept_retries()
            werkzeug_log = logging.getLogger("werkzeug")
            if werkzeug_log.level == logging.NOTSET:  # moto's request log is noise in a run
                werkzeug_log.setLevel(logging.WARNING)
            last_error: Exception | None = None
            if self._port is not None and not port_is_free(self._port):
                raise WorldError(
                    f"port {self._port} on 127.0.0.1 is in use by another program: stop it, "
                    "give another port, or none (a free one is picked)"
                )
            for _ in range(5 if self._port is None else 1):
                port = self._port or free_port()
                os.environ["MOTO_PORT"] = str(port)
                server = WorldServer(ip_address="127.0.0.1", port=port, verbose=False)
                try:
                    _serve(server)
                except OSError as exc:  # the port was taken between probe and bind
                    last_error = exc
                    continue
                self._server = server
                self.endpoint_url = f"http://127.0.0.1:{port}"
                _embedded_owner = self
                return
            raise WorldError(
                f"could not start the embedded moto server on 127.0.0.1:{port}: {last_error}"
            )

    def _start_localstack(self) -> None:
        """LocalStack beside the embedded moto; the services it lacks are routed to moto."""
        from emulation._managed_state import serve_elsewhere
        from emulation.localstack import LOCALSTACK_SERVICES, MOTO_SERVICES, LocalStackServer

        server = LocalStackServer(
            forward_url=self._moto_url, scratch=self._scratch, log_file=self._log_file
        )
        self._localstack = server.start()
        self.endpoint_url = check_endpoint(server.url)
        self.routes = {service: self._moto_url for service in MOTO_SERVICES}
        self.kind = "localstack"
        # One account across both engines: LocalStack's, which STS answers with; moto reads
        # MOTO_ACCOUNT_ID on every request.
        account = self.client("sts").get_caller_identity()["Account"]
        self._previous_account = os.environ.get("MOTO_ACCOUNT_ID")
        os.environ["MOTO_ACCOUNT_ID"] = account
        serve_elsewhere({service: self.endpoint_url for service in LOCALSTACK_SERVICES})

    def restart(self, outage_seconds: float = 2.0, down: threading.Event | None = None) -> None:
        """Take the embedded endpoint down for ``outage_seconds`` and bring it back on the same
        port with its state, as a service that restarts keeps what it had acknowledged: streams
        with their records and sequence numbers, buckets, tables, jobs. Clients see connections
        refused in between and must ride it out. Only the embedded moto can be restarted here
        (its backends live in this process, not in its HTTP server).

        ``down`` is set once the endpoint refuses connections: stopping the HTTP server takes a
        while on a loaded machine (its loop polls twice a second), so a caller that must meet
        the outage waits on it rather than guessing with a sleep."""
        from emulation.server import WorldServer

        if self._server is None or self.engine != "moto":
            raise WorldError("only an embedded moto world can be restarted by the harness "
                             f"(this one is {self.kind})")  # fmt: skip
        port = int(self.endpoint_url.rsplit(":", 1)[1])
        self._server.stop()
        if down is not None:
            down.set()
        logger.info("world endpoint %s down for %.1f s", self.endpoint_url, outage_seconds)
        time.sleep(outage_seconds)
        deadline = time.monotonic() + 10
        while True:
            server = WorldServer(ip_address="127.0.0.1", port=port, verbose=False)
            try:
                server.start()
                break
            except OSError as exc:  # the old socket may linger a moment
                if time.monotonic() > deadline:
                    raise WorldError(f"could not serve 127.0.0.1:{port} again: {exc}") from exc
                time.sleep(0.1)
        self._server = server
        self._wait_healthy()
        logger.info("world endpoint %s back", self.endpoint_url)

    @property
    def in_process(self) -> bool:
        """Whether the harness's in-process gap-fillers (the local forecaster, Glue job runs,
        Athena queries) serve this world: the embedded moto is part of it."""
        return bool(self._moto_url)

    def describe(self) -> dict[str, Any]:
        """What served what, for the run's summary."""
        described: dict[str, Any] = {"kind": self.kind}
        if self.routes:
            described["routed"] = {service: "embedded moto" for service in sorted(self.routes)}
            from emulation.localstack import VERSION

            described["localstack_version"] = VERSION
        return described

    def stop(self) -> None:
        """Stop what this world started (idempotent; also runs at interpreter exit)."""
        global _embedded_owner
        if self.events_relay is not None:
            self.events_relay.stop()
            self.events_relay = None
        if self._localstack is not None:
            from emulation._managed_state import serve_elsewhere

            self._localstack.stop()
            self._localstack = None
            serve_elsewhere({})
            if self._previous_account is None:
                os.environ.pop("MOTO_ACCOUNT_ID", None)
            else:
                os.environ["MOTO_ACCOUNT_ID"] = self._previous_account
            self._previous_account = None
            self.routes = {}
        if self._server is not None:
            try:
                self._server.stop()
            except Exception as exc:  # already gone at interpreter exit
                logger.debug("embedded moto stop: %s", exc)
            self._server = None
            with _embedded_lock:
                if _embedded_owner is self:
                    _embedded_owner = None
        self._started = False
        self._clients.clear()
        if self._set_local_run:  # give back what was there (a parent run's endpoint, or none)
            if self._previous_local_run is None:
                os.environ.pop(LOCAL_RUN_ENV, None)
            else:
                os.environ[LOCAL_RUN_ENV] = self._previous_local_run
            self._set_local_run = False

    def __enter__(self) -> World:
        return self.start()

    def __exit__(self, kind: object, *exc_info: object) -> None:
        if kind is None:  # after an error or Ctrl-C: stop at once
            self.settle()
        self.stop()

    def settle(self, timeout: float = 300.0) -> None:
        """Let the work an embedded world still does on its own end cleanly: workflow executions
        are stopped (a run ``--until`` an earlier stage has started a forecast it will not
        follow) and the Glue runs, training and transform jobs under way are waited for, so that
        none dies with the process or outlives a reset. Work that ends may start more (an
        export's arrival starts the enrichment workflow), so this repeats until nothing is
        running. Nothing to do for an external endpoint."""
        if self._server is None:
            return
        deadline = time.monotonic() + timeout
        while True:
            stopped = self._stop_workflows()
            busy = emulation.sagemaker.background_jobs() + emulation.glue.jobs.running_jobs()
            if not stopped and not busy:
                return
            if time.monotonic() >= deadline:
                logger.warning("the local world goes on with work still starting: %s",
                               ", ".join(busy) or f"{stopped} workflow execution(s)")  # fmt: skip
                return
            left = emulation.sagemaker.wait_for_background_jobs(_until(deadline))
            left += emulation.glue.jobs.wait_for_running_jobs(_until(deadline))
            if left:
                logger.warning("the local world goes on under running jobs: %s", ", ".join(left))
                return

    def _stop_workflows(self) -> int:
        """Stop every running workflow execution; how many were running."""
        stopped = 0
        try:
            sfn = self.client("stepfunctions")
            for page in sfn.get_paginator("list_state_machines").paginate():
                for machine in page["stateMachines"]:
                    running = sfn.list_executions(stateMachineArn=machine["stateMachineArn"],
                                                  statusFilter="RUNNING")["executions"]  # fmt: skip
                    for execution in running:
                        sfn.stop_execution(executionArn=execution["executionArn"],
                                           cause="the local world is settling")  # fmt: skip
                        logger.info("stopped workflow execution %s", execution["name"])
                        stopped += 1
        except Exception as exc:  # the world goes on anyway
            logger.debug("workflow executions not stopped: %s", exc)
        return stopped

    # ----------------------------------------------------------------------------- endpoint
    def _http(
        self, method: str, path: str, body: dict | None = None, *, base: str | None = None
    ) -> tuple[int, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        url = (base or self.endpoint_url) + path
        request = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self._startup_timeout
        last: Exception | None = None
        sts = self.client("sts", retries=0)
        while time.monotonic() < deadline:
            try:
                sts.get_caller_identity()
                return
            except Exception as exc:
                last = exc
                time.sleep(0.2)
        raise WorldError(
            f"the AWS endpoint {self.endpoint_url} did not answer STS GetCallerIdentity within "
            f"{self._startup_timeout:.0f} s ({last}). Is the emulator running?"
        )

    def _detect_kind(self) -> str:
        try:
            status, _ = self._http("GET", "/moto-api/config")
            if status in (200, 201):
                return "moto"
            status, _ = self._http("GET", "/_localstack/health")
            if status == 200:
                return "localstack"
        except OSError as exc:
            logger.debug("endpoint kind probe failed: %s", exc)
        return "other"

    def _configure_moto(self) -> None:
        status, body = self._http("POST", "/moto-api/config", _MOTO_CONFIG, base=self._moto_url)
        if status not in (200, 201):
            raise WorldError(
                f"could not switch on Step Functions execution: HTTP {status} {body!r}"
            )

    # ------------------------------------------------------------------------------- access
    @property
    def account_id(self) -> str:
        if self._account_id is None:
            self._account_id = self.client("sts").get_caller_identity()["Account"]
        return self._account_id

    def client(self, service: str, *, retries: int | None = None) -> Any:
        """A boto3 client for ``service`` bound to this world (dummy credentials, guarded)."""
        key = f"{service}/{retries}"
        with self._clients_lock:
            if key not in self._clients:
                config = Config(
                    region_name=self.region,
                    s3={"addressing_style": "path"},
                    retries={
                        "max_attempts": retries if retries is not None else 5,
                        "mode": "standard",
                    },
                    connect_timeout=5,
                    read_timeout=120,
                )
                # A botocore session that never reads AWS_PROFILE: a named profile of a real
                # account must neither be used nor be required to exist.
                core = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
                endpoint = self.routes.get(service, self.endpoint_url)
                client = boto3.session.Session(botocore_session=core).client(
                    service,
                    endpoint_url=endpoint,
                    region_name=self.region,
                    aws_access_key_id=DUMMY_ACCESS_KEY_ID,
                    aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
                    aws_session_token=None,
                    config=config,
                )
                install_request_guard(client, endpoint)
                self._clients[key] = client
            return self._clients[key]

    def environment(self) -> dict[str, str]:
        """Environment variables for a subprocess that must talk to this world only."""
        env = local_environment(self.endpoint_url, self.region, routes=self.routes)
        if self.in_process:
            env["MOTO_PORT"] = os.environ.get("MOTO_PORT", "")
        return env

    def reset(self) -> None:
        """Empty every service and gap-filler store (between tests). The work still under way
        is settled first (:meth:`settle`): a workflow or Glue run left from the last run would
        otherwise go on in the emptied world, whose buckets, jobs and streams have the same
        names once the next run provisions them."""
        self.settle()
        if self._moto_url or self.kind == "moto":  # an embedded moto, or an external one
            status, body = self._http("POST", "/moto-api/reset", base=self._moto_url or None)
            if status not in (200, 201):
                raise WorldError(f"moto reset failed: HTTP {status} {body!r}")
            self._configure_moto()
        if self.kind == "localstack":
            status, _ = self._http("POST", "/_localstack/state/reset")
            if status >= 400:
                logger.warning("this LocalStack cannot reset its state (HTTP %s)", status)
        STORE.reset()
        emulation.sagemaker.accept_background_jobs()
        emulation.glue.jobs.accept_retries()
        if self.events_relay is not None:
            self.events_relay.forget()
        self._account_id = self.client("sts").get_caller_identity()["Account"]

    def wait_for(
        self, probe: Callable[[], T | None], *, what: str, timeout: float = 30.0, every: float = 0.1
    ) -> T:
        """Poll ``probe`` until it returns something truthy; raise naming ``what`` on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            value = probe()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(every)
