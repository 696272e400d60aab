"""The local forecaster behind the AutoML V2 time-series calls (statsforecast underneath).

Few names, one contract (AutoML's CSV in; ``item_id, timestamp, p…, mean`` out):

* :class:`ForecastConfig` — what ``TimeSeriesForecastingJobConfig`` says (every
  ``ForecastFrequency`` AWS accepts, quantiles, algorithms, transformations, holidays) and the
  job's ``AutoMLJobObjective`` (:func:`check_objective`), plus the local backtest settings;
  :func:`check_completion_criteria` reads the runtime limits the job honours;
* :func:`load_dataset` — AutoML's CSV → validated regular series (:mod:`.dataset`);
* :func:`train` — backtests, per-item ensembles, calibrated quantiles, AWS's metrics on held-out
  windows and on the selection windows (:mod:`.training`);
* :func:`predict` — the batch transform's forecast from the model document;
* :func:`split_series` — outputs keyed by series back to the item id and its grouping attributes
  (``TimeSeriesConfig.GroupingAttributeNames``: one series per item and store, say).

Not emulated: feature specification files, the Prophet family
(refused), AWS's neural networks themselves (``cnn-qr`` and ``deepar`` are one global LightGBM
model, :mod:`.global_model`), explainability reports, AutoML's own ensembling internals: the
ensemble here is a weighted combination, per item or stacked per group of items.
"""

from emulation.sagemaker.forecaster.dataset import (
    Dataset,
    ForecastInputError,
    load_dataset,
    ragged_record,
    split_series,
)
from emulation.sagemaker.forecaster.frequency import Frequency, FrequencyError, parse_frequency
from emulation.sagemaker.forecaster.models import AlgorithmError, check_algorithms
from emulation.sagemaker.forecaster.training import (
    ForecastConfig,
    Limits,
    TrainingResult,
    check_completion_criteria,
    check_holiday_config,
    check_objective,
    config_from_document,
    model_document,
    parse_quantiles,
    predict,
    train,
)

__all__ = [
    "AlgorithmError",
    "Dataset",
    "ForecastConfig",
    "ForecastInputError",
    "Frequency",
    "FrequencyError",
    "Limits",
    "TrainingResult",
    "check_algorithms",
    "check_completion_criteria",
    "check_holiday_config",
    "check_objective",
    "config_from_document",
    "load_dataset",
    "model_document",
    "parse_frequency",
    "parse_quantiles",
    "predict",
    "ragged_record",
    "split_series",
    "train",
]
