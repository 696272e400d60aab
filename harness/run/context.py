"""What a stage reads and fills: :class:`RunContext`, and how a stage declares it.

Every field a stage hands to a later one is a typed attribute here (no string-keyed scratch), and
each :class:`StageSpec` names the fields it ``needs`` and ``gives``; the spine checks the needs
before a stage runs, so a stage run out of order fails naming what is missing and who gives it.
The world and the stack exist before any stage runs, so they are never optional.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.ledger import Ledger
from harness.run.layout import RunDir

if TYPE_CHECKING:
    from deploy.stack import ResolvedStack
    from emulation import World
    from harness.faults import FaultLog
    from harness.scenario import Scenario
    from harness.simulation import Simulation


class StageUnavailable(Exception):
    """A stage cannot run in this world (e.g. it needs the embedded endpoint); not a failure of
    the pipeline, so later stages still run and expectations on its results still judge."""


class MissingInput(RuntimeError):
    """A stage was run before the stage that gives what it needs."""


@dataclass
class RunContext:
    """The run as stages see it. Summary sections go to ``summary``; hops to ``ledger``."""

    scenario: Scenario
    out: RunDir
    world: World
    stack: ResolvedStack
    ledger: Ledger = field(default_factory=Ledger)
    summary: dict[str, Any] = field(default_factory=dict)  # top-level sections of summary.json
    # Handed from stage to stage (each named in a StageSpec's needs/gives):
    simulation: Simulation | None = None
    cdc_stream_start: dict[str, str | None] | None = None  # shard → last sequence before the run
    cdc_window: list[bytes] | None = None  # what the CDC stream holds from this run, read once
    manifest_key: str | None = None  # the forecast input's manifest in the forecast bucket
    export_key: str | None = None  # the forecast export's last part
    export_p50_total: float | None = None
    faults: FaultLog | None = None  # what the scenario's faults injected and what caught it

    @property
    def out_dir(self):
        return self.out.root


Stage = Callable[[RunContext], None]


@dataclass(frozen=True)
class StageSpec:
    """A stage: its name in the summary, the function, and the context fields it needs/gives."""

    name: str
    run: Stage
    needs: tuple[str, ...] = ()
    gives: tuple[str, ...] = ()
    # Nothing a later stage reads comes from it, through the context or the world (the anomaly
    # job's outliers go to the dashboards, not to the ETL): a run may leave it out.
    side_branch: bool = False

    def check_needs(self, ctx: RunContext, givers: dict[str, str]) -> None:
        missing = [n for n in self.needs if getattr(ctx, n) is None]
        if missing:
            raise MissingInput(
                f"stage {self.name} needs "
                + ", ".join(f"{n} (given by stage {givers.get(n, '?')})" for n in missing)
            )
