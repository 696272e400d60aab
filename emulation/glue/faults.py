"""Glue job runs that fail on demand.

An in-process moto patch, used by :mod:`emulation.glue.jobs`.

A Glue run fails for reasons its script never sees: an executor lost, a node taken back, the
driver running out of memory while it commits. Such a failure often comes *after* the run has
written its output, which is why a job must give the same result when it runs again on the same
input. :func:`fail_runs` makes the next ``count`` runs of a job end ``FAILED`` *after* their
script has finished, so their output is written, with an ``ErrorMessage`` shaped like Glue's.
:func:`failures` counts what was failed on purpose.

Which runs fail is decided by their order: the first ``count`` runs of the job started after
:func:`fail_runs`. Counting is per job, per account and region, in the one store a test resets.

Not emulated: a run failing before or while its script runs (nothing written), ``TIMEOUT`` and
``ERROR`` states.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

from emulation.store import STORE

#: What the run says when it was failed on purpose: the shape of Glue's message for a lost
#: executor, so a reader matching on Glue's wording sees what it would on AWS.
INJECTED_ERROR = (
    "An error occurred while calling o95.pyWriteDynamicFrame. Job aborted due to stage failure: "
    "ExecutorLostFailure (executor 1 exited caused by one of the running tasks) Reason: "
    "Remote RPC client disassociated (injected by the scenario's faults.glue)"
)


@dataclass
class _GlueFaults:
    to_fail: dict[str, int] = field(default_factory=dict)  # job name → runs still to fail
    failed: Counter[str] = field(default_factory=Counter)  # job name → runs failed on purpose
    lock: threading.Lock = field(default_factory=threading.Lock)


def _state(account: str, region: str) -> _GlueFaults:
    return STORE.get("glue-faults", account, region, _GlueFaults)


def fail_runs(account: str, region: str, job_name: str, count: int) -> None:
    """The next ``count`` runs of ``job_name`` end ``FAILED`` after their script (0 disarms);
    arming starts the job's count of :func:`failures` afresh."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    state = _state(account, region)
    with state.lock:
        if count:
            state.to_fail[job_name] = count
            state.failed[job_name] = 0
        else:
            state.to_fail.pop(job_name, None)


def take_failure(account: str, region: str, job_name: str) -> str | None:
    """The error a finished run of ``job_name`` must end with, or ``None`` to let it be."""
    state = _state(account, region)
    with state.lock:
        left = state.to_fail.get(job_name, 0)
        if not left:
            return None
        state.to_fail[job_name] = left - 1
        state.failed[job_name] += 1
        return INJECTED_ERROR


def failures(account: str, region: str) -> dict[str, int]:
    """Runs failed on purpose since each job was armed, per job name."""
    state = _state(account, region)
    with state.lock:
        return dict(state.failed)
