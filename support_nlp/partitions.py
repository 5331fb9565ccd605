"""The daily partitions, their bounds, and the run policies shared by the daily assets.

The first day is SUPPORT_NLP_FIRST_DAY, the last SUPPORT_NLP_LAST_DAY (`support_nlp.settings`). A deployment
reading a live source has no last day: a new partition appears each day at midnight UTC and the schedule classifies
it at 01:15.
"""

import warnings
from datetime import date, timedelta

import dagster as dg

from support_nlp.settings import read_settings

# Single-run backfills and per-partition check results are deliberate choices here; Dagster labels them
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


daily_partitions = daily_partitions_until(SETTINGS.last_day)
# One run per backfill: a 90-day backfill pays Dagster's run start-up once, not 90 times per asset.
single_run_backfill = dg.BackfillPolicy.single_run()
# For steps that read or write remote storage: an S3 hiccup or throttling usually clears within a minute
# (retries after ~5, 15 and 35 s); a broken source fails the same way each time and fails after the last one.
io_retry_policy = dg.RetryPolicy(max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
