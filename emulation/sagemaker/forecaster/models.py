"""The candidate models, grouped as AutoML V2's ``AutoMLAlgorithms`` families.

* ``ets``: AutoETS (additive/multiplicative, damped trend considered) and AutoTheta (the Theta
  family, which is simple exponential smoothing with drift — hence its place here);
* ``arima``: for smooth series, a regression with ARIMA errors on the related series and
  holiday features (``ARIMAX``) when there are any, AutoARIMA otherwise; beyond a season of
  :data:`MAX_SEASONAL_ARIMA` periods (weekly data's year) STL-ARIMA instead of AutoARIMA, and the
  regression with the season's harmonics among its regressors (Gaussian ARIMA errors suit
  intermittent counts badly, and on them it cost more than every other candidate together);
* ``npts``: the non-parametric family — seasonal naive (naive for series without a season), the
  random walk with drift (on the seasonally adjusted values where there is a season) and, for
  intermittent demand, Croston (optimised), ADIDA and IMAPA.

* ``cnn-qr`` and ``deepar``, AWS's global networks: one LightGBM model learned across every series
  (:mod:`.global_model`), offered where the data is large enough to learn it.

``prophet`` has no local counterpart; asking for it is refused (:func:`check_algorithms`), never
silently replaced. So is a job asking only for the global families: the per-item ensemble needs a
statistical family to fall back on for series the global model cannot forecast.

Auto models fit on at most :func:`fit_window` recent periods, the regression on twice that: they
are local models whose estimates the distant past barely moves, and it keeps a long daily history
within the time goal.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from emulation.sagemaker.forecaster import global_model
from emulation.sagemaker.forecaster.frequency import Frequency

STATISTICAL = ("arima", "ets", "npts")
LOCAL_FAMILIES = (*STATISTICAL, *global_model.FAMILIES)
AWS_FAMILIES = ("cnn-qr", "deepar", "prophet", "arima", "npts", "ets")
#: Models fitted on the trimmed recent window (the rest see the whole history).
AUTO = ("AutoETS", "AutoTheta", "AutoARIMA", "MSTL")
#: The longest season the ARIMA candidates model with seasonal terms (as statsforecast's ETS).
#: Beyond it AutoARIMA's place goes to STL-ARIMA: the season taken out by STL (statsforecast's
#: MSTL), AutoARIMA on the rest, the season carried forward; and the regression with ARIMA errors
#: takes the season as :data:`FOURIER_PAIRS` sine and cosine pairs of its cycle among its
#: regressors (:func:`fourier_terms`), estimated with them in one fit (dynamic harmonic
#: regression). On STL's remainder instead it lost the part of the regressors' effect the season
#: took with it: on weekly series with random promotions (tests/emulation/test_sagemaker.py) its
#: held-out p50 loss was 0.040 against the seasonal regression's 0.012.
#:
#: A seasonal AutoARIMA at weekly data's 52 spends about 1.7 s on one fit of ten years (1.2 s
#: of it a hundred evaluations of the exact likelihood, each filtering a state of 50-odd values
#: through every week), and every window of every series costs that. Measured
#: (benchmarks/forecast_models.py, chicago-weekly: 20 series, h=13, three origins), seasonal
#: AutoARIMA → STL-ARIMA: the forecaster's seconds at the latest origin 284 → 29, sMAPE 6.01 →
#: 6.42, wQL 0.0381 → 0.0395 (seasonal naive, the best single model, 7.14 and 0.0442); AutoARIMA
#: without a season: 30 s, 6.45. **Decision:** a weekly job's time stays in the class of the
#: other frequencies' (a few hundred weekly series would take an hour with the seasonal fits)
#: and the combination still beats every single model on every metric there; the 7 % it leaves
#: is written down rather than paid for by every weekly job. Half-hourly electricity demand (a
#: seasonal AutoARIMA at 48 before): 2.8-3.7 s an origin instead of 20-31 s, WAPE 0.031 against
#: 0.037 over three origins (docs/forecast.md).
MAX_SEASONAL_ARIMA = 24
STL_ARIMA = "STLARIMA"
#: The random walk with drift on a seasonal series' seasonally adjusted values (STL's season
#: taken out, carried forward; M4's "Naive 2" with a drift). The plain walk repeats the last
#: value, wherever in the season it falls: from an hourly shop's cutoff at closing time it
#: forecast about 0 for two days, and the stacked ensemble, learning its weights in a holiday
#: lull, still gave it 36 % as a brake on the other models' overshoot (``pizza-hourly``). The
#: seasonally adjusted walk is a brake that keeps the day's shape: there, over three origins
#: (benchmarks/forecast_models.py), sMAPE 55.6 → 48.5 and wQL 0.541 → 0.505, against the best
#: single model's 46.9 and 0.535.
SEASONAL_RWD = "SeasonalRWD"
FOURIER_PAIRS = 10
EPOCH = pd.Timestamp("2000-01-01")
#: The fixed combination for series too short to learn weights on (the classic "Comb").
DEFAULT_COMBINATION = {
    "smooth": ("AutoETS", "AutoTheta", "AutoARIMA"),
    "intermittent": ("CrostonOptimized", "ADIDA", "IMAPA"),
}


class AlgorithmError(ValueError):
    """An ``AutoMLAlgorithms`` value the local forecaster cannot honour."""


def check_algorithms(config: dict | None) -> tuple[str, ...]:
    """``CandidateGenerationConfig`` → the families to use (all local ones by default)."""
    if not config:
        return LOCAL_FAMILIES
    unknown = set(config) - {"AlgorithmsConfig"}
    if unknown:
        raise AlgorithmError(
            f"ValidationException: CandidateGenerationConfig has no field {sorted(unknown)[0]!r}"
        )
    chosen: list[str] = []
    for entry in config.get("AlgorithmsConfig") or []:
        for name in entry.get("AutoMLAlgorithms") or []:
            if name not in AWS_FAMILIES:
                raise AlgorithmError(
                    f"ValidationException: AutoMLAlgorithms value {name!r} is not a time-series "
                    f"algorithm ({', '.join(AWS_FAMILIES)})"
                )
            if name not in LOCAL_FAMILIES:
                raise AlgorithmError(
                    f"ValidationException: AutoMLAlgorithms value {name!r} has no local "
                    f"counterpart; the local forecaster runs {', '.join(LOCAL_FAMILIES)}"
                )
            chosen.append(name)
    if chosen and not set(chosen) & set(STATISTICAL):
        raise AlgorithmError(
            f"ValidationException: AutoMLAlgorithms {chosen} are only global models; the local "
            f"forecaster needs one of {', '.join(STATISTICAL)} beside them"
        )
    return tuple(dict.fromkeys(chosen)) or LOCAL_FAMILIES


#: Most periods an auto model is fitted on, unless three seasons need more: ten seasons of a
#: minute series are 14,400 periods, and a job of two five-day minute series took 81 s on all
#: their 7,200, 44 s on 5,000, with the same error.
MAX_FIT_WINDOW = 5_000


def fit_window(season: int, horizon: int) -> int:
    """Most recent periods an auto model is fitted on: ten seasons, within :data:`MAX_FIT_WINDOW`
    (but never fewer than three seasons), and at least five horizons and 100 periods."""
    return max(min(10 * season, max(MAX_FIT_WINDOW, 3 * season)), 5 * horizon, 100)


def candidates(kind: str, season: int, families: tuple[str, ...], regression: bool,
               horizon: int, with_global: bool = False) -> list[Any]:  # fmt: skip
    """The statsforecast models for one kind of series and one season length, simplest first
    (ties in the choice go to the simpler model).

    ``with_global``: the global model is a candidate too (large data). AutoETS then leaves the
    smooth series' list, AutoTheta staying for the family: beside the global model the stacked
    ensemble gave AutoETS no weight on ``standard`` (leaving it out changed no forecast), and it
    was the costliest backtest there (39 s of 470 series' three windows).
    """
    from statsforecast.models import (
        ADIDA,
        ARIMA,
        IMAPA,
        MSTL,
        AutoARIMA,
        AutoETS,
        AutoTheta,
        CrostonOptimized,
        Naive,
        RandomWalkWithDrift,
        SeasonalNaive,
    )

    out: list[Any] = []
    # the season the ARIMA candidates model themselves; beyond it, STL or harmonic regressors do
    arima_season = 1 if harmonic(season) else season
    if "npts" in families:
        if kind == "intermittent":
            out += [CrostonOptimized(), ADIDA(), IMAPA()]
        if season > 1:
            out.append(SeasonalNaive(season_length=season))
        else:
            out.append(Naive())
        if kind == "smooth":
            out.append(MSTL(season_length=season, trend_forecaster=RandomWalkWithDrift(),
                            alias=SEASONAL_RWD) if season > 1
                       else RandomWalkWithDrift())  # fmt: skip
    if kind == "smooth" or not out:
        if "ets" in families:
            # statsforecast's ETS supports seasons up to 24; longer ones are left to Theta.
            if not with_global:
                out.append(AutoETS(season_length=season if season <= 24 else 1))
            out.append(AutoTheta(season_length=season))
        if "arima" in families and not (regression and kind == "smooth"):
            # With related series the family's member is the regression with ARIMA errors below.
            # A full seasonal search at long seasons costs minutes per series: cap its order.
            if arima_season == season:
                out.append(AutoARIMA(season_length=season, max_p=3, max_q=3, max_P=1,
                                     max_Q=1, approximation=True))  # fmt: skip
            else:
                out.append(MSTL(season_length=season, alias=STL_ARIMA,
                                trend_forecaster=AutoARIMA(max_p=3, max_q=3,
                                                           approximation=True)))  # fmt: skip
    if "arima" in families and regression and kind == "smooth":
        seasonal = (0, 1, 1) if arima_season > 1 else (0, 0, 0)
        out.append(ARIMA(order=(1, 0, 0), season_length=arima_season, seasonal_order=seasonal,
                         alias="ARIMAX"))  # fmt: skip
    return out


def harmonic(season: int) -> bool:
    """Whether the ARIMA candidates leave this season to STL (STL-ARIMA) or to harmonic
    regressors (the regression), beyond :data:`MAX_SEASONAL_ARIMA`."""
    return season > MAX_SEASONAL_ARIMA


def fourier_terms(stamps: pd.Series, frequency: Frequency, season: int) -> pd.DataFrame:
    """:data:`FOURIER_PAIRS` sine and cosine pairs of the season's cycle at each timestamp (a
    function of the timestamp alone, so a series' history and its future agree). Weekly data's
    cycle is the year's 365.25 days, not 52 weeks, whose phase would slip a week in six years."""
    if frequency.unit == "W":
        cycle = pd.Timedelta(days=365.25).total_seconds()
    else:
        cycle = season * pd.Timedelta(frequency.offset()).total_seconds()
    phase = (stamps - EPOCH).dt.total_seconds().to_numpy() / cycle
    columns = {}
    for k in range(1, min(FOURIER_PAIRS, season // 2) + 1):
        columns[f"fourier_sin{k}"] = np.sin(2 * np.pi * k * phase)
        columns[f"fourier_cos{k}"] = np.cos(2 * np.pi * k * phase)
    return pd.DataFrame(columns, index=stamps.index)


def alias(model: Any) -> str:
    return getattr(model, "alias", type(model).__name__)
