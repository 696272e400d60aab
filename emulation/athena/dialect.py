"""Trino forms DuckDB has no direct spelling for, rewritten before sqlglot translates a query.

- ``format_datetime(ts, 'yyyy-MM-dd HH:mm')``: Java (Joda) date patterns → ``strftime``; a
  pattern that is not a literal, or a letter with no equivalent, is left alone and the query fails
  with ``FUNCTION_NOT_FOUND`` naming the function.
- ``UNNEST(a1, a2, …) AS t(c1, c2, …)``: several arrays side by side (padded with nulls to the
  longest, as Trino does) → a lateral subquery of one ``unnest`` per array.
- ``slice(a, start, length)``: sqlglot reads the third argument as an end; DuckDB's slice takes
  one, so it becomes ``start + length - 1``.
- ``format(pattern, …)``: Java's ``%s``/``%d`` patterns → DuckDB's ``printf`` (its ``format``
  takes ``{}`` and answered the pattern unchanged).
- ``date_diff(unit, a, b)``: Trino counts whole units (31 January to 1 March is one month);
  DuckDB's ``date_diff`` counts boundaries crossed (two), its ``date_sub`` whole units.

- ``parse_datetime(text, 'yyyy-MM-dd HH:mm')`` (Java pattern) → ``strptime``; ``any_match``,
  ``all_match``, ``none_match`` of an array and a lambda → DuckDB's list functions.
- Functions DuckDB lacks, as macros of the engine's database (:data:`MACROS`):
  ``width_bucket``, ``map_agg``, ``url_extract_host|protocol|path|query``, ``codepoint``,
  ``nan``, ``is_nan``, ``infinity``.

After the query's types are known (:func:`typed`, from the catalog through DuckDB; a struct's
field is not typed, so it keeps DuckDB's result type):

- ``date_add``, ``date_trunc``, ``+``/``-`` an interval and ``sequence`` of a ``date`` by days
  or longer stay dates, as on Trino (DuckDB makes them timestamps).
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


_DAYS_OR_MORE = {"DAY", "WEEK", "MONTH", "QUARTER", "YEAR"}
_URL = "^[a-zA-Z][a-zA-Z0-9+.-]*:"
MACROS = (  # Trino functions DuckDB lacks, created once in the engine's database
    "CREATE OR REPLACE MACRO width_bucket(x, low, high, buckets) AS CASE WHEN x < low THEN 0 "
    "WHEN x >= high THEN buckets + 1 "
    "ELSE CAST(floor((x - low) * buckets / (high - low)) AS BIGINT) + 1 END",
    "CREATE OR REPLACE MACRO map_agg(k, v) AS map_from_entries(list(struct_pack(k := k, v := v)))",
    "CREATE OR REPLACE MACRO url_extract_protocol(u) AS nullif(regexp_extract(u, "
    "'^([a-zA-Z][a-zA-Z0-9+.-]*):', 1), '')",
    f"CREATE OR REPLACE MACRO url_extract_host(u) AS nullif(regexp_extract(u, "
    f"'{_URL}//(?:[^@/]*@)?([^:/?#]+)', 1), '')",
    f"CREATE OR REPLACE MACRO url_extract_path(u) AS regexp_extract(u, "
    f"'{_URL}//[^/?#]*([^?#]*)', 1)",
    "CREATE OR REPLACE MACRO url_extract_query(u) AS "
    "nullif(regexp_extract(u, '[?]([^#]*)', 1), '')",
    "CREATE OR REPLACE MACRO codepoint(c) AS unicode(c)",
    "CREATE OR REPLACE MACRO nan() AS CAST('NaN' AS DOUBLE)",
    "CREATE OR REPLACE MACRO is_nan(x) AS isnan(x)",
    "CREATE OR REPLACE MACRO infinity() AS CAST('Infinity' AS DOUBLE)",
)
_LIST_MATCH = {"any_match": "list_bool_or", "all_match": "list_bool_and"}


def rewrite(tree: exp.Expression) -> exp.Expression:
    """Rewrite the forms above in place; the tree is returned for chaining."""
    for sliced in list(tree.find_all(exp.ArraySlice)):
        start, length = sliced.args.get("start"), sliced.args.get("end")
        if start is not None and length is not None:
            end = exp.Sub(this=exp.Add(this=start.copy(), expression=length.copy()),
                          expression=exp.Literal.number(1))  # fmt: skip
            sliced.set("end", end)
    for formatted in list(tree.find_all(exp.Format)):
        formatted.replace(exp.Anonymous(
            this="printf", expressions=[formatted.this.copy(),
                                        *(e.copy() for e in formatted.expressions)]))  # fmt: skip
    for diff in list(tree.find_all(exp.DateDiff)):
        unit = diff.args.get("unit")
        if unit is not None and diff.expression is not None:
            arguments = [exp.Literal.string(unit.name.lower()), diff.expression.copy(),
                         diff.this.copy()]  # fmt: skip
            diff.replace(exp.Anonymous(this="date_sub", expressions=arguments))
    for call in list(tree.find_all(exp.Anonymous)):
        name = call.name.lower()
        if name in ("any_match", "all_match", "none_match") and len(call.expressions) == 2:
            array, test = (e.copy() for e in call.expressions)
            mapped = exp.Anonymous(this="list_transform", expressions=[array, test])
            folded = exp.Anonymous(this=_LIST_MATCH.get(name, "list_bool_or"), expressions=[mapped])
            call.replace(exp.Not(this=exp.Paren(this=folded)) if name == "none_match" else folded)
            continue
        if name != "format_datetime" or len(call.expressions) != 2:
            continue
        value, pattern = call.expressions
        if not isinstance(pattern, exp.Literal) or not pattern.is_string:
            continue
        converted = joda_to_strftime(pattern.this)
        if converted is not None:
            call.replace(exp.func("strftime", value, exp.Literal.string(converted)))
    for parsed in list(tree.find_all(exp.ParseDatetime)):
        pattern = parsed.args.get("format")
        if isinstance(pattern, exp.Literal) and pattern.is_string:
            converted = joda_to_strftime(pattern.this)
            if converted is not None:
                text = parsed.this.copy()
                parsed.replace(exp.func("strptime", text, exp.Literal.string(converted)))
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


def _is_date(node: exp.Expression | None) -> bool:
    return node is not None and node.type is not None and node.type.this == exp.DataType.Type.DATE


# The forms :func:`typed` rewrites: a query without any needs no types.
DATE_FORMS = (exp.DateAdd, exp.DateSub, exp.TimestampTrunc, exp.DateTrunc, exp.Interval,
              exp.GenerateSeries)  # fmt: skip


def _unit(node: exp.Expression) -> str:
    """The unit a node moves by: its own, or its interval's (an addend or a series' step)."""
    unit = node.args.get("unit")
    for part in (node.args.get("expression"), node.args.get("step")):
        if unit is None and isinstance(part, exp.Interval):
            unit = part.args.get("unit")
    return unit.name.upper() if unit is not None else ""


def typed(tree: exp.Expression) -> exp.Expression:
    """The rewrites that need the query's types (annotated by sqlglot): a date moved or truncated
    by days or more stays a date, as on Trino (in place; the tree is returned)."""
    date = exp.DataType.build("DATE")
    for node in list(tree.find_all(exp.DateAdd, exp.DateSub, exp.TimestampTrunc, exp.DateTrunc)):
        if _is_date(node.this) and _unit(node) in _DAYS_OR_MORE:
            node.replace(exp.Cast(this=node.copy(), to=date.copy()))
    for node in list(tree.find_all(exp.Add, exp.Sub)):
        interval = isinstance(node.expression, exp.Interval)
        if interval and _is_date(node.this) and _unit(node) in _DAYS_OR_MORE:
            node.replace(exp.Cast(this=node.copy(), to=date.copy()))
    dates = exp.DataType.build("DATE[]", dialect="duckdb")
    for series in list(tree.find_all(exp.GenerateSeries)):
        stepped = isinstance(series.args.get("step"), exp.Interval)
        if stepped and _is_date(series.args.get("start")) and _unit(series) in _DAYS_OR_MORE:
            series.replace(exp.Cast(this=series.copy(), to=dates.copy()))
    return tree
