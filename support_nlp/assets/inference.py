"""predictions: the deployed classifier labels each day's tweets."""

import time

import dagster as dg
import pandas as pd

from support_nlp.core.classifier import UNCERTAIN_NAME, ClassifierModel
from support_nlp.core.embedding import EmbeddingBatch
from support_nlp.core.quality import population_stability_index
from support_nlp.metadata import check_specs, fitted_days_label, preview_table, share_markdown
from support_nlp.partitions import daily_partitions, io_retry_policy, single_run_backfill

PREDICTION_COLUMNS = ["tweet_id", "created_at", "day", "brand", "language", "text"]


class PredictionsConfig(dg.Config):
    min_confidence: float = 0.5  # below this the category is "uncertain"
    max_uncertain_share: float = 0.3
    max_category_psi: float = 0.25  # population stability index vs the training mix; above it: WARN


def predictions_checks(config: PredictionsConfig, clean_text: dict, by_day: dict, model: ClassifierModel):
    eligible = sum(int((~frame["is_empty"]).sum()) for frame in clean_text.values())
    predicted = pd.concat(by_day.values(), ignore_index=True)
    uncertain = predicted["category_name"] == UNCERTAIN_NAME
    uncertain_share = float(uncertain.mean()) if len(predicted) else 0.0
    confident_mix = predicted.loc[~uncertain, "category_name"].value_counts(normalize=True)
    psi = population_stability_index(pd.Series(model.metrics["category_shares"]), confident_mix)
    return [
        dg.AssetCheckResult(
            check_name="every_eligible_tweet_predicted",
            passed=len(predicted) == eligible and predicted["tweet_id"].is_unique,
            metadata={"eligible": eligible, "predicted": len(predicted)},
        ),
        dg.AssetCheckResult(
            check_name="uncertain_share_below_max",
            passed=uncertain_share <= config.max_uncertain_share,
            metadata={"uncertain_share": round(uncertain_share, 4), "max": config.max_uncertain_share},
        ),
        dg.AssetCheckResult(
            check_name="category_drift_psi",
            passed=len(confident_mix) == 0 or psi <= config.max_category_psi,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"psi": round(psi, 4), "max": config.max_category_psi},
        ),
    ]


def predict_day(tweets: pd.DataFrame, batch: EmbeddingBatch, model: ClassifierModel, min_confidence: float):
    """Predictions for the embedded tweets of one day (empty-after-cleaning tweets have no embedding)."""
    if batch.model != model.embedding_model:
        raise dg.Failure(
            f"embeddings were made with {batch.model!r} but the classifier expects {model.embedding_model!r}: "
            "re-materialize embeddings with the classifier's model, or retrain",
            allow_retries=False,
        )
    rows = tweets.set_index("tweet_id").loc[batch.tweet_ids].reset_index()
    predicted = model.predict(batch.vectors, min_confidence)
    return pd.concat([rows[PREDICTION_COLUMNS], predicted], axis=1)


def describe_predictions(frame: pd.DataFrame, day: str, fitted_days: tuple[str, str]) -> dict:
    return {
        "sample": fitted_days_label(day, fitted_days),
        "dagster/row_count": len(frame),
        "uncertain_share": round(float((frame["category_name"] == UNCERTAIN_NAME).mean()), 4) if len(frame) else 0.0,
        "mean_confidence": round(float(frame["confidence"].mean()), 3) if len(frame) else 0.0,
        "category_mix": share_markdown(frame["category_name"], "category", top=15),
        "preview": preview_table(frame, ["tweet_id", "brand", "category_name", "confidence", "text"]),
    }


def add_daily_metadata(context: dg.AssetExecutionContext, by_day: dict, classifier: ClassifierModel) -> None:
    # The deployed classifier is refit on every day its holdout covered.
    fitted_days = (classifier.metrics["train_days"][0], classifier.metrics["holdout_days"][1])
    for day, frame in by_day.items():
        context.add_asset_metadata(describe_predictions(frame, day, fitted_days), partition_key=day)


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=single_run_backfill,
    retry_policy=io_retry_policy,
    io_manager_key="table_io_manager",
    group_name="inference",
    kinds={"pandas", "parquet"},
    check_specs=check_specs(
        "predictions",
        {
            "every_eligible_tweet_predicted": "One prediction per non-empty clean tweet, none twice.",
            "uncertain_share_below_max": "The share of `uncertain` predictions is below the maximum.",
            "category_drift_psi": "Category mix vs the training mix (PSI); WARN above the threshold.",
        },
    ),
)
def predictions(
    context: dg.AssetExecutionContext,
    config: PredictionsConfig,
    clean_text: dict[str, pd.DataFrame],
    embeddings: dict[str, EmbeddingBatch],
    classifier: ClassifierModel,
):
    """Category id, name and confidence for every non-empty tweet of the day; `uncertain` below
    `min_confidence`. Tweets empty after cleaning are counted, not predicted."""
    started = time.perf_counter()
    by_day = {
        day: predict_day(clean_text[day], embeddings[day], classifier, config.min_confidence) for day in clean_text
    }
    add_daily_metadata(context, by_day, classifier)
    rows_in = sum(len(frame) for frame in clean_text.values())
    rows_predicted = sum(len(frame) for frame in by_day.values())
    return dg.MaterializeResult(
        value=by_day,
        metadata={
            "run_rows_in": rows_in,
            "run_rows_predicted": rows_predicted,
            "run_rows_excluded_empty_text": rows_in - rows_predicted,
            "min_confidence": config.min_confidence,
            "seconds": round(time.perf_counter() - started, 2),
        },
        check_results=predictions_checks(config, clean_text, by_day, classifier),
    )
