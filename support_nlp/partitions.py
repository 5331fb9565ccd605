import os
import warnings

import dagster as dg

# Single-run backfills and per-partition check results are deliberate choices here; Dagster labels them
# beta/preview and would warn on every import of the code location.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)
warnings.filterwarnings(
    "ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=dg.PreviewWarning
)

# twcs traffic is overwhelmingly Oct-Dec 2017; older stragglers are counted as outside the range.
FIRST_DAY = os.environ.get("SUPPORT_NLP_FIRST_DAY", "2017-10-01")

daily_partitions = dg.DailyPartitionsDefinition(start_date=FIRST_DAY)
# One run per backfill: a 90-day backfill pays Dagster's run start-up once, not 90 times per asset.
single_run_backfill = dg.BackfillPolicy.single_run()
# For steps that read or write remote storage: an S3 hiccup or throttling usually clears within a minute
# (retries after ~5, 15 and 35 s); a broken source fails the same way each time and fails after the last one.
io_retry_policy = dg.RetryPolicy(max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
