"""SageMaker AutoML V2 time-series jobs and batch transforms that really forecast.

moto answers ``CreateAutoMLJobV2`` and ``CreateTransformJob`` with fixed placeholders. In the
embedded world these calls run the local forecaster (:mod:`emulation.sagemaker.forecaster`):

* ``create_auto_ml_job_v2`` with a ``TimeSeriesForecastingJobConfig`` checks the request
  (``ValidationException`` for a value of the wrong kind, :func:`check_request_types`, an
  unknown frequency, bad quantiles or horizon, an input channel a
  time-series job does not take: :func:`training_channel`), reads its CSV or Parquet input
  (:func:`read_input`), then trains in the
  background: ``describe_auto_ml_job_v2`` reports ``InProgress`` → ``Completed`` with a
  ``BestCandidate`` carrying the real backtest metrics (``CandidateMetrics``), its artifact
  locations and an inference container whose ``ModelDataUrl`` is the model, or ``Failed`` with the
  ``FailureReason`` AWS's data checks would give (related series not covering the horizon,
  horizon over a quarter of the history, items without metadata…).
* Outputs under ``S3OutputPath/<job name>/``: ``sagemaker-automl-candidates/<candidate>/model/
  model.json``; ``backtest-results/<candidate>/forecasted-values/`` and
  ``accuracy-metrics-values/`` (CSV, the Forecast backtest-export layout), plus
  ``accuracy-metrics.json`` in the ``GetAccuracyMetrics`` shape; ``model-insights/<candidate>/
  candidates.json`` (every candidate's metrics and how many items chose it).
* ``list_candidates_for_auto_ml_job`` (moto has none) lists the job's one candidate once it
  has one, as ``BestCandidate`` describes it.
* ``create_model`` is moto's; ``describe_model`` leaves out the empty ``PrimaryContainer`` and
  ``VpcConfig`` moto gives a model made without them, as AWS does (the SageMaker Python SDK's
  types refuse an empty ``VpcConfig``), and ``describe_endpoint_config`` and
  ``describe_endpoint`` an empty ``DataCaptureConfig``. ``create_transform_job`` on such a
  model refits each item's chosen model on the transform input and writes ``<input file>.out``
  (header ``item_id,timestamp,p10…,mean``; the ``GroupingAttributeNames`` columns follow
  ``item_id``) to ``S3OutputPath``; ``describe_transform_job`` reports ``InProgress`` →
  ``Completed`` or ``Failed`` with the reason. A second job of the same name is
  ``ResourceInUse``, as on AWS.
* ``invoke_endpoint`` (``sagemaker-runtime``) on an endpoint whose model is this forecaster's
  forecasts the ``text/csv`` history in its body as a transform job would
  (:func:`endpoint_forecast`); moto answers every invocation, of any endpoint, with ``body``.
  An unknown endpoint is ``ValidationError``; a body the model refuses is ``ModelError`` (424).
* ``ModelDeployConfig`` deploys the trained job's best candidate to that endpoint
  (:func:`deploy_endpoint`, :func:`_deploy`); ``ModelDeployResult`` names it.
* ``AutoMLJobObjective`` is the metric the ensemble lowers and ``FinalAutoMLJobObjectiveMetric``
  reports (held out); ``CompletionCriteria``'s runtime limits and ``stop_auto_ml_job`` end a job
  without a model (``Stopped``/``MaxAutoMLJobRuntimeReached``, ``Failed`` past the candidate's
  limit, ``Stopping`` → ``Stopped``): its training stops at its next step and writes nothing.
* A run may have the next AutoML jobs fail as SageMaker's internal errors make them fail
  (:attr:`Settings.fail_automl_jobs`; ``FailureReason`` :data:`INJECTED_FAILURE`).
* ``describe_auto_ml_job`` (V1's, which moto lacks) refuses every job here, as AWS refuses a job
  created by ``CreateAutoMLJobV2``: ``ValidationException`` (``ResourceNotFound`` for none).

Not emulated: other problem types, the secondary statuses of AutoML's stages (a job in progress
is ``TrainingModels`` throughout), explainability reports, candidate notebooks, instance types
and counts, endpoint traffic weights and statuses (an endpoint is ``InService`` at once), other
``InvokeEndpoint`` formats,
``SplitType``/``BatchStrategy`` (the whole input is one request), a transform input's
``ContentType`` (read as CSV, as AWS's batch-forecasting guide sends it), transform jobs on models
that did not come from this forecaster, stopping transform jobs.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from emulation._managed_state import embedded_client
from emulation._patching import moto_patch
from emulation.sagemaker.forecaster import (
    AlgorithmError,
    ForecastConfig,
    ForecastInputError,
    FrequencyError,
    Limits,
    check_algorithms,
    check_completion_criteria,
    check_holiday_config,
    check_objective,
    config_from_document,
    load_dataset,
    model_document,
    parse_frequency,
    parse_quantiles,
    predict,
    ragged_record,
    split_series,
    train,
)
from emulation.sagemaker.forecaster.dataset import KEY_SEPARATOR, check_transformations
from emulation.sagemaker.forecaster.training import FORMAT
from emulation.store import STORE
from pipeline.contracts.accuracy import forecast_type, summary_metrics, window_metrics

logger = logging.getLogger(__name__)

CANDIDATE = "statsforecast-per-item"
IMAGE = "dfp-local/statsforecast-forecaster:2.1.1"
_work_lock = threading.Lock()  # one training or transform at a time: they use every core
_settings_lock = threading.Lock()
_background: set[threading.Thread] = set()  # training and transform jobs still running
_background_lock = threading.Lock()
_stopping = threading.Event()  # the world is settling: no new job starts working


def _start_background(target: Any, args: tuple, name: str) -> None:
    """Run a job's work in a thread the world can wait for when it stops (none once it is
    stopping: a workflow task already under way may still create a job then)."""
    if _stopping.is_set():
        logger.info("%s not started: the local world is stopping", name)
        return

    def run() -> None:
        try:
            target(*args)
        finally:
            with _background_lock:
                _background.discard(threading.current_thread())

    thread = threading.Thread(target=run, name=name, daemon=True)
    with _background_lock:
        _background.add(thread)
    thread.start()


def background_jobs() -> list[str]:
    """The names of the training and transform jobs still running."""
    with _background_lock:
        return sorted(thread.name for thread in _background if thread.is_alive())


def wait_for_background_jobs(timeout: float) -> list[str]:
    """Start no more jobs, and wait up to ``timeout`` seconds for the training and transform
    jobs still running; the names of those that did not end. A process that exits under a
    running job kills its worker processes mid-start (a traceback from the fork server) and
    loses its outputs. :func:`accept_background_jobs` undoes the first part."""
    _stopping.set()
    deadline = time.monotonic() + timeout
    with _background_lock:
        running = list(_background)
    for thread in running:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [thread.name for thread in running if thread.is_alive()]


def accept_background_jobs() -> None:
    """A world starts: jobs start working again."""
    _stopping.clear()


@dataclass
class Settings:
    """Local knobs a run may set (per account and region): not part of the AWS API."""

    backtest_windows: int = 1
    selection_windows: int | None = None  # None: as many as the series afford, within a budget
    n_jobs: int | None = None
    # Faults: the next AutoML jobs created fail, as a job does when SageMaker has an internal
    # error, and how many did.
    fail_automl_jobs: int = 0
    failed_on_purpose: int = 0


#: The ``FailureReason`` of an AutoML job failed on purpose: SageMaker's wording for its own
#: internal errors (not the data's fault; the same input may succeed when run again).
INJECTED_FAILURE = (
    "InternalServerError: We encountered an internal error. Please try again. "
    "(injected by the scenario's faults.sagemaker)"
)


def settings(account: str, region: str) -> Settings:
    return STORE.get("sagemaker", account, region, Settings)


@dataclass
class _Tracked:
    state: str = "InProgress"
    reason: str | None = None
    ended: dt.datetime | None = None
    best: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    secondary: str | None = None  # AutoMLJobSecondaryStatus, where the state does not say it
    stop: threading.Event = field(default_factory=threading.Event)  # the work is to end
    lock: threading.Lock = field(default_factory=threading.Lock)
    committing: bool = False  # trained: its outputs are being written, too late to stop
    timer: threading.Timer | None = None  # its runtime limit, cancelled once it has ended
    endpoint: str | None = None  # ModelDeployConfig: the endpoint to deploy the best candidate to
    deploy_config: dict[str, Any] | None = None  # ModelDeployConfig as the request gave it
    deployed: str | None = None  # ModelDeployResult's EndpointName, once deployed


class _Stopped(Exception):
    """The job was stopped (``StopAutoMLJob`` or a runtime limit) while it trained."""


def _halt(job: Any, state: str, secondary: str, reason: str | None = None) -> bool:
    """End ``job``'s work as ``state`` unless it has ended or is writing its outputs; whether
    it did. The training thread stops at its next step and writes nothing."""
    tracked: _Tracked = job._dfp
    with tracked.lock:
        if tracked.committing or tracked.state not in ("InProgress", "Stopping"):
            return False
        tracked.stop.set()
        tracked.state, tracked.secondary = state, secondary
        tracked.reason = reason or tracked.reason
        if state != "Stopping":
            tracked.ended = dt.datetime.now(dt.UTC)
    logger.info("AutoML job %s: %s (%s)", job.auto_ml_job_name, state, secondary)
    return True


def _time_up(job: Any, limits: Limits) -> None:
    """The runtime limit reached first has passed: the job's one candidate has not completed,
    so there is no best model to keep (AWS keeps the best *completed* one)."""
    name, seconds = limits.first  # type: ignore[misc]
    if name == "MaxAutoMLJobRuntimeInSeconds":
        _halt(job, "Stopped", "MaxAutoMLJobRuntimeReached",
              f"MaxAutoMLJobRuntimeReached: the job ran for its CompletionCriteria."
              f"MaxAutoMLJobRuntimeInSeconds ({seconds} s) before its candidate completed "
              "training; no model was kept")  # fmt: skip
    else:
        _halt(job, "Failed", "Failed",
              f"ClientError: the candidate's training ran for the CompletionCriteria."
              f"MaxRuntimePerTrainingJobInSeconds ({seconds} s) without completing; no model "
              "was kept")  # fmt: skip


# ----------------------------------------------------------------------------------- helpers
def check_request_types(operation: str, arguments: dict[str, Any]) -> None:
    """AWS refuses a request whose values are not of their documented types (a list where a
    structure goes, text where a number does) before it reads them; moto takes any JSON, and the
    checks after this one read each value as its type. The SDKs check the same on the client,
    so only a hand-made request gets here: ``ValidationException`` naming the parameter, from
    botocore's own validator on the operation's documented shapes. ``arguments``: moto's
    (``auto_ml_job_name=…``), a member left out when ``None``."""
    from botocore import xform_name
    from moto.core.utils import get_service_model

    from emulation._patching import parameter_problems

    model = get_service_model("sagemaker")
    members = model.operation_model(operation).input_shape.members
    params = {name: arguments[xform_name(name)] for name in members
              if arguments.get(xform_name(name)) is not None}  # fmt: skip
    problems = parameter_problems(model, operation, params)
    if problems:
        raise ForecastInputError(f"{operation}: {problems}")


def _split(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ForecastInputError(f"ClientError: {uri!r} is not an s3:// URI")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


#: The input formats a time-series job takes (``AutoMLJobChannel.ContentType``).
CSV = "text/csv;header=present"
PARQUET = "x-application/vnd.amazon+parquet"
_NO_SPLIT = "Autopilot splits a time-series job's input into training and validation itself"


def deploy_endpoint(config: Any, job_name: str, taken: Any) -> str | None:
    """``ModelDeployConfig`` → the endpoint the job's best candidate is deployed to once it is
    trained (None: no deployment), as AWS documents it: ``EndpointName`` if and only if
    ``AutoGenerateEndpointName`` is false; a generated name is ``<job>-endpoint``. Refused with
    ``ValidationException`` (``ForecastInputError``) otherwise, or when ``taken`` (the existing
    endpoints' names) already holds it."""
    if config is None:
        return None
    if not isinstance(config, dict) or set(config) - {"AutoGenerateEndpointName", "EndpointName"}:
        raise ForecastInputError(
            f"ValidationException: ModelDeployConfig {config!r} takes AutoGenerateEndpointName "
            "and EndpointName only"
        )
    generate, name = bool(config.get("AutoGenerateEndpointName")), config.get("EndpointName")
    if generate == bool(name):
        raise ForecastInputError(
            "ValidationException: ModelDeployConfig: specify EndpointName if and only if "
            f"AutoGenerateEndpointName is false (AutoGenerateEndpointName {generate}, "
            f"EndpointName {name!r})"
        )
    name = name or f"{job_name}-endpoint"
    if name in taken:
        raise ForecastInputError(
            f"ValidationException: ModelDeployConfig: endpoint {name!r} already exists"
        )
    return name


def _deploy(job: Any) -> None:
    """The trained job's best candidate on its endpoint (``ModelDeployConfig``): a model and
    an endpoint config named after the job, and the endpoint, in service at once."""
    from moto.sagemaker.models import sagemaker_backends

    tracked: _Tracked = job._dfp
    backend = sagemaker_backends[job.account_id][job.region_name]
    model, config = f"{job.auto_ml_job_name}-model", f"{job.auto_ml_job_name}-config"
    for kind, name, taken in (("model", model, backend._models),
                              ("endpoint config", config, backend.endpoint_configs),
                              ("endpoint", tracked.endpoint, backend.endpoints)):  # fmt: skip
        if name in taken:
            raise ForecastInputError(f"ModelDeploymentError: the {kind} {name!r} already exists")
    backend.create_model(model_name=model, execution_role_arn=job.role_arn,
                         primary_container=None, vpc_config=None,
                         containers=tracked.best["InferenceContainers"], tags=None)  # fmt: skip
    backend.create_endpoint_config(
        endpoint_config_name=config,
        production_variants=[{"VariantName": "AllTraffic", "ModelName": model,
                              "InitialInstanceCount": 1, "InstanceType": "ml.m5.xlarge"}],
        data_capture_config={}, async_inference_config={}, tags=[], kms_key_id="",
    )  # fmt: skip
    backend.create_endpoint(endpoint_name=tracked.endpoint, endpoint_config_name=config, tags=[])
    tracked.deployed = tracked.endpoint


def training_channel(channels: Any, data_split: Any = None) -> tuple[str, str]:
    """The time-series job's one training channel, checked as ``CreateAutoMLJobV2`` checks it:
    its ``S3Uri`` and ``ContentType`` (:data:`CSV` when not given). A time-series job takes an
    ``S3Prefix`` of CSV or Parquet, uncompressed, and no ``DataSplitConfig`` or validation
    channel; anything else is a ``ValidationException`` here rather than an input misread."""
    if data_split:
        raise ForecastInputError(
            f"ValidationException: DataSplitConfig must not be set for the time-series "
            f"forecasting problem type: {_NO_SPLIT}"
        )
    if not isinstance(channels, list) or not channels:
        raise ForecastInputError("ValidationException: AutoMLJobInputDataConfig needs a channel")
    kinds = [c.get("ChannelType", "training") for c in channels]
    if "validation" in kinds:
        raise ForecastInputError(
            f"ValidationException: a validation channel is not taken by the time-series "
            f"forecasting problem type: {_NO_SPLIT}"
        )
    if len(channels) > 1:
        raise ForecastInputError(
            f"ValidationException: AutoMLJobInputDataConfig has {len(channels)} training "
            "channels; a time-series job takes one (an S3 prefix may hold many files)"
        )
    channel = channels[0]
    source = (channel.get("DataSource") or {}).get("S3DataSource") or {}
    if source.get("S3DataType", "S3Prefix") != "S3Prefix":
        raise ForecastInputError(
            f"ValidationException: S3DataType {source['S3DataType']!r} is not supported for "
            "the time-series forecasting problem type: S3Prefix only"
        )
    compression = channel.get("CompressionType", "None")
    if compression != "None":
        raise ForecastInputError(
            f"ValidationException: CompressionType {compression!r} is allowed for tabular "
            "data only; a time-series job's input is uncompressed (None)"
        )
    given = channel.get("ContentType")
    content = CSV if given is None else given.replace(" ", "").lower()
    if content not in (CSV, PARQUET):
        raise ForecastInputError(
            f"ValidationException: ContentType {given!r} is not one the time-series "
            f"forecasting problem type takes: {CSV} or {PARQUET}"
        )
    return source.get("S3Uri", ""), content


def read_input(s3: Any, uri: str, content: str = CSV) -> tuple[pd.DataFrame, str]:
    """Every object under the prefix, CSV or Parquet (``content``), as text: the forecaster
    reads both the same way. Also the first object's file name."""
    bucket, prefix = _split(uri)
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", []) if not o["Key"].endswith("/")]
    keys = sorted(k for k in keys if not k.rsplit("/", 1)[-1].startswith(("_", ".")))
    if not keys:
        raise ForecastInputError(f"ClientError: no input data found at {uri}")
    frames = []
    for key in keys:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        where = f"s3://{bucket}/{key}"
        frames.append(
            _parquet_as_text(body, where) if content == PARQUET else _csv_text(body, where)
        )
    header = list(frames[0].columns)
    what = "columns" if content == PARQUET else "header"
    for key, frame in zip(keys, frames, strict=True):
        if list(frame.columns) != header:
            raise ForecastInputError(
                f"ClientError: s3://{bucket}/{key} has {what} {list(frame.columns)}, "
                f"the first file has {header}"
            )
    frame = pd.concat(frames, ignore_index=True)
    # where each row came from, so that a bad value is named by its object and data row
    frame.attrs["objects"] = [
        (f"s3://{bucket}/{k}", len(f)) for k, f in zip(keys, frames, strict=True)
    ]
    return frame, keys[0].rsplit("/", 1)[-1]


def _csv_text(body: bytes, where: str) -> pd.DataFrame:
    """A CSV with a header as text columns (the forecaster parses and checks the values).

    Every record must have as many fields as the header: pandas would read a record with one
    field more as if its first field were a row label (every value moved one column left) or,
    told not to, drop the extra field, and would read one with a field less as a row whose
    target is empty (a future row). Either is the input read wrong without a word, so such a
    record is refused naming the object, its line and both counts."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ForecastInputError(
            f"ClientError: {where} is not UTF-8 text (byte {exc.start}: "
            f"{body[exc.start : exc.start + 1]!r}); AutoML reads CSV in UTF-8"
        ) from None
    _refuse_ragged(text, where)
    try:
        # the header as written: pandas renames a repeated name (demand, demand.1)
        names = pd.read_csv(io.StringIO(text), header=None, nrows=1, dtype=str,
                            keep_default_na=False).iloc[0].tolist()  # fmt: skip
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False,
                            index_col=False)  # fmt: skip
    except Exception as exc:  # pandas names the parse problem
        raise ForecastInputError(f"ClientError: {where} is not CSV: {exc}") from None
    _refuse_repeated(names, where)
    return frame


def _refuse_ragged(text: str, where: str) -> None:
    try:
        ragged = ragged_record(text)
    except csv.Error as exc:
        raise ForecastInputError(f"ClientError: {where} is not CSV: {exc}") from None
    if ragged is not None:
        line, fields, wanted, record = ragged
        raise ForecastInputError(
            f"ClientError: {where} line {line} has {fields} fields, the header has {wanted}: "
            f"{record[:120]!r}"
        )


def _refuse_repeated(names: list[str], where: str) -> None:
    """A column named twice: which one is the target, or the related series? Refused naming it
    (pandas would have renamed the second ``demand.1`` and used it as a related series)."""
    twice = next((name for i, name in enumerate(names) if name in names[:i]), None)
    if twice is not None:
        raise ForecastInputError(
            f"ClientError: {where} names the column {twice!r} twice; each column needs a name "
            "of its own"
        )


def _parquet_as_text(body: bytes, where: str) -> pd.DataFrame:
    """A Parquet object's columns as the text a CSV of them holds (empty for null), so that one
    reader validates both: numbers as numbers print, dates ``yyyy-MM-dd``, timestamps
    ``yyyy-MM-dd HH:mm:ss``. A timestamp in a zone other than UTC, or with a fraction of a
    second, has no such text: it is refused naming the column and the data row, not shifted."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        table = pq.ParquetFile(io.BytesIO(body)).read()  # read_table refuses repeated names
    except Exception as exc:  # pyarrow names what is wrong with the file
        raise ForecastInputError(f"ClientError: {where} is not Parquet: {exc}") from None
    _refuse_repeated(table.column_names, where)
    out = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        kind = column.type
        if pa.types.is_timestamp(kind):
            if kind.tz not in (None, "UTC", "Etc/UTC", "+00:00", "Z"):
                raise ForecastInputError(
                    f"ClientError: {where}: column {name!r} holds timestamps in time zone "
                    f"{kind.tz}; AutoML's timestamps have no zone: write them as local times "
                    "(yyyy-MM-dd HH:mm:ss) or in UTC"
                )
            column = column.cast(pa.timestamp(kind.unit))
            whole = pc.equal(pc.floor_temporal(column, unit="second"), column)
            if not pc.all(pc.fill_null(whole, True)).as_py():
                at = pc.index(pc.fill_null(whole, True), False).as_py()
                raise ForecastInputError(
                    f"ClientError: {where}: column {name!r} has a timestamp with a fraction "
                    f"of a second (data row {at + 1}: {column[at].as_py()}); AutoML's are "
                    "yyyy-MM-dd HH:mm:ss"
                )
            text = pc.strftime(column.cast(pa.timestamp("s")), format="%Y-%m-%d %H:%M:%S")
        elif pa.types.is_date(kind):
            text = pc.strftime(column, format="%Y-%m-%d")
        elif pa.types.is_floating(kind):
            text = pc.if_else(pc.is_nan(column), None, column).cast(pa.string())
        elif (
            pa.types.is_integer(kind) or pa.types.is_decimal(kind) or pa.types.is_string(kind)
            or pa.types.is_large_string(kind) or pa.types.is_boolean(kind)
            or pa.types.is_dictionary(kind)
        ):  # fmt: skip
            text = column.cast(pa.string())
        else:
            raise ForecastInputError(
                f"ClientError: {where}: column {name!r} is of Parquet type {kind}; AutoML's "
                "columns hold numbers, text, dates or timestamps"
            )
        out[name] = text.fill_null("").to_pandas().astype(str)
    return pd.DataFrame(out, columns=table.column_names)


def _put(s3: Any, uri: str, body: str, content_type: str = "text/csv") -> None:
    bucket, key = _split(uri)
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode(), ContentType=content_type)


