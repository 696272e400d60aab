"""``getResolvedOptions`` as Glue implements it: exact ``--NAME value`` arguments."""

from __future__ import annotations


class GlueArgumentError(ValueError):
    """A required job argument is missing (the message names it, as Glue's does)."""


def getResolvedOptions(args: list[str], options: list[str]) -> dict[str, str]:
    resolved: dict[str, str] = {}
    wanted = set(options) | {"JOB_NAME"}
    i = 1
    while i < len(args):
        token = args[i]
        if token.startswith("--") and token[2:] in wanted and i + 1 < len(args):
            resolved[token[2:]] = args[i + 1]
            i += 2
            continue
        i += 1
    missing = [name for name in options if name not in resolved]
    if missing:
        raise GlueArgumentError(f"the following arguments are required: --{', --'.join(missing)}")
    return resolved
