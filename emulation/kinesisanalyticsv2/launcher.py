"""Runs a Managed Flink Python application's entry file with the service's configuration.

On Managed Flink the job's ``StreamExecutionEnvironment`` is the service's: its parallelism, its
``CheckpointConfiguration`` and, on a start that restores, the snapshot to restore, whatever the
job's code asks for. PyFlink run as ``python main.py`` gets an empty configuration instead (its
local environment does not read ``config.yaml``), so this launcher gives the environment the
settings the service owns, read from the application's ``FLINK_HOME/conf/config.yaml``, then
runs the entry file unchanged as ``__main__``:

    python .../emulation/kinesisanalyticsv2/launcher.py main.py

(by path, so that it needs nothing from the project on the job's ``PYTHONPATH``).
"""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path
from typing import Any

import yaml

# The settings Managed Flink applies to every application (the job may add its own), and how
# often the local dashboard refreshes its metrics.
SERVICE_KEYS = ("parallelism.", "execution.checkpointing.", "execution.state-recovery.",
                "restart-strategy.", "metrics.fetcher.", "web.")  # fmt: skip


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"a": {"b": 1}}`` → ``{"a.b": "1"}``, as Flink reads its YAML configuration."""
    out: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


def service_configuration(home: Path) -> dict[str, str]:
    config = yaml.safe_load((home / "conf" / "config.yaml").read_text()) or {}
    return {k: v for k, v in flatten(config).items() if k.startswith(SERVICE_KEYS)}


def install(settings: dict[str, str]) -> None:
    """Make ``StreamExecutionEnvironment.get_execution_environment`` start from ``settings``."""
    from pyflink.common import Configuration
    from pyflink.datastream import StreamExecutionEnvironment

    original = StreamExecutionEnvironment.get_execution_environment

    def with_service_configuration(configuration: Any = None) -> Any:
        merged = Configuration()
        for key, value in settings.items():
            merged.set_string(key, value)
        if configuration is not None:
            merged.add_all(configuration)
        return original(merged)

    StreamExecutionEnvironment.get_execution_environment = staticmethod(with_service_configuration)


def main() -> None:
    entry = sys.argv[1]
    install(service_configuration(Path(os.environ["FLINK_HOME"])))
    sys.argv = [entry, *sys.argv[2:]]
    sys.path[0] = str(Path(entry).resolve().parent)  # as if the entry file had been run
    runpy.run_path(entry, run_name="__main__")


if __name__ == "__main__":
    main()