def _csv(frame: pd.DataFrame) -> str:
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[column]):
            timed = (out[column] != out[column].dt.normalize()).any()
            out[column] = out[column].dt.strftime("%Y-%m-%d %H:%M:%S" if timed else "%Y-%m-%d")
    return out.to_csv(index=False, float_format="%.6g", lineterminator="\n")


def job_config(
    problem: dict[str, Any],
    backtest_windows: int,
    n_jobs: int | None,
    selection_windows: int | None = None,
    objective: dict[str, Any] | None = None,
) -> ForecastConfig:
    """A ``TimeSeriesForecastingJobConfig`` and the job's ``AutoMLJobObjective`` →
    :class:`ForecastConfig` (raises on bad values, and on options the local forecaster cannot
    honour: never silently ignored). Its ``CompletionCriteria`` are the job's, not the
    forecaster's: :func:`check_completion_criteria`."""
    try:
        parse_frequency(problem.get("ForecastFrequency"))
    except FrequencyError as exc:
        raise ForecastInputError(str(exc)) from None
    horizon = problem.get("ForecastHorizon")
    if not isinstance(horizon, int) or not 1 <= horizon <= 500:
        raise ForecastInputError(f"ForecastHorizon {horizon!r} must be an integer in 1-500")
    series = problem.get("TimeSeriesConfig") or {}
    for name in ("TargetAttributeName", "TimestampAttributeName", "ItemIdentifierAttributeName"):
        if not series.get(name):
            raise ForecastInputError(f"TimeSeriesConfig.{name} is required")
    grouping = series.get("GroupingAttributeNames")
    if grouping is not None:
        named = {series[n] for n in ("TargetAttributeName", "TimestampAttributeName",
                                     "ItemIdentifierAttributeName")}  # fmt: skip
        if (
            not isinstance(grouping, list)
            or not 1 <= len(grouping) <= 5
            or not all(isinstance(g, str) and 1 <= len(g) <= 256 for g in grouping)
        ):
            raise ForecastInputError(
                f"ValidationException: TimeSeriesConfig.GroupingAttributeNames {grouping!r} must "
                "be a list of 1-5 column names"
            )  # fmt: skip
        clash = [g for g in grouping if g in named or grouping.count(g) > 1]
        if clash:
            raise ForecastInputError(
                f"ValidationException: TimeSeriesConfig.GroupingAttributeNames names {clash[0]!r} "
                "twice or as the target, timestamp or item identifier"
            )
    if problem.get("FeatureSpecificationS3Uri"):
        raise ForecastInputError(
            "FeatureSpecificationS3Uri is not supported by the local forecaster: every column "
            "that is not named in TimeSeriesConfig is used"
        )
    try:
        algorithms = check_algorithms(problem.get("CandidateGenerationConfig"))
    except AlgorithmError as exc:
        raise ForecastInputError(str(exc)) from None
    check_transformations(problem.get("Transformations"), series["TargetAttributeName"])
    country = check_holiday_config(problem.get("HolidayConfig"))
    extra = {"n_jobs": n_jobs} if n_jobs else {}
    return ForecastConfig(
        frequency=problem["ForecastFrequency"],
        horizon=horizon,
        quantiles=parse_quantiles(problem.get("ForecastQuantiles")),
        target=series["TargetAttributeName"],
        timestamp=series["TimestampAttributeName"],
        item_id=series["ItemIdentifierAttributeName"],
        grouping=tuple(grouping or ()),
        backtest_windows=backtest_windows,
        selection_windows=selection_windows,
        algorithms=algorithms,
        transformations=problem.get("Transformations"),
        holiday_country=country,
        objective=check_objective(objective),
        **extra,
    )


