"""The team's own taxonomy: seed categories, each a name and a few example phrases, written in the category map.

A tweet whose embedding is close enough to one of a seed's example phrases belongs to that seed's category; the
other tweets are clustered into discovered categories as before. Closeness is the cosine similarity to the
nearest example phrase (a seed's phrasings can differ widely, so their mean would sit between them).
The threshold was chosen on the dev sets by `python -m support_nlp.benchmarks.quality --taxonomy`: the lowest
similarity at which seeded tweets went to the right seed at least `TARGET_PRECISION` of the time on every dev set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from support_nlp.core.categories import describe_categories
from support_nlp.core.category_schema import ALL_LANGUAGES, Category, CategoryModel
from support_nlp.core.text import clean_text

NO_SEED = -1
TARGET_PRECISION = 0.9
SEED_SIMILARITY = 0.825  # chosen on the dev sets for TARGET_PRECISION (see the module docstring)


@dataclass(frozen=True)
class Seed:
    name: str
    examples: tuple[str, ...]


def example_texts(seeds: tuple[Seed, ...]) -> tuple[list[str], np.ndarray]:
    """Every seed's example phrases, cleaned as tweets are before embedding, and the seed index of each."""
    texts = [clean_text(example) for seed in seeds for example in seed.examples]
    owners = np.repeat(np.arange(len(seeds)), [len(seed.examples) for seed in seeds])
    return texts, owners


def seed_similarity(vectors: np.ndarray, example_vectors: np.ndarray, owners: np.ndarray, seeds: int) -> np.ndarray:
    """Rows x seeds: cosine similarity of each (unit) row to the nearest example phrase of each seed."""
    by_example = vectors @ example_vectors.T
    return np.stack([by_example[:, owners == s].max(axis=1) for s in range(seeds)], axis=1)


def match_seeds(vectors: np.ndarray, example_vectors: np.ndarray, owners: np.ndarray, threshold: float) -> np.ndarray:
    """The seed index of each row (its most similar seed, when at least `threshold`), else NO_SEED."""
    seeds = int(owners.max()) + 1 if len(owners) else 0
    if seeds == 0 or len(vectors) == 0:
        return np.full(len(vectors), NO_SEED, dtype=np.int32)
    similarity = seed_similarity(vectors, example_vectors, owners, seeds)
    best = similarity.argmax(axis=1).astype(np.int32)
    return np.where(similarity.max(axis=1) >= threshold, best, NO_SEED).astype(np.int32)


def without_rare_seeds(seed_of: np.ndarray, min_tweets: int) -> np.ndarray:
    """`seed_of` with the tweets of seeds matched fewer than `min_tweets` times back to NO_SEED (to be discovered):
    a category of a handful of tweets can be neither learned nor trended."""
    counts = np.bincount(seed_of[seed_of != NO_SEED], minlength=int(seed_of.max(initial=0)) + 1)
    rare = np.flatnonzero(counts < min_tweets)
    return np.where(np.isin(seed_of, rare), NO_SEED, seed_of).astype(np.int32)


def assign_seeds(
    seeds: tuple[Seed, ...],
    vectors: np.ndarray,
    embed: Callable[[list[str]], np.ndarray],
    threshold: float,
    min_tweets: int,
) -> np.ndarray:
    """Per row, the seed it belongs to or NO_SEED; `embed` turns example phrases into the rows' vector space."""
    if not seeds:
        return np.full(len(vectors), NO_SEED, dtype=np.int32)
    texts, owners = example_texts(seeds)
    return without_rare_seeds(match_seeds(vectors, embed(texts), owners, threshold), min_tweets)


def add_seed_categories(
    discovered: CategoryModel,
    seeds: tuple[Seed, ...],
    seed_of: np.ndarray,
    vectors: np.ndarray,
    tweet_ids: np.ndarray,
    tweets: pd.DataFrame,
) -> CategoryModel:
    """`discovered` (fitted on the rows with `seed_of` NO_SEED) plus one category per seed that matched a tweet.

    `vectors`, `tweet_ids` and `tweets` hold every row, seeded or not. All categories are described again
    together, so keyphrases stay distinct across seeds and discovered categories; a seed category is named by its
    seed (`seed` holds the seed's name; None on discovered categories)."""
    used_seeds = np.unique(seed_of[seed_of != NO_SEED])
    if not len(used_seeds):
        return discovered
    position = pd.Index(tweet_ids).get_indexer(discovered.tweet_ids)
    seeded_rows = np.flatnonzero(seed_of != NO_SEED)
    rows = np.concatenate([position, seeded_rows])
    seed_label = np.searchsorted(used_seeds, seed_of[seeded_rows]) + discovered.k
    labels = np.concatenate([discovered.labels, seed_label]).astype(np.int32)
    features = discovered.project(vectors[rows]).astype(np.float32)
    seed_centroids = [features[labels == c].mean(axis=0) for c in range(discovered.k, discovered.k + len(used_seeds))]
    centroids = np.concatenate([discovered.centroids, np.asarray(seed_centroids).reshape(-1, features.shape[1])])
    group_of = {c.id: c.language_group for c in discovered.categories}
    groups = np.array(
        [group_of[label] for label in discovered.labels] + [ALL_LANGUAGES] * len(seeded_rows), dtype=object
    )
    described = describe_categories(features, centroids, labels, tweets.iloc[rows].reset_index(drop=True), groups)
    seed_names = {discovered.k + position: seeds[seed].name for position, seed in enumerate(used_seeds)}
    categories = tuple(replace(c, seed=seed_names.get(c.id), name=seed_names.get(c.id, c.name)) for c in described)
    return replace(
        discovered,
        centroids=centroids.astype(np.float32),
        tweet_ids=np.asarray(tweet_ids, dtype=np.int64)[rows],
        labels=labels,
        categories=categories,
    )


def suggested_categories(categories: tuple[Category, ...]) -> list[Category]:
    """Discovered categories (no seed), largest first: candidates for the team's taxonomy."""
    return sorted((c for c in categories if not c.seed), key=lambda c: -c.size)
