"""LocalStack 4.14.0 on this host, as a second engine beside the embedded moto.

``World(engine="localstack")`` (``dfp run --world localstack``) starts the embedded moto server as
usual and, beside it, LocalStack from its own Python 3.13 environment that set-up installs under
``.dfp/localstack/`` (LocalStack's host mode needs 3.13; 4.14.0 is the last release usable
without an auth token). The world then splits the services:

* **LocalStack serves** S3, Kinesis (its kinesis-mock helper), EventBridge, Step Functions, SQS,
  IAM, STS and CloudWatch Logs: the services its community edition emulates. S3 notifications
  reach EventBridge, and EventBridge starts the workflows, inside LocalStack by itself.
* **The embedded moto serves** what the community edition lacks, with the harness's gap-fillers:
  Glue, Athena, SageMaker, DMS and Managed Flink (``kinesisanalyticsv2``); DynamoDB, whose
  LocalStack provider needs DynamoDB Local (downloaded at first use, from hosts a run never
  reaches); and Firehose, whose Kinesis-source delivery (Parquet conversion, dynamic partitions)
  is the harness's gap-filler: LocalStack's own delivery would write a second copy.
  Clients are sent there with boto3's per-service variables (``AWS_ENDPOINT_URL_DYNAMODB``…);
  LocalStack's own calls (a Step Functions task calling Glue or SageMaker) reach it through a
  forwarding provider registered in LocalStack by ``launcher.py``.

Contained as a run must be: LocalStack listens on a free loopback port only (its DNS server is
off; ``loopback.cjs`` binds the Kinesis helper, which has no address option, to 127.0.0.1); every
file it writes (S3 bodies, Kinesis state, caches; its log too, unless a run keeps it as
``RUN_DIR/localstack.log``) is under a folder this module creates and deletes at stop; its
process group is stopped by PID at stop, at interpreter exit, and by the launcher itself when the
harness process disappears.

Not emulated here: LocalStack's persistence, its Docker-only features (Lambda), and everything
its community edition does not do. The account is LocalStack's (``000000000000``); the embedded
moto is given the same account while the world runs, so ARNs agree across the two.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from emulation.loopback import free_port, preloaded

logger = logging.getLogger(__name__)

VERSION = "4.14.0"
HOME = Path(__file__).resolve().parents[2] / ".dfp" / "localstack"
HOME_ENV = "DFP_LOCALSTACK_HOME"  # another installation (set-up's layout), e.g. a shared one
HERE = Path(__file__).resolve().parent

# What LocalStack serves in a localstack world, and what the embedded moto serves beside it.
LOCALSTACK_SERVICES = (
    "s3",
    "kinesis",
    "events",
    "stepfunctions",
    "sqs",
    "sns",
    "iam",
    "sts",
    "logs",
)
MOTO_SERVICES = (
    "dynamodb",
    "firehose",
    "glue",
    "athena",
    "sagemaker",
    "sagemaker-runtime",  # InvokeEndpoint on the forecaster's endpoints
    "dms",
    "kinesisanalyticsv2",
)


class LocalStackUnavailable(RuntimeError):
    """LocalStack is not installed here, or could not start; the message says what is missing."""


@dataclass(frozen=True)
class Installation:
    """Set-up's layout: ``venv/`` (LocalStack and its pinned dependencies) and ``fs/`` (static
    libraries installed ahead of time, e.g. the Kinesis helper from npm)."""

    root: Path

    @property
    def python(self) -> Path:
        return self.root / "venv" / "bin" / "python"

    @property
    def static_libs(self) -> Path:
        return self.root / "fs" / "usr" / "lib" / "localstack"

    @classmethod
    def find(cls) -> Installation:
        root = Path(os.environ.get(HOME_ENV) or HOME)
        found = cls(root)
        missing = [p for p in (found.python, found.static_libs / "kinesis-local") if not p.exists()]
        if missing:
            raise LocalStackUnavailable(
                f"LocalStack {VERSION} is not installed in {root} (missing {missing[0]}). "
                "It needs Python 3.13 (pyenv install 3.13, or python3.13 on PATH); with one, "
                "./bootstrap.sh setup installs it there. Without Docker, LocalStack's host mode "
                "runs on 3.13 only."
            )
        return found


@dataclass
class LocalStackServer:
    """One LocalStack process: ``start()`` → ``url``; ``stop()`` leaves nothing behind.

    ``forward_url``: the embedded moto's endpoint, which LocalStack forwards ``MOTO_SERVICES`` to.
    ``scratch``: a folder that must not exist yet; created, used for every file, and deleted at
    stop. A private temporary folder when not given. ``log_file``: where LocalStack's log is
    kept (it is in ``scratch``, deleted with it, when not given).
    """

    forward_url: str
    scratch: Path | None = None
    log_file: Path | None = None
    startup_timeout: float = 60.0
    url: str = ""
    installation: Installation | None = None
    _process: subprocess.Popen | None = field(default=None, repr=False)
    _folder: Path | None = field(default=None, repr=False)
    _log: Path | None = field(default=None, repr=False)

    def start(self) -> LocalStackServer:
        installation = self.installation or Installation.find()
        self._folder = self._make_folder()
        filesystem = self._folder / "fs"
        (filesystem / "usr" / "lib").mkdir(parents=True)
        # Static libraries (the Kinesis helper) are set-up's, read only; state is the run's.
        (filesystem / "usr" / "lib" / "localstack").symlink_to(installation.static_libs)
        for sub in ("home", "tmp"):
            (self._folder / sub).mkdir()
        self._log = Path(self.log_file) if self.log_file else self._folder / "localstack.log"
        last: Exception | None = None
        for _attempt in range(3):  # a free port may be taken between probe and bind
            port = free_port()
            self.url = f"http://127.0.0.1:{port}"
            try:
                self._spawn(installation, port, filesystem)
                self._wait_healthy()
                break
            except LocalStackUnavailable as exc:
                last = exc
                self._terminate()
        else:
            tail = self.log_tail()
            self.stop()
            raise LocalStackUnavailable(f"{last}\n{tail}")
        atexit.register(self.stop)
        logger.info("LocalStack %s up at %s (files in %s)", VERSION, self.url, self._folder)
        return self

    def _make_folder(self) -> Path:
        if self.scratch is None:
            return Path(tempfile.mkdtemp(prefix="dfp-localstack-"))
        folder = Path(self.scratch)
        folder.mkdir(parents=True, exist_ok=False)  # never one that holds something else
        return folder

    def _spawn(self, installation: Installation, port: int, filesystem: Path) -> None:
        assert self._folder is not None and self._log is not None
        keep = ("PATH", "LANG", "LC_ALL", "JAVA_HOME")
        env = {name: os.environ[name] for name in keep if name in os.environ}
        env.update(
            HOME=str(self._folder / "home"),
            TMPDIR=str(self._folder / "tmp"),
            FILESYSTEM_ROOT=str(filesystem),
            GATEWAY_SERVER="hypercorn",
            GATEWAY_LISTEN=f"127.0.0.1:{port}",
            LOCALSTACK_HOST=f"127.0.0.1:{port}",
            DNS_ADDRESS="0",  # no DNS server (it would listen on port 53 of every interface)
            OVERRIDE_IN_DOCKER="0",  # this machine may be a container; LocalStack is on the host
            EAGER_SERVICE_LOADING="0",
            SKIP_SSL_CERT_DOWNLOAD="1",
            LOCALSTACK_TELEMETRY="0",
            DISABLE_EVENTS="1",
            SERVICES=",".join((*LOCALSTACK_SERVICES, *MOTO_SERVICES)),
            KINESIS_LATENCY="0",  # streams are ACTIVE at once, as moto's are
            DFP_FORWARD_SERVICES=",".join(MOTO_SERVICES),
            DFP_FORWARD_URL=self.forward_url,
            DFP_PARENT_PID=str(os.getpid()),
            NODE_OPTIONS=f"--require {HERE / 'loopback.cjs'}",
        )
        with open(self._log, "ab") as log:
            self._process = subprocess.Popen(
                [str(installation.python), str(HERE / "launcher.py")],
                env=preloaded(env),  # and anything else it starts listens on loopback too
                cwd=self._folder,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped as one, by its PID
            )

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise LocalStackUnavailable(
                    f"LocalStack exited with code {self._process.returncode} while starting"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/_localstack/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise LocalStackUnavailable(
            f"LocalStack did not answer {self.url}/_localstack/health within "
            f"{self.startup_timeout:.0f} s"
        )

    def log_tail(self, lines: int = 30) -> str:
        if self._log is None or not self._log.exists():
            return ""
        text = self._log.read_text(errors="replace").splitlines()
        return "LocalStack's log ends:\n" + "\n".join(text[-lines:])

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        group = process.pid  # start_new_session: the group id is its PID
        if process.poll() is None:
            try:
                # LocalStack first: its shutdown stops the helpers it started (a helper killed
                # under it made the shutdown wait out its timeouts, 20 s measured).
                process.terminate()
                process.wait(timeout=20)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                logger.warning("LocalStack (pid %s) did not stop in 20 s; killing it", group)
                process.kill()
                process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)  # a helper that outlived LocalStack's shutdown

    def stop(self) -> None:
        """Stop LocalStack, then anything left in its process group, and delete the folder this
        server created (idempotent)."""
        self._terminate()
        folder, self._folder = self._folder, None
        if folder is not None and folder.exists():
            link = folder / "fs" / "usr" / "lib" / "localstack"
            if link.is_symlink():
                link.unlink()  # never descend into set-up's libraries
            for _attempt in range(10):  # a helper may still be flushing a file as it goes
                shutil.rmtree(folder, ignore_errors=True)
                if not folder.exists():
                    break
                time.sleep(0.2)
            else:
                logger.warning("could not delete LocalStack's folder %s", folder)
        atexit.unregister(self.stop)