# ------------------------------------------------------------------------------ training job
_steps: dict[str, str] = {}  # job name → its training's latest step, while it trains
_steps_lock = threading.Lock()


def training_steps() -> dict[str, str]:
    """What each AutoML job training in this process is doing (job name → its latest step, e.g.
    ``backtesting 3974 smooth series (season 7, 3 windows, 6 candidates)``): a forecast of
    thousands of series takes minutes, and a progress display can say where it is."""
    with _steps_lock:
        return dict(_steps)


def _train_job(job: Any, config: ForecastConfig, fail_with: str | None = None) -> None:
    try:
        _train(job, config, fail_with)
    finally:
        with _steps_lock:
            _steps.pop(job.auto_ml_job_name, None)


def _train(job: Any, config: ForecastConfig, fail_with: str | None) -> None:
    tracked: _Tracked = job._dfp
    region = job.region_name

    def checkpoint() -> None:
        if tracked.stop.is_set():
            raise _Stopped()

    def progress(message: str) -> None:  # training's steps: where a stopped job ends
        logger.info("AutoML %s", message)
        with _steps_lock:
            _steps[job.auto_ml_job_name] = message
        checkpoint()

    try:
        if fail_with is not None:
            raise ForecastInputError(fail_with)
        while not _work_lock.acquire(timeout=0.2):  # another job trains: wait, unless stopped
            checkpoint()
        try:
            progress(f"job {job.auto_ml_job_name} starts")
            s3 = embedded_client("s3", region)
            # checked when the job was created: the one training channel
            uri, content = training_channel(job.auto_ml_job_input_data_config)
            progress(f"reading {uri}")
            frame, _ = read_input(s3, uri, content)
            dataset = load_dataset(frame, config)
            result = train(dataset, config, progress=progress)
            logger.info("AutoML job %s trained in %.1f s", job.auto_ml_job_name, result.seconds)
            with tracked.lock:
                if tracked.stop.is_set():
                    raise _Stopped()
                tracked.committing = True
            out = f"{job.output_data_config['S3OutputPath'].rstrip('/')}/{job.auto_ml_job_name}"
            model_uri = f"{out}/sagemaker-automl-candidates/{CANDIDATE}/model/model.json"
            backtest = f"{out}/backtest-results/{CANDIDATE}"
            insights = f"{out}/model-insights/{CANDIDATE}"
            _put(s3, model_uri, model_document(result), "application/json")
            _put(
                s3,
                f"{backtest}/forecasted-values/part-00000.csv",
                _csv(split_series(result.backtest, "item_id", config.grouping)),
            )
            _put(
                s3,
                f"{backtest}/accuracy-metrics-values/part-00000.csv",
                _csv(split_series(_per_item(result, config.quantiles), "item_id",
                                  config.grouping)),
            )  # fmt: skip
            _put(
                s3,
                f"{backtest}/accuracy-metrics.json",
                json.dumps(result.metrics, indent=1, sort_keys=True),
                "application/json",
            )
            if result.selection_metrics is not None:
                _put(
                    s3,
                    f"{backtest}/selection-accuracy-metrics.json",
                    json.dumps(result.selection_metrics, indent=1, sort_keys=True),
                    "application/json",
                )
            chosen_counts = pd.Series(result.chosen).value_counts().sort_index()
            _put(
                s3,
                f"{insights}/candidates.json",
                json.dumps(
                    {
                        "chosen_per_item": _readable(result.chosen),
                        "weights_per_item": _readable(result.weights),
                        "items_per_model": {k: int(v) for k, v in chosen_counts.items()},
                        "held_out": summary_metrics(result.metrics),
                        "selection": summary_metrics(result.selection_metrics)
                        if result.selection_metrics
                        else None,
                        "unaligned_series": _readable(result.unaligned),
                        "not_backtested": [_series_name(s) for s in result.untested],
                        # neither a target value nor item metadata: not forecast, as on AWS
                        "skipped_items": [_series_name(s) for s in result.skipped],
                        "ensemble": result.document.get("ensemble"),
                        "objective": config.objective,
                        "selection_windows": result.document.get("selection_windows"),
                        "candidates": {
                            alias: summary_metrics(m)
                            for alias, m in sorted(result.candidate_metrics.items())
                        },
                        "baseline": {
                            "model": "SeasonalNaive",
                            "metrics": summary_metrics(result.baseline),
                        },
                    },
                    indent=1,
                    sort_keys=True,
                ),
                "application/json",
            )
        finally:
            _work_lock.release()
        flat = summary_metrics(result.metrics)
        now = dt.datetime.now(dt.UTC)
        objective = flat.get(config.objective)
        if objective is None:  # e.g. MAPE where every actual held out was 0
            logger.warning("AutoML job %s: its objective %s has no value on the held-out "
                           "windows", job.auto_ml_job_name, config.objective)  # fmt: skip
        tracked.best = {
            "CandidateName": CANDIDATE,
            "FinalAutoMLJobObjectiveMetric": {
                "Type": "Minimize",
                "MetricName": config.objective,
                "Value": 0.0 if objective is None else objective,
                "StandardMetricName": config.objective,
            },
            "ObjectiveStatus": "Failed" if objective is None else "Succeeded",
            "CandidateSteps": [],
            "CandidateStatus": "Completed",
            "InferenceContainers": [
                {
                    "Image": IMAGE,
                    "ModelDataUrl": model_uri,
                    "Environment": {"FORECAST_QUANTILES": ",".join(map(str, config.quantiles))},
                }
            ],
            "CreationTime": job.creation_time,
            "EndTime": now,
            "LastModifiedTime": now,
            "CandidateProperties": {
                "CandidateArtifactLocations": {
                    "Explainability": f"{out}/explainability/{CANDIDATE}",
                    "ModelInsights": insights,
                    "BacktestResults": backtest,
                },
                "CandidateMetrics": [
                    {
                        "MetricName": name,
                        "Value": flat[name],
                        "Set": "Validation",
                        "StandardMetricName": name,
                    }
                    for name in ("AverageWeightedQuantileLoss", "WAPE", "RMSE", "MASE", "MAPE")
                    if flat[name] is not None
                ],
            },
        }
        if tracked.endpoint is not None:
            tracked.secondary = "DeployingModel"
            try:
                _deploy(job)
            except Exception as exc:  # the candidate stays: only its deployment failed
                _settle(tracked, "Failed", "ModelDeploymentError", reason=str(exc))
                return
        _settle(tracked, "Completed", "Completed")
    except _Stopped:
        logger.info("AutoML job %s stopped while training: nothing written",
                    job.auto_ml_job_name)  # fmt: skip
        _settle(tracked, "Stopped", "Stopped")
    except ForecastInputError as exc:
        _settle(tracked, "Failed", reason=str(exc))
    except Exception as exc:
        logger.warning("AutoML job %s failed: %s", job.auto_ml_job_name, exc)
        logger.debug("%s", traceback.format_exc())
        _settle(tracked, "Failed", reason=f"AlgorithmError: {type(exc).__name__}: {exc}")


