"""Sensors: classify each day of tweets that lands, and retrain when the predictions drift from training.

Landing: a day of tweets lands as one file named `twcs-YYYY-MM-DD.csv` or `twcs-YYYY-MM-DD.csv.gz` (the twcs.csv
layout: that UTC day's tweets and the brand replies of their threads) in a landing area, a folder or an
`s3://bucket/prefix` (UPath, so both behave the same). The day comes from the file name, so a tick only lists
the landing area and never downloads a file. Each new file is requested once: the cursor holds the names
already requested, and the run key (the file's full path) lets Dagster drop a request repeated after a tick
that crashed before its cursor was saved. The run points TweetSource at the landed file through run config.

Drift: every predictions partition records `uncertain_share` in its materialization metadata, and the
`category_drift_psi` check records `psi` (the category mix against the training mix) in its evaluation.
When the newest N predicted days all exceed either threshold, the training job is requested. Only days predicted
after the latest deployment of a model and after the last retrain request count, so one drift asks for one retrain.

Alerts: each failed evaluation of a watched check (category_trends' spike and emerging-topic checks) is POSTed once,
as JSON, to the webhook in $SUPPORT_NLP_ALERT_WEBHOOK (a Slack/Teams incoming webhook or any HTTP endpoint). The
cursor holds the newest evaluation already seen.
"""

from __future__ import annotations

import json
import os
import re
import urllib.request
from dataclasses import dataclass

import dagster as dg
from upath import UPath

from support_nlp.core.storage import list_names
from support_nlp.defs.assets.inference import PredictionsConfig
from support_nlp.defs.assets.trends import (
    BRAND_SPIKE_CHECK,
    EMERGING_CLUSTER_CHECK,
    EMERGING_TOPIC_CHECK,
    VOLUME_SPIKE_CHECK,
)
from support_nlp.defs.jobs import daily_inference_job, training_job
from support_nlp.partitions import daily_partitions
from support_nlp.resources import TweetSource
from support_nlp.settings import ALERT_WEBHOOK, read_settings

LANDED_FILE_NAME = re.compile(r"twcs-(\d{4}-\d{2}-\d{2})\.csv(\.gz)?")
LANDED_FILE_TAG = "support_nlp/landed_file"
DRIFT_DAYS_TAG = "support_nlp/drift_days"

PREDICTIONS = dg.AssetKey("predictions")
DEPLOYED_MODEL = dg.AssetKey("deployed_model")
DRIFT_CHECK = dg.AssetCheckKey(PREDICTIONS, "category_drift_psi")
EVENT_PAGE_SIZE = 100
ALERT_CHECKS = [
    dg.AssetCheckKey(dg.AssetKey("category_trends"), VOLUME_SPIKE_CHECK),
    dg.AssetCheckKey(dg.AssetKey("category_trends"), EMERGING_TOPIC_CHECK),
    dg.AssetCheckKey(dg.AssetKey("category_trends"), BRAND_SPIKE_CHECK),
    dg.AssetCheckKey(dg.AssetKey("category_trends"), EMERGING_CLUSTER_CHECK),
]
ALERT_TIMEOUT_S = 10
PREDICTION_DEFAULTS = PredictionsConfig()


def landed_day(file_name: str) -> str | None:
    """The day a landed file holds, from its name; None for any other file."""
    match = LANDED_FILE_NAME.fullmatch(file_name)
    return match.group(1) if match else None


def landing_run_request(landed_file: UPath, tweet_source: TweetSource) -> dg.RunRequest:
    # Run config replaces a resource's whole config: a field it leaves out falls back to the class default,
    # not to the value bound in Definitions, so every bound field is passed on with only `path` changed.
    source_config = {**tweet_source.model_dump(), "path": str(landed_file)}
    return dg.RunRequest(
        run_key=str(landed_file),
        partition_key=landed_day(landed_file.name),
        run_config={"resources": {"tweet_source": {"config": source_config}}},
        tags={LANDED_FILE_TAG: str(landed_file)},
    )


