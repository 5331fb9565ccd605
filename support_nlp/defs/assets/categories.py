"""cluster_labels and classifier: discover categories across days, then learn them for daily inference."""

import math
import time
from dataclasses import replace

import dagster as dg
import numpy as np
import pandas as pd

from support_nlp.core.cascade import CASCADE_TEXTS_FILE, cascade_texts_of
from support_nlp.core.categories import ClusteringConfig, fit_categories, is_multilingual, language_groups
from support_nlp.core.category_map import DEFAULT_CATEGORY_MAP, apply_category_map, load_category_map, unknown_ids
from support_nlp.core.category_schema import CategoryModel
from support_nlp.core.classifier import ClassifierConfig, train_classifier
from support_nlp.core.conversation import (
    ISSUE,
    conversation_frame,
    discovery_rows,
    kind_shares,
    message_kinds,
    opens_thread,
)
from support_nlp.core.embedding import EmbeddingBatch
from support_nlp.core.identity import DEFAULT_MIN_SIMILARITY, carry_over_identity
from support_nlp.core.seeds import (
    ADOPTION_SHARE,
    NO_SEED,
    SEED_SIMILARITY,
    add_seed_categories,
    assign_seeds,
    overlap_note,
)
from support_nlp.dataclass_config import config_fields_of, dataclass_from_config
from support_nlp.day_origins import training_days
from support_nlp.metadata import check_specs, concat_days
from support_nlp.plots import category_sizes_markdown, confusion_matrix_markdown, k_curve_markdown
from support_nlp.resources import EmbeddingModel, ModelStoreResource

# Training reads every materialized day; days never materialized are skipped rather than failing.
ALL_MATERIALIZED_DAYS = dg.AssetIn(metadata={"allow_missing_partitions": True})


class DateWindowConfig(dg.Config):
    first_day: str | None = None  # "YYYY-MM-DD"; None = from the earliest materialized day
    last_day: str | None = None  # inclusive; None = up to the latest materialized day

    def select(self, by_day: dict) -> dict:
        return {
            day: value
            for day, value in by_day.items()
            if (self.first_day is None or day >= self.first_day) and (self.last_day is None or day <= self.last_day)
        }


class ClusterLabelsConfig(DateWindowConfig, config_fields_of(ClusteringConfig)):
    """The clustering parameters of `ClusteringConfig` (core/categories.py), and what the asset adds around them."""

    category_map: str = str(DEFAULT_CATEGORY_MAP)  # YAML of human names and merges, by stable category id
    seed_similarity: float = SEED_SIMILARITY  # cosine to a seed's nearest example phrase: close to the seed
    seed_adoption_share: float = ADOPTION_SHARE  # of a category's tweets close to a seed for the seed to adopt it
    min_identity_similarity: float = DEFAULT_MIN_SIMILARITY  # centroid cosine for a category to keep its id
    min_category_share: float = 0.005
    min_silhouette: float = 0.02
    # True: all languages in one clustering (right for a multilingual SUPPORT_NLP_EMBEDDING_MODEL); False: one
    # clustering per language; None: True exactly when the embedding model's name says multilingual.
    languages_together: bool | None = None


class ClassifierTrainingConfig(config_fields_of(ClassifierConfig)):
    """The training parameters of `ClassifierConfig` (core/classifier.py) and the quality floor."""

    min_macro_f1: float = 0.6  # blocking: a model below this never reaches predictions


def aligned_training_set(
    clean_text: dict[str, pd.DataFrame], embeddings: dict[str, EmbeddingBatch]
) -> tuple[pd.DataFrame, EmbeddingBatch]:
    """Clean rows and embeddings of the same tweets, in the same order, across the given days."""
    days = sorted(set(clean_text) & set(embeddings))
    if not days:
        raise dg.Failure("no day has both clean_text and embeddings materialized: materialize them first")
    batch = EmbeddingBatch.concat([embeddings[day] for day in days])
    tweets = concat_days({day: clean_text[day] for day in days}).set_index("tweet_id")
    missing = np.setdiff1d(batch.tweet_ids, tweets.index.to_numpy())
    if len(missing):
        raise dg.Failure(f"{len(missing)} embedded tweets have no clean_text row (e.g. {missing[:5].tolist()})")
    return tweets.loc[batch.tweet_ids].reset_index(), batch