def _settle(tracked: _Tracked, state: str, secondary: str | None = None,
            reason: str | None = None) -> None:  # fmt: skip
    """The job's final state, unless a stop or a runtime limit settled it first."""
    with tracked.lock:
        if tracked.stop.is_set() and not tracked.committing:
            if tracked.state != "Stopping":
                return  # a runtime limit ended it
            state, secondary, reason = "Stopped", "Stopped", None  # StopAutoMLJob: ended now
        elif tracked.state != "InProgress":
            return
        tracked.state, tracked.secondary = state, secondary
        tracked.reason = reason or tracked.reason
        tracked.ended = dt.datetime.now(dt.UTC)
        if tracked.timer is not None:
            tracked.timer.cancel()


def _series_name(series: str) -> str:
    """A series id as people read it: ``P00001|S001`` for an item at a store."""
    return str(series).replace(KEY_SEPARATOR, "|")


def _readable(by_series: dict) -> dict:
    return {_series_name(k): v for k, v in by_series.items()}


def _per_item(result: Any, quantiles: tuple[float, ...]) -> pd.DataFrame:
    """``accuracy-metrics-values``: per item and window, wQL per quantile, WAPE and RMSE."""
    rows = []
    for (start, item), part in result.backtest.groupby(
        ["backtestwindow_start_time", "item_id"], sort=True
    ):
        metrics = window_metrics(part, quantiles)
        row = {"item_id": item, "backtest_window_start": pd.Timestamp(start).date().isoformat()}
        for loss in metrics["WeightedQuantileLosses"]:
            row[f"wQL[{forecast_type(loss['Quantile'])}]"] = loss["LossValue"]
        row["Average wQL"] = metrics["AverageWeightedQuantileLoss"]
        row["WAPE"] = metrics["ErrorMetrics"][0]["WAPE"]
        row["RMSE"] = metrics["RMSE"]
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- transform job
def _containers(model: Any) -> list[dict]:
    return model.containers or [model.primary_container or {}]


