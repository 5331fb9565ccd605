"""category_report: what each category means, in the Dagster UI, for the people who act on it."""

import dagster as dg
import numpy as np
import pandas as pd

from support_nlp.core.categories import CategoryModel
from support_nlp.core.classifier import ClassifierModel
from support_nlp.core.embedding import EmbeddingBatch
from support_nlp.plots import category_sizes_markdown, confusion_matrix_markdown, projection_markdown

PROJECTION_SAMPLE = 3000


def _mix(shares: dict[str, float]) -> str:
    return ", ".join(f"{name} {share:.0%}" for name, share in shares.items())


def category_markdown(category: dict) -> str:
    keywords = ", ".join(f"{word} ({weight:.3f})" for word, weight in category["keywords"])
    lines = [
        f"### {category['id']}: {category['name']}",
        f"*{category['size']:,} tweets ({category['share']:.1%})*"
        + (f" — merged into {category['merged_into']}" if category.get("merged_into") is not None else "")
        + (f" — generated name: {category['generated_name']}" if category.get("named_by") == "category map" else ""),
        "",
        f"**Keywords:** {keywords}",
        "",
        f"**Languages:** {_mix(category['languages'])} — **Brands:** {_mix(category['brands'])}",
        "",
        "**Representative tweets** (closest to the centroid):",
        *[f"> {' '.join(text.split())}\n" for text in category["representatives"]],
    ]
    return "\n".join(lines)


def projection_sample(model: CategoryModel, embeddings: dict[str, EmbeddingBatch], seed: int = 0):
    """2-D coordinates (first two PCA components) and categories of a seeded sample of assigned tweets."""
    batch = EmbeddingBatch.concat([embeddings[day] for day in sorted(embeddings)])
    label_of = pd.Series(model.labels, index=model.tweet_ids)
    assigned = np.flatnonzero(np.isin(batch.tweet_ids, model.tweet_ids))
    rng = np.random.default_rng(seed)
    sample = rng.choice(assigned, size=min(PROJECTION_SAMPLE, len(assigned)), replace=False)
    points = model.project(batch.vectors[sample])[:, :2]
    return points, label_of.loc[batch.tweet_ids[sample]].to_numpy()


@dg.asset(
    ins={"embeddings": dg.AssetIn(metadata={"allow_missing_partitions": True})},
    group_name="categories",
    kinds={"matplotlib"},
)
def category_report(
    cluster_labels: CategoryModel, classifier: ClassifierModel, embeddings: dict[str, EmbeddingBatch]
) -> dg.MaterializeResult:
    """Per category: name, weighted keywords, representative tweets, size, language mix and brands; with plots
    of category sizes, a 2-D projection coloured by category and the classifier's holdout confusion matrix."""
    categories = sorted(cluster_labels.categories, key=lambda c: -c["size"])
    points, labels = projection_sample(cluster_labels, embeddings)
    metrics = classifier.metrics
    confusion_names = [classifier.category_names[str(c)] for c in metrics["confusion_labels"]]
    return dg.MaterializeResult(
        metadata={
            "categories": len(categories),
            "sizes": dg.MetadataValue.md(
                category_sizes_markdown([c["name"] for c in categories], [c["size"] for c in categories])
            ),
            "projection": dg.MetadataValue.md(projection_markdown(points, labels, cluster_labels.names)),
            "confusion_matrix": dg.MetadataValue.md(
                confusion_matrix_markdown(metrics["confusion_matrix"], confusion_names)
            ),
            "report": dg.MetadataValue.md("\n\n".join(category_markdown(c) for c in categories)),
        }
    )
