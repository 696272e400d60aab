"""``Job.init``/``Job.commit``: they frame a run (bookmarks are not emulated)."""

from __future__ import annotations

from typing import Any


class Job:
    def __init__(self, glue_context: Any) -> None:
        self.glue_context = glue_context
        self.name: str | None = None
        self.committed = False

    def init(self, name: str, args: dict[str, str] | None = None) -> None:
        self.name = name
        self.args = args or {}

    def commit(self) -> None:
        self.committed = True
