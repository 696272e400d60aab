"""S3 keys as Firehose writes them: prefix expressions, the default time path, object names,
and which partition values may become part of a key.

Object names use deterministic UUIDs (derived from the stream, the partition and the first
record's sequence number), so the same input gives the same keys and bytes.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid

from emulation.firehose.errors import InvalidArgumentException

_NAMESPACE = uuid.UUID("6b1f0a2e-6c1d-4c5e-9a57-2f1d8c9e4b10")
_JAVA_TIME = [("yyyy", "%Y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M"), ("ss", "%S")]

_MAX_PARTITION_VALUE = 512
_BAD_PARTITION_VALUE = re.compile(r"[\x00-\x1f\x7f/\\]|^\.{1,2}$")


def partition_value_problem(value: str) -> str | None:
    """Why ``value`` cannot become a segment of an S3 key, or None.

    A value from a record becomes part of the object key: an empty one, a very long one, one
    with a path separator, ``.``/``..`` or a control character would make keys that readers of
    the prefix layout (Glue partitions, Athena) misread; such records go to the error output.
    """
    if not value:
        return "is empty"
    if len(value) > _MAX_PARTITION_VALUE:
        return f"is {len(value)} characters long (at most {_MAX_PARTITION_VALUE})"
    if _BAD_PARTITION_VALUE.search(value):
        return f"{value[:60]!r} holds a path separator, a control character or is a dot segment"
    return None


def key_prefix(template: str, when: dt.datetime, partition: dict[str, str], *, dynamic: bool,
               error_type: str | None = None, seed: str = "") -> str:  # fmt: skip
    """``template`` with its ``!{…}`` expressions filled; the time path when it has none."""

    def expression(match: re.Match[str]) -> str:
        namespace, _, argument = match.group(1).partition(":")
        if namespace == "timestamp":
            fmt = argument
            for java, strf in _JAVA_TIME:
                fmt = fmt.replace(java, strf)
            return when.strftime(fmt)
        if namespace == "partitionKeyFromQuery":
            if argument not in partition:
                raise InvalidArgumentException(f"prefix names unknown partition key {argument}")
            return partition[argument]
        if namespace == "firehose" and argument == "error-output-type":
            return error_type or ""
        if namespace == "firehose" and argument == "random-string":
            return uuid.uuid5(_NAMESPACE, seed).hex[:11]
        raise InvalidArgumentException(f"prefix expression !{{{match.group(1)}}} not emulated")

    prefix = re.sub(r"!\{([^}]+)\}", expression, template)
    if "!{timestamp:" not in template and not (dynamic and error_type is None):
        prefix += when.strftime("%Y/%m/%d/%H/")
    return prefix


def object_key(stream: str, prefix: str, when: dt.datetime, seed: str, extension: str) -> str:
    """``<prefix><stream>-1-<yyyy-MM-dd-HH-mm-ss>-<uuid><extension>``."""
    stamp = when.strftime("%Y-%m-%d-%H-%M-%S")
    return f"{prefix}{stream}-1-{stamp}-{uuid.uuid5(_NAMESPACE, seed)}{extension}"
