"""predictions: the deployed classifier labels each day's issue messages; every tweet gets its message kind and
its thread's category."""

import time

import dagster as dg
import pandas as pd

from support_nlp.core.classifier import UNCERTAIN_NAME, ClassifierModel
from support_nlp.core.conversation import ISSUE, conversation_frame, thread_categories
from support_nlp.core.embedding import EmbeddingBatch
from support_nlp.core.quality import population_stability_index
from support_nlp.metadata import check_specs, fitted_days_label, preview_table, share_markdown
from support_nlp.partitions import daily_partitions, io_retry_policy, single_run_backfill

PREDICTION_COLUMNS = ["tweet_id", "created_at", "day", "brand", "language", "text"]
# A conversational message (thanks, "DM sent", ...) is no issue: it has no category of its own, only its thread's.
CONVERSATIONAL_ID = -2


class PredictionsConfig(dg.Config):
    min_confidence: float = 0.5  # below this the category is "uncertain"
    max_uncertain_share: float = 0.3
    max_category_psi: float = 0.25  # population stability index vs the training mix; above it: WARN


def predictions_checks(config: PredictionsConfig, clean_text: dict, by_day: dict, model: ClassifierModel):
    eligible = sum(int((~frame["is_empty"]).sum()) for frame in clean_text.values())
    predicted = pd.concat(by_day.values(), ignore_index=True)
    issues = predicted[predicted["message_kind"] == ISSUE]
    uncertain = issues["category_name"] == UNCERTAIN_NAME
    uncertain_share = float(uncertain.mean()) if len(issues) else 0.0
    confident_mix = issues.loc[~uncertain, "category_name"].value_counts(normalize=True)
    psi = population_stability_index(pd.Series(model.category_shares), confident_mix)
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


def with_conversation(predicted: pd.DataFrame, tweets: pd.DataFrame) -> pd.DataFrame:
    """`message_kind`, `thread_id` and `thread_category` added; conversational messages lose their own category.

    A thread's category is that of its first issue message among the tweets given (one day): a day's predictions
    then depend on that day alone, whichever days a run covers, and a thread continued after midnight counts from
    its first issue message of the new day."""
    conversation = conversation_frame(tweets).set_index("tweet_id").loc[predicted["tweet_id"]].reset_index()
    issue = (conversation["message_kind"] == ISSUE).to_numpy()
    out = predicted.assign(message_kind=conversation["message_kind"].to_numpy())
    out["category_id"] = out["category_id"].where(issue, CONVERSATIONAL_ID).astype("int32")
    out["category_name"] = out["category_name"].where(issue, "")
    out["thread_id"] = conversation["thread_id"].to_numpy()
    out["thread_category"] = thread_categories(conversation, out["category_name"], out["created_at"])
    return out


def predict_run(clean_text: dict[str, pd.DataFrame], embeddings: dict, model: ClassifierModel, min_confidence: float):
    """Per day, predictions of every embedded tweet with its conversation (see `with_conversation`)."""
    return {
        day: with_conversation(predict_day(tweets, embeddings[day], model, min_confidence), tweets)
        for day, tweets in clean_text.items()
    }


def describe_predictions(frame: pd.DataFrame, day: str, fitted_days: tuple[str, str]) -> dict:
    issues = frame[frame["message_kind"] == ISSUE]
    return {
        "sample": fitted_days_label(day, fitted_days),
        "dagster/row_count": len(frame),
        "issue_share": round(len(issues) / len(frame), 4) if len(frame) else 0.0,
        "uncertain_share": round(float((issues["category_name"] == UNCERTAIN_NAME).mean()), 4) if len(issues) else 0.0,
        "mean_confidence": round(float(issues["confidence"].mean()), 3) if len(issues) else 0.0,
        "message_kinds": share_markdown(frame["message_kind"], "message kind"),
        "category_mix": share_markdown(issues["category_name"], "category", top=15),
        "threads": int(frame["thread_id"].nunique()),
        "preview": preview_table(frame, ["tweet_id", "brand", "message_kind", "category_name", "confidence", "text"]),
    }


def add_daily_metadata(context: dg.AssetExecutionContext, by_day: dict, classifier: ClassifierModel) -> None:
    for day, frame in by_day.items():
        context.add_asset_metadata(describe_predictions(frame, day, classifier.training_days), partition_key=day)


# Shared by the cascade's `predictions` (assets/cascade_inference.py): one asset key, two ways to label.
PREDICTIONS_ASSET = dict(
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
            "uncertain_share_below_max": "The share of `uncertain` issue predictions is below the maximum.",
            "category_drift_psi": "Category mix vs the training mix (PSI); WARN above the threshold.",
        },
    ),
)


def run_metadata(config: PredictionsConfig, clean_text: dict, by_day: dict, started: float) -> dict:
    rows_in = sum(len(frame) for frame in clean_text.values())
    rows_predicted = sum(len(frame) for frame in by_day.values())
    return {
        "run_rows_in": rows_in,
        "run_rows_predicted": rows_predicted,
        "run_rows_excluded_empty_text": rows_in - rows_predicted,
        "min_confidence": config.min_confidence,
        "seconds": round(time.perf_counter() - started, 2),
    }


@dg.asset(**PREDICTIONS_ASSET)
def predictions(
    context: dg.AssetExecutionContext,
    config: PredictionsConfig,
    clean_text: dict[str, pd.DataFrame],
    embeddings: dict[str, EmbeddingBatch],
    classifier: ClassifierModel,
):
    """For every non-empty tweet of the day: its message kind; for issue messages the category id, name and
    confidence (`uncertain` below `min_confidence`: the "other" of inference); for every tweet its thread's
    category. Tweets empty after cleaning are counted, not predicted."""
    started = time.perf_counter()
    by_day = predict_run(clean_text, embeddings, classifier, config.min_confidence)
    add_daily_metadata(context, by_day, classifier)
    return dg.MaterializeResult(
        value=by_day,
        metadata=run_metadata(config, clean_text, by_day, started),
        check_results=predictions_checks(config, clean_text, by_day, classifier),
    )
