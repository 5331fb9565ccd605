"""The team's own taxonomy: seed categories, each a name and a few example phrases, written in the category map.

A tweet is *close to* a seed when the cosine similarity of its embedding to the seed's nearest example phrase is
at least `SEED_SIMILARITY` (a seed's phrasings can differ widely, so their mean would sit between them). After
discovery, one rule decides what a seed's category holds:

- every discovered category of which at least `ADOPTION_SHARE` of the tweets are close to that seed (it is
  adopted whole: it takes the seed's name, and several categories can fold into one seed);
- every other tweet close to the seed, wherever discovery put it (in a category or in "other").

A seed that ends up with fewer tweets than the asset's minimum category size is left to discovery. The other
categories stay discovered: the category report lists them as suggested new categories, each with the seed that
the most of its tweets were close to and their share (`overlap_note`), so a category beside a seed (close to it,
but under the adoption share) says why it is there.

Both numbers are chosen by `python -m support_nlp.benchmarks.quality --dev --taxonomy` (figures in
docs/quality.md). Similarities between short hand-written phrases and real tweets are much lower than between
texts of one labelled dev set, so the tweet threshold is chosen on real labelled tweets (the twcs topic tweets
outside the evaluation rows, with the shipped seeds): the lowest at which at least `TARGET_TWEET_PRECISION` of
the tweets it matches carry the seed's topic. A share of a category's tweets does not depend on that scale, so
`ADOPTION_SHARE` is chosen on the dev intent sets: the lowest share at which at least `TARGET_PRECISION` of the
adopted categories have the seed's intent as their majority label.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from support_nlp.core.categories import describe_categories, member_means
from support_nlp.core.category_schema import ALL_LANGUAGES, Category, CategoryModel
from support_nlp.core.text import clean_text

NO_SEED = -1
TARGET_PRECISION = 0.9  # of adopted categories (dev intent sets) and of tweet matches within one intent set
TARGET_TWEET_PRECISION = 0.8  # of tweet matches on real labelled tweets (few: see docs/quality.md)
SEED_SIMILARITY = 0.6  # chosen for TARGET_TWEET_PRECISION (see the module docstring)
ADOPTION_SHARE = 0.15  # chosen for TARGET_PRECISION (see the module docstring)
# From this share of its tweets close to a seed, a discovered category is shown as overlapping it. Not chosen on
# labelled data: it only decides what people are pointed at. Above it the category holds a real part of the seed's
# topic (people may want it merged into the seed); below it, its close tweets are the few stray matches that broad
# categories hold (TARGET_TWEET_PRECISION leaves a fifth of the matches off topic). Figures in docs/quality.md.
OVERLAP_NOTE_SHARE = ADOPTION_SHARE / 3


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
    seeds: tuple[Seed, ...], vectors: np.ndarray, embed: Callable[[list[str]], np.ndarray], threshold: float
) -> np.ndarray:
    """Per row, the seed it is close to or NO_SEED; `embed` turns example phrases into the rows' vector space."""
    if not seeds:
        return np.full(len(vectors), NO_SEED, dtype=np.int32)
    texts, owners = example_texts(seeds)
    return match_seeds(vectors, embed(texts), owners, threshold)


def seed_shares(labels: np.ndarray, seed_of: np.ndarray, k: int) -> np.ndarray:
    """Categories 0..k-1 x seeds (up to the highest in `seed_of`): the share of each category's tweets (`labels`)
    close to each seed (`seed_of`, aligned with `labels`)."""
    close = seed_of != NO_SEED
    counts = np.zeros((k, int(seed_of.max(initial=NO_SEED)) + 1))
    np.add.at(counts, (labels[close], seed_of[close]), 1)
    return counts / np.maximum(np.bincount(labels, minlength=k), 1)[:, None]


def adopting_seeds(labels: np.ndarray, seed_of: np.ndarray, k: int, share: float) -> np.ndarray:
    """Per category 0..k-1 (`labels` of its tweets), the seed that at least `share` of its tweets are close to
    (`seed_of`, aligned with `labels`), else NO_SEED."""
    shares = seed_shares(labels, seed_of, k)
    if shares.size == 0:
        return np.full(k, NO_SEED, dtype=np.int32)
    return np.where(shares.max(axis=1) >= share, shares.argmax(axis=1), NO_SEED).astype(np.int32)


def overlapping_seed(shares: np.ndarray, seeds: tuple[Seed, ...]) -> dict:
    """A discovered category's `overlapping_seed` fields (core/category_schema.Category) from its row of
    `seed_shares`; none when no tweet of it was close to a seed."""
    if not shares.size or shares.max() == 0:
        return {}
    best = int(shares.argmax())
    return {"overlapping_seed": seeds[best].name, "overlapping_seed_share": round(float(shares[best]), 4)}


