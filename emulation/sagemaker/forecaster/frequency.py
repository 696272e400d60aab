"""AutoML V2's ``ForecastFrequency``: parsing, period buckets, seasonal periods.

AWS accepts an integer followed by ``min``, ``H``, ``D``, ``W``, ``M`` or ``Y`` (``1Y`` only;
``4W`` but not ``5W``; ``1H`` rather than ``60min``). Every timestamp is put in the period
(bucket) it falls in; several rows of one item in one bucket are aggregated (AWS's
``Aggregation``). A bucket is labelled by its first instant, except that month and year buckets
keep month-end labels when every input timestamp is a month end — the caller's convention.
Weeks start on the weekday most of the input's timestamps fall on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: AWS's pattern for ``ForecastFrequency`` (API reference, TimeSeriesForecastingJobConfig).
PATTERN = r"1Y|Y|([1-9]|1[0-1])M|M|[1-4]W|W|[1-6]D|D|([1-9]|1[0-9]|2[0-3])H|H|([1-9]|[1-5][0-9])min"
_PARTS = re.compile(r"(\d*)(min|H|D|W|M|Y)")
_WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


class FrequencyError(ValueError):
    """The frequency breaks AWS's constraint; the message is AWS's ValidationException text."""


@dataclass(frozen=True)
class Frequency:
    """One ``ForecastFrequency``: ``n`` units of ``unit``."""

    code: str
    n: int
    unit: str  # min | H | D | W | M | Y

    @property
    def sub_daily(self) -> bool:
        return self.unit in ("min", "H")

    @property
    def mase_season(self) -> int:
        """The seasonality AWS's MASE uses (the first seasonal period, 1 when there is none)."""
        seasons = self.seasons()
        return seasons[0] if seasons else 1

    def seasons(self) -> tuple[int, ...]:
        """Seasonal periods, shortest first: those a whole number of periods long."""
        cycles = {
            # A day and a week of minutes, as in the public benchmarks' conventions (Monash's
            # archive, GluonTS): no hour, whose cycle in minute data is rarely one, and which,
            # being the shortest, took the place of the day (half-hourly electricity demand:
            # WAPE 0.072 with season 2, 0.021 with 48).
            "min": (1440, 10080),
            "H": (24, 168),
            "D": (7, 365),
            "W": (52,),
            "M": (12,),
            "Y": (),
        }[self.unit]
        out = []
        for cycle in cycles:
            period = cycle / self.n
            if self.unit == "W":
                period = round(52.18 / self.n)  # weeks do not divide a year: nearest whole
            if period >= 2 and float(period).is_integer():
                out.append(int(period))
        return tuple(dict.fromkeys(out))

    def offset(self, anchor: str | None = None, month_end: bool = False) -> pd.DateOffset:
        """The pandas offset between consecutive bucket labels."""
        if self.unit == "min":
            return pd.tseries.frequencies.to_offset(f"{self.n}min")
        if self.unit == "H":
            return pd.tseries.frequencies.to_offset(f"{self.n}h")
        if self.unit == "D":
            return pd.tseries.frequencies.to_offset(f"{self.n}D")
        if self.unit == "W":
            return pd.tseries.frequencies.to_offset(f"{self.n}W-{anchor or 'MON'}")
        if self.unit == "M":
            return pd.tseries.frequencies.to_offset(f"{self.n}{'ME' if month_end else 'MS'}")
        return pd.tseries.frequencies.to_offset("YE" if month_end else "YS")


def parse_frequency(value: object) -> Frequency:
    """``"3M"`` → ``Frequency("3M", 3, "M")``; anything else AWS refuses raises."""
    text = value if isinstance(value, str) else ""
    if not re.fullmatch(PATTERN, text):
        raise FrequencyError(
            f"1 validation error detected: Value {value!r} at "
            "'autoMLProblemTypeConfig.timeSeriesForecastingJobConfig.forecastFrequency' failed "
            f"to satisfy constraint: Member must satisfy regular expression pattern: {PATTERN}"
        )
    count, unit = _PARTS.fullmatch(text).groups()  # type: ignore[union-attr]
    return Frequency(code=text, n=int(count or 1), unit=unit)


@dataclass(frozen=True)
class Grid:
    """How one dataset's timestamps map to buckets of a frequency."""

    frequency: Frequency
    anchor: str | None  # weekday of weekly buckets
    month_end: bool  # month/year buckets labelled by their last day
    origin: pd.Timestamp  # first bucket of multi-unit week/month buckets

    @property
    def offset(self) -> pd.DateOffset:
        return self.frequency.offset(self.anchor, self.month_end)

    def bucket(self, stamps: pd.Series) -> pd.Series:
        """Each timestamp's bucket label."""
        f = self.frequency
        if f.unit in ("min", "H", "D"):
            unit = {"min": "min", "H": "h", "D": "D"}[f.unit]
            return stamps.dt.floor(f"{f.n}{unit}")
        if f.unit == "W":
            day = stamps.dt.normalize()
            back = (day.dt.weekday - _WEEKDAYS.index(self.anchor or "MON")) % 7
            start = day - pd.to_timedelta(back, unit="D")
            if f.n > 1:
                weeks = ((start - self.origin).dt.days // 7) // f.n * f.n
                start = self.origin + pd.to_timedelta(weeks * 7, unit="D")
            return start
        months = stamps.dt.year * 12 + stamps.dt.month - 1
        if f.unit == "Y":
            months = months // 12 * 12
        elif f.n > 1:
            first = self.origin.year * 12 + self.origin.month - 1
            months = first + (months - first) // f.n * f.n
        start = pd.to_datetime(
            pd.DataFrame({"year": months // 12, "month": months % 12 + 1, "day": 1})
        )
        start.index = stamps.index
        if not self.month_end:
            return start
        span = 12 if f.unit == "Y" else f.n
        return (start + pd.offsets.MonthBegin(span)) - pd.Timedelta(days=1)

    def labels(self, last: pd.Timestamp, periods: int) -> pd.DatetimeIndex:
        """``periods`` bucket labels after ``last``."""
        return pd.date_range(last, periods=periods + 1, freq=self.offset)[1:]

    def span(self, first: pd.Timestamp, last: pd.Timestamp) -> pd.DatetimeIndex:
        """Every bucket label from ``first`` to ``last``."""
        return pd.date_range(first, last, freq=self.offset)


def grid_for(frequency: Frequency, stamps: pd.Series) -> Grid:
    """The grid a dataset's timestamps imply for ``frequency`` (anchor, month ends, origin)."""
    anchor = None
    if frequency.unit == "W":
        counts = np.bincount(stamps.dt.weekday.to_numpy(), minlength=7)
        anchor = _WEEKDAYS[int(np.argmax(counts))]
    month_end = frequency.unit in ("M", "Y") and bool(stamps.dt.is_month_end.all())
    if frequency.unit == "Y" and month_end:
        month_end = bool((stamps.dt.month == 12).all())
    origin = stamps.min().normalize()
    if frequency.unit == "W":
        back = (origin.weekday() - _WEEKDAYS.index(anchor or "MON")) % 7
        origin = origin - pd.Timedelta(days=back)
    elif frequency.unit == "M":
        origin = origin.replace(day=1)
        if month_end:  # a month-end stamp labels the bucket it ends (2000-03-31 at 3M: Jan-Mar)
            origin = origin - pd.DateOffset(months=frequency.n - 1)
    return Grid(frequency, anchor, month_end, origin)
