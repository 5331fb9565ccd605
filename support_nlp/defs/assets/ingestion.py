"""raw_tweets: inbound customer tweets of each UTC day, typed, from the configured twcs source; known_brands: the
companies answering in it."""

import time

import dagster as dg
import pandas as pd

from support_nlp.core.quality import column_schema, schema_differences
from support_nlp.core.twcs import ParsedSource, SourceFormatError, SourceSummary
from support_nlp.metadata import (
    add_per_partition_metadata,
    check_specs,
    preview_table,
    record_run_totals,
    split_by_day,
)
from support_nlp.partitions import daily_backfill_policy, daily_partitions, io_retry_policy
from support_nlp.resources import TweetSource

RAW_SCHEMA = {
    "tweet_id": "int64",
    "author_id": "str",
    "created_at": "datetime64[ns, UTC]",
    "text": "str",
    "response_tweet_id": "str",
    "in_response_to_tweet_id": "Int64",
    "day": "str",
    "thread_brand": "str",
    "thread_id": "int64",
}
PREVIEW_COLUMNS = ["tweet_id", "author_id", "created_at", "text", "response_tweet_id", "in_response_to_tweet_id"]
# Steps reading the source run one at a time within a run (definitions.py): on a cold parse cache the first parses the
# file and the others find the cache, instead of each parsing it at the same time.
READS_SOURCE_TAG = "support_nlp/reads_source"
READS_SOURCE = {READS_SOURCE_TAG: "true"}
QUARANTINE_PREVIEW_COLUMNS = ["record", "line", "reason", "detail", "tweet_id", "created_at", "text"]


class RawTweetsConfig(dg.Config):
    max_empty_text_share: float = 0.01
    max_unparsable_date_share: float = 0.01


def parse(context: dg.AssetExecutionContext, tweet_source: TweetSource) -> ParsedSource:
    try:
        return tweet_source.parse(report=context.log.info)
    except SourceFormatError as error:
        # The file is broken as a whole: retrying reads the same bytes again.
        raise dg.Failure(description=str(error), allow_retries=False) from error


def rows_outside_partitions(rows_per_day: dict[str, int]) -> int:
    valid = set(daily_partitions.get_partition_keys())
    return sum(count for day, count in rows_per_day.items() if day not in valid)


def previous_schema(context: dg.AssetExecutionContext) -> dict[str, str] | None:
    event = context.instance.get_latest_materialization_event(context.asset_key)
    entry = event.asset_materialization.metadata.get("column_schema") if event else None
    return entry.value if entry else None