def build_landing_sensor(
    landing: str | os.PathLike, name: str = "landing_sensor", minimum_interval_seconds: int = 60
) -> dg.SensorDefinition:
    """A sensor running `daily_inference` for the day of each `twcs-YYYY-MM-DD.csv(.gz)` that lands in `landing`,
    reached like the tweet source (its `store`)."""
    landing = str(landing)

    @dg.sensor(
        name=name,
        job=daily_inference_job,
        minimum_interval_seconds=minimum_interval_seconds,
        description=f"Runs daily_inference for the day of each twcs-YYYY-MM-DD.csv(.gz) landing in {landing}.",
    )
    def landing_sensor(context: dg.SensorEvaluationContext, tweet_source: TweetSource) -> dg.SensorResult:
        requested = set(json.loads(context.cursor)) if context.cursor else set()
        area = tweet_source.store.location(landing)
        try:
            names = list_names(area)
        except (FileNotFoundError, NotADirectoryError):
            return dg.SensorResult(skip_reason=f"landing area {landing} does not exist", cursor=context.cursor)
        new = [name for name in names if name not in requested and landed_day(name)]
        # A file for a day that has not ended yet waits for its partition to exist; one for a day before the
        # first partition waits forever, and says so in every skip reason.
        ready = [name for name in new if daily_partitions.has_partition_key(landed_day(name))]
        waiting = sorted(set(new) - set(ready))
        if waiting:
            context.log.info(f"not (yet) a daily partition, left for later: {', '.join(waiting)}")
        if not ready:
            return dg.SensorResult(
                skip_reason=f"no new day file in {landing}" + (f"; waiting: {', '.join(waiting)}" if waiting else ""),
                cursor=context.cursor,
            )
        return dg.SensorResult(
            run_requests=[landing_run_request(area / name, tweet_source) for name in ready],
            cursor=json.dumps(sorted(requested | set(ready))),
        )

    return landing_sensor


@dataclass(frozen=True)
class DriftPolicy:
    """When predictions have drifted enough to retrain: `consecutive_days` newest predicted days in a row each
    above one of the thresholds (defaults: the thresholds of the predictions checks)."""

    consecutive_days: int = 3
    max_category_psi: float = PREDICTION_DEFAULTS.max_category_psi
    max_uncertain_share: float = PREDICTION_DEFAULTS.max_uncertain_share


@dataclass(frozen=True)
class DayHealth:
    day: str
    uncertain_share: float
    mean_confidence: float
    psi: float | None  # None when the run's drift check did not record one

    def drifting(self, policy: DriftPolicy) -> bool:
        psi_too_high = self.psi is not None and self.psi > policy.max_category_psi
        return psi_too_high or self.uncertain_share > policy.max_uncertain_share

    def describe(self) -> str:
        psi = "n/a" if self.psi is None else f"{self.psi:.3f}"
        return (
            f"{self.day}: psi {psi}, uncertain {self.uncertain_share:.1%}, mean confidence {self.mean_confidence:.3f}"
        )


def latest_storage_id(instance: dg.DagsterInstance, asset_key: dg.AssetKey) -> int:
    records = instance.fetch_materializations(asset_key, limit=1).records
    return records[0].storage_id if records else 0


def latest_predictions_by_day(instance: dg.DagsterInstance, after_storage_id: int) -> dict[str, dg.EventLogRecord]:
    """The newest predictions materialization of each day among those stored after `after_storage_id`."""
    latest: dict[str, dg.EventLogRecord] = {}
    records_filter = dg.AssetRecordsFilter(asset_key=PREDICTIONS, after_storage_id=after_storage_id)
    cursor = None
    while True:
        page = instance.fetch_materializations(records_filter, limit=EVENT_PAGE_SIZE, cursor=cursor, ascending=True)
        latest.update((record.partition_key, record) for record in page.records)
        if not page.has_more:
            return latest
        cursor = page.cursor


def drift_psi_by_run(instance: dg.DagsterInstance, run_ids: set[str]) -> dict[str, float]:
    """The PSI the drift check recorded in each run. A run of several days checks them together and records one
    PSI without a partition, so evaluations are matched to materializations by run, not by partition."""
    # Dagster 1.13 has no public API for a check's history; this event-log call is the one its UI uses.
    storage = instance.event_log_storage
    found: dict[str, float] = {}
    cursor = None
    while run_ids - found.keys():
        page = storage.get_asset_check_execution_history(DRIFT_CHECK, limit=EVENT_PAGE_SIZE, cursor=cursor)
        for record in page:
            evaluation = record.evaluation
            # Newest first: the first evaluation seen for a run is its last one. Planned-only rows carry no PSI.
            if record.run_id in run_ids and isinstance(evaluation, dg.AssetCheckEvaluation):
                psi = evaluation.metadata.get("psi")
                if psi is not None:
                    found.setdefault(record.run_id, psi.value)
        if len(page) < EVENT_PAGE_SIZE:
            break
        cursor = page[-1].id
    return found


def day_health(record: dg.EventLogRecord, psi: float | None) -> DayHealth:
    metadata = record.asset_materialization.metadata
    return DayHealth(
        day=record.partition_key,
        uncertain_share=metadata["uncertain_share"].value,
        mean_confidence=metadata["mean_confidence"].value,
        psi=psi,
    )


def has_predictions(record: dg.EventLogRecord) -> bool:
    row_count = record.asset_materialization.metadata.get("dagster/row_count")
    return row_count is not None and row_count.value > 0


