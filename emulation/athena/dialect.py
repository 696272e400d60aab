"""Trino forms DuckDB has no direct spelling for, rewritten before sqlglot translates a query.

- ``format_datetime(ts, 'yyyy-MM-dd HH:mm')``: Java (Joda) date patterns → ``strftime``; a
  pattern that is not a literal, or a letter with no equivalent, is left alone and the query fails
  with ``FUNCTION_NOT_FOUND`` naming the function.
- ``UNNEST(a1, a2, …) AS t(c1, c2, …)``: several arrays side by side (padded with nulls to the
  longest, as Trino does) → a lateral subquery of one ``unnest`` per array.
"""

from __future__ import annotations

import re

from sqlglot import exp

# Joda letters (longest run first) → strftime
_JODA = {
    "yyyy": "%Y",
    "yy": "%y",
    "MMMM": "%B",
    "MMM": "%b",
    "MM": "%m",
    "dd": "%d",
    "HH": "%H",
    "hh": "%I",
    "mm": "%M",
    "ss": "%S",
    "SSSSSS": "%f",
    "SSS": "%g",
    "EEEE": "%A",
    "EEE": "%a",
    "a": "%p",
    "DDD": "%j",
    "Z": "%z",
    "z": "%Z",
}
_TOKEN = re.compile("|".join(sorted(map(re.escape, _JODA), key=len, reverse=True)) + "|'[^']*'|.")


def joda_to_strftime(pattern: str) -> str | None:
    """A Joda date pattern as a strftime one; ``None`` when a letter has no equivalent."""
    out = []
    for token in _TOKEN.findall(pattern):
        if token in _JODA:
            out.append(_JODA[token])
        elif token.startswith("'"):
            out.append(token[1:-1].replace("%", "%%") or "'")
        elif token.isalpha():
            return None
        else:
            out.append(token.replace("%", "%%"))
    return "".join(out)


def rewrite(tree: exp.Expression) -> exp.Expression:
    """Rewrite the forms above in place; the tree is returned for chaining."""
    for call in list(tree.find_all(exp.Anonymous)):
        if call.name.lower() != "format_datetime" or len(call.expressions) != 2:
            continue
        value, pattern = call.expressions
        if not isinstance(pattern, exp.Literal) or not pattern.is_string:
            continue
        converted = joda_to_strftime(pattern.this)
        if converted is not None:
            call.replace(exp.func("strftime", value, exp.Literal.string(converted)))
    for unnest in list(tree.find_all(exp.Unnest)):
        arrays = unnest.expressions
        alias = unnest.args.get("alias")
        if len(arrays) < 2 or unnest.args.get("offset") or not isinstance(alias, exp.TableAlias):
            continue
        columns = alias.columns
        if len(columns) != len(arrays):
            continue
        projections = [
            exp.alias_(exp.Unnest(expressions=[array.copy()]), column.copy())
            for array, column in zip(arrays, columns, strict=True)
        ]
        subquery = exp.select(*projections).subquery(alias.this.copy())
        unnest.replace(subquery)
    return tree
