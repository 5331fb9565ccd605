"""category_trends: tweets and cases per category, day and brand over every predicted day; spikes (per category
and per brand) and emerging topics as WARN checks (the alert sensor posts them to a webhook)."""

import dagster as dg
import numpy as np
import pandas as pd

from support_nlp.core.classifier import UNCERTAIN_NAME
from support_nlp.core.conversation import ISSUE, NO_TOPIC
from support_nlp.core.embedding import EmbeddingBatch
from support_nlp.core.trends import (
    UNCERTAIN_SHARE_RULE,
    EmergingClusterRule,
    brand_category_exceedances,
    by_day,
    category_exceedances,
    daily_volume,
    densest_group,
    every_day,
    exceedances,
    recent_days,
    top_movers,
    traffic_tide,
    uncertain_share_by_day,
)
from support_nlp.metadata import check_specs, concat_days
from support_nlp.plots import figure_png, png_markdown, stacked_volume_figure, top_movers_figure
from support_nlp.resources import ReportStore

ALL_PREDICTED_DAYS = dg.AssetIn(metadata={"allow_missing_partitions": True})
VOLUME_SPIKE_CHECK = "no_volume_spike"
BRAND_SPIKE_CHECK = "no_brand_volume_spike"
EMERGING_TOPIC_CHECK = "no_emerging_topic"
EMERGING_CLUSTER_CHECK = "no_emerging_cluster"
EMERGING_CLUSTER_RULE = EmergingClusterRule()
TREND_PLOT = "category_trends.png"
TOP_MOVERS_PLOT = "top_movers.png"


CONVERSATION_ONLY = "conversation only (no issue stated)"
TOPIC_NOT_STATED = "topic not stated"


class CategoryTrendsConfig(dg.Config):
    judged_day: str | None = None  # the day the checks judge, "YYYY-MM-DD"; None: the newest day with tweets


def trend_category(predicted: pd.DataFrame) -> pd.Series:
    """The category a prediction counts in: its thread's, which the thread's first issue message stated, for every
    tweet of the thread ("thanks", "sent a DM", and "still not working" too: classified alone, a follow-up agrees
    with its thread's category only about half the time); an issue message's own where its thread's is uncertain or
    unknown; TOPIC_NOT_STATED for a complaint that names no topic ("I have a problem") outside any issue thread; and
    CONVERSATION_ONLY for a conversational message outside any issue thread. No spike check judges those two."""
    thread_category = predicted["thread_category"]
    own_category = predicted["category_name"].where(predicted["message_kind"] == ISSUE, "")
    category = thread_category.where(~thread_category.isin(["", UNCERTAIN_NAME]) | (own_category == ""), own_category)
    category = category.mask((category == "") & (predicted["message_kind"] == NO_TOPIC), TOPIC_NOT_STATED)
    return category.replace("", CONVERSATION_ONLY)


def predictions_with_threads(predictions: dict[str, pd.DataFrame], clean_text: dict[str, pd.DataFrame]):
    """Predictions of every day in their trend category, with the thread position (`in_response_to_tweet_id`)."""
    predicted = concat_days(predictions)
    threads = concat_days({day: clean_text[day] for day in predictions if day in clean_text})
    predicted = predicted.assign(category_name=trend_category(predicted))
    return predicted.merge(threads[["tweet_id", "in_response_to_tweet_id"]], on="tweet_id", how="left")


def spike_table(spikes: pd.DataFrame, labels: tuple[str, ...] = ("category",)) -> str:
    if spikes.empty:
        return "No spike."
    table = spikes.rename(columns={"series": "category", "value": "tweets"}).round(1)
    return table[["day", *labels, "tweets", "baseline_median", "threshold"]].to_markdown(index=False)


def emerging_cluster(
    predicted: pd.DataFrame, embeddings: dict[str, EmbeddingBatch], day: str, rule: EmergingClusterRule
) -> tuple[pd.DataFrame, int]:
    """The densest group of distinct uncertain texts of the `rule.recent_days` up to `day` (with each text's
    `similarity` to the group's centre), and how many distinct uncertain texts with embeddings there were."""
    window = recent_days(day, rule.recent_days)
    # Issue messages only: a follow-up ("iPhone 7, iOS 11.1") counts in its thread's category, uncertain or not.
    uncertain = predicted[
        (predicted["category_name"] == UNCERTAIN_NAME)
        & (predicted["message_kind"] == ISSUE)
        & predicted["day"].isin(window)
    ]
    batches = [embeddings[d] for d in window if d in embeddings]
    if not batches:
        return uncertain.iloc[0:0].assign(similarity=0.0), 0
    batch = EmbeddingBatch.concat(batches)
    row_of = pd.Series(np.arange(len(batch)), index=batch.tweet_ids)
    uncertain = uncertain[uncertain["tweet_id"].isin(row_of.index)].drop_duplicates("text")
    vectors = batch.vectors[row_of.loc[uncertain["tweet_id"]].to_numpy()]
    members, similarity = densest_group(vectors, rule)
    return uncertain.iloc[members].assign(similarity=similarity.round(3)), len(uncertain)


def emerging_cluster_check(group: pd.DataFrame, uncertain_texts: int, day: str, rule: EmergingClusterRule):
    examples = group[["brand", "similarity", "text"]].head(rule.examples)
    examples = examples.assign(text=[" ".join(text.split()).replace("|", "/") for text in examples["text"]])
    return dg.AssetCheckResult(
        check_name=EMERGING_CLUSTER_CHECK,
        passed=len(group) < rule.min_texts,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "day": day,
            "days": f"{recent_days(day, rule.recent_days)[0]}..{day}",
            "uncertain_texts": uncertain_texts,
            "densest_group_texts": len(group),
            "min_texts": rule.min_texts,
            "examples": dg.MetadataValue.md(examples.to_markdown(index=False) if len(group) else "No uncertain text."),
        },
    )