def _forecaster_model(backend: Any, model_name: str, s3: Any) -> tuple[ForecastConfig, dict]:
    """The job config and model document a SageMaker model's ``ModelDataUrl`` holds; refused
    (``ForecastInputError``) for a missing model, a missing URL, or a document that is not this
    forecaster's current format (an older model's calibration would be misread)."""
    model = backend._models.get(model_name)
    if model is None:
        raise ForecastInputError(f"ClientError: model {model_name!r} does not exist")
    url = next((c.get("ModelDataUrl") for c in _containers(model) if c.get("ModelDataUrl")), None)
    if not url:
        raise ForecastInputError("ClientError: the model has no ModelDataUrl")
    bucket, key = _split(url)
    document = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    found = document.get("format") if isinstance(document, dict) else None
    if found != FORMAT:
        what = f"a {found!r} model" if isinstance(found, str) else "no forecaster model"
        raise ForecastInputError(
            f"ClientError: the model at {url} is {what}, this forecaster reads "
            f"{FORMAT}: train it again (a new AutoML job) to forecast with it"
        )
    config = config_from_document(
        document, settings(backend.account_id, backend.region_name).n_jobs
    )
    return config, document


def _transform_job(backend: Any, job: Any) -> None:
    tracked: _Tracked = job._dfp
    try:
        with _work_lock:
            s3 = embedded_client("s3", backend.region_name)
            config, document = _forecaster_model(backend, job.model_name, s3)
            uri = job.transform_input["DataSource"]["S3DataSource"]["S3Uri"]
            frame, name = read_input(s3, uri)
            dataset = load_dataset(frame, config)
            forecast = predict(dataset, config, document)
            out = job.transform_output["S3OutputPath"].rstrip("/")
            forecast = split_series(forecast, config.item_id, config.grouping)
            _put(s3, f"{out}/{name}.out", _csv(forecast))
            tracked.extra["rows"] = len(forecast)
        tracked.state = "Completed"
    except ForecastInputError as exc:
        tracked.reason = str(exc)
        tracked.state = "Failed"
    except Exception as exc:
        logger.warning("transform job %s failed: %s", job.transform_job_name, exc)
        logger.debug("%s", traceback.format_exc())
        tracked.reason = f"AlgorithmError: {type(exc).__name__}: {exc}"
        tracked.state = "Failed"
    tracked.ended = dt.datetime.now(dt.UTC)


