"""predictions: the deployed classifier labels each day's tweets."""

import time

import dagster as dg
import pandas as pd

from support_nlp.core.classifier import UNCERTAIN_NAME, ClassifierModel
from support_nlp.core.embedding import EmbeddingBatch
from support_nlp.metadata import add_per_partition_metadata, preview_table, share_markdown
from support_nlp.partitions import daily_partitions, single_run_backfill

PREDICTION_COLUMNS = ["tweet_id", "created_at", "day", "brand", "language", "text"]


class PredictionsConfig(dg.Config):
    min_confidence: float = 0.5  # below this the category is "uncertain"


def predict_day(tweets: pd.DataFrame, batch: EmbeddingBatch, model: ClassifierModel, min_confidence: float):
    """Predictions for the embedded tweets of one day (empty-after-cleaning tweets have no embedding)."""
    if batch.model != model.embedding_model:
        raise dg.Failure(
            f"embeddings were made with {batch.model!r} but the classifier expects {model.embedding_model!r}: "
            "re-materialize embeddings with the classifier's model, or retrain"
        )
    rows = tweets.set_index("tweet_id").loc[batch.tweet_ids].reset_index()
    predicted = model.predict(batch.vectors, min_confidence)
    return pd.concat([rows[PREDICTION_COLUMNS], predicted], axis=1)


def describe_predictions(frame: pd.DataFrame) -> dict:
    return {
        "dagster/row_count": len(frame),
        "uncertain_share": round(float((frame["category_name"] == UNCERTAIN_NAME).mean()), 4) if len(frame) else 0.0,
        "mean_confidence": round(float(frame["confidence"].mean()), 4) if len(frame) else 0.0,
        "category_mix": share_markdown(frame["category_name"], "category", top=15),
        "preview": preview_table(frame, ["tweet_id", "brand", "category_name", "confidence", "text"]),
    }


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=single_run_backfill,
    io_manager_key="table_io_manager",
    group_name="inference",
    kinds={"pandas", "parquet"},
)
def predictions(
    context: dg.AssetExecutionContext,
    config: PredictionsConfig,
    clean_text: dict[str, pd.DataFrame],
    embeddings: dict[str, EmbeddingBatch],
    classifier: ClassifierModel,
) -> dict[str, pd.DataFrame]:
    """Category id, name and confidence for every non-empty tweet of the day; `uncertain` below
    `min_confidence`. Tweets empty after cleaning are counted, not predicted."""
    started = time.perf_counter()
    by_day = {
        day: predict_day(clean_text[day], embeddings[day], classifier, config.min_confidence) for day in clean_text
    }
    add_per_partition_metadata(context, by_day, describe_predictions)
    rows_in = sum(len(frame) for frame in clean_text.values())
    rows_predicted = sum(len(frame) for frame in by_day.values())
    context.add_output_metadata(
        {
            "run_rows_in": rows_in,
            "run_rows_predicted": rows_predicted,
            "run_rows_excluded_empty_text": rows_in - rows_predicted,
            "min_confidence": config.min_confidence,
            "seconds": round(time.perf_counter() - started, 2),
        }
    )
    return by_day
