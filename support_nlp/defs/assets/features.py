"""clean_text and embeddings: per-day model inputs derived from raw_tweets."""

import time

import dagster as dg
import numpy as np
import pandas as pd

from support_nlp.core.embedding import EmbeddingBatch
from support_nlp.core.language import UNDETERMINED, LanguageDetector, detect_languages
from support_nlp.core.progress import Progress
from support_nlp.core.quality import max_norm_deviation
from support_nlp.core.text import clean_frame
from support_nlp.metadata import (
    add_per_partition_metadata,
    check_specs,
    concat_days,
    preview_table,
    record_run_totals,
    share_markdown,
    split_by_day,
)
from support_nlp.partitions import daily_backfill_policy, daily_partitions
from support_nlp.resources import EmbeddingModel

UNIT_NORM_TOLERANCE = 1e-3


class CleanTextConfig(dg.Config):
    language_detector: LanguageDetector = "fasttext"  # fastText + lingua when unsure; or lingua, or langdetect (seeded)
    max_empty_share: float = 0.1
    max_undetermined_language_share: float = 0.3


def days_with_different_tweets(left: dict[str, np.ndarray], right: dict[str, np.ndarray]) -> list[str]:
    """Days whose tweet ids differ (in membership or order) between two per-day id arrays."""
    return sorted(day for day in left.keys() | right.keys() if not np.array_equal(left.get(day), right.get(day)))


def clean_text_checks(config: CleanTextConfig, cleaned: pd.DataFrame, raw_tweets: dict, by_day: dict):
    empty_share = float(cleaned["is_empty"].mean()) if len(cleaned) else 0.0
    undetermined_share = float((cleaned["language"] == UNDETERMINED).mean()) if len(cleaned) else 0.0
    misaligned = days_with_different_tweets(
        {day: frame["tweet_id"].to_numpy() for day, frame in raw_tweets.items()},
        {day: frame["tweet_id"].to_numpy() for day, frame in by_day.items()},
    )
    return [
        dg.AssetCheckResult(
            check_name="empty_after_cleaning_share",
            passed=empty_share <= config.max_empty_share,
            metadata={"share": round(empty_share, 4), "max": config.max_empty_share},
        ),
        dg.AssetCheckResult(
            check_name="language_mix_sane",
            passed=undetermined_share <= config.max_undetermined_language_share,
            metadata={
                "undetermined_share": round(undetermined_share, 4),
                "max": config.max_undetermined_language_share,
                "top_languages": cleaned["language"].value_counts(normalize=True).head(5).round(4).to_dict(),
            },
        ),
        dg.AssetCheckResult(
            check_name="aligned_with_raw_tweets",
            passed=not misaligned,
            metadata={"misaligned_days": misaligned[:20]},
        ),
    ]


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=daily_backfill_policy,
    io_manager_key="table_io_manager",
    group_name="features",
    kinds={"pandas", "parquet"},
    check_specs=check_specs(
        "clean_text",
        {
            "empty_after_cleaning_share": "Few texts are empty once URLs and mentions are removed.",
            "language_mix_sane": "Undetermined language does not dominate.",
            "aligned_with_raw_tweets": "Exactly the raw tweets of each day, in the same order.",
        },
        blocking=("aligned_with_raw_tweets",),
    ),
)
def clean_text(
    context: dg.AssetExecutionContext,
    config: CleanTextConfig,
    raw_tweets: dict[str, pd.DataFrame],
    known_brands: pd.DataFrame,
):
    """Each raw tweet plus `text_clean` (for the model), `brand` (addressed company), `language`
    (ISO 639-1, deterministic) and `is_empty` (nothing left after cleaning: kept, counted, not embedded)."""
    started = time.perf_counter()
    tweets = concat_days(raw_tweets)
    progress = Progress("clean_text", len(tweets), context.log.info)
    cleaned = clean_frame(tweets, known_brands["brand"])
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
            "brands": share_markdown(frame["brand"], "brand"),
            "preview": preview_table(frame, ["tweet_id", "brand", "language", "text_clean"]),
        },
    )
    record_run_totals(
        context,
        {
            "rows": len(cleaned),
            "empty_after_cleaning": int(cleaned["is_empty"].sum()),
            "rows_per_s": round(progress.rows_per_s, 1),
            "seconds": round(time.perf_counter() - started, 2),
        },
    )
    return dg.MaterializeResult(
        value=by_day,
        metadata={"language_detector": config.language_detector},
        check_results=clean_text_checks(config, cleaned, raw_tweets, by_day),
    )