def build_drift_retrain_sensor(
    policy: DriftPolicy = DriftPolicy(), name: str = "drift_retrain_sensor", minimum_interval_seconds: int = 300
) -> dg.SensorDefinition:
    """A sensor requesting the training job when the newest predicted days drift, as `policy` defines it."""

    @dg.sensor(
        name=name,
        job=training_job,
        minimum_interval_seconds=minimum_interval_seconds,
        description=(
            f"Retrains when the newest {policy.consecutive_days} predicted days each have category PSI above "
            f"{policy.max_category_psi} or an uncertain share above {policy.max_uncertain_share}."
        ),
    )
    def drift_retrain_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        instance = context.instance
        # Days predicted before the deployed model was deployed say nothing about it, and days that already
        # led to a retrain request (the cursor) must not lead to another.
        since = max(int(context.cursor or 0), latest_storage_id(instance, DEPLOYED_MODEL))
        latest = latest_predictions_by_day(instance, since)
        # A day without tweets is no evidence either way: its PSI compares an empty mix.
        evidence = sorted((r for r in latest.values() if has_predictions(r)), key=lambda r: r.partition_key)
        newest = evidence[-policy.consecutive_days :]
        if len(newest) < policy.consecutive_days:
            return dg.SensorResult(
                skip_reason=f"{len(newest)} day(s) predicted since the last deployment or retrain request; "
                f"{policy.consecutive_days} needed",
                cursor=context.cursor,
            )
        psi_by_run = drift_psi_by_run(instance, {record.run_id for record in newest})
        health = [day_health(record, psi_by_run.get(record.run_id)) for record in newest]
        summary = "; ".join(day.describe() for day in health)
        if not all(day.drifting(policy) for day in health):
            return dg.SensorResult(
                skip_reason=f"not every one of the newest days drifts: {summary}", cursor=context.cursor
            )
        context.log.info(f"requesting a retrain: {summary}")
        newest_storage_id = max(record.storage_id for record in latest.values())
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=f"drift-{newest_storage_id}",
                    tags={DRIFT_DAYS_TAG: ",".join(day.day for day in health)},
                )
            ],
            cursor=str(newest_storage_id),
        )

    return drift_retrain_sensor


def alert_payload(check_key: dg.AssetCheckKey, record) -> dict:
    evaluation = record.evaluation
    measured = {name: value.value for name, value in evaluation.metadata.items()}
    return {
        "text": f"support_nlp: {check_key.asset_key.to_user_string()} {check_key.name} failed: "
        + ", ".join(
            f"{name} {value}" for name, value in measured.items() if not isinstance(value, str) or "\n" not in value
        ),
        "asset": check_key.asset_key.to_user_string(),
        "check": check_key.name,
        "severity": evaluation.severity.value,
        "run_id": record.run_id,
        "metadata": measured,
    }


def post_json(url: str, payload: dict) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=ALERT_TIMEOUT_S) as response:
        response.read()


def build_alert_sensor(
    checks: list[dg.AssetCheckKey] = ALERT_CHECKS, name: str = "alert_sensor", minimum_interval_seconds: int = 60
) -> dg.SensorDefinition:
    """A sensor POSTing every new failed evaluation of `checks` to the webhook in $SUPPORT_NLP_ALERT_WEBHOOK."""

    @dg.sensor(
        name=name,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"POSTs failed {', '.join(key.name for key in checks)} checks to ${ALERT_WEBHOOK.name}.",
    )
    def alert_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        webhook = read_settings().alert_webhook
        if not webhook:
            return dg.SensorResult(skip_reason=f"${ALERT_WEBHOOK.name} is not set", cursor=context.cursor)
        seen = int(context.cursor or 0)
        # Dagster 1.13 has no public API for check history; this is the call its UI uses (as drift_psi_by_run).
        latest = context.instance.event_log_storage.get_latest_asset_check_execution_by_key(checks)
        fresh = {
            key: record
            for key, record in latest.items()
            if record is not None and record.id > seen and isinstance(record.evaluation, dg.AssetCheckEvaluation)
        }
        failed = {key: record for key, record in fresh.items() if not record.evaluation.passed}
        for key, record in failed.items():
            # A webhook that is down fails the tick; the cursor stays, so the next tick posts it again.
            post_json(webhook, alert_payload(key, record))
            context.log.info(f"alert posted: {key.to_user_string()} (run {record.run_id})")
        newest = max([seen, *(record.id for record in fresh.values())])
        return dg.SensorResult(skip_reason=None if failed else "no new failed check", cursor=str(newest))

    return alert_sensor


landing_sensor = build_landing_sensor(read_settings().landing)
drift_retrain_sensor = build_drift_retrain_sensor()
alert_sensor = build_alert_sensor()
