"""The landing sensor (a new day file → that day's inference run, once) and the drift sensor (N drifting days in a
row → one retrain), evaluated against a real Dagster instance holding real materializations and check results."""

import csv
import types
import uuid

import dagster as dg
import pandas as pd
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from upath import UPath

from support_nlp.core.classifier import UNCERTAIN_NAME
from support_nlp.core.conversation import ISSUE
from support_nlp.core.twcs import CREATED_AT_FORMAT
from support_nlp.definitions import build_definitions, build_resources
from support_nlp.defs.assets import inference
from support_nlp.defs.sensors import (
    DRIFT_DAYS_TAG,
    LANDED_FILE_TAG,
    DriftPolicy,
    build_drift_retrain_sensor,
    build_landing_sensor,
)
from support_nlp.partitions import daily_partitions
from support_nlp.resources import TweetSource

# --- landing sensor -------------------------------------------------------------------------------------------

NOT_DAY_FILES = ["twcs.csv", "notes.txt", "twcs-2017-11-04.parquet", "twcs-20171104.csv", "old-twcs-2017-11-04.csv"]


@pytest.fixture(scope="module")
def real_rows_by_day(bundled_sample) -> dict[str, pd.DataFrame]:
    """Every row (customer tweets and brand replies) of the real bundled sample, by UTC day of created_at."""
    day = pd.to_datetime(bundled_sample["created_at"], format=CREATED_AT_FORMAT, utc=True).dt.strftime("%Y-%m-%d")
    return dict(tuple(bundled_sample.groupby(day)))


@pytest.fixture(params=["local", "memory"])
def landing(request, tmp_path):
    if request.param == "local":
        yield UPath(tmp_path / "landing")
        return
    area = UPath(f"memory://landing-{uuid.uuid4().hex}")
    yield area
    if area.exists():
        area.fs.rm(area.path, recursive=True)


def land(landing: UPath, name: str, rows: pd.DataFrame) -> UPath:
    landing.mkdir(parents=True, exist_ok=True)
    path = landing / name
    with path.open("wb") as handle:
        rows.to_csv(handle, index=False, quoting=csv.QUOTE_ALL, compression="gzip" if name.endswith(".gz") else None)
    return path


@pytest.fixture
def instance() -> dg.DagsterInstance:
    # In-memory storage: the same event log queries as a deployment's, without a disk database per test.
    return dg.DagsterInstance.ephemeral()


def evaluate_landing(
    sensor: dg.SensorDefinition, tweet_source: TweetSource, instance: dg.DagsterInstance, cursor: str | None
) -> dg.SensorResult:
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"tweet_source": tweet_source})
    return sensor(context)


def test_each_new_day_file_is_requested_once(landing, tmp_path, real_rows_by_day, instance):
    bound_source = TweetSource(path="bound.csv", cache_dir=str(tmp_path / "cache"))
    sensor = build_landing_sensor(landing)
    first_file = land(landing, "twcs-2017-11-04.csv", real_rows_by_day["2017-11-04"])
    for name in NOT_DAY_FILES:
        land(landing, name, real_rows_by_day["2017-11-05"])

    first = evaluate_landing(sensor, bound_source, instance, cursor=None)
    assert [request.partition_key for request in first.run_requests] == ["2017-11-04"]
    (request,) = first.run_requests
    source_config = request.run_config["resources"]["tweet_source"]["config"]
    assert (source_config["path"], source_config["cache_dir"]) == (str(first_file), str(tmp_path / "cache"))
    assert request.tags[LANDED_FILE_TAG] == str(first_file)

    repeated = evaluate_landing(sensor, bound_source, instance, cursor=first.cursor)
    assert repeated.run_requests == []

    second_file = land(landing, "twcs-2017-11-05.csv.gz", real_rows_by_day["2017-11-05"])
    second = evaluate_landing(sensor, bound_source, instance, cursor=repeated.cursor)
    assert [(r.partition_key, r.tags[LANDED_FILE_TAG]) for r in second.run_requests] == [
        ("2017-11-05", str(second_file))
    ]
    assert evaluate_landing(sensor, bound_source, instance, cursor=second.cursor).run_requests == []