def endpoint_forecast(backend: Any, endpoint_name: str, body: bytes,
                      content_type: str | None) -> tuple[str, str] | None:  # fmt: skip
    """``InvokeEndpoint`` on an endpoint serving this forecaster's model: the forecast of the
    CSV ``body`` (the training input's columns, history up to each item's own end), as a
    transform job writes it, and the production variant that answered. ``None`` when the
    endpoint serves some other model (moto's configured results answer it). Raises
    ``LookupError`` for an unknown endpoint and ``ForecastInputError`` for a request the model
    refuses (the container's 400)."""
    endpoint = backend.endpoints.get(endpoint_name)
    if endpoint is None:
        raise LookupError(endpoint_name)
    config = backend.endpoint_configs.get(endpoint.endpoint_config_name)
    variants = (config.production_variants if config is not None else None) or []
    if not variants:
        return None
    variant = variants[0]  # traffic weights are not emulated: the first variant answers
    model = backend._models.get(variant.get("ModelName"))
    if model is None or not any(c.get("Image") == IMAGE for c in _containers(model)):
        return None
    if (content_type or "text/csv").split(";")[0].strip().lower() != "text/csv":
        raise ForecastInputError(
            f"ContentType {content_type!r} is not supported: send the history as text/csv"
        )
    with _work_lock:
        s3 = embedded_client("s3", backend.region_name)
        forecast_config, document = _forecaster_model(backend, model.model_name, s3)
        dataset = load_dataset(_csv_text(body, "the request body"), forecast_config)
        forecast = predict(dataset, forecast_config, document)
        forecast = split_series(forecast, forecast_config.item_id, forecast_config.grouping)
    return _csv(forecast), variant.get("VariantName", "AllTraffic")


