"""A world holding a finished run, for notebooks, the AWS CLI, awswrangler, DuckDB and pytest.

``dfp world RUN_DIR`` and ``with harness.world(RUN_DIR) as w:`` start an embedded world, load
what the run saved in ``RUN_DIR/world/`` (:mod:`emulation.state`): the buckets' objects, the Glue
catalog with every partition registered, the streams' records, the DynamoDB items; then provision
the stack (roles, rules, delivery streams, jobs, workflows: the same provisioning as a run). The
data goes first because provisioning turns on the buckets' event rules: objects loaded after them
would start the workflows again over the run's own outputs. The world stays up until the block
ends or the command is interrupted; nothing is written back into the run directory.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from deploy.stack import ResolvedStack, load_stack
from emulation import World
from emulation.safety import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY
from emulation.state import STATE_FILE, StateError, load_state, read_manifest
from harness.provision import provision
from harness.run.layout import RunDir

logger = logging.getLogger(__name__)


class RunWorldError(ValueError):
    """The run directory holds no world state that can be loaded."""


@dataclass
class RunWorld:
    """A running world with a run's state: clients, endpoint and the stack's names."""

    world: World
    stack: ResolvedStack
    run_dir: Path
    loaded: dict[str, int]

    @property
    def endpoint_url(self) -> str:
        return self.world.endpoint_url

    @property
    def region(self) -> str:
        return self.world.region

    @property
    def database(self) -> str:
        """The Glue database (Athena's) holding the run's tables."""
        return self.stack.stack.glue.database

    @property
    def workgroup(self) -> str:
        """The stack's Athena workgroup (its result location is the stack's results bucket)."""
        return self.stack.workgroup_name()

    def client(self, service: str) -> Any:
        """A boto3 client bound to this world."""
        return self.world.client(service)

    def duckdb(self) -> Any:
        """A DuckDB connection whose ``s3://`` is this world's S3 (the httpfs extension installed
        with the harness, loaded offline): ``w.duckdb().sql("SELECT … FROM read_parquet('s3://…')")``
        reads the run's Parquet where it lies, as Athena's engine here does."""
        from emulation.athena import connect

        return connect(self.endpoint_url, self.region)

    def exports(self) -> dict[str, str]:
        """The environment a shell, a notebook kernel or the AWS CLI needs to reach this world."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_ACCESS_KEY,
        }


def _saved_state(run_dir: Path) -> tuple[Path, dict[str, Any]]:
    """The run's state folder and its ``state.json``, or a refusal naming what is missing."""
    folder = RunDir(run_dir).world_state
    if not Path(run_dir).is_dir():
        raise RunWorldError(f"{run_dir}: no such run directory")
    try:
        return folder, read_manifest(folder)
    except StateError as exc:
        raise RunWorldError(f"{exc} (runs before this version did not save one: rerun it)") from exc


@contextmanager
def world(run_dir: str | Path, *, port: int | None = None) -> Iterator[RunWorld]:
    """Start an embedded world holding the run in ``run_dir``; stopped when the block ends."""
    run_dir = Path(run_dir)
    folder, manifest = _saved_state(run_dir)
    region = manifest.get("region")
    if not isinstance(region, str) or not region:
        raise RunWorldError(f"{folder / STATE_FILE}: no region")
    with World(region=region, embedded=True, port=port) as running:
        # The data first, the stack after: provisioning turns on the buckets' event rules, and
        # objects loaded after it would start the workflows again over the run's own outputs.
        try:
            loaded = load_state(running, folder)
        except StateError as exc:
            raise RunWorldError(str(exc)) from exc
        except (KeyError, TypeError, AttributeError, ValueError, BotoCoreError, ClientError) as exc:
            # a state.json edited by hand or by something hostile: refused, the world stopped
            raise RunWorldError(
                f"{folder / STATE_FILE}: not a loadable world state: {type(exc).__name__}: {exc}"
            ) from exc
        stack = provision(running, load_stack())
        logger.info("world %s holds %s: %s", running.endpoint_url, run_dir, loaded)
        yield RunWorld(world=running, stack=stack, run_dir=run_dir, loaded=loaded)
