"""A source that shrank: training uses exactly the days it still holds, and the dropped days' partitions go."""

import logging
import shutil

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from support_nlp.core.source_days import DayOrigin, SourceDays, classify_days
from support_nlp.core.twcs import CREATED_AT_FORMAT
from support_nlp.pipeline import run_pipeline
from support_nlp_tests.conftest import SLICE_DAYS, local_deployment

SOURCE = "/data/twcs.csv.gz"
LOW_FLOOR = {"min_macro_f1": 0.0}


def origin(fingerprint: str = "v2", source: str = SOURCE, rows: int = 5) -> DayOrigin:
    return DayOrigin(source=source, fingerprint=fingerprint, rows=rows)


def test_days_are_sorted_by_where_they_came_from():
    origins = {
        "2017-11-01": origin(),
        "2017-11-02": origin("v1"),
        "2017-11-03": origin("v1"),
        "2017-11-04": origin(source="/landing/twcs-2017-11-04.csv"),
        "2017-11-06": origin("v1", rows=0),
    }
    # Version v2 of the source holds 11-01, 11-02 and 11-05; it dropped 11-03, and 11-06 was empty in v1 too.
    rows_now = {"2017-11-01": 3, "2017-11-02": 4, "2017-11-05": 1}
    days = classify_days([*origins, "2017-11-05"], origins, SOURCE, "v2", rows_now)
    assert days == SourceDays(
        current_version=["2017-11-01"],
        earlier_version=["2017-11-02", "2017-11-06"],
        other_sources=["2017-11-04"],
        unknown_origin=["2017-11-05"],
        gone_from_source=["2017-11-03"],
    )
    assert days.usable == ["2017-11-01", "2017-11-02", "2017-11-04", "2017-11-05", "2017-11-06"]
    warnings = days.warnings(SOURCE)
    assert any("2017-11-03" in warning and "no longer in /data/twcs.csv.gz" in warning for warning in warnings)
    assert any("2017-11-04" in warning and "other files" in warning for warning in warnings)
    assert days.summary()["gone_from_source"] == "2017-11-03"


def without_day(source: str, day: str, target) -> None:
    """The real slice without the inbound tweets of `day`, as a shrunk version of the same file."""
    rows = pd.read_csv(source, dtype=str, keep_default_na=False)
    created = pd.to_datetime(rows["created_at"], format=CREATED_AT_FORMAT, utc=True).dt.strftime("%Y-%m-%d")
    rows[~((rows["inbound"] == "True") & (created == day))].to_csv(target, index=False)


def stored_files(storage, day: str) -> list[str]:
    return sorted(str(path.relative_to(storage)) for path in storage.rglob(f"{day}.*"))


@pytest.mark.e2e
def test_a_shrunk_source_trains_on_its_days_and_removes_the_dropped_ones(tmp_path, real_slice_csv):
    dropped = SLICE_DAYS[-1]
    source = tmp_path / "twcs.csv.gz"
    shutil.copy(real_slice_csv, source)
    deployment = local_deployment(tmp_path, str(source))
    defs, instance = deployment.defs, deployment.instance

    def make_run(report=lambda line: None):
        # Three days of the slice are too few for the classifier's quality floor; it is not what is tested here.
        training = {"ops": {"classifier": {"config": LOW_FLOOR}}}
        return run_pipeline(defs, instance, report, deployment.environment, {"training": training})

    first = make_run()
    storage = tmp_path / "storage"
    assert len(stored_files(storage, dropped)) == 4  # raw_tweets, clean_text, embeddings, predictions
    dropped_ids = pd.read_parquet(storage / "raw_tweets" / f"{dropped}.parquet")["tweet_id"].to_numpy()
    assert np.isin(dropped_ids, first.categories.tweet_ids).any()

    without_day(real_slice_csv, dropped, source)

    # Training alone (as from the UI): the dropped day is still stored, but not learnt from.
    training = defs.resolve_job_def("training").execute_in_process(
        run_config={"ops": {"classifier": {"config": LOW_FLOOR}}}, instance=instance, raise_on_error=False
    )
    assert training.success
    categories = training.asset_value("cluster_labels")
    assert not np.isin(dropped_ids, categories.tweet_ids).any()
    assert training.asset_value("classifier").metrics.holdout_days[1] < dropped
    [materialization] = training.asset_materializations_for_node("cluster_labels")
    assert materialization.metadata["days_by_origin"].value["gone_from_source"] == dropped
    warnings = [entry.user_message for entry in instance.all_logs(training.run_id) if entry.level == logging.WARNING]
    assert any(f"no longer in {source}" in warning and dropped in warning for warning in warnings), warnings

    # `make run` on the shrunk source: the dropped day's partitions are removed from storage and the instance.
    lines: list[str] = []
    second = make_run(lines.append)
    assert stored_files(storage, dropped) == []
    for asset in ("raw_tweets", "clean_text", "embeddings", "predictions"):
        [observation] = [
            record.asset_observation
            for record in instance.fetch_observations(dg.AssetKey(asset), limit=10).records
            if record.asset_observation.partition == dropped
        ]
        assert observation.metadata["stale_partition_removed"].value is True, asset
    assert [line for line in lines if "no longer in the source" in line] == [
        f"Removed the stored partitions of 1 day(s) no longer in the source: {dropped}"
    ]
    assert second.last_day < dropped
    assert not np.isin(dropped_ids, second.categories.tweet_ids).any()
    # Removed once: the next run finds nothing left to remove.
    lines.clear()
    make_run(lines.append)
    assert not [line for line in lines if "no longer in the source" in line]