def test_a_day_that_is_not_a_partition_waits_without_entering_the_cursor(tmp_path, real_rows_by_day, instance):
    landing = UPath(tmp_path / "landing")
    for name in ["twcs-2999-01-01.csv", "twcs-2016-01-01.csv", "twcs-2017-02-30.csv"]:
        land(landing, name, real_rows_by_day["2017-11-04"])

    result = evaluate_landing(build_landing_sensor(landing), TweetSource(), instance, cursor=None)

    assert result.run_requests == []
    assert result.cursor is None
    assert "twcs-2999-01-01.csv" in result.skip_reason.skip_message


def test_a_missing_landing_area_is_a_skip_not_an_error(tmp_path, instance):
    result = evaluate_landing(build_landing_sensor(tmp_path / "not-there"), TweetSource(), instance, cursor=None)

    assert result.run_requests == []
    assert "does not exist" in result.skip_reason.skip_message


def test_the_requested_run_reads_the_landed_file(tmp_path, real_rows_by_day, real_inbound, instance):
    """The run config of a request really replaces the bound source in the daily_inference job."""
    defs = build_definitions(build_resources(storage=str(tmp_path / "storage"), cache_dir=str(tmp_path / "cache")))
    day = "2017-11-05"
    landed = land(UPath(tmp_path / "landing"), f"twcs-{day}.csv.gz", real_rows_by_day[day])
    (request,) = evaluate_landing(
        build_landing_sensor(tmp_path / "landing"), defs.resources["tweet_source"], instance, cursor=None
    ).run_requests

    result = defs.resolve_job_def("daily_inference").execute_in_process(
        run_config=request.run_config,
        partition_key=request.partition_key,
        tags=request.tags,
        asset_selection=[dg.AssetKey("raw_tweets")],
        instance=instance,
    )

    (materialization,) = result.asset_materializations_for_node("raw_tweets")
    metadata = {key: value.value for key, value in materialization.metadata.items()}
    assert metadata["source"] == str(landed)
    assert metadata["dagster/row_count"] == int((real_inbound["day"] == day).sum())
    assert metadata["quarantine_file"].startswith(str(tmp_path / "cache"))


def test_the_code_location_runs_both_sensors_against_their_jobs(tmp_path):
    defs = build_definitions(build_resources(storage=str(tmp_path / "storage"), cache_dir=str(tmp_path / "cache")))
    dg.Definitions.validate_loadable(defs)
    assert defs.resolve_sensor_def("landing_sensor").job_name == "daily_inference"
    assert defs.resolve_sensor_def("drift_retrain_sensor").job_name == "training"


# --- drift sensor ---------------------------------------------------------------------------------------------

TRAINING_MIX = {"billing": 0.5, "delivery": 0.5}
# Predicted categories of one day, by kind of day.
DAY_KINDS = {
    "healthy": ["billing"] * 5 + ["delivery"] * 5,
    "shifted": ["delivery"] * 10,  # the mix moved far from training: PSI ≈ 4
    "uncertain": [UNCERTAIN_NAME] * 4 + ["billing"] * 3 + ["delivery"] * 3,  # 40 % uncertain, PSI 0
    "quiet": [],
}


class DayKindConfig(dg.Config):
    kind: str


@dg.asset(
    name="predictions",
    partitions_def=daily_partitions,
    check_specs=list(inference.predictions.check_specs),
)
def predictions_stand_in(context: dg.AssetExecutionContext, config: DayKindConfig):
    """`predictions` as the drift sensor sees it: the real asset's checks and per-day metadata, computed by its own
    functions, over a chosen category mix instead of a trained classifier."""
    categories = DAY_KINDS[config.kind]
    frame = pd.DataFrame(
        {
            "tweet_id": range(len(categories)),
            "brand": "",
            "category_name": categories,
            "confidence": [0.3 if name == UNCERTAIN_NAME else 0.9 for name in categories],
            "text": "",
            "message_kind": ISSUE,
            "thread_id": range(len(categories)),
        }
    )
    by_day = {day: frame for day in context.partition_keys}
    classifier = types.SimpleNamespace(category_shares=TRAINING_MIX, training_days=("2017-10-01", "2017-10-25"))
    inference.add_daily_metadata(context, by_day, classifier)
    clean_text = {day: pd.DataFrame({"is_empty": [False] * len(frame)}) for day in by_day}
    checks = inference.predictions_checks(inference.PredictionsConfig(), clean_text, by_day, classifier)
    return dg.MaterializeResult(check_results=checks)