def seed_of_rows(
    discovered: CategoryModel, seed_of: np.ndarray, tweet_ids: np.ndarray, share: float, min_tweets: int
) -> np.ndarray:
    """Per row of `tweet_ids`, the seed whose category it ends up in (the module docstring's rule), else NO_SEED;
    `seed_of` holds each row's closeness to the seeds (`assign_seeds`)."""
    members = pd.Index(tweet_ids).get_indexer(discovered.tweet_ids)
    adopted = adopting_seeds(discovered.labels, seed_of[members], discovered.k, share)[discovered.labels]
    rows = seed_of.astype(np.int32).copy()
    rows[members] = np.where(adopted != NO_SEED, adopted, seed_of[members])
    return without_rare_seeds(rows, min_tweets)


def add_seed_categories(
    discovered: CategoryModel,
    seeds: tuple[Seed, ...],
    seed_of: np.ndarray,
    vectors: np.ndarray,
    tweet_ids: np.ndarray,
    tweets: pd.DataFrame,
    share: float = ADOPTION_SHARE,
    min_tweets: int = 1,
) -> CategoryModel:
    """`discovered` (fitted on every row) with one category per seed that holds tweets by the module docstring's
    rule; `seed_of` is each row's closeness to the seeds (`assign_seeds`).

    `vectors`, `tweet_ids` and `tweets` hold every row. Discovered categories left without tweets are dropped and
    all categories are described again together, so keyphrases stay distinct across seeds and discovered
    categories; a seed category is named by its seed (`seed` holds the seed's name; None on discovered ones). A
    discovered category's `overlapping_seed` is read on its tweets as discovered, the share adoption compares."""
    members = pd.Index(tweet_ids).get_indexer(discovered.tweet_ids)
    shares = seed_shares(discovered.labels, seed_of[members], discovered.k)
    final_seed = seed_of_rows(discovered, seed_of, tweet_ids, share, min_tweets)
    used_seeds = np.unique(final_seed[final_seed != NO_SEED])
    if not len(used_seeds):
        overlaps = tuple(replace(c, **overlapping_seed(shares[c.id], seeds)) for c in discovered.categories)
        return replace(discovered, categories=overlaps)
    discovered_label = np.full(len(tweet_ids), NO_SEED, dtype=np.int64)
    discovered_label[members] = discovered.labels
    seeded = final_seed != NO_SEED
    rows = np.flatnonzero(seeded | (discovered_label != NO_SEED))
    combined = np.where(
        seeded[rows], discovered.k + np.searchsorted(used_seeds, final_seed[rows]), discovered_label[rows]
    )
    kept, labels = np.unique(combined, return_inverse=True)
    labels = labels.astype(np.int32)
    features = discovered.project(vectors[rows]).astype(np.float32)
    centroids = member_means(features, labels)
    group_of = {c.id: c.language_group for c in discovered.categories}
    groups = np.array([group_of.get(int(c), ALL_LANGUAGES) for c in combined], dtype=object)
    described = describe_categories(features, centroids, labels, tweets.iloc[rows].reset_index(drop=True), groups)
    seed_names = {
        new: seeds[used_seeds[old - discovered.k]].name for new, old in enumerate(kept) if old >= discovered.k
    }
    categories = tuple(
        replace(c, seed=seed_names[c.id], name=seed_names[c.id])
        if c.id in seed_names
        else replace(c, **overlapping_seed(shares[kept[c.id]], seeds))
        for c in described
    )
    outliers = np.setdiff1d(discovered.outlier_ids, np.asarray(tweet_ids)[seeded])
    return replace(
        discovered,
        centroids=centroids.astype(np.float32),
        tweet_ids=np.asarray(tweet_ids, dtype=np.int64)[rows],
        labels=labels,
        categories=categories,
        outlier_ids=outliers.astype(np.int64),
    )


def is_suggested(category: Category) -> bool:
    """Discovered (no seed) and not merged away by the category map: a candidate for the team's taxonomy."""
    return not category.seed and category.merged_into is None


def suggested_categories(categories: tuple[Category, ...]) -> list[Category]:
    """The categories `is_suggested`, largest first."""
    return sorted(filter(is_suggested, categories), key=lambda c: -c.size)


def overlap_note(category: Category) -> str | None:
    """The note "close to seed '<name>' (<share> of its tweets)" for a suggested category of which at least
    `OVERLAP_NOTE_SHARE` of the tweets were close to one seed, else None."""
    if not is_suggested(category) or category.overlapping_seed_share < OVERLAP_NOTE_SHARE:
        return None
    return f"close to seed '{category.overlapping_seed}' ({category.overlapping_seed_share:.0%} of its tweets)"