def raw_tweets_checks(
    context: dg.AssetExecutionContext,
    config: RawTweetsConfig,
    tweets: pd.DataFrame,
    by_day: dict,
    summary: SourceSummary,
) -> list[dg.AssetCheckResult]:
    schema = column_schema(tweets)
    wrong_types = {c: schema.get(c, "missing") for c, dtype in RAW_SCHEMA.items() if schema.get(c) != dtype}
    duplicates = int(tweets["tweet_id"].duplicated().sum())
    empty_text_share = float(tweets["text"].str.strip().eq("").mean()) if len(tweets) else 0.0
    unparsable = summary.quarantined_by_reason.get("created_at_unparsable", 0)
    unparsable_share = unparsable / max(summary.rows_in, 1)
    empty_days = sorted(day for day, frame in by_day.items() if frame.empty)
    previous = previous_schema(context)
    changes = schema_differences(previous, schema) if previous else []
    return [
        dg.AssetCheckResult(
            check_name="required_columns_and_types",
            passed=not wrong_types,
            metadata={"mismatches": wrong_types, "expected": RAW_SCHEMA},
        ),
        dg.AssetCheckResult(
            check_name="unique_tweet_id", passed=duplicates == 0, metadata={"duplicate_tweet_ids": duplicates}
        ),
        dg.AssetCheckResult(
            check_name="text_present",
            passed=empty_text_share <= config.max_empty_text_share,
            metadata={"empty_text_share": round(empty_text_share, 5), "max": config.max_empty_text_share},
        ),
        dg.AssetCheckResult(
            check_name="created_at_parsable",
            passed=unparsable_share <= config.max_unparsable_date_share,
            metadata={
                "unparsable_rows_in_source": unparsable,
                "share": round(unparsable_share, 5),
                "max": config.max_unparsable_date_share,
            },
        ),
        dg.AssetCheckResult(
            check_name="partition_not_empty",
            passed=not empty_days,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"empty_partitions": len(empty_days), "first_empty": empty_days[:10]},
        ),
        dg.AssetCheckResult(
            check_name="schema_unchanged",
            passed=not changes,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"changes": changes, "compared_with_previous": previous is not None},
        ),
    ]


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=daily_backfill_policy,
    retry_policy=io_retry_policy,
    op_tags=READS_SOURCE,
    io_manager_key="table_io_manager",
    group_name="features",  # with the features it feeds: the features job is this group
    kinds={"pandas", "parquet"},
    check_specs=check_specs(
        "raw_tweets",
        {
            "required_columns_and_types": "Every required column is present with its expected dtype.",
            "unique_tweet_id": "No tweet_id appears twice.",
            "text_present": "The share of empty texts is below the configured maximum.",
            "created_at_parsable": "The share of source rows with an unparsable created_at is below the maximum.",
            "partition_not_empty": "Every day of the run holds tweets (WARN: quiet days happen).",
            "schema_unchanged": "Columns and dtypes match the previous materialization (WARN).",
        },
        blocking=("required_columns_and_types", "unique_tweet_id"),
    ),
)
def raw_tweets(context: dg.AssetExecutionContext, config: RawTweetsConfig, tweet_source: TweetSource):
    """Inbound customer tweets per UTC day of `created_at`: tweet_id, author_id, created_at (UTC), text,
    reply ids and the brand that answered in the thread."""
    started = time.perf_counter()
    parsed = parse(context, tweet_source)
    days = context.partition_keys
    tweets = parsed.read_days(days)
    by_day = split_by_day(tweets, days)
    summary = parsed.summary
    add_per_partition_metadata(
        context,
        by_day,
        lambda frame: {"dagster/row_count": len(frame), "preview": preview_table(frame, PREVIEW_COLUMNS)},
    )
    record_run_totals(
        context, {"partitions": len(days), "rows": len(tweets), "seconds": round(time.perf_counter() - started, 2)}
    )
    return dg.MaterializeResult(
        value=by_day,
        metadata={
            "source": dg.MetadataValue.path(summary.source),
            "source_fingerprint": summary.fingerprint,
            # rows_in = rows_outbound + rows_inbound_kept + rows_quarantined, for the whole source file
            "source_rows_in": summary.rows_in,
            "source_rows_outbound": summary.rows_outbound,
            "source_rows_inbound_kept": summary.rows_inbound_kept,
            "source_rows_quarantined": summary.rows_quarantined,
            "source_quarantined_by_reason": dg.MetadataValue.json(summary.quarantined_by_reason),
            "quarantine_file": dg.MetadataValue.path(str(parsed.quarantine_path)),
            # Texts in the quarantine are masked like kept ones (see core.privacy).
            "quarantine_preview": preview_table(parsed.read_quarantine(), QUARANTINE_PREVIEW_COLUMNS),
            "source_personal_data_masked": dg.MetadataValue.json(summary.personal_data_masked),
            "source_inbound_rows_outside_partition_range": rows_outside_partitions(parsed.rows_per_day),
            "column_schema": dg.MetadataValue.json(column_schema(tweets)),
        },
        check_results=raw_tweets_checks(context, config, tweets, by_day, summary),
    )


@dg.asset(
    retry_policy=io_retry_policy,
    op_tags=READS_SOURCE,
    io_manager_key="table_io_manager",
    group_name="features",
    kinds={"pandas", "parquet"},
    check_specs=check_specs(
        "known_brands", {"brands_found": "Some company replies in the source (WARN: else brands are guessed)."}
    ),
)
def known_brands(context: dg.AssetExecutionContext, tweet_source: TweetSource):
    """The companies' handles (column `brand`): every author replying to customers anywhere in the source, so that
    clean_text tells the brand a tweet addresses from its other @mentions, whichever days a run cleans."""
    parsed = parse(context, tweet_source)
    brands = pd.DataFrame({"brand": list(parsed.summary.brands)})
    return dg.MaterializeResult(
        value=brands,
        metadata={
            "dagster/row_count": len(brands),
            "source_fingerprint": parsed.summary.fingerprint,
            "brands": dg.MetadataValue.md(", ".join(brands["brand"])),
        },
        # Without any, clean_text takes a tweet's first non-numeric @mention as its brand, which may be a person.
        check_results=[
            dg.AssetCheckResult(
                check_name="brands_found",
                passed=len(brands) > 0,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"brands": len(brands)},
            )
        ],
    )
