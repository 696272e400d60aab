"""Scenario runner, the ``dfp`` CLI, the pytest plugin and run reports.

``harness.world(RUN_DIR)``: a world holding a finished run, for notebooks and tests
(:mod:`harness.live`).
"""

from typing import Any

__all__ = ["world"]


def __getattr__(name: str) -> Any:
    # Lazy: importing any harness module must not start importing the whole world.
    if name == "world":
        from harness.live import world

        return world
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
