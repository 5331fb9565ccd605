"""The daily partitions, their bounds, and the run policies shared by the daily assets.

The first day is SUPPORT_NLP_FIRST_DAY (default 2017-10-01). The last day is SUPPORT_NLP_LAST_DAY; when unset, a
deployment reading the bundled sample ends at the sample's last day (2017-12-03), so the UI shows 64 days it can
fill rather than thousands of empty ones up to today, and one reading a live source has no end: a new partition
appears each day at midnight UTC and the schedule classifies it at 01:15.

A backfill is one run unless SUPPORT_NLP_BACKFILL_DAYS_PER_RUN is set: then Dagster splits it into runs of that many
days, which the run queue starts side by side (docs/scaling.md).
"""

import os
import warnings
from datetime import date, timedelta

import dagster as dg

from support_nlp.core.twcs import BUNDLED_SAMPLE

# Single- and multi-run backfills and per-partition check results are deliberate choices here; Dagster labels them
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


def backfill_policy_from(environ=os.environ) -> dg.BackfillPolicy:
    """One run per backfill by default: a 90-day backfill on one machine pays Dagster's run start-up once, not 90
    times, and `dagster asset materialize --partition-range` accepts only that policy. With
    SUPPORT_NLP_BACKFILL_DAYS_PER_RUN=N a backfill becomes runs of N days, for deployments whose run launcher
    spreads runs over machines."""
    configured = environ.get("SUPPORT_NLP_BACKFILL_DAYS_PER_RUN", "").strip()
    if not configured:
        return dg.BackfillPolicy.single_run()
    if not configured.isdigit() or int(configured) < 1:
        raise ValueError(f"SUPPORT_NLP_BACKFILL_DAYS_PER_RUN must be a whole number of days >= 1, not {configured!r}")
    return dg.BackfillPolicy.multi_run(max_partitions_per_run=int(configured))


daily_partitions = daily_partitions_until(configured_last_day())
daily_backfill_policy = backfill_policy_from()
# For steps that read or write remote storage: an S3 hiccup or throttling usually clears within a minute
# (retries after ~5, 15 and 35 s); a broken source fails the same way each time and fails after the last one.
io_retry_policy = dg.RetryPolicy(max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