def training_day_cascade_texts(clean_text: dict[str, pd.DataFrame], embedded: np.ndarray, days: np.ndarray):
    """The cascade's texts from the embedded tweets of `days` (their transformer vectors are in the vector cache):
    every cleaned text to fit on, calibration drawn from the issue messages, the only tweets the cascade labels."""
    tweets = concat_days({day: clean_text[day] for day in np.unique(days) if day in clean_text})
    if not len(tweets):
        return cascade_texts_of([])
    tweets = tweets[tweets["tweet_id"].isin(embedded)]
    kinds = np.asarray(message_kinds(tweets["text"].tolist(), opens_thread(tweets["in_response_to_tweet_id"])))
    return cascade_texts_of(tweets["text_clean"], calibration_pool=tweets.loc[kinds == ISSUE, "text_clean"])


def seed_phrase_embedder(embedding_model: EmbeddingModel, tweets_encoder: str):
    """Embeds the seeds' example phrases, refusing another encoder than the tweets' (their similarities would be
    meaningless)."""

    def embed(texts: list[str]):
        encoder = embedding_model.encoder().identity
        if encoder != tweets_encoder:
            raise dg.Failure(
                f"the embedding_model resource is {encoder!r} but the embeddings were made with {tweets_encoder!r}: "
                "the category map's seed phrases must be embedded like the tweets"
            )
        return embedding_model.embed(texts)

    return embed


def categories_markdown(model: CategoryModel) -> str:
    table = pd.DataFrame(
        {
            "id": c.id,
            "name": c.name,
            "defined by": "seed" if c.seed else "discovered",
            "overlap": overlap_note(c) or "",
            "size": c.size,
            "share": f"{c.share:.1%}",
            "keywords": ", ".join(word for word, _ in c.keywords[:6]),
            "example": " ".join(c.representatives[0].split()).replace("|", "/")[:120],
        }
        for c in model.by_size()
    )
    return table.to_markdown(index=False)


