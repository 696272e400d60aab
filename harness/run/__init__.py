"""The run spine's shared parts: the context stages read and fill, the run directory's layout,
and the AWS helpers stages share. Stages live in :mod:`harness.stages`, the spine that runs them
in :mod:`harness.runner`; both import from here, never from each other."""

from harness.run.context import RunContext, StageSpec, StageUnavailable
from harness.run.layout import RunDir

__all__ = ["RunContext", "RunDir", "StageSpec", "StageUnavailable"]
