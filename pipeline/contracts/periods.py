"""The forecast periods the pipeline aggregates to, shared by the ETL, the harness and scenarios.

Each is an AutoML V2 ``ForecastFrequency`` value whose periods are calendar units: ``D`` days,
``W`` weeks starting Monday, ``M`` months, ``3M`` quarters, ``Y`` years, each labelled by its
first day (what Spark's ``date_trunc`` gives and what the forecaster reads back). The forecaster
itself takes every AWS frequency; these are the ones the ETL builds from daily sales.
"""

from __future__ import annotations

import datetime as dt

#: Spark ``date_trunc`` unit of each frequency.
FREQUENCIES = {"D": "day", "W": "week", "M": "month", "3M": "quarter", "Y": "year"}
#: One period's length as (months, days).
PERIOD_LENGTH = {"D": (0, 1), "W": (0, 7), "M": (1, 0), "3M": (3, 0), "Y": (12, 0)}
#: Mean days per period (for "how many periods does this history hold").
DAYS_PER_PERIOD = {"D": 1.0, "W": 7.0, "M": 365.25 / 12, "3M": 365.25 / 4, "Y": 365.25}
#: The days every engine of the pipeline reads as the same dates. Spark refuses Parquet
#: timestamps before 1900 from a writer other than Spark, as Firehose is
#: (``READ_ANCIENT_DATETIME``: Spark 3 changed the calendar under them); the forecaster's
#: timestamps (pandas, nanoseconds) end on 2262-04-11.
FIRST_DAY = dt.date(1900, 1, 1)
LAST_DAY = dt.date(2262, 4, 10)


def period_start(day: dt.date, frequency: str) -> dt.date:
    """The first day of the period holding ``day``."""
    if frequency == "D":
        return day
    if frequency == "W":
        return day - dt.timedelta(days=day.weekday())
    months = PERIOD_LENGTH[frequency][0]
    month = (day.month - 1) // months * months + 1
    return dt.date(day.year, month, 1)


def next_period_start(day: dt.date, frequency: str) -> dt.date:
    """The first day of the period after the one holding ``day``."""
    start = period_start(day, frequency)
    months, days = PERIOD_LENGTH[frequency]
    if days:
        return start + dt.timedelta(days=days)
    index = start.year * 12 + start.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def last_closed_day(day: dt.date, frequency: str) -> dt.date:
    """The last day of the last period that is complete on ``day`` (``day`` itself when it closes
    its period): the end date to aggregate to, so the last period is never a partial one."""
    if next_period_start(day, frequency) == day + dt.timedelta(days=1):
        return day
    return period_start(day, frequency) - dt.timedelta(days=1)


def whole_periods(first_day: dt.date, last_day: dt.date, frequency: str) -> int:
    """How many whole periods lie between two days (both included): the periods the ETL builds
    from daily sales over that span, a partial first or last one left out."""
    start = period_start(first_day, frequency)
    if start != first_day:
        start = next_period_start(first_day, frequency)
    end = last_closed_day(last_day, frequency)
    count = 0
    while start <= end:
        count += 1
        start = next_period_start(start, frequency)
    return count


def forecast_end(last_day: dt.date, horizon: int, frequency: str) -> dt.date | None:
    """The last day of the last period a forecast of ``horizon`` periods covers, after history
    ending on ``last_day`` (``None`` past the calendar's year 9999)."""
    start = next_period_start(last_closed_day(last_day, frequency), frequency)
    try:
        for _ in range(horizon):
            start = next_period_start(start, frequency)
    except (OverflowError, ValueError):
        return None
    return start - dt.timedelta(days=1)
