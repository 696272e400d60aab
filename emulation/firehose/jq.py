"""The subset of JQ that Firehose's ``MetadataExtraction`` queries use here:
``{key: .path."quoted-key" // "default", …}``."""

from __future__ import annotations

import re
from typing import Any

from emulation.firehose.errors import InvalidArgumentException

_JQ_ITEM = re.compile(
    r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s*((?:\.(?:"[^"]+"|[A-Za-z_][A-Za-z0-9_]*))+)'
    r'\s*(?://\s*"([^"]*)")?\s*'
)


def parse_jq(query: str) -> dict[str, tuple[list[str], str | None]]:
    """``{name: .a."b-c" // "default", …}`` → {name: (path, default)}."""
    text = query.strip()
    if not (text.startswith("{") and text.endswith("}")):
        raise InvalidArgumentException(
            f"MetadataExtractionQuery {query!r}: expected {{key: .path}}"
        )
    out: dict[str, tuple[list[str], str | None]] = {}
    for item in filter(None, (p.strip() for p in text[1:-1].split(","))):
        match = _JQ_ITEM.fullmatch(item)
        if not match:
            raise InvalidArgumentException(f"MetadataExtractionQuery item {item!r} is not emulated")
        steps = re.findall(r'\.(?:"([^"]+)"|([A-Za-z_][A-Za-z0-9_]*))', match.group(2))
        out[match.group(1)] = ([a or b for a, b in steps], match.group(3))
    return out


def extract(document: Any, path: list[str]) -> Any:
    """The value at ``path`` in a parsed record, or None."""
    for step in path:
        if not isinstance(document, dict) or step not in document:
            return None
        document = document[step]
    return document
