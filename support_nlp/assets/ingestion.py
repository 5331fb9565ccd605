"""raw_tweets: inbound customer tweets of each UTC day, typed, from the configured twcs source."""

import time

import dagster as dg
import pandas as pd

from support_nlp.metadata import add_per_partition_metadata, preview_table, split_by_day
from support_nlp.partitions import daily_partitions, single_run_backfill
from support_nlp.resources import TweetSource

RAW_COLUMNS = ["tweet_id", "author_id", "created_at", "text", "response_tweet_id", "in_response_to_tweet_id"]


def rows_outside_partitions(rows_per_day: dict[str, int]) -> int:
    valid = set(daily_partitions.get_partition_keys())
    return sum(count for day, count in rows_per_day.items() if day not in valid)


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=single_run_backfill,
    io_manager_key="table_io_manager",
    group_name="ingestion",
    kinds={"pandas", "parquet"},
)
def raw_tweets(context: dg.AssetExecutionContext, tweet_source: TweetSource) -> dict[str, pd.DataFrame]:
    """Inbound customer tweets per UTC day of `created_at`: tweet_id, author_id, created_at (UTC), text,
    reply ids and the brand that answered in the thread."""
    started = time.perf_counter()
    parsed = tweet_source.parse(report=context.log.info)
    days = context.partition_keys
    by_day = split_by_day(parsed.read_days(days), days)
    summary = parsed.summary
    add_per_partition_metadata(
        context,
        by_day,
        lambda frame: {
            "dagster/row_count": len(frame),
            "preview": preview_table(frame, RAW_COLUMNS),
        },
    )
    context.add_output_metadata(
        {
            "source": dg.MetadataValue.path(summary["source"]),
            "source_fingerprint": summary["fingerprint"],
            "source_rows_read": summary["rows_read"],
            "source_outbound_rows": summary["outbound_rows"],
            "source_inbound_rows": summary["inbound_rows"],
            "source_rejected_rows": summary["rejected_rows"],
            "source_rejected_by_reason": dg.MetadataValue.json(summary["rejected_by_reason"]),
            "source_inbound_rows_outside_partition_range": rows_outside_partitions(parsed.rows_per_day),
            "run_partitions": len(days),
            "run_rows": sum(len(f) for f in by_day.values()),
            "seconds": round(time.perf_counter() - started, 2),
        }
    )
    return by_day
