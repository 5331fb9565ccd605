"""predictions: the deployed classifier labels each day's issue messages; every tweet gets its message kind and
its thread's category. Under SUPPORT_NLP_INFERENCE=cascade the static student labels them first and the deployed
classifier only those it is unsure of (`support_nlp.core.cascade`); one `predictions` asset either way."""

import time

import dagster as dg
import numpy as np
import pandas as pd

from support_nlp.core.cascade import Cascade
from support_nlp.core.classifier import CONVERSATIONAL_ID, UNCERTAIN_NAME, ClassifierModel
from support_nlp.core.conversation import ISSUE, conversation_frame, thread_categories
from support_nlp.core.embedding import EmbeddingBatch
from support_nlp.core.embedding_cache import EmbeddingCache
from support_nlp.core.model_store import ModelPair
from support_nlp.core.quality import population_stability_index
from support_nlp.defs.assets.deployment import deployed_model
from support_nlp.metadata import check_specs, fitted_days_label, preview_table, record_run_totals, share_markdown
from support_nlp.partitions import daily_backfill_policy, daily_partitions, io_retry_policy
from support_nlp.resources import EmbeddingModel, ModelStoreResource
from support_nlp.settings import read_settings

PREDICTION_COLUMNS = ["tweet_id", "created_at", "day", "brand", "language", "text"]


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


def with_conversation(predicted: pd.DataFrame, conversation: pd.DataFrame) -> pd.DataFrame:
    """`message_kind`, `thread_id` and `thread_category` added from the day's `conversation_frame`; conversational
    messages lose their own category and confidence.

    A thread's category is that of its first issue message among the tweets given (one day): a day's predictions
    then depend on that day alone, whichever days a run covers, and a thread continued after midnight counts from
    its first issue message of the new day."""
    conversation = conversation.set_index("tweet_id").loc[predicted["tweet_id"]].reset_index()
    issue = (conversation["message_kind"] == ISSUE).to_numpy()
    out = predicted.assign(message_kind=conversation["message_kind"].to_numpy())
    out["category_id"] = out["category_id"].where(issue, CONVERSATIONAL_ID).astype("int32")
    out["category_name"] = out["category_name"].where(issue, "")
    out["confidence"] = out["confidence"].where(issue, np.nan).astype("float32")
    out["thread_id"] = conversation["thread_id"].to_numpy()
    out["thread_category"] = thread_categories(conversation, out["category_name"], out["created_at"])
    return out