def embeddings_checks(by_day: dict[str, EmbeddingBatch], clean_text: dict, expected_dim: int):
    dims = sorted({batch.vectors.shape[1] for batch in by_day.values()})
    non_finite = sum(int((~np.isfinite(batch.vectors)).any(axis=1).sum()) for batch in by_day.values())
    norm_deviation = max((max_norm_deviation(batch.vectors) for batch in by_day.values()), default=0.0)
    misaligned = days_with_different_tweets(
        {day: frame.loc[~frame["is_empty"], "tweet_id"].to_numpy() for day, frame in clean_text.items()},
        {day: batch.tweet_ids for day, batch in by_day.items()},
    )
    return [
        dg.AssetCheckResult(
            check_name="dimension_as_recorded",
            passed=dims == [expected_dim],
            metadata={"dimensions_found": dims, "model_dimension": expected_dim},
        ),
        dg.AssetCheckResult(
            check_name="finite_and_unit_norm",
            passed=non_finite == 0 and norm_deviation <= UNIT_NORM_TOLERANCE,
            metadata={
                "rows_with_non_finite_values": non_finite,
                "max_norm_deviation": round(norm_deviation, 7),
                "tolerance": UNIT_NORM_TOLERANCE,
            },
        ),
        dg.AssetCheckResult(
            check_name="aligned_with_clean_text",
            passed=not misaligned,
            metadata={"misaligned_days": misaligned[:20]},
        ),
    ]


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=daily_backfill_policy,
    io_manager_key="artifact_io_manager",
    group_name="features",
    kinds={"onnx", "numpy"},  # the CPU default: ONNX int8 (torch only on CUDA)
    # The model already uses every core: two embedding steps at once only thrash and double the memory.
    pool="embedding",
    check_specs=check_specs(
        "embeddings",
        {
            "dimension_as_recorded": "Every vector has the embedding model's dimension.",
            "finite_and_unit_norm": "All values finite and every vector L2-normalised.",
            "aligned_with_clean_text": "One vector per non-empty clean tweet, in the same order.",
        },
        blocking=("dimension_as_recorded", "finite_and_unit_norm", "aligned_with_clean_text"),
    ),
)
def embeddings(
    context: dg.AssetExecutionContext,
    clean_text: dict[str, pd.DataFrame],
    embedding_model: EmbeddingModel,
):
    """L2-normalised float32 sentence embeddings of non-empty `text_clean`, aligned to `tweet_id`."""
    started = time.perf_counter()
    encoder = embedding_model.encoder()
    eligible = {day: frame[~frame["is_empty"].astype(bool)] for day, frame in clean_text.items()}
    total = sum(len(frame) for frame in eligible.values())
    distinct = sum(frame["text_clean"].nunique() for frame in eligible.values())
    progress = Progress(f"embed ({total:,} texts, {distinct:,} distinct per day)", distinct, context.log.info)
    # One day at a time: a partition's vectors then never depend on which other days share the run.
    by_day = {
        day: EmbeddingBatch(
            frame["tweet_id"].to_numpy(np.int64),
            embedding_model.embed(frame["text_clean"].tolist(), progress),
            # The encoder's identity (model, backend, precision), not only the model: vectors of the same model
            # on another backend differ, and inference refuses vectors from another encoder than training used.
            encoder.identity,
        )
        for day, frame in eligible.items()
    }
    elapsed = time.perf_counter() - started
    add_per_partition_metadata(
        context,
        eligible,
        lambda frame: {"dagster/row_count": len(frame), "distinct_texts": frame["text_clean"].nunique()},
    )
    record_run_totals(
        context,
        {
            "rows_embedded": total,
            "rows_skipped_empty": sum(len(frame) for frame in clean_text.values()) - total,
            "distinct_texts_per_day": distinct,
            "rows_per_s": round(total / elapsed, 1) if elapsed else 0.0,
            "seconds": round(elapsed, 2),
        },
    )
    return dg.MaterializeResult(
        value=by_day,
        metadata={
            "model": embedding_model.model,
            "encoder": encoder.identity,
            "vector_cache": embedding_model.cache_path or "off",
            "dim": encoder.dimension,
        },
        check_results=embeddings_checks(by_day, clean_text, encoder.dimension),
    )
