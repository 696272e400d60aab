"""The run's stages, one module each, in the order a run executes them.

Each module defines ``run(ctx)`` and ``STAGE``, a :class:`~harness.run.StageSpec` naming the
context fields it needs and gives. The spine (:mod:`harness.runner`) starts the world and
provisions the stack first — those two are reported as the stages ``world`` and ``provision`` —
then runs these. To add a stage: a module here, its entry in :data:`STAGES`, its hops in
:mod:`harness.run.hops`, its summary keys in ``docs/running.md`` (see ``docs/contributing.md``).
"""

from __future__ import annotations

from harness.run import StageSpec
from harness.stages import anomaly, enrich, etl, forecast, simulate, staging, stream

STAGES: tuple[StageSpec, ...] = (
    simulate.STAGE,
    stream.STAGE,
    staging.STAGE,
    anomaly.STAGE,
    etl.STAGE,
    forecast.STAGE,
    enrich.STAGE,
)

__all__ = ["STAGES"]
