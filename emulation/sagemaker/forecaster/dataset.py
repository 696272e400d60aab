"""AutoML's single CSV → the forecaster's series: validated, bucketed, aggregated, filled.

The input is a header, the item id, timestamp and target columns named in ``TimeSeriesConfig``,
numeric *related* columns (known for the horizon: rows after an item's last target value carry
them with an empty target) and categorical *item metadata* columns (constant per item).

What the job config says happens here:

* **Aggregation** (``Transformations.Aggregation`` of the target: ``sum`` by default, ``avg``,
  ``first``, ``min``, ``max``) when several rows of one item fall in one period of the frequency;
  related values in one period are averaged.
* **Filling** (``Transformations.Filling``): ``middlefill`` (default ``zero``) fills gaps inside a
  series; ``backfill`` fills from a series' end to the dataset's end *only when it is set* (AWS's
  console default is zero, which turns a series that simply ended earlier into a run of zeros);
  without it such an *unaligned* series is forecast from its own end and listed in the result.
  ``futurefill`` fills a related column's missing horizon values; without it a gap is AWS's
  error. ``frontfill`` accepts only ``none``. ``value`` takes its number from ``<method>_value``.
* **Item metadata** is kept for cold starts: an item with metadata rows but no target value is
  forecast from the items most like it (see :mod:`.training`).
* **Grouping attributes** (``TimeSeriesConfig.GroupingAttributeNames``, e.g. ``store_id``) key a
  series together with the item: each item × store is its own series, and the attributes are
  also kept as the series' metadata (a new store's items learn from that store's peers). Inside
  the forecaster the series id joins the values with :data:`KEY_SEPARATOR`;
  :func:`split_series` gives the columns back in the outputs, after the item id as AWS writes
  them.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from emulation.sagemaker.forecaster.frequency import Grid, grid_for

logger = logging.getLogger(__name__)

AGGREGATIONS = ("sum", "avg", "first", "min", "max")
FILL_METHODS = ("zero", "value", "median", "mean", "min", "max")
TIMESTAMP_FORMATS = ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S")
KEY_SEPARATOR = "\x1f"  # joins an item id and its grouping values into one series id


class ForecastInputError(ValueError):
    """The input violates a rule AWS enforces; the message is what the job reports."""


@dataclass
class Dataset:
    """The validated input, one regular series per item."""

    history: pd.DataFrame  # unique_id, ds, y, <related…>
    future: pd.DataFrame  # unique_id, ds, <related…> for each item's horizon
    related: list[str]
    metadata: pd.DataFrame  # unique_id, <categorical…>
    clip_at_zero: bool
    grid: Grid
    unaligned: dict[str, str] = field(default_factory=dict)  # item → its last period
    cold: list[str] = field(default_factory=list)  # items with metadata and no target value
    # items with neither a target value nor metadata: nothing to forecast them from
    skipped: list[str] = field(default_factory=list)


def located(frame: pd.DataFrame, position: int) -> str:
    """A row of the input by its data row, and by the object it came from when the reader
    recorded them (``frame.attrs["objects"]``: (uri, rows) in order): a job reads every object
    under its prefix as one table, where a row's position names nothing the user can open."""
    for uri, rows in frame.attrs.get("objects") or ():
        if position < rows:
            return f"{uri} data row {position + 1}"
        position -= rows
    return f"data row {position + 1}"


def _stamps(frame: pd.DataFrame, column: str) -> pd.Series:
    """The column parsed in the one timestamp format its values all have. A dataset has one
    timestamp format (Forecast's ``TimestampFormat``): a column that mixes the two is refused
    naming a row of each, and a value in neither format naming its data row, with what is
    wrong with it: not in either format, not a day of the calendar (``2024-02-30``), or a day
    outside the years the local forecaster's timestamps hold (:data:`STAMP_RANGE`)."""
    values = frame[column]
    parsed = [pd.to_datetime(values, format=fmt, errors="coerce") for fmt in TIMESTAMP_FORMATS]
    for each in parsed:
        if each.notna().all():
            return each
    short, timed = (each.notna().to_numpy() for each in parsed)
    neither = ~(short | timed)

    def row(mask: np.ndarray) -> str:
        at = int(np.flatnonzero(mask)[0])
        return f"{located(frame, at)}: {values.iloc[at]!r}"

    if neither.any():
        at = int(np.flatnonzero(neither)[0])
        raise ForecastInputError(
            f"ClientError: column {column!r} has a value that is "
            f"{_not_a_stamp(str(values.iloc[at]))} ({row(neither)})"
        )
    raise ForecastInputError(
        f"ClientError: column {column!r} mixes yyyy-MM-dd ({row(short)}) and yyyy-MM-dd "
        f"HH:mm:ss ({row(timed)}) timestamps; a dataset's timestamps are all in one of the two"
    )