@dg.asset(
    ins={"clean_text": ALL_MATERIALIZED_DAYS, "embeddings": ALL_MATERIALIZED_DAYS},
    io_manager_key="artifact_io_manager",
    group_name="categories",
    kinds={"scikitlearn"},
    required_resource_keys={"model_store", "tweet_source", "embedding_model"},
    check_specs=check_specs(
        "cluster_labels",
        {
            "no_tiny_category": "Every category holds at least the configured minimum share of tweets.",
            "silhouette_floor": "Silhouette on a sample is above the configured floor.",
            "category_map_valid": "The category map only references categories that exist.",
        },
        blocking=("category_map_valid",),
    ),
)
def cluster_labels(
    context: dg.AssetExecutionContext,
    config: ClusterLabelsConfig,
    clean_text: dict[str, pd.DataFrame],
    embeddings: dict[str, EmbeddingBatch],
):
    """The category model (`CategoryModel`) discovered over the embeddings of all materialized days (or a
    window) by spectral clustering of their neighbour graph: per category a name, keywords, representative
    tweets and its share; per tweet its category, or "other" when it fits none.

    Only issue messages that open a thread are clustered (core/conversation.py): thanks, "DM sent", device
    details and the like are conversational kinds, not categories. Near-duplicate copies count once, and each
    language is clustered on its own unless `languages_together`.

    Seeds of the category map (the team's own categories: a name and example phrases) then adopt the categories
    whose tweets are largely close to them, and take the other tweets close to them (core/seeds.py).

    Categories that match the deployed model's keep their ids, so names from the category map
    (which win over generated ones) carry over across refits."""
    started = time.perf_counter()
    category_map = load_category_map(config.category_map)
    # Only days the current source still holds: a stored day it has dropped would otherwise train on forever.
    days = training_days(context, embeddings.keys(), context.resources.tweet_source.parse())
    tweets, batch = aligned_training_set(
        config.select({day: clean_text[day] for day in days.usable if day in clean_text}),
        config.select({day: embeddings[day] for day in days.usable}),
    )
    conversation = conversation_frame(tweets)
    issues = discovery_rows(conversation)
    tweets = tweets.assign(near_duplicate_key=conversation["near_duplicate_key"]).loc[issues]
    context.log.info(
        f"clustering {issues.sum():,} thread-opening issue messages of {len(batch):,} tweets "
        f"from {tweets['day'].nunique()} days"
    )
    languages_together = (
        is_multilingual(batch.model) if config.languages_together is None else config.languages_together
    )
    clustering = dataclass_from_config(ClusteringConfig, config)
    model = fit_categories(
        batch.vectors[issues],
        batch.tweet_ids[issues],
        tweets,
        clustering,
        embedding_model=batch.model,
        report=context.log.info,
        groups=language_groups(tweets["language"], clustering.min_group_rows, languages_together),
    )
    seed_of = assign_seeds(
        category_map.seeds,
        batch.vectors[issues],
        seed_phrase_embedder(context.resources.embedding_model, batch.model),
        config.seed_similarity,
    )
    model = add_seed_categories(
        model,
        category_map.seeds,
        seed_of,
        batch.vectors[issues],
        batch.tweet_ids[issues],
        tweets,
        config.seed_adoption_share,
        min_tweets=math.ceil(config.min_category_share * issues.sum()),
    )
    model = replace(model, message_kinds=kind_shares(conversation["message_kind"]))
    previous = context.resources.model_store.previous_categories()
    model, identity = carry_over_identity(model, previous, config.min_identity_similarity)
    model = apply_category_map(model, category_map)
    names = [c.name for c in model.categories]
    metadata = {
        "k": model.k,
        "k_chosen_by": "fixed by config" if config.k else "start of the silhouette plateau on a sample",
        "algorithm": config.algorithm,
        "silhouette_sample": model.silhouette,
        "tweets": len(batch),
        "tweets_clustered": int(issues.sum()),
        "tweets_close_to_a_seed": int((seed_of != NO_SEED).sum()),
        "tweets_in_seed_categories": sum(c.size for c in model.categories if c.seed),
        "seeds_without_enough_tweets": sorted(
            {s.name for s in category_map.seeds} - {c.seed for c in model.categories}
        ),
        "near_duplicate_copies": int(tweets["near_duplicate_key"].duplicated().sum()),
        "outlier_share": round(model.outlier_share, 4),
        "message_kinds": dg.MetadataValue.json(model.message_kinds),
        "clustered_by_language": not languages_together,
        "days": [tweets["day"].min(), tweets["day"].max()],
        "days_by_origin": dg.MetadataValue.json(days.summary()),
        "embedding_model": batch.model,
        "categories": dg.MetadataValue.md(categories_markdown(model)),
        "category_sizes": dg.MetadataValue.md(category_sizes_markdown(names, [c.size for c in model.categories])),
        "identity_matched": dg.MetadataValue.json({str(k): v for k, v in identity.matched.items()}),
        "identity_new": identity.new,
        "identity_vanished": identity.vanished,
        "category_map": dg.MetadataValue.path(config.category_map),
        "seconds": round(time.perf_counter() - started, 2),
    }
    if model.k_curve:
        metadata["k_curve"] = dg.MetadataValue.md(k_curve_markdown(model.k_curve, model.k))
    smallest = min(c.share for c in model.categories)
    checks = [
        dg.AssetCheckResult(
            check_name="no_tiny_category",
            passed=smallest >= config.min_category_share,
            metadata={"smallest_share": smallest, "min": config.min_category_share},
        ),
        dg.AssetCheckResult(
            check_name="silhouette_floor",
            passed=model.silhouette >= config.min_silhouette,
            metadata={"silhouette_sample": model.silhouette, "min": config.min_silhouette},
        ),
        dg.AssetCheckResult(
            check_name="category_map_valid",
            passed=not unknown_ids(category_map, model),
            metadata={"unknown_ids": unknown_ids(category_map, model), "known_ids": sorted(model.names)},
        ),
    ]
    return dg.MaterializeResult(value=model, metadata=metadata, check_results=checks)


