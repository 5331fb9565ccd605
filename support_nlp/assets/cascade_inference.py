"""predictions under SUPPORT_NLP_INFERENCE=cascade: every tweet labelled from the static student's vector, the
tweets its classifier is unsure of embedded by the transformer and labelled by the deployed classifier
(`support_nlp.core.cascade`). It reads clean_text, not the `embeddings` asset, so the daily run embeds only the
escalated tweets with the transformer. Same asset key, checks and columns as the transformer path, plus
`escalated` per tweet and `escalated_share` per day."""

import time

import dagster as dg
import pandas as pd

from support_nlp.assets.inference import (
    PREDICTION_COLUMNS,
    PREDICTIONS_ASSET,
    PredictionsConfig,
    add_daily_metadata,
    predictions_checks,
    run_metadata,
    with_conversation,
)
from support_nlp.core.cascade import Cascade
from support_nlp.core.classifier import ClassifierModel
from support_nlp.resources import EmbeddingModel


def cascade_day(tweets: pd.DataFrame, cascade: Cascade, min_confidence: float, embedding_model: EmbeddingModel, log):
    """Predictions, with `escalated`, for the non-empty tweets of one day."""
    eligible = tweets[~tweets["is_empty"].astype(bool)].reset_index(drop=True)
    texts = eligible["text_clean"].tolist()
    labels = cascade.label(texts, min_confidence, embedding_model.vector_cache, log)
    return pd.concat([eligible[PREDICTION_COLUMNS], labels.predictions], axis=1)


def escalated_shares(by_day: dict[str, pd.DataFrame]) -> dict[str, float]:
    return {day: round(float(frame["escalated"].mean()), 4) if len(frame) else 0.0 for day, frame in by_day.items()}


@dg.asset(**PREDICTIONS_ASSET)
def predictions(
    context: dg.AssetExecutionContext,
    config: PredictionsConfig,
    clean_text: dict[str, pd.DataFrame],
    classifier: ClassifierModel,
    embedding_model: EmbeddingModel,
):
    """For every non-empty tweet of the day: its message kind; for issue messages the category id, name and
    confidence (`uncertain` below `min_confidence`) from the cascade, and whether the transformer decided it
    (`escalated`); for every tweet its thread's category. Tweets empty after cleaning are counted, not predicted."""
    started = time.perf_counter()
    cascade = embedding_model.cascade(classifier)
    context.log.info(f"cascade: student {cascade.student.identity}, escalating below {cascade.escalate_below:.3f}")
    by_day = {
        day: with_conversation(
            cascade_day(tweets, cascade, config.min_confidence, embedding_model, context.log.info), tweets
        )
        for day, tweets in clean_text.items()
    }
    add_daily_metadata(context, by_day, classifier)
    for day, share in escalated_shares(by_day).items():
        context.add_asset_metadata({"escalated_share": share}, partition_key=day)
    escalated = sum(int(frame["escalated"].sum()) for frame in by_day.values())
    return dg.MaterializeResult(
        value=by_day,
        metadata={
            **run_metadata(config, clean_text, by_day, started),
            "inference": "cascade",
            "student": cascade.student.identity,
            "escalate_below": cascade.escalate_below,
            "run_rows_escalated": escalated,
        },
        check_results=predictions_checks(config, clean_text, by_day, classifier),
    )