def predict(instance: dg.DagsterInstance, kind: str, first_day: str, last_day: str | None = None) -> None:
    """One run of predictions for a day, or for first_day..last_day together (a single-run backfill)."""
    days = {ASSET_PARTITION_RANGE_START_TAG: first_day, ASSET_PARTITION_RANGE_END_TAG: last_day}
    result = dg.materialize(
        [predictions_stand_in],
        instance=instance,
        partition_key=None if last_day else first_day,
        tags=days if last_day else None,
        run_config={"ops": {"predictions": {"config": {"kind": kind}}}},
    )
    assert result.success


DRIFT_SENSOR = build_drift_retrain_sensor(DriftPolicy(consecutive_days=3))


def evaluate_drift(instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult:
    return DRIFT_SENSOR(dg.build_sensor_context(instance=instance, cursor=cursor))


def drift_days(result: dg.SensorResult) -> list[str]:
    return [request.tags[DRIFT_DAYS_TAG] for request in result.run_requests]


def test_retrains_after_three_drifting_days_in_a_row_and_not_again_for_them(instance):
    for day, kind in [("01", "shifted"), ("02", "shifted"), ("03", "healthy"), ("04", "uncertain"), ("05", "shifted")]:
        predict(instance, kind, f"2017-11-{day}")
    not_yet = evaluate_drift(instance, cursor=None)
    assert not_yet.run_requests == []
    assert "2017-11-03: psi 0.000, uncertain 0.0%" in not_yet.skip_reason.skip_message

    predict(instance, "shifted", "2017-11-06")
    triggered = evaluate_drift(instance, cursor=not_yet.cursor)
    assert drift_days(triggered) == ["2017-11-04,2017-11-05,2017-11-06"]
    assert evaluate_drift(instance, cursor=triggered.cursor).run_requests == []

    predict(instance, "shifted", "2017-11-07")
    predict(instance, "uncertain", "2017-11-08")
    assert evaluate_drift(instance, cursor=triggered.cursor).run_requests == []
    predict(instance, "shifted", "2017-11-09")
    assert drift_days(evaluate_drift(instance, cursor=triggered.cursor)) == ["2017-11-07,2017-11-08,2017-11-09"]


def test_days_predicted_in_one_run_share_its_psi(instance):
    predict(instance, "shifted", "2017-11-01", "2017-11-03")

    assert drift_days(evaluate_drift(instance, cursor=None)) == ["2017-11-01,2017-11-02,2017-11-03"]


def test_a_day_without_tweets_neither_counts_nor_breaks_the_run_of_drifting_days(instance):
    predict(instance, "shifted", "2017-11-01", "2017-11-02")
    predict(instance, "quiet", "2017-11-03")
    assert evaluate_drift(instance, cursor=None).run_requests == []

    predict(instance, "shifted", "2017-11-04")
    assert drift_days(evaluate_drift(instance, cursor=None)) == ["2017-11-01,2017-11-02,2017-11-04"]


def test_a_day_predicted_again_counts_with_its_latest_predictions(instance):
    predict(instance, "shifted", "2017-11-01", "2017-11-03")
    predict(instance, "healthy", "2017-11-03")

    assert evaluate_drift(instance, cursor=None).run_requests == []


def test_a_newly_deployed_model_restarts_the_count(instance):
    predict(instance, "shifted", "2017-11-01", "2017-11-03")
    # A classifier refused at its quality floor is materialized but never deployed: the drift still counts.
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key="classifier"))
    assert drift_days(evaluate_drift(instance, cursor=None)) == ["2017-11-01,2017-11-02,2017-11-03"]
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key="deployed_model"))
    assert evaluate_drift(instance, cursor=None).run_requests == []

    predict(instance, "shifted", "2017-11-04", "2017-11-06")
    assert drift_days(evaluate_drift(instance, cursor=None)) == ["2017-11-04,2017-11-05,2017-11-06"]