#: The days a pandas timestamp (nanoseconds since 1970 in 64 bits) holds: the local
#: forecaster's limit, not AWS's. Earlier years (a yearly record since the 1600s) are refused
#: saying so, rather than as a value that is not a timestamp.
STAMP_RANGE = (pd.Timestamp.min.ceil("D"), pd.Timestamp.max.floor("D"))


def _not_a_stamp(value: str) -> str:
    """What is wrong with a timestamp value neither format parsed."""
    for fmt in TIMESTAMP_FORMATS:
        try:
            stamp = dt.datetime.strptime(value, fmt)
        except ValueError:
            continue
        low, high = (f"{s:%Y-%m-%d}" for s in STAMP_RANGE)
        if not low <= f"{stamp:%Y-%m-%d}" <= high:
            return (f"a timestamp outside {low} to {high}, the days the local forecaster's "
                    "timestamps hold")  # fmt: skip
    shape = r"\d{4}-\d{2}-\d{2}( \d{2}:\d{2}:\d{2})?"
    if re.fullmatch(shape, value):
        return "not a day of the calendar, or not a time of day"
    return "not a yyyy-MM-dd or yyyy-MM-dd HH:mm:ss timestamp"


def _fill_value(method: str, series: pd.Series, options: dict[str, str], key: str) -> float:
    if method == "zero":
        return 0.0
    if method == "value":
        raw = options.get(f"{key}_value")
        try:
            return float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ForecastInputError(
                f"ValidationException: Filling {key}=value needs a numeric {key}_value "
                f"(got {raw!r})"
            ) from None
    known = series.dropna()
    if known.empty:
        return 0.0
    return float({"median": known.median, "mean": known.mean, "min": known.min,
                  "max": known.max}[method]())  # fmt: skip


def check_transformations(transformations: dict[str, Any] | None, target: str) -> None:
    """Refuse what AWS refuses (and what the local forecaster cannot honour)."""
    transformations = transformations or {}
    unknown = set(transformations) - {"Filling", "Aggregation"}
    if unknown:
        raise ForecastInputError(
            f"ValidationException: Transformations has no field {sorted(unknown)[0]!r}"
        )
    for column, method in (transformations.get("Aggregation") or {}).items():
        if column != target:
            raise ForecastInputError(
                f"ValidationException: Aggregation is only supported for the target column; "
                f"got {column!r}"
            )
        if method not in AGGREGATIONS:
            raise ForecastInputError(
                f"ValidationException: Aggregation method {method!r} for {column!r} is not one "
                f"of {', '.join(AGGREGATIONS)}"
            )
    for column, options in (transformations.get("Filling") or {}).items():
        if not isinstance(options, dict):
            raise ForecastInputError(f"ValidationException: Filling of {column!r} is not a map")
        for key, value in options.items():
            if key.endswith("_value"):
                continue
            if key == "frontfill":
                if column != target or value != "none":
                    raise ForecastInputError(
                        f"ValidationException: frontfill supports only 'none' on the target "
                        f"column (got {column!r}: {value!r})"
                    )
            elif key in ("middlefill", "backfill", "futurefill"):
                if value not in FILL_METHODS:
                    raise ForecastInputError(
                        f"ValidationException: Filling {column!r} {key}={value!r} is not one of "
                        f"{', '.join(FILL_METHODS)}"
                    )
                if key == "futurefill" and column == target:
                    raise ForecastInputError(
                        "ValidationException: futurefill applies to related columns, not the "
                        f"target {column!r}"
                    )
            else:
                raise ForecastInputError(
                    f"ValidationException: Filling {column!r} has an unknown method {key!r}"
                )


