"""The layout of a run directory, in one place for every reader and writer.

``dfp run`` writes it, ``dfp serve`` and :func:`harness.runs.load_run` read it, the report links
into it; none of them spells a path of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from emulation.kinesisanalyticsv2.application import STATE_FOLDERS

SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.html"


@dataclass(frozen=True)
class RunDir:
    """Paths inside one run directory."""

    root: Path

    @property
    def summary(self) -> Path:
        return self.root / SUMMARY_FILE

    @property
    def report(self) -> Path:
        return self.root / REPORT_FILE

    @property
    def stack(self) -> Path:
        """The physical names the stack got in this world."""
        return self.root / "stack.json"

    @property
    def errors_log(self) -> Path:
        """Tracebacks of failed stages."""
        return self.root / "errors.log"

    @property
    def world_state(self) -> Path:
        """What the run left in its world, saved for ``dfp world`` (:mod:`emulation.state`)."""
        return self.root / "world"

    @property
    def errors(self) -> Path:
        """Records a hop rejected, one NDJSON file per hop."""
        return self.root / "errors"

    @property
    def simulation(self) -> Path:
        return self.root / "simulation"

    @property
    def truth(self) -> Path:
        return self.simulation / "truth"

    @property
    def truth_daily(self) -> Path:
        """The ground truth per product and day."""
        return self.truth / "daily_demand.parquet"

    @property
    def truth_anomalies(self) -> Path:
        """The injected anomalies."""
        return self.truth / "anomalies.parquet"

    @property
    def flink(self) -> Path:
        """The local Managed Flink application's working directory (job.log)."""
        return self.root / "flink"

    @property
    def flink_state(self) -> tuple[Path, ...]:
        """The application's checkpoints and snapshots: runtime state, not the run's data."""
        return tuple(self.flink / name for name in STATE_FOLDERS)

    @property
    def outliers(self) -> Path:
        """The anomaly job's outliers as it wrote them to its stream (JSON, in a stable order)."""
        return self.root / "anomaly" / "outliers.json"

    @property
    def forecast(self) -> Path:
        """What the forecast left: input.csv, manifest.json, export.csv, metrics, candidates."""
        return self.root / "forecast"

    @property
    def enriched(self) -> Path:
        """The enriched forecast's partitions, as ``dfp serve`` loads them."""
        return self.forecast / "enriched"
