"""The daily partitions, their bounds, and the run policies shared by the daily assets.

The first day is SUPPORT_NLP_FIRST_DAY, the last SUPPORT_NLP_LAST_DAY (`support_nlp.settings`). A deployment
reading a live source has no last day: a new partition appears each day at midnight UTC and the schedule classifies
it at 01:15.

A backfill is one run unless SUPPORT_NLP_BACKFILL_DAYS_PER_RUN is set: then Dagster splits it into runs of that many
days, which the run queue starts side by side (docs/scaling.md).
"""

import warnings
from datetime import date, timedelta

import dagster as dg

from support_nlp.settings import read_settings

# Single- and multi-run backfills and per-partition check results are deliberate choices here; Dagster labels them
# beta/preview and would warn on every import of the code location.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)
warnings.filterwarnings(
    "ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=dg.PreviewWarning
)

SETTINGS = read_settings()


def daily_partitions_until(last_day: str | None) -> dg.DailyPartitionsDefinition:
    # Dagster's end_date is exclusive.
    end = (date.fromisoformat(last_day) + timedelta(days=1)).isoformat() if last_day else None
    return dg.DailyPartitionsDefinition(start_date=SETTINGS.first_day, end_date=end)


def backfill_policy(days_per_run: int | None) -> dg.BackfillPolicy:
    """One run per backfill by default: a 90-day backfill on one machine pays Dagster's run start-up once, not 90
    times, and `dagster asset materialize --partition-range` accepts only that policy. With `days_per_run` a backfill
    becomes runs of that many days, for deployments whose run launcher spreads runs over machines."""
    if days_per_run is None:
        return dg.BackfillPolicy.single_run()
    return dg.BackfillPolicy.multi_run(max_partitions_per_run=days_per_run)


daily_partitions = daily_partitions_until(SETTINGS.last_day)
daily_backfill_policy = backfill_policy(SETTINGS.backfill_days_per_run)
# For steps that read or write remote storage: an S3 hiccup or throttling usually clears within a minute
# (retries after ~5, 15 and 35 s); a broken source fails the same way each time and fails after the last one.
io_retry_policy = dg.RetryPolicy(max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
