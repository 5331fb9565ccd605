"""The daily partitions, their bounds, and the run policies shared by the daily assets.

The first day is SUPPORT_NLP_FIRST_DAY (default 2017-10-01). The last day is SUPPORT_NLP_LAST_DAY; when unset, a
deployment reading the bundled sample ends at the sample's last day (2017-12-03), so the UI shows 64 days it can
fill rather than thousands of empty ones up to today, and one reading a live source has no end: a new partition
appears each day at midnight UTC and the schedule classifies it at 01:15.
"""

import os
import warnings
from datetime import date, timedelta

import dagster as dg

from support_nlp.core.twcs import BUNDLED_SAMPLE

# Single-run backfills and per-partition check results are deliberate choices here; Dagster labels them
# beta/preview and would warn on every import of the code location.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)
warnings.filterwarnings(
    "ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=dg.PreviewWarning
)

# twcs traffic is overwhelmingly Oct-Dec 2017; older stragglers are counted as outside the range.
FIRST_DAY = os.environ.get("SUPPORT_NLP_FIRST_DAY", "2017-10-01")
BUNDLED_SAMPLE_LAST_DAY = "2017-12-03"


def configured_last_day(environ=os.environ) -> str | None:
    if environ.get("SUPPORT_NLP_LAST_DAY"):
        return environ["SUPPORT_NLP_LAST_DAY"]
    reads_bundled_sample = environ.get("SUPPORT_NLP_SOURCE", str(BUNDLED_SAMPLE)) == str(BUNDLED_SAMPLE)
    return BUNDLED_SAMPLE_LAST_DAY if reads_bundled_sample else None


def daily_partitions_until(last_day: str | None) -> dg.DailyPartitionsDefinition:
    # Dagster's end_date is exclusive.
    end = (date.fromisoformat(last_day) + timedelta(days=1)).isoformat() if last_day else None
    return dg.DailyPartitionsDefinition(start_date=FIRST_DAY, end_date=end)


daily_partitions = daily_partitions_until(configured_last_day())
# One run per backfill: a 90-day backfill pays Dagster's run start-up once, not 90 times per asset.
single_run_backfill = dg.BackfillPolicy.single_run()
# For steps that read or write remote storage: an S3 hiccup or throttling usually clears within a minute
# (retries after ~5, 15 and 35 s); a broken source fails the same way each time and fails after the last one.
io_retry_policy = dg.RetryPolicy(max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
