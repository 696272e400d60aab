"""The local forecaster behind SageMaker AutoML V2: input rules, model choice, AWS outputs."""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pandas as pd
import pytest
from botocore.exceptions import ClientError

from emulation import World
from emulation.sagemaker.forecaster import (
    ForecastConfig,
    ForecastInputError,
    load_dataset,
    predict,
    train,
)

HORIZON = 7


def automl_frame(
    items: int = 4, days: int = 120, horizon: int = HORIZON, seed: int = 3, sparse: int = 1
) -> pd.DataFrame:
    """AutoML's single CSV (as strings): weekly pattern, promotions lift demand; future rows."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2025-01-01", periods=days + horizon, freq="D")
    rows = []
    for i in range(items):
        level = 2.0 if i < sparse else 20.0 + 5 * i
        weekly = 1 + 0.4 * np.sin(2 * np.pi * np.arange(len(dates)) / 7)
        promo = (np.arange(len(dates)) % 30 < 5).astype(int)
        mean = level * weekly * (1 + 0.8 * promo) * (0.1 if i < sparse else 1)
        demand = rng.poisson(mean).astype(float)
        for t, day in enumerate(dates):
            rows.append(
                {
                    "item_id": f"I{i}",
                    "timestamp": day.strftime("%Y-%m-%d"),
                    "demand": "" if t >= days else f"{demand[t]:g}",
                    "price": f"{10 * (1 - 0.2 * promo[t]):.2f}",
                    "promotion_applied": str(promo[t]),
                    "category": f"C{i % 2}",
                }
            )
    return pd.DataFrame(rows)


CONFIG = ForecastConfig(frequency="D", horizon=HORIZON, n_jobs=1)


def test_training_chooses_per_item_and_reports_aws_metrics() -> None:
    dataset = load_dataset(automl_frame(), CONFIG)
    assert dataset.related == ["price", "promotion_applied"]
    result = train(dataset, CONFIG)
    assert set(result.chosen) == {"I0", "I1", "I2", "I3"}
    assert result.chosen["I0"] in {"CrostonOptimized", "ADIDA", "IMAPA"}  # the sparse one
    assert {result.chosen[i] for i in ("I1", "I2", "I3")} <= {
        "SeasonalNaive", "SeasonalESOptimized", "ARIMAX"
    }  # fmt: skip
    windows = result.metrics["PredictorEvaluationResults"][0]["TestWindows"]
    assert windows[0]["EvaluationType"] == "SUMMARY" and len(windows) == 2
    assert {"mean", "0.1", "0.5", "0.9"} == {
        e["ForecastType"] for e in windows[0]["Metrics"]["ErrorMetrics"]
    }
    assert set(result.backtest.columns) >= {
        "item_id", "timestamp", "target_value", "backtestwindow_start_time",
        "backtestwindow_end_time", "p10", "p50", "p90", "mean",
    }  # fmt: skip
    assert len(result.backtest) == 4 * HORIZON
    assert result.baseline is not None


def test_forecast_covers_the_horizon_with_ordered_non_negative_quantiles() -> None:
    dataset = load_dataset(automl_frame(), CONFIG)
    forecast = predict(dataset, CONFIG, train(dataset, CONFIG).chosen)
    assert list(forecast.columns) == ["item_id", "timestamp", "p10", "p50", "p90", "mean"]
    assert len(forecast) == 4 * HORIZON
    assert forecast["timestamp"].min() == pd.Timestamp("2025-05-01")  # day after the history
    assert (forecast[["p10", "p50", "p90"]] >= 0).all().all()
    assert (forecast["p10"] <= forecast["p50"]).all() and (forecast["p50"] <= forecast["p90"]).all()


def test_the_promotion_regressor_lifts_forecasts_on_promotion_days() -> None:
    frame = automl_frame(items=2, days=180, sparse=0)
    dataset = load_dataset(frame, CONFIG)
    forecast = predict(dataset, CONFIG, {"I0": "ARIMAX", "I1": "ARIMAX"})
    future = frame[frame["demand"] == ""][["item_id", "timestamp", "promotion_applied"]]
    joined = forecast.assign(timestamp=forecast["timestamp"].dt.strftime("%Y-%m-%d")).merge(
        future, on=["item_id", "timestamp"]
    )
    lifted = joined.groupby("promotion_applied")["mean"].mean()
    assert lifted["1"] > 1.3 * lifted["0"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f[~((f["item_id"] == "I2") & (f["demand"] == "") &
                       (f["timestamp"] == f["timestamp"].max()))],
         "related time series 'price' does not cover the forecast horizon for item 'I2'"),
        (lambda f: f.assign(category=np.where(f["item_id"] == "I1", "", f["category"])),
         "item 'I1' has no item metadata value for 'category'"),
        (lambda f: f.assign(demand=np.where(f.index == 5, "many", f["demand"])),
         "target column 'demand' has a non-numeric value 'many'"),
        (lambda f: f.assign(timestamp=np.where(f.index == 3, "2025/01/04", f["timestamp"])),
         "not a yyyy-MM-dd timestamp"),
        (lambda f: f.drop(columns=["demand"]), "no column 'demand' named in TimeSeriesConfig"),
    ],
    ids=["related-short", "no-metadata", "bad-target", "bad-timestamp", "no-target"],
)  # fmt: skip
def test_input_that_breaks_aws_rules_is_refused_with_the_reason(mutate, message) -> None:
    with pytest.raises(ForecastInputError, match=message.replace("(", r"\(")):
        load_dataset(mutate(automl_frame()), CONFIG)


def test_horizon_beyond_a_quarter_of_the_history_is_refused() -> None:
    config = ForecastConfig(frequency="D", horizon=40, n_jobs=1)
    with pytest.raises(ForecastInputError, match="more than a quarter"):
        load_dataset(automl_frame(days=120, horizon=40), config)


# ----------------------------------------------------------------------- through the API
def embedded_only(world: World) -> None:
    if world.kind != "embedded":
        pytest.skip("the forecaster runs inside the embedded world only; the unit tests above "
                    "cover it without an endpoint")  # fmt: skip


def _setup(aws: World) -> tuple[str, str]:
    s3, iam = aws.client("s3"), aws.client("iam")
    s3.create_bucket(Bucket="fc-test")
    body = automl_frame().to_csv(index=False).encode()
    s3.put_object(Bucket="fc-test", Key="in/part-0.csv", Body=body)
    role = iam.create_role(RoleName="sm", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    return "s3://fc-test/in/", role


def _job_request(name: str, uri: str, role: str, **config) -> dict:
    return {
        "AutoMLJobName": name,
        "AutoMLJobInputDataConfig": [
            {"ChannelType": "training", "ContentType": "text/csv;header=present",
             "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}}}
        ],
        "OutputDataConfig": {"S3OutputPath": "s3://fc-test/out/"},
        "AutoMLProblemTypeConfig": {"TimeSeriesForecastingJobConfig": {
            "ForecastFrequency": "D", "ForecastHorizon": HORIZON,
            "ForecastQuantiles": ["p10", "p50", "p90"],
            "TimeSeriesConfig": {"TargetAttributeName": "demand",
                                 "TimestampAttributeName": "timestamp",
                                 "ItemIdentifierAttributeName": "item_id"},
            **config,
        }},
        "RoleArn": role,
    }  # fmt: skip


def _wait(call, key: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        out = call()
        if out[key] not in ("InProgress", "Stopping"):
            return out
        assert time.monotonic() < deadline, f"still {out[key]}"
        time.sleep(0.2)


def test_automl_job_model_and_transform_through_boto3(aws: World) -> None:
    embedded_only(aws)
    uri, role = _setup(aws)
    sm, s3 = aws.client("sagemaker"), aws.client("s3")
    sm.create_auto_ml_job_v2(**_job_request("fc-job", uri, role))
    job = _wait(lambda: sm.describe_auto_ml_job_v2(AutoMLJobName="fc-job"), "AutoMLJobStatus")
    assert job["AutoMLJobStatus"] == "Completed", job.get("FailureReason")
    best = job["BestCandidate"]
    names = {m["MetricName"] for m in best["CandidateProperties"]["CandidateMetrics"]}
    assert {"AverageWeightedQuantileLoss", "WAPE", "RMSE", "MASE"} <= names
    backtest = best["CandidateProperties"]["CandidateArtifactLocations"]["BacktestResults"]
    bucket, _, prefix = backtest[5:].partition("/")
    accuracy = json.loads(
        s3.get_object(Bucket=bucket, Key=f"{prefix}/accuracy-metrics.json")["Body"].read()
    )
    objective = best["FinalAutoMLJobObjectiveMetric"]["Value"]
    summary = accuracy["PredictorEvaluationResults"][0]["TestWindows"][0]["Metrics"]
    assert summary["AverageWeightedQuantileLoss"] == pytest.approx(objective)

    sm.create_model(
        ModelName="fc-job", ExecutionRoleArn=role, Containers=best["InferenceContainers"]
    )
    transform = {
        "TransformJobName": "fc-job",
        "ModelName": "fc-job",
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                            "S3Uri": uri}}},
        "TransformOutput": {"S3OutputPath": "s3://fc-test/transform/"},
        "TransformResources": {"InstanceType": "ml.m5.4xlarge", "InstanceCount": 1},
    }  # fmt: skip
    sm.create_transform_job(**transform)
    done = _wait(lambda: sm.describe_transform_job(TransformJobName="fc-job"),
                 "TransformJobStatus")  # fmt: skip
    assert done["TransformJobStatus"] == "Completed", done.get("FailureReason")
    out = s3.get_object(Bucket="fc-test", Key="transform/part-0.csv.out")["Body"].read()
    rows = pd.read_csv(io.BytesIO(out))
    assert list(rows.columns) == ["item_id", "timestamp", "p10", "p50", "p90", "mean"]
    assert len(rows) == 4 * HORIZON
    with pytest.raises(ClientError) as refused:
        sm.create_transform_job(**transform)
    assert refused.value.response["Error"]["Code"] in ("ResourceInUse", "ResourceInUseException")


def test_bad_input_fails_the_job_with_the_reason(aws: World) -> None:
    embedded_only(aws)
    uri, role = _setup(aws)
    s3, sm = aws.client("s3"), aws.client("sagemaker")
    broken = automl_frame()
    broken = broken[~((broken["item_id"] == "I3") & (broken["demand"] == ""))]
    s3.put_object(Bucket="fc-test", Key="in/part-0.csv", Body=broken.to_csv(index=False).encode())
    sm.create_auto_ml_job_v2(**_job_request("fc-bad", uri, role))
    job = _wait(lambda: sm.describe_auto_ml_job_v2(AutoMLJobName="fc-bad"), "AutoMLJobStatus")
    assert job["AutoMLJobStatus"] == "Failed"
    assert "does not cover the forecast horizon for item 'I3'" in job["FailureReason"]
    assert "BestCandidate" not in job


def test_unknown_frequency_is_a_validation_error(aws: World) -> None:
    embedded_only(aws)
    uri, role = _setup(aws)
    request = _job_request("fc-freq", uri, role)
    request["AutoMLProblemTypeConfig"]["TimeSeriesForecastingJobConfig"]["ForecastFrequency"] = "Q"
    with pytest.raises(ClientError, match="ForecastFrequency 'Q' is not supported"):
        aws.client("sagemaker").create_auto_ml_job_v2(**request)
