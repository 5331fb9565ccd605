"""category_report: what each category means, for the people who act on it: an HTML file in storage (linked
from the asset page) and plots in the Dagster UI."""

from datetime import UTC, datetime

import dagster as dg
import numpy as np
import pandas as pd

from support_nlp.core.category_schema import CategoryModel
from support_nlp.core.classifier import UNCERTAIN_NAME
from support_nlp.core.conversation import ISSUE, states_problem
from support_nlp.core.embedding import EmbeddingBatch
from support_nlp.core.trends import by_day, every_day
from support_nlp.defs.assets.deployment import deployed_model
from support_nlp.html_report import EXAMPLES_PER_CATEGORY, ReportInputs, category_table, render_report
from support_nlp.metadata import concat_days
from support_nlp.plots import (
    category_sizes_markdown,
    confusion_matrix_markdown,
    figure_png,
    projection_markdown,
    stacked_volume_figure,
)
from support_nlp.resources import ModelStoreResource, ReportStore

PROJECTION_SAMPLE = 3000
REPORT_FILE = "category_report.html"
ALL_MATERIALIZED_DAYS = dg.AssetIn(metadata={"allow_missing_partitions": True})


def projection_sample(model: CategoryModel, embeddings: dict[str, EmbeddingBatch], seed: int = 0):
    """2-D coordinates (first two PCA components) and categories of a seeded sample of assigned tweets."""
    batch = EmbeddingBatch.concat([embeddings[day] for day in sorted(embeddings)])
    label_of = pd.Series(model.labels, index=model.tweet_ids)
    assigned = np.flatnonzero(np.isin(batch.tweet_ids, model.tweet_ids))
    rng = np.random.default_rng(seed)
    sample = rng.choice(assigned, size=min(PROJECTION_SAMPLE, len(assigned)), replace=False)
    points = model.project(batch.vectors[sample])[:, :2]
    return points, label_of.loc[batch.tweet_ids[sample]].to_numpy()


def problem_shares(predicted: pd.DataFrame) -> dict[str, float]:
    """Per category name: the share of its predicted issue messages that state a problem."""
    issues = predicted[predicted["message_kind"] == ISSUE]
    stated = pd.Series([states_problem(text) for text in issues["text"]], index=issues.index, dtype=bool)
    return stated.groupby(issues["category_name"]).mean().to_dict()


def most_confident_examples(predicted: pd.DataFrame, per_category: int = EXAMPLES_PER_CATEGORY) -> dict:
    confident = predicted[predicted["category_name"] != UNCERTAIN_NAME]
    distinct = confident.sort_values("confidence", ascending=False).drop_duplicates("text")
    return {name: group["text"].head(per_category).tolist() for name, group in distinct.groupby("category_name")}


@dg.asset(
    ins={"embeddings": ALL_MATERIALIZED_DAYS, "predictions": ALL_MATERIALIZED_DAYS},
    deps=[deployed_model],
    group_name="categories",
    kinds={"matplotlib", "html"},
)
def category_report(
    report_store: ReportStore,
    model_store: ModelStoreResource,
    embeddings: dict[str, EmbeddingBatch],
    predictions: dict[str, pd.DataFrame],
    category_trends: pd.DataFrame,
) -> dg.MaterializeResult:
    """The report to open: categories largest first with keyphrases, brands, languages and examples, tweets per
    day, and a per-brand view, as `category_report.html` in storage (the `report_file` link). In the UI: category
    sizes, a 2-D projection coloured by category and the classifier's holdout confusion matrix. The categories
    and classifier are the deployed pair, the one predictions use."""
    deployed = model_store.deployed()
    category_model, classifier = deployed.categories, deployed.classifier
    categories = category_model.by_size()
    points, labels = projection_sample(category_model, embeddings)
    metrics = classifier.metrics
    confusion_names = [classifier.category_names[str(c)] for c in metrics.confusion_labels]
    volume = category_trends
    predicted = concat_days(predictions)
    shares = problem_shares(predicted)
    days = every_day(volume["day"].min(), volume["day"].max())
    document = render_report(
        ReportInputs(
            categories=categories,
            training_days=classifier.training_days,
            predicted_days=(days[0], days[-1]),
            volume=volume,
            examples=most_confident_examples(predicted),
            problem_shares=shares,
            cases_png=figure_png(
                stacked_volume_figure(by_day(volume, "category_name", days, "cases"), top=19, unit="cases opened")
            ),
            tweets_png=figure_png(stacked_volume_figure(by_day(volume, "category_name", days), top=19)),
            generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        )
    )
    return dg.MaterializeResult(
        metadata={
            "report_file": dg.MetadataValue.path(report_store.write(REPORT_FILE, document.encode())),
            "categories": dg.MetadataValue.md(category_table(categories, volume, shares).to_markdown(index=False)),
            "sizes": dg.MetadataValue.md(
                category_sizes_markdown([c.name for c in categories], [c.size for c in categories])
            ),
            "projection": dg.MetadataValue.md(projection_markdown(points, labels, category_model.names)),
            "confusion_matrix": dg.MetadataValue.md(
                confusion_matrix_markdown(metrics.confusion_matrix, confusion_names)
            ),
        }
    )
