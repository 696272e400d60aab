"""Where benchmark results go: one JSON file per benchmark (and scenario) in results/."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

RESULTS = Path(__file__).with_name("results")


def save(name: str, report: dict) -> Path:
    """Add the machine's facts, write ``results/<name>.json`` (sorted keys), print it."""
    report = {**report, "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    text = json.dumps(report, indent=2, sort_keys=True, default=float) + "\n"
    path.write_text(text)
    print(text, end="")
    return path