@dg.asset(
    ins={"predictions": ALL_PREDICTED_DAYS, "clean_text": ALL_PREDICTED_DAYS, "embeddings": ALL_PREDICTED_DAYS},
    io_manager_key="table_io_manager",
    group_name="inference",
    kinds={"pandas", "matplotlib"},
    check_specs=check_specs(
        "category_trends",
        {
            VOLUME_SPIKE_CHECK: "Neither all traffic nor a category on the judged day exceeds median + 3 scaled "
            "MADs of the 28 days before it; a category's threshold rises with the day's total traffic (WARN).",
            BRAND_SPIKE_CHECK: "No brand's tweets in a category on the judged day exceed median + 3 scaled MADs "
            "of the 28 days before it (WARN).",
            EMERGING_TOPIC_CHECK: "The uncertain share on the judged day does not exceed median + 3 scaled MADs "
            "of the 28 days before it: tweets no category describes are not piling up (WARN).",
            EMERGING_CLUSTER_CHECK: "No dense group of distinct uncertain texts in the 7 days up to the judged day: "
            "no new topic the categories miss (WARN).",
        },
    ),
)
def category_trends(
    context: dg.AssetExecutionContext,
    config: CategoryTrendsConfig,
    report_store: ReportStore,
    predictions: dict[str, pd.DataFrame],
    clean_text: dict[str, pd.DataFrame],
    embeddings: dict[str, EmbeddingBatch],
):
    """Tweets and cases (conversations opened) per day, category and brand, over every predicted day; a stacked
    volume plot, the top movers, and every day on which a category spiked."""
    predicted = predictions_with_threads(predictions, clean_text)
    if predicted.empty:
        raise dg.Failure("no predicted tweets yet: materialize predictions first")
    volume = daily_volume(predicted)
    days = every_day(volume["day"].min(), volume["day"].max())
    judged_day = config.judged_day or volume["day"].max()
    daily = by_day(volume, "category_name", days)
    not_categories = [UNCERTAIN_NAME, CONVERSATION_ONLY, TOPIC_NOT_STATED]
    judged_daily = daily.drop(columns=not_categories, errors="ignore")
    category_spikes = category_exceedances(judged_daily)
    uncertain = exceedances(uncertain_share_by_day(predicted, UNCERTAIN_NAME, days), UNCERTAIN_SHARE_RULE)
    spikes = category_spikes[category_spikes["spike"]]
    judged_spikes = spikes[spikes["day"] == judged_day]
    brand_spikes = brand_category_exceedances(volume, days, not_categories, tide=traffic_tide(judged_daily)).query(
        "spike"
    )
    judged_brand_spikes = brand_spikes[brand_spikes["day"] == judged_day]
    group, uncertain_texts = emerging_cluster(predicted, embeddings, judged_day, EMERGING_CLUSTER_RULE)
    judged_uncertain = uncertain[uncertain["day"] == judged_day].iloc[0]
    movers = top_movers(daily, judged_day)
    trend_png = figure_png(stacked_volume_figure(daily, spikes["day"]))
    movers_png = figure_png(top_movers_figure(movers, judged_day))
    context.log.info(f"{len(spikes)} category spikes over {len(days)} days; judged day {judged_day}")
    return dg.MaterializeResult(
        value=volume,
        metadata={
            "days": f"{days[0]}..{days[-1]} ({len(days):,} days)",
            "judged_day": judged_day,
            "tweets": f"{int(volume['tweets'].sum()):,}",
            "cases": f"{int(volume['cases'].sum()):,}",
            "volume_by_day": dg.MetadataValue.md(png_markdown(trend_png, "tweets per day by category")),
            "top_movers": dg.MetadataValue.md(png_markdown(movers_png, "top movers") + "\n\n" + movers.to_markdown()),
            "spikes": dg.MetadataValue.md(spike_table(spikes)),
            "brand_spikes": dg.MetadataValue.md(spike_table(brand_spikes, ("brand", "category"))),
            "trend_plot": dg.MetadataValue.path(report_store.write(TREND_PLOT, trend_png)),
            "top_movers_plot": dg.MetadataValue.path(report_store.write(TOP_MOVERS_PLOT, movers_png)),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=VOLUME_SPIKE_CHECK,
                passed=judged_spikes.empty,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "day": judged_day,
                    "spiking_categories": len(judged_spikes),
                    "spikes": dg.MetadataValue.md(spike_table(judged_spikes)),
                },
            ),
            dg.AssetCheckResult(
                check_name=BRAND_SPIKE_CHECK,
                passed=judged_brand_spikes.empty,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "day": judged_day,
                    "spiking_brand_categories": len(judged_brand_spikes),
                    "spikes": dg.MetadataValue.md(spike_table(judged_brand_spikes, ("brand", "category"))),
                },
            ),
            emerging_cluster_check(group, uncertain_texts, judged_day, EMERGING_CLUSTER_RULE),
            dg.AssetCheckResult(
                check_name=EMERGING_TOPIC_CHECK,
                passed=not bool(judged_uncertain["spike"]),
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "day": judged_day,
                    "uncertain_share": round(float(judged_uncertain["value"]), 3),
                    "baseline_median": round(float(judged_uncertain["baseline_median"]), 3),
                    "threshold": round(float(judged_uncertain["threshold"]), 3),
                },
            ),
        ],
    )