def load_dataset(frame: pd.DataFrame, config: Any) -> Dataset:
    """Validate AutoML's CSV (as strings) and build one regular series per item."""
    key, ts, target = config.item_id, config.timestamp, config.target
    missing = [c for c in (key, ts, target) if c not in frame.columns]
    if missing:
        raise ForecastInputError(
            f"ClientError: the input has no column {missing[0]!r} named in TimeSeriesConfig "
            f"(columns: {', '.join(frame.columns)})"
        )
    if frame.empty:
        raise ForecastInputError("ClientError: the input dataset has no rows")
    _refuse_blank(frame[key], f"item id column {key!r}", frame)
    frame = _series_ids(frame, key, tuple(getattr(config, "grouping", ()) or ()))
    frame = frame.copy()
    frame[ts] = _stamps(frame, ts)
    values = pd.to_numeric(frame[target].replace("", np.nan), errors="coerce")
    bad_target = values.isna() & frame[target].notna() & (frame[target] != "")
    if bad_target.any():
        at = int(np.flatnonzero(bad_target.to_numpy())[0])
        raise ForecastInputError(
            f"ClientError: target column {target!r} has a non-numeric value "
            f"{frame[target].iloc[at]!r} ({located(frame, at)})"
        )
    infinite = np.isinf(values.to_numpy(dtype=float))
    if infinite.any():
        at = int(np.flatnonzero(infinite)[0])
        raise ForecastInputError(
            f"ClientError: target column {target!r} has an infinite value "
            f"{frame[target].iloc[at]!r} ({located(frame, at)})"
        )
    frame[target] = values
    others = [c for c in frame.columns if c not in (key, ts, target)]
    related, categorical = [], []
    for column in others:
        numeric = pd.to_numeric(frame[column].replace("", np.nan), errors="coerce")
        non_empty = frame[column].notna() & (frame[column] != "")
        if (numeric.notna() == non_empty).all():
            frame[column] = numeric
            related.append(column)
        else:
            categorical.append(column)

    known = frame[frame[target].notna()]
    if known.empty:
        raise ForecastInputError(f"ClientError: target column {target!r} has no values")
    grid = grid_for(config.freq, known[ts])
    frame["_bucket"] = grid.bucket(frame[ts])
    known = frame[frame[target].notna()]
    last = known.groupby(key)["_bucket"].max()
    end = last.max()

    metadata = None
    if categorical:
        blank = frame[categorical].isna().any(axis=1) | (frame[categorical] == "").any(axis=1)
        empty = frame[key][blank]
        if not empty.empty:
            column = next(c for c in categorical if ((frame[key] == empty.iloc[0]) &
                          ((frame[c] == "") | frame[c].isna())).any())  # fmt: skip
            raise ForecastInputError(
                f"ClientError: item {empty.iloc[0]!r} has no item metadata value for "
                f"{column!r}; every item of the target time series needs metadata"
            )
        metadata = frame.groupby(key)[categorical].first().reset_index()
    cold = sorted(set(frame[key]) - set(last.index))
    skipped = []
    if cold and metadata is None:  # nothing to relate them to: AWS skips them too
        logger.info("skipping %d items without target values or metadata", len(cold))
        cold, skipped = [], cold
    frame = frame[frame[key].isin(last.index)]

    filling = (getattr(config, "transformations", None) or {}).get("Filling") or {}
    target_fill = filling.get(target, {})
    history_rows = frame[frame["_bucket"] <= frame[key].map(last)]
    hist = _aggregate(history_rows, key, target, related, config)
    for column in related:  # an observed period without its related value
        if hist[column].isna().any():
            method = filling.get(column, {}).get("middlefill")
            if method is None:
                row = hist[hist[column].isna()].iloc[0]
                raise ForecastInputError(
                    f"ClientError: related time series {column!r} has a missing value for item "
                    f"{row['unique_id']!r} at {row['ds']}"
                )
            values = hist.groupby("unique_id")[column].transform(
                lambda s, m=method, c=column: _fill_value(m, s, filling.get(c, {}), "middlefill")
            )
            hist[column] = hist[column].fillna(values)
    hist = _regularise(hist, grid, related, target_fill, end)
    unaligned = {}
    ends = hist.groupby("unique_id")["ds"].max()
    for item, item_end in ends.items():
        if item_end < end:
            unaligned[str(item)] = item_end.isoformat()
    if unaligned:
        logger.info(
            "%d series end before the dataset's last period %s; each is forecast from its own "
            "end (set Filling backfill to pad them)", len(unaligned), end,
        )  # fmt: skip

    # The horizon of each item starts after its own last period.
    try:
        horizon_labels = {
            item: grid.labels(item_end, config.horizon) for item, item_end in ends.items()
        }
    except (pd.errors.OutOfBoundsDatetime, OverflowError):
        raise ForecastInputError(
            f"ClientError: the forecast horizon of {config.horizon} periods at frequency "
            f"{config.frequency} from {end:%Y-%m-%d} ends after {STAMP_RANGE[1]:%Y-%m-%d}, the "
            "last day the local forecaster's timestamps hold"
        ) from None
    future_rows = frame[frame["_bucket"] > frame[key].map(ends)]
    fut = (
        future_rows.groupby([key, "_bucket"], sort=True)[related].mean().reset_index()
        .rename(columns={key: "unique_id", "_bucket": "ds"})
        if related else pd.DataFrame(columns=["unique_id", "ds"])
    )  # fmt: skip
    wanted = pd.DataFrame(
        [(item, stamp) for item, labels in horizon_labels.items() for stamp in labels],
        columns=["unique_id", "ds"],
    )
    fut = wanted.merge(fut, on=["unique_id", "ds"], how="left") if related else wanted
    for column in related:
        gaps = fut[column].isna()
        if gaps.any():
            method = filling.get(column, {}).get("futurefill")
            if method is None:
                row = fut[gaps].iloc[0]
                raise ForecastInputError(
                    f"ClientError: related time series {column!r} does not cover the forecast "
                    f"horizon for item {row['unique_id']!r}: it needs values up to "
                    f"{horizon_labels[row['unique_id']][-1].date()}"
                )
            values = hist.groupby("unique_id")[column].apply(
                lambda s, m=method, c=column: _fill_value(m, s, filling.get(c, {}), "futurefill")
            )
            fut.loc[gaps, column] = fut.loc[gaps, "unique_id"].map(values)

    span = hist.groupby("unique_id").size().max()
    limit = min(500, int(span) // 4)
    if config.horizon > limit:
        raise ForecastInputError(
            f"ClientError: ForecastHorizon {config.horizon} is more than a quarter of the "
            f"target time series length ({span} periods at frequency {config.frequency}); "
            f"the largest allowed is {limit}"
        )
    items = sorted(hist["unique_id"].unique())
    meta = (
        metadata.rename(columns={key: "unique_id"})
        if metadata is not None
        else pd.DataFrame({"unique_id": items})
    )
    return Dataset(
        history=hist.sort_values(["unique_id", "ds"], ignore_index=True),
        future=fut.sort_values(["unique_id", "ds"], ignore_index=True),
        related=related,
        metadata=meta,
        clip_at_zero=bool((hist["y"] >= 0).all()),
        grid=grid,
        unaligned=unaligned,
        cold=cold,
        skipped=skipped,
    )


def ragged_record(text: str, delimiter: str = ",") -> tuple[int, int, int, str] | None:
    """The first record of a CSV text whose field count is not its first record's (the header),
    as (line where it ends, its fields, the header's fields, its text), or None. Blank lines,
    which pandas skips, are let be; a quoted field may span lines. pandas reads such a record
    wrong without a word (one field more: every value one column left, or the extra dropped;
    one less: an empty last field), so readers of users' files refuse it naming the line.
    ``csv.Error`` (a NUL byte) is the caller's to name."""
    records = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(records, None)
    if header is None:
        return None
    for record in records:
        if record and len(record) != len(header):
            return records.line_num, len(record), len(header), delimiter.join(record)
    return None


def _refuse_blank(values: pd.Series, what: str, frame: pd.DataFrame) -> None:
    """Fail naming ``what``, how many rows and the first, when a key column has empty values."""
    blank = (values.isna() | (values.astype(str).str.strip() == "")).to_numpy()
    if blank.any():
        raise ForecastInputError(
            f"ClientError: {what} is empty in {int(blank.sum())} rows (the first is "
            f"{located(frame, int(np.flatnonzero(blank)[0]))})"
        )


def _series_ids(frame: pd.DataFrame, key: str, grouping: tuple[str, ...]) -> pd.DataFrame:
    """With grouping attributes, the item column becomes the series id (item and grouping values
    joined); the grouping columns stay as the series' metadata."""
    if not grouping:
        return frame
    missing = [c for c in grouping if c not in frame.columns]
    if missing:
        raise ForecastInputError(
            f"ClientError: the input has no column {missing[0]!r} named in "
            f"TimeSeriesConfig.GroupingAttributeNames (columns: {', '.join(frame.columns)})"
        )
    parts = [frame[key].astype(str)]
    for column in grouping:
        _refuse_blank(frame[column], f"grouping attribute {column!r}", frame)
        parts.append(frame[column].astype(str))
    for column, values in zip((key, *grouping), parts, strict=True):
        if values.str.contains(KEY_SEPARATOR, regex=False).any():
            raise ForecastInputError(
                f"ClientError: column {column!r} holds the control character U+001F"
            )
    frame = frame.copy()
    joined = parts[0]
    for values in parts[1:]:
        joined = joined + KEY_SEPARATOR + values
    frame[key] = joined
    return frame


def split_series(frame: pd.DataFrame, item_id: str, grouping: tuple[str, ...]) -> pd.DataFrame:
    """An output keyed by series id (column ``item_id``) with the item and each grouping
    attribute in its own column, right after the item id. Without grouping: unchanged."""
    if not grouping or item_id not in frame.columns:
        return frame
    parts = frame[item_id].astype(str).str.split(KEY_SEPARATOR, n=len(grouping), expand=True)
    if frame.empty:
        parts = pd.DataFrame(columns=range(len(grouping) + 1))
    out = frame.drop(columns=[item_id])
    at = list(frame.columns).index(item_id)
    for i, column in enumerate((item_id, *grouping)):
        out.insert(at + i, column, parts[i].to_numpy())
    return out


def _aggregate(rows: pd.DataFrame, key: str, target: str, related: list[str], config: Any
               ) -> pd.DataFrame:  # fmt: skip
    method = ((getattr(config, "transformations", None) or {}).get("Aggregation") or {}).get(
        target, "sum"
    )
    grouped = rows.groupby([key, "_bucket"], sort=True)
    how = {"avg": "mean"}.get(method, method)
    y = grouped[target].agg(how) if method != "sum" else grouped[target].sum(min_count=1)
    out = y.rename("y").reset_index()
    for column in related:
        out[column] = grouped[column].mean().to_numpy()
    return out.rename(columns={key: "unique_id", "_bucket": "ds"})


def _regularise(hist: pd.DataFrame, grid: Grid, related: list[str], options: dict[str, str],
                end: pd.Timestamp) -> pd.DataFrame:  # fmt: skip
    """Each item on every period from its first value to its last (or the dataset's last, when
    backfill is set); gaps filled as configured (middlefill zero by default)."""
    middle = options.get("middlefill", "zero")
    back = options.get("backfill")
    parts = []
    for item, rows in hist.groupby("unique_id", sort=True):
        rows = rows.dropna(subset=["y"]).set_index("ds")
        if rows.empty:
            continue
        last = end if back else rows.index.max()
        full = grid.span(rows.index.min(), last)
        observed = rows.index.max()
        rows = rows.reindex(full)
        rows["unique_id"] = item
        inside = rows.index <= observed
        gap = rows["y"].isna()
        if (gap & inside).any():
            rows.loc[gap & inside, "y"] = _fill_value(middle, rows["y"], options, "middlefill")
        if back and (gap & ~inside).any():
            rows.loc[gap & ~inside, "y"] = _fill_value(back, rows["y"], options, "backfill")
        for column in related:
            rows[column] = rows[column].ffill().bfill()  # periods with no row at all
        parts.append(rows.rename_axis("ds").reset_index())
    out = pd.concat(parts, ignore_index=True)
    return out[["unique_id", "ds", "y", *related]]