def predict_run(clean_text: dict[str, pd.DataFrame], embeddings: dict, model: ClassifierModel, min_confidence: float):
    """Per day, predictions of every embedded tweet with its conversation (see `with_conversation`)."""
    return {
        day: with_conversation(predict_day(tweets, embeddings[day], model, min_confidence), conversation_frame(tweets))
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


# One asset key, two ways to label: `predictions_asset` binds these to the path SUPPORT_NLP_INFERENCE names, so the
# defs folder holds a single `predictions` whichever it is.
PREDICTIONS_ASSET = dict(
    name="predictions",
    deps=[deployed_model],
    partitions_def=daily_partitions,
    backfill_policy=daily_backfill_policy,
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


def predictions_result(
    context: dg.AssetExecutionContext,
    config: PredictionsConfig,
    clean_text: dict[str, pd.DataFrame],
    by_day: dict[str, pd.DataFrame],
    deployed: ModelPair,
    started: float,
    run_totals: dict[str, int] | None = None,
    metadata: dict | None = None,
) -> dg.MaterializeResult:
    """Per-day metadata, the run's totals (with `run_totals`) as its tags, and the checks, for either path."""
    add_daily_metadata(context, by_day, deployed.classifier)
    rows_in = sum(len(frame) for frame in clean_text.values())
    rows_predicted = sum(len(frame) for frame in by_day.values())
    record_run_totals(
        context,
        {
            "rows_in": rows_in,
            "rows_predicted": rows_predicted,
            "rows_excluded_empty_text": rows_in - rows_predicted,
            **(run_totals or {}),
            "seconds": round(time.perf_counter() - started, 2),
        },
    )
    return dg.MaterializeResult(
        value=by_day,
        metadata={
            "min_confidence": config.min_confidence,
            "model_version": deployed.version.version,
            **(metadata or {}),
        },
        check_results=predictions_checks(config, clean_text, by_day, deployed.classifier),
    )


def transformer_predictions(
    context: dg.AssetExecutionContext,
    config: PredictionsConfig,
    clean_text: dict[str, pd.DataFrame],
    embeddings: dict[str, EmbeddingBatch],
    model_store: ModelStoreResource,
):
    """For every non-empty tweet of the day: its message kind; for issue messages the category id, name and
    confidence (`uncertain` below `min_confidence`: the "other" of inference); for every tweet its thread's
    category. Tweets empty after cleaning are counted, not predicted. The classifier is the deployed one
    (`deployed_model`)."""
    started = time.perf_counter()
    deployed = model_store.deployed()
    by_day = predict_run(clean_text, embeddings, deployed.classifier, config.min_confidence)
    return predictions_result(context, config, clean_text, by_day, deployed, started)


def cascade_day(
    tweets: pd.DataFrame,
    conversation: pd.DataFrame,
    cascade: Cascade,
    min_confidence: float,
    teacher_cache: EmbeddingCache | None,
    log,
) -> pd.DataFrame:
    """Predictions, with `escalated`, for the non-empty tweets of one day. Only issue messages go through the
    cascade: a message of another kind (a conversational act, a complaint naming no topic) keeps no category of
    its own (`with_conversation`), so neither the student nor the transformer is spent on it."""
    eligible = tweets[~tweets["is_empty"].astype(bool)].reset_index(drop=True)
    kinds = conversation.set_index("tweet_id").loc[eligible["tweet_id"], "message_kind"]
    issue = (kinds == ISSUE).to_numpy()
    labels = cascade.label(eligible.loc[issue, "text_clean"].tolist(), min_confidence, teacher_cache, log)
    predictions = pd.DataFrame(
        {
            "category_id": np.full(len(eligible), CONVERSATIONAL_ID, dtype=np.int32),
            "category_name": "",
            "confidence": np.full(len(eligible), np.nan, dtype=np.float32),
            "escalated": False,
        }
    )
    for column in predictions.columns:
        values = predictions[column].to_numpy().copy()
        values[issue] = labels.predictions[column].to_numpy()
        predictions[column] = values
    return pd.concat([eligible[PREDICTION_COLUMNS], predictions], axis=1)


def escalated_shares(by_day: dict[str, pd.DataFrame]) -> dict[str, float]:
    return {day: round(float(frame["escalated"].mean()), 4) if len(frame) else 0.0 for day, frame in by_day.items()}


def cascade_predictions(
    context: dg.AssetExecutionContext,
    config: PredictionsConfig,
    clean_text: dict[str, pd.DataFrame],
    model_store: ModelStoreResource,
    embedding_model: EmbeddingModel,
):
    """For every non-empty tweet of the day: its message kind; for issue messages the category id, name and
    confidence (`uncertain` below `min_confidence`) from the cascade (`core.cascade`: the static student labels
    every issue message, the deployed classifier those it is unsure of from their transformer vectors; the cascade
    is fitted on the texts training recorded with the deployed model version and stored there on first use), and
    whether the transformer decided it (`escalated`); for every tweet its thread's category. It reads clean_text,
    not `embeddings`. Tweets empty after cleaning are counted, not predicted."""
    started = time.perf_counter()
    deployed = model_store.deployed()
    try:
        cascade = embedding_model.cascade(deployed.classifier, model_store.folder(deployed), context.log.info)
    except ValueError as error:  # the deployed classifier's encoder cannot teach a student: the same on every retry
        raise dg.Failure(f"{error} (deployed model {deployed.version.version})", allow_retries=False) from error
    context.log.info(f"cascade: student {cascade.student.identity}, escalating below {cascade.escalate_below:.3f}")
    by_day = {}
    for day, tweets in clean_text.items():
        conversation = conversation_frame(tweets)
        predicted = cascade_day(
            tweets, conversation, cascade, config.min_confidence, embedding_model.vector_cache, context.log.info
        )
        by_day[day] = with_conversation(predicted, conversation)
    for day, share in escalated_shares(by_day).items():
        context.add_asset_metadata({"escalated_share": share}, partition_key=day)
    return predictions_result(
        context,
        config,
        clean_text,
        by_day,
        deployed,
        started,
        run_totals={"rows_escalated": sum(int(frame["escalated"].sum()) for frame in by_day.values())},
        metadata={
            "inference": "cascade",
            "student": cascade.student.identity,
            "escalate_below": cascade.escalate_below,
        },
    )


def predictions_asset(inference: str) -> dg.AssetsDefinition:
    """`predictions` labelled the way `inference` (SUPPORT_NLP_INFERENCE) names."""
    label = cascade_predictions if inference == "cascade" else transformer_predictions
    return dg.asset(**PREDICTIONS_ASSET)(label)


predictions = predictions_asset(read_settings().inference)