def _listed_status(job: Any) -> str | None:
    tracked: _Tracked | None = getattr(job, "_dfp", None)
    return tracked.state if tracked is not None else job.__dict__.get("_moto_status")


def _store_status(job: Any, value: str) -> None:
    job.__dict__["_moto_status"] = value


# ------------------------------------------------------------------------ embedded moto patch
@moto_patch("sagemaker-runtime")
def install_runtime() -> None:
    """``InvokeEndpoint`` that forecasts (:func:`endpoint_forecast`); moto answers every call
    with the fixed text ``body``, to any endpoint name, existing or not."""
    from moto.core.exceptions import JsonRESTError
    from moto.sagemaker.models import sagemaker_backends
    from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

    original = SageMakerRuntimeResponse.invoke_endpoint

    class ModelError(JsonRESTError):
        """The container answered 400: AWS reports it as ``ModelError`` (424) with the
        container's status and message."""

        code = 424

        def __init__(self, reason: str) -> None:
            super().__init__(
                "ModelError", f'Received client error (400) from primary with message "{reason}"'
            )
            self.description = json.dumps(
                {"__type": "ModelError", "message": self.message,
                 "OriginalStatusCode": 400, "OriginalMessage": reason}
            )  # fmt: skip

    def invoke_endpoint(self: Any) -> Any:
        from urllib.parse import unquote

        name = unquote(self.path.split("?")[0].split("/")[2])  # /endpoints/<name>/invocations
        backend = sagemaker_backends[self.current_account][self.region]
        try:
            body = self.raw_body if isinstance(self.raw_body, bytes) else str(self.body).encode()
            answered = endpoint_forecast(backend, name, body, self.headers.get("Content-Type"))
        except LookupError:
            raise JsonRESTError(
                "ValidationError", f"Endpoint {name} of account {self.current_account} not found."
            ) from None
        except ForecastInputError as exc:
            raise ModelError(str(exc)) from None
        if answered is None:
            return original(self)
        body, variant = answered
        headers = {"Content-Type": "text/csv", "x-Amzn-Invoked-Production-Variant": variant}
        return 200, headers, body

    SageMakerRuntimeResponse.invoke_endpoint = invoke_endpoint