@dg.asset(
    # The asset keeps its historical key; its value is the fitted category model, not a column of labels.
    ins={
        "embeddings": ALL_MATERIALIZED_DAYS,
        "category_model": dg.AssetIn("cluster_labels"),
        "clean_text": ALL_MATERIALIZED_DAYS,
    },
    io_manager_key="artifact_io_manager",
    group_name="categories",
    kinds={"scikitlearn"},
    check_specs=check_specs(
        "classifier",
        {"holdout_macro_f1_floor": "Holdout macro-F1 (agreement with pseudo-labels) is above the floor."},
        blocking=("holdout_macro_f1_floor",),
    ),
)
def classifier(
    context: dg.AssetExecutionContext,
    config: ClassifierTrainingConfig,
    embeddings: dict[str, EmbeddingBatch],
    category_model: CategoryModel,
    clean_text: dict[str, pd.DataFrame],
    model_store: ModelStoreResource,
):
    """Logistic regression on the embeddings, learning the categories of the cluster_labels model. Scored on a
    time-ordered holdout (earlier days train, later days score): *agreement with pseudo-labels*, not human
    accuracy.

    The pair (categories, classifier) is kept in the model store as a new version, with the texts of the embedded
    tweets of the days it learnt from, which the version's cascade is fitted and calibrated on
    (SUPPORT_NLP_INFERENCE=cascade). Below the macro-F1 floor the blocking check fails: the run fails before
    `deployed_model`, the version stays in the store unpromoted and the deployed pair keeps serving."""
    started = time.perf_counter()
    batch = EmbeddingBatch.concat([embeddings[day] for day in sorted(embeddings)])
    day_of_row = np.concatenate([np.full(len(embeddings[day]), day) for day in sorted(embeddings)])
    label_of = pd.Series(category_model.labels, index=category_model.tweet_ids)
    labelled = np.isin(batch.tweet_ids, category_model.tweet_ids)
    model = train_classifier(
        batch.vectors[labelled],
        label_of.loc[batch.tweet_ids[labelled]].to_numpy(),
        day_of_row[labelled],
        category_model.names,
        batch.model,
        dataclass_from_config(ClassifierConfig, config),
    )
    metrics = model.metrics
    names = [model.category_names[str(c)] for c in metrics.confusion_labels]
    macro_f1 = metrics.agreement_macro_f1
    cascade_texts = training_day_cascade_texts(clean_text, batch.tweet_ids, day_of_row[labelled])
    stored = model_store.open().add(
        category_model, model, run_id=context.run.run_id, files={CASCADE_TEXTS_FILE: cascade_texts.to_bytes()}
    )
    check = dg.AssetCheckResult(
        check_name="holdout_macro_f1_floor",
        passed=macro_f1 >= config.min_macro_f1,
        metadata={"holdout_agreement_macro_f1": macro_f1, "min": config.min_macro_f1, "model_version": stored.version},
    )
    return dg.MaterializeResult(
        value=model,
        check_results=[check],
        metadata={
            "model_version": stored.version,
            "holdout_agreement_accuracy": metrics.agreement_accuracy,
            "holdout_agreement_macro_f1": metrics.agreement_macro_f1,
            "train_rows": metrics.train_rows,
            "holdout_rows": metrics.holdout_rows,
            "train_days": list(metrics.train_days),
            "holdout_days": list(metrics.holdout_days),
            "cascade_fit_texts": len(cascade_texts.fit_texts),
            "cascade_calibration_texts": len(cascade_texts.calibration_texts),
            "per_category": dg.MetadataValue.md(pd.DataFrame(metrics.per_category).to_markdown(index=False)),
            "confusion_matrix": dg.MetadataValue.md(confusion_matrix_markdown(metrics.confusion_matrix, names)),
            "note": "Metrics are agreement with the categories of cluster_labels on later days, not accuracy vs human "
            "labels.",
            "seconds": round(time.perf_counter() - started, 2),
        },
    )
