"""Scenario runner, the ``dfp`` CLI, the pytest plugin and run reports."""