@moto_patch("sagemaker")
def install_in_process() -> None:
    """Make the in-process moto run the forecaster behind the AutoML V2 calls (idempotent)."""
    from moto.sagemaker import models as sm
    from moto.sagemaker.exceptions import ResourceInUseException, ResourceNotFound, ValidationError
    from moto.sagemaker.responses import SageMakerResponse

    original_create = sm.SageMakerModelBackend.create_auto_ml_job_v2
    original_describe = sm.AutoMLJob.describe
    original_summary = sm.AutoMLJob.summary
    original_stop = sm.SageMakerModelBackend.stop_auto_ml_job
    original_transform = sm.SageMakerModelBackend.create_transform_job
    original_transform_describe = sm.FakeTransformJob.response_object.fget

    def create_auto_ml_job_v2(self: Any, *args: Any, **kwargs: Any) -> str:
        try:
            check_request_types("CreateAutoMLJobV2", kwargs)
        except ForecastInputError as exc:
            raise ValidationError(message=str(exc)) from None
        problem = kwargs.get("auto_ml_problem_type_config") or {}
        config = None
        if "TimeSeriesForecastingJobConfig" in problem:
            local = settings(self.account_id, self.region_name)
            try:
                config = job_config(
                    problem["TimeSeriesForecastingJobConfig"],
                    local.backtest_windows,
                    local.n_jobs,
                    local.selection_windows,
                    objective=kwargs.get("auto_ml_job_objective"),
                )
                limits = check_completion_criteria(
                    problem["TimeSeriesForecastingJobConfig"].get("CompletionCriteria")
                )
                training_channel(
                    kwargs.get("auto_ml_job_input_data_config"), kwargs.get("data_split_config")
                )
                deploy_config = kwargs.get("model_deploy_config")
                name = kwargs["auto_ml_job_name"]
                endpoint = deploy_endpoint(deploy_config, name, self.endpoints)
                # moto's AutoMLJob fails on AutoGenerateEndpointName alone (KeyError): it gets
                # none, and the job describes the request's own
                kwargs["model_deploy_config"] = None
            except ForecastInputError as exc:
                raise ValidationError(message=str(exc)) from None
            problem["TimeSeriesForecastingJobConfig"].setdefault(
                "CompletionCriteria", {"MaxAutoMLJobRuntimeInSeconds": 259200}
            )
        arn = original_create(self, *args, **kwargs)
        if config is not None:
            job = self.auto_ml_jobs[kwargs["auto_ml_job_name"]]
            job._dfp = _Tracked(endpoint=endpoint, deploy_config=deploy_config)
            fail_with = None
            local = settings(self.account_id, self.region_name)
            with _settings_lock:
                if local.fail_automl_jobs > 0:
                    local.fail_automl_jobs -= 1
                    local.failed_on_purpose += 1
                    fail_with = INJECTED_FAILURE
            if limits.first is not None:  # the clock runs from the job's creation
                job._dfp.timer = threading.Timer(limits.first[1], _time_up, (job, limits))
                job._dfp.timer.daemon = True
                job._dfp.timer.start()
            _start_background(_train_job, (job, config, fail_with),
                              f"automl-{job.auto_ml_job_name}")  # fmt: skip
        return arn

    def stop_auto_ml_job(self: Any, auto_ml_job_name: str) -> None:
        job = self.auto_ml_jobs.get(auto_ml_job_name)
        tracked: _Tracked | None = getattr(job, "_dfp", None)
        if tracked is None:
            return original_stop(self, auto_ml_job_name)
        if not _halt(job, "Stopping", "Stopping"):
            where = "writing its model" if tracked.committing else f"in status {tracked.state}"
            raise ValidationError(
                message=f"The request was rejected because the AutoML job {auto_ml_job_name} "
                f"is {where}."
            )
        return None

    def statuses(self: Any, out: dict[str, Any]) -> _Tracked | None:
        """``out``'s status fields as the job's work stands (moto's are fixed)."""
        tracked: _Tracked | None = getattr(self, "_dfp", None)
        if tracked is None:
            return None
        out["AutoMLJobStatus"] = tracked.state
        out["AutoMLJobSecondaryStatus"] = tracked.secondary or {
            "InProgress": "TrainingModels", "Completed": "Completed", "Failed": "Failed"
        }[tracked.state]  # fmt: skip
        out["PartialFailureReasons"] = []
        if tracked.ended:
            out["EndTime"] = tracked.ended
            out["LastModifiedTime"] = tracked.ended
        else:
            out.pop("EndTime", None)
        if tracked.reason:
            out["FailureReason"] = tracked.reason
        else:
            out.pop("FailureReason", None)
        return tracked

    def summary(self: Any) -> dict[str, Any]:
        out = original_summary(self)
        statuses(self, out)
        return out

    def describe(self: Any) -> dict[str, Any]:
        out = original_describe(self)
        tracked = statuses(self, out)
        if tracked is None:
            return out
        out.pop("ModelDeployConfig", None)  # moto's placeholders
        out.pop("ModelDeployResult", None)
        if tracked.deploy_config:
            out["ModelDeployConfig"] = tracked.deploy_config
        if tracked.deployed:
            out["ModelDeployResult"] = {"EndpointName": tracked.deployed}
        # moto's placeholders: a time-series job has no split to report (DataSplitConfig must not
        # be set) and the local world writes no notebooks ("candidate/notebook/location")
        out.pop("DataSplitConfig", None)
        out.pop("AutoMLJobArtifacts", None)
        if tracked.best:
            out["BestCandidate"] = tracked.best
        else:
            out.pop("BestCandidate", None)
        return out

    def create_transform_job(self: Any, transform_job_name: str, **kwargs: Any) -> Any:
        try:
            check_request_types("CreateTransformJob",
                                {"transform_job_name": transform_job_name, **kwargs})  # fmt: skip
        except ForecastInputError as exc:
            raise ValidationError(message=str(exc)) from None
        if transform_job_name in self.transform_jobs:
            raise ResourceInUseException(
                message=f"Job name must be unique within an AWS account and region, and a "
                f"job with this name already exists ({transform_job_name})"
            )
        job = original_transform(self, transform_job_name=transform_job_name, **kwargs)
        job._dfp = _Tracked()
        _start_background(_transform_job, (self, job), f"transform-{transform_job_name}")
        return job

    def transform_response(self: Any) -> dict[str, Any]:
        out = original_transform_describe(self)
        tracked: _Tracked | None = getattr(self, "_dfp", None)
        if tracked is None:
            return out
        out["TransformJobStatus"] = tracked.state
        if tracked.ended:
            out["TransformEndTime"] = tracked.ended
        else:
            out.pop("TransformEndTime", None)
        if tracked.reason:
            out["FailureReason"] = tracked.reason
        else:
            out.pop("FailureReason", None)
        return out

    def leave_out_empty(action: str, keys: tuple[str, ...]) -> None:
        """``action``'s answer without the empty placeholders moto gives for what the request
        left out, as AWS leaves them out: an empty ``VpcConfig`` or ``DataCaptureConfig`` lacks
        the fields it requires, so the SageMaker Python SDK's ``Model``, ``EndpointConfig`` and
        ``Endpoint`` resources (whose types hold it to them) failed on every describe. Only the
        answer changes: moto's own code reads the full descriptions (``CreateEndpoint`` copies
        its config's ``DataCaptureConfig``)."""
        from moto.core.responses import ActionResult

        original = getattr(SageMakerResponse, action)

        def answer(self: Any) -> Any:
            result = original(self)
            described = getattr(result, "result", None)
            if isinstance(described, dict):
                result = ActionResult({k: v for k, v in described.items()
                                       if k not in keys or v})  # fmt: skip
            return result

        setattr(SageMakerResponse, action, answer)

    def list_candidates_for_auto_ml_job(self: Any) -> Any:
        """``ListCandidatesForAutoMLJob``, which moto lacks: a time-series job's one candidate
        once it has one (the job's ``BestCandidate``), filtered by ``StatusEquals`` and
        ``CandidateNameEquals``. With one candidate at most, sorting and pages change nothing."""
        from moto.core.responses import ActionResult

        name = self._get_param("AutoMLJobName")
        job = self.sagemaker_backend.auto_ml_jobs.get(name)
        if job is None:
            raise ResourceNotFound(f"Could not find AutoML job with name {name}.")
        tracked: _Tracked | None = getattr(job, "_dfp", None)
        if tracked is None:
            raise ValidationError(
                message=f"The AutoML job {name} is not a time-series forecasting job; the "
                "local world lists the candidates of those only"
            )
        found = [tracked.best] if tracked.best else []
        wanted = {"CandidateStatus": self._get_param("StatusEquals"),
                  "CandidateName": self._get_param("CandidateNameEquals")}  # fmt: skip
        found = [c for c in found if all(v is None or c[k] == v for k, v in wanted.items())]
        return ActionResult({"Candidates": found})

    def describe_auto_ml_job(self: Any) -> Any:
        """V1's ``DescribeAutoMLJob``, which moto lacks: every job here was created with
        ``CreateAutoMLJobV2`` (moto has no V1 create), and AWS documents that "AutoML jobs
        created by calling CreateAutoMLJobV2 cannot be described by DescribeAutoMLJob"."""
        name = self._get_param("AutoMLJobName")
        if name not in self.sagemaker_backend.auto_ml_jobs:
            raise ResourceNotFound(f"Could not find AutoML job with name {name}.")
        raise ValidationError(
            message=f"AutoML job {name} was created by calling CreateAutoMLJobV2: AutoML jobs "
            "created by calling CreateAutoMLJobV2 cannot be described by DescribeAutoMLJob; "
            "call DescribeAutoMLJobV2"
        )

    SageMakerResponse.list_candidates_for_auto_ml_job = list_candidates_for_auto_ml_job
    SageMakerResponse.describe_auto_ml_job = describe_auto_ml_job
    sm.SageMakerModelBackend.create_auto_ml_job_v2 = create_auto_ml_job_v2
    sm.AutoMLJob.describe = describe
    sm.AutoMLJob.summary = summary
    # moto filters ListAutoMLJobs' StatusEquals on this attribute: the work's state, not moto's
    sm.AutoMLJob.auto_ml_job_status = property(_listed_status, _store_status)
    sm.SageMakerModelBackend.stop_auto_ml_job = stop_auto_ml_job
    sm.SageMakerModelBackend.create_transform_job = create_transform_job
    sm.FakeTransformJob.response_object = property(transform_response)
    leave_out_empty("describe_model", ("PrimaryContainer", "VpcConfig"))
    leave_out_empty("describe_endpoint_config", ("DataCaptureConfig",))
    leave_out_empty("describe_endpoint", ("DataCaptureConfig",))
