"""Athena's errors, by the names its engine reports them with."""

from __future__ import annotations


class QueryFailed(Exception):
    """A query Athena would fail; ``error_type`` names Athena's error (e.g. SYNTAX_ERROR)."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message
