"""clean_text and embeddings: per-day model inputs derived from raw_tweets."""

import time

import dagster as dg
import numpy as np
import pandas as pd

from support_nlp.core.embedding import EmbeddingBatch
from support_nlp.core.language import detect_languages
from support_nlp.core.progress import Progress
from support_nlp.core.text import clean_frame
from support_nlp.metadata import (
    add_per_partition_metadata,
    concat_days,
    preview_table,
    share_markdown,
    split_by_day,
)
from support_nlp.partitions import daily_partitions, single_run_backfill
from support_nlp.resources import EmbeddingModel, TweetSource


class CleanTextConfig(dg.Config):
    language_detector: str = "lingua"  # or "langdetect" (seeded, slower, less accurate on tweets)


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=single_run_backfill,
    io_manager_key="table_io_manager",
    group_name="features",
    kinds={"pandas", "parquet"},
)
def clean_text(
    context: dg.AssetExecutionContext,
    config: CleanTextConfig,
    raw_tweets: dict[str, pd.DataFrame],
    tweet_source: TweetSource,
) -> dict[str, pd.DataFrame]:
    """Each raw tweet plus `text_clean` (for the model), `brand` (addressed company), `language`
    (ISO 639-1, deterministic) and `is_empty` (nothing left after cleaning: kept, counted, not embedded)."""
    started = time.perf_counter()
    tweets = concat_days(raw_tweets)
    known_brands = frozenset(tweet_source.parse().summary["brands"])
    progress = Progress("clean_text", len(tweets), context.log.info)
    cleaned = clean_frame(tweets, known_brands)
    cleaned["language"] = detect_languages(cleaned["text_clean"].tolist(), config.language_detector)
    progress.advance(len(cleaned))
    by_day = split_by_day(cleaned, list(raw_tweets))
    add_per_partition_metadata(
        context,
        by_day,
        lambda frame: {
            "dagster/row_count": len(frame),
            "empty_after_cleaning": int(frame["is_empty"].sum()),
            "language_mix": share_markdown(frame["language"], "language"),
            "preview": preview_table(frame, ["tweet_id", "brand", "language", "text_clean"]),
        },
    )
    context.add_output_metadata(
        {
            "run_rows": len(cleaned),
            "run_empty_after_cleaning": int(cleaned["is_empty"].sum()),
            "run_language_mix": share_markdown(cleaned["language"], "language"),
            "run_brands": share_markdown(cleaned["brand"], "brand"),
            "language_detector": config.language_detector,
            "rows_per_s": round(progress.rows_per_s, 1),
            "seconds": round(time.perf_counter() - started, 2),
        }
    )
    return by_day


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=single_run_backfill,
    io_manager_key="artifact_io_manager",
    group_name="features",
    kinds={"pytorch", "numpy"},
)
def embeddings(
    context: dg.AssetExecutionContext,
    clean_text: dict[str, pd.DataFrame],
    embedding_model: EmbeddingModel,
) -> dict[str, EmbeddingBatch]:
    """L2-normalised float32 sentence embeddings of non-empty `text_clean`, aligned to `tweet_id`."""
    started = time.perf_counter()
    tweets = concat_days(clean_text)
    eligible = tweets[~tweets["is_empty"].astype(bool)].reset_index(drop=True)
    texts = eligible["text_clean"].tolist()
    vectors = embedding_model.embed(texts, report=context.log.info)
    ids = eligible["tweet_id"].to_numpy(np.int64)
    rows_by_day = eligible.groupby("day").indices
    no_rows = np.empty(0, dtype=np.int64)

    def batch_of(rows: np.ndarray) -> EmbeddingBatch:
        return EmbeddingBatch(ids[rows], vectors[rows], embedding_model.model)

    by_day = {day: batch_of(rows_by_day.get(day, no_rows)) for day in clean_text}
    elapsed = time.perf_counter() - started
    add_per_partition_metadata(context, by_day, lambda batch: {"dagster/row_count": len(batch)})
    context.add_output_metadata(
        {
            "model": embedding_model.model,
            "dim": int(vectors.shape[1]),
            "run_rows_embedded": len(texts),
            "run_rows_skipped_empty": len(tweets) - len(eligible),
            "run_distinct_texts": len(set(texts)),
            "rows_per_s": round(len(texts) / elapsed, 1) if elapsed else 0.0,
            "seconds": round(elapsed, 2),
        }
    )
    return by_day
