"""Discovering support categories in embeddings: spectral clustering of the neighbour graph (or KMeans) per
language group, k at the start of the silhouette plateau, near-duplicates counted once, an "other" bucket for
tweets that fit no category, named by keyphrases (naming.py).

Spectral clustering links each tweet to its nearest neighbours by cosine similarity of the embeddings and cuts
that graph into k well-connected parts; unlike KMeans it does not assume round, equally wide categories. Against
human intent labels (`python -m support_nlp.benchmarks.quality`, k = true) it raised accuracy over PCA + KMeans by
3 and 11 points on the dev sets and by 8 and 2 points on BANKING77 test and Bitext; on the small twcs topic set
the two are level. Every tweet finally joins its nearest category centroid in the PCA projection, so labels,
centroids and representatives agree, and rows outside the graph sample are assigned the same way.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.linalg import qr, svd
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.manifold import spectral_embedding
from sklearn.metrics import silhouette_score

from support_nlp.core.category_schema import ALL_LANGUAGES, Category, CategoryModel, KCandidate
from support_nlp.core.language import UNDETERMINED
from support_nlp.core.naming import name_categories
from support_nlp.core.progress import ProgressCallback
from support_nlp.core.refinement import smooth_by_neighbours

REPRESENTATIVES_PER_CATEGORY = 5
MIN_NEIGHBOURS = 5
# The search reaches categories of 8 tweets (the 267 labelled twcs tweets have 33 topics) up to 200 categories
# (Banking77's 77 intents, 150 intents in 4,500 rows), in about 24 steps.
ROWS_PER_CATEGORY_AT_K_MAX = 8
K_MAX_CAP = 200
K_CANDIDATES = 24


@dataclass(frozen=True)
class ClusteringConfig:
    pca_components: int = 50
    k: int | None = None  # None: choose k in [k_min, k_max] (see choose_k)
    k_min: int = 6
    # None: rows / ROWS_PER_CATEGORY_AT_K_MAX, at most K_MAX_CAP (the old 2·sqrt(rows) excluded the answer).
    k_max: int | None = None
    k_step: int | None = None  # None: about K_CANDIDATES candidates across the range
    # Granularity knob: the smallest k whose silhouette is within this share of the best one. Silhouette keeps
    # creeping up after the categories stop being real (within 1.5 % from k = 69 to 186 on Banking77 dev, while
    # accuracy falls from 64 to 49); the start of the plateau is where it stops paying. Chosen on the dev sets
    # among 0, 0.005, 0.01, 0.02, 0.03, 0.05: 0.01 came within 2 points of k = true on both (0: 8 and 16 points
    # below). Larger: fewer, broader categories.
    silhouette_tolerance: float = 0.01
    silhouette_sample: int = 5000
    seed: int = 0
    algorithm: Literal["spectral", "kmeans"] = "spectral"
    # Each tweet links to this share of an average category's size (rows / k) of its nearest neighbours, so the
    # graph is dense enough to hold a category together and sparse enough not to bridge two. Chosen on dev sets
    # (Banking77 train, the Bitext 8k file): 0.5 and 1.0 were each worse on one of them.
    neighbour_share: float = 0.75
    max_neighbours: int = 100
    # The graph (O(rows^2) similarities, an eigenproblem) is built on at most this many seeded rows.
    graph_sample: int = 5000
    # "other": a tweet whose cosine similarity to its category's mean embedding is below this fits no category
    # well. Chosen on the dev sets (see OUTLIER_CHOICE below); at most `max_outlier_share` of the tweets, the
    # least similar, go there.
    outlier_similarity: float = 0.55
    max_outlier_share: float = 0.15
    # A language group (see fit_categories) with fewer distinct tweets than this is one category.
    min_group_rows: int = 40
    # Neighbour smoothing (core/refinement.py): the partition is made on each embedding averaged with this many
    # nearest neighbours (among at most `graph_sample` distinct rows); 0 turns it off. Chosen on the dev sets
    # among 0, 5, 7, 10, 20 (7 was best on both; see docs/quality.md).
    smoothing_neighbours: int = 7

    def __post_init__(self):
        if self.algorithm not in ("spectral", "kmeans"):
            raise ValueError(f"unknown clustering algorithm {self.algorithm!r}: use 'spectral' or 'kmeans'")
        if self.k is not None and self.k < 2:
            raise ValueError(f"k = {self.k}: categorising needs at least 2 categories")
        if self.k_min < 2 or (self.k_max is not None and self.k_max < self.k_min):
            raise ValueError(f"the k range {self.k_min}..{self.k_max} must start at 2 or more and not end before it")
        if not 0 <= self.max_outlier_share < 1 or not 0 <= self.silhouette_tolerance < 1:
            raise ValueError("max_outlier_share and silhouette_tolerance are shares in [0, 1)")
        if self.smoothing_neighbours < 0:
            raise ValueError(f"smoothing_neighbours = {self.smoothing_neighbours}: 0 (off) or more neighbours")


def _top_shares(values: pd.Series, n: int = 5) -> dict[str, float]:
    return {str(k): float(v) for k, v in values.value_counts(normalize=True).head(n).round(3).items()}


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


def sampled_silhouette(features: np.ndarray, labels: np.ndarray, config: ClusteringConfig) -> float:
    """Silhouette on a seeded sample: the full O(n^2) score is unaffordable at twcs scale."""
    rng = np.random.default_rng(config.seed)
    sample = rng.choice(len(features), size=min(config.silhouette_sample, len(features)), replace=False)
    return float(silhouette_score(features[sample], labels[sample]))


def assign_to_nearest(features: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's nearest centroid; centroids that no row is nearest to are dropped, so ids stay 0..k-1."""
    # argmin |f - c|^2 = argmax (2 f.c - |c|^2): |f|^2 is the same for every centroid.
    nearest = np.argmax(2 * features @ centroids.T - (centroids**2).sum(axis=1), axis=1)
    used, labels = np.unique(nearest, return_inverse=True)
    return centroids[used], labels.astype(np.int32)


def graph_sample_rows(rows: int, config: ClusteringConfig) -> np.ndarray:
    if rows <= config.graph_sample:
        return np.arange(rows)
    return np.sort(np.random.default_rng(config.seed).choice(rows, size=config.graph_sample, replace=False))


def neighbour_count(rows: int, k: float, config: ClusteringConfig) -> int:
    wanted = max(MIN_NEIGHBOURS, min(round(config.neighbour_share * rows / k), config.max_neighbours))
    return min(wanted, rows - 1)


def neighbour_graph(unit_vectors: np.ndarray, neighbours: int) -> sparse.csr_matrix:
    """Symmetric graph linking each row to its `neighbours` most similar rows, weighted by cosine similarity."""
    rows = len(unit_vectors)
    similarity = unit_vectors @ unit_vectors.T
    np.fill_diagonal(similarity, -np.inf)
    nearest = np.argpartition(-similarity, neighbours - 1, axis=1)[:, :neighbours]
    # Opposite-meaning neighbours (negative cosine) get no link rather than a negative weight.
    weights = np.clip(np.take_along_axis(similarity, nearest, axis=1), 0, None)
    graph = sparse.csr_matrix(
        (weights.ravel(), (np.repeat(np.arange(rows), neighbours), nearest.ravel())), (rows, rows)
    )
    return (graph + graph.T) / 2


def spectral_coordinates(graph: sparse.csr_matrix, dims: int, seed: int) -> np.ndarray:
    """The graph's `dims` smoothest Laplacian eigenvectors, one row of coordinates per node."""
    with warnings.catch_warnings():
        # Disconnected parts (e.g. groups of identical texts) are legitimate: they simply fall into one category.
        warnings.filterwarnings("ignore", message="Graph is not fully connected")
        return spectral_embedding(graph, n_components=dims, random_state=seed, drop_first=False)


def spectral_partition(coordinates: np.ndarray, k: int) -> np.ndarray:
    """k groups from the first k spectral coordinates by column-pivoted QR (Damle, Minden and Ying, 2019).

    Deterministic and one linear-algebra pass: on the dev sets it matched KMeans on the same coordinates, at a
    fraction of the cost when many k are scanned.
    """
    leading = coordinates[:, :k]
    _, _, pivots = qr(leading.T, pivoting=True)
    left, _, right = svd(leading[pivots[:k]].T)
    return np.abs(leading @ (left @ right)).argmax(axis=1)


def member_means(features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.stack([features[labels == c].mean(axis=0) for c in np.unique(labels)])


def candidate_centroids(
    features: np.ndarray, vectors: np.ndarray, ks: list[int], config: ClusteringConfig, kmeans_restarts: int
) -> Iterator[np.ndarray]:
    """Centroids in the projection for each k in `ks`, by the configured algorithm."""
    if config.algorithm == "kmeans":
        for k in ks:
            yield KMeans(n_clusters=k, n_init=kmeans_restarts, random_state=config.seed).fit(features).cluster_centers_
        return
    sample = graph_sample_rows(len(vectors), config)
    # One graph and one eigenproblem serve every candidate k; the graph's degree suits the middle of the range.
    typical_k = float(np.sqrt(min(ks) * max(ks)))
    graph = neighbour_graph(unit_rows(vectors[sample]), neighbour_count(len(sample), typical_k, config))
    coordinates = spectral_coordinates(graph, min(max(ks), len(sample) - 1), config.seed)
    for k in ks:
        yield member_means(features[sample], spectral_partition(coordinates, k))


def k_candidates(rows: int, config: ClusteringConfig) -> list[int]:
    """The k searched: k_min up to k_max (or rows / ROWS_PER_CATEGORY_AT_K_MAX, at most K_MAX_CAP)."""
    k_max = config.k_max if config.k_max is not None else min(rows // ROWS_PER_CATEGORY_AT_K_MAX, K_MAX_CAP)
    k_max = min(max(k_max, config.k_min), rows - 1)
    step = config.k_step or max(1, -(-(k_max - config.k_min) // K_CANDIDATES))
    return sorted({*range(config.k_min, k_max + 1, step), k_max})


def choose_k(
    features: np.ndarray,
    config: ClusteringConfig,
    report: ProgressCallback | None = None,
    vectors: np.ndarray | None = None,
):
    """Partition for each candidate k, score it by silhouette on a fixed sample; the chosen k and the curve.

    The chosen k is the smallest whose silhouette is within `silhouette_tolerance` of the best (see the config).
    `vectors` are the embeddings the spectral neighbour graph is built from (default: `features`).
    """
    ks = k_candidates(len(features), config)
    if len(features) <= config.k_min:
        raise ValueError(f"too few tweets ({len(features)}) to cluster into at least {config.k_min} categories")
    vectors = features if vectors is None else vectors
    curve = []
    for k, centroids in zip(ks, candidate_centroids(features, vectors, ks, config, kmeans_restarts=3), strict=True):
        centroids, labels = assign_to_nearest(features, centroids)
        score = sampled_silhouette(features, labels, config)
        inertia = float(((features - centroids[labels]) ** 2).sum())
        curve.append(KCandidate(k=k, silhouette=round(score, 4), inertia=round(inertia, 2)))
        if report:
            report(f"choose k: k={k} silhouette={score:.4f}")
    return plateau_start(curve, config.silhouette_tolerance), curve


def plateau_start(curve: list[KCandidate], tolerance: float) -> int:
    """The smallest k whose silhouette is within `tolerance` (a share) of the curve's best."""
    best = max(point.silhouette for point in curve)
    floor = best - tolerance * abs(best)
    return next(point.k for point in curve if point.silhouette >= floor)


def describe_categories(
    features: np.ndarray,
    centroids: np.ndarray,
    labels: np.ndarray,
    tweets: pd.DataFrame,
    groups: np.ndarray,
) -> list[Category]:
    """Name, keywords, size, representative tweets (closest to the centroid), languages and brands per category;
    `groups` holds each row's clustering group (see fit_categories)."""
    k = len(centroids)
    namings = name_categories(tweets["text"].tolist(), labels, features, brands=tweets["brand"].unique())
    distances = np.linalg.norm(features - centroids[labels], axis=1)
    categories = []
    for c in range(k):
        members = np.flatnonzero(labels == c)
        closest = members[np.argsort(distances[members])[:REPRESENTATIVES_PER_CATEGORY]]
        categories.append(
            Category(
                id=c,
                name=namings[c].name,
                generated_name=namings[c].name,
                keywords=tuple(namings[c].keyphrases),
                size=int(len(members)),
                share=round(len(members) / len(labels), 4),
                representatives=tuple(tweets["text"].iloc[closest]),
                languages=_top_shares(tweets["language"].iloc[members]),
                brands=_top_shares(tweets["brand"].iloc[members]),
                language_group=str(groups[members[0]]),
            )
        )
    return categories


MIXED_LANGUAGES = "other languages"
# Name fragments of the common multilingual sentence encoders (paraphrase-multilingual-*, distiluse-base-multilingual,
# LaBSE, multilingual-e5, bge-m3, XLM-R based models); any other model is treated as monolingual.
MULTILINGUAL_MODEL_MARKERS = ("multilingual", "labse", "bge-m3", "xlm")


def is_multilingual(model_name: str) -> bool:
    return any(marker in model_name.lower() for marker in MULTILINGUAL_MODEL_MARKERS)


def language_groups(languages: pd.Series, min_rows: int, together: bool) -> np.ndarray:
    """The group each tweet is clustered in: its language, when the encoder is monolingual (`together` False).

    An English-only encoder maps Spanish or German tweets by their shared function words, so one "que / en / el"
    category swallows every Spanish issue; per language the words that differ are the topic. Undetermined
    (very short) texts join English, the language of most twcs traffic; languages with fewer than `min_rows`
    tweets share one group. With a multilingual encoder (`together` True) all languages are clustered together,
    so a Spanish and an English refund complaint can share a category."""
    if together:
        return np.full(len(languages), ALL_LANGUAGES, dtype=object)
    groups = languages.replace(UNDETERMINED, "en")
    counts = groups.value_counts()
    return groups.where(groups.map(counts) >= min_rows, MIXED_LANGUAGES).to_numpy(dtype=object)


def distinct_rows(tweets: pd.DataFrame) -> np.ndarray:
    """Indices of the first row of each near-duplicate group (`near_duplicate_key`), or of every row without it.

    Copies of one text are one point to cluster: a promo retweeted 200 times is not a topic of its own."""
    if "near_duplicate_key" not in tweets:
        return np.arange(len(tweets))
    return np.flatnonzero(~tweets["near_duplicate_key"].duplicated().to_numpy())


def partition_group(
    features: np.ndarray,
    vectors: np.ndarray,
    smoothed: tuple[np.ndarray, np.ndarray],
    k: int | None,
    config: ClusteringConfig,
    report,
) -> tuple[np.ndarray, list[KCandidate]]:
    """Centroids of one group's partition of the `smoothed` (features, vectors), in the smoothed features, with k
    fixed or chosen by silhouette on the tweets' own `features` and `vectors`; and the k curve.

    Smoothed vectors form tight micro-categories whose silhouette keeps rising with k, so k is chosen on the
    unsmoothed ones (on the dev sets the plateau rule then lands where it did before smoothing)."""
    smoothed_features, smoothed_vectors = smoothed
    if len(features) < config.min_group_rows or k == 1:
        return smoothed_features.mean(axis=0, keepdims=True), []
    curve = []
    if k is None:
        k, curve = choose_k(features, config, report, vectors)
    return next(candidate_centroids(smoothed_features, smoothed_vectors, [k], config, kmeans_restarts=5)), curve


def similarity_to_category(vectors: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row to the mean embedding of its category."""
    means = unit_rows(np.stack([vectors[labels == c].mean(axis=0) for c in range(labels.max() + 1)]))
    return (unit_rows(vectors) * means[labels]).sum(axis=1)


def outlier_rows(similarity: np.ndarray, config: ClusteringConfig) -> np.ndarray:
    """Rows below the similarity floor, at most `max_outlier_share` of all rows (the least similar)."""
    below = np.flatnonzero(similarity < config.outlier_similarity)
    cap = int(config.max_outlier_share * len(similarity))
    return below[np.argsort(similarity[below])[:cap]]


def fit_categories(
    vectors: np.ndarray,
    tweet_ids: np.ndarray,
    tweets: pd.DataFrame,
    config: ClusteringConfig = ClusteringConfig(),
    embedding_model: str = "",
    report: ProgressCallback | None = None,
    groups: np.ndarray | None = None,
) -> CategoryModel:
    """Cluster embeddings into categories. `tweets` rows align with `vectors` (text, text_clean, language, brand,
    optionally near_duplicate_key).

    `groups` (e.g. a language per row) are clustered separately: no category mixes two groups. The largest group
    gets `config.k` (or k by silhouette); every other group as many categories as it has rows at the largest
    group's average category size. Near-duplicates count once in the clustering and all in the sizes. Labels are
    each tweet's nearest centroid of its group in the projection; tweets too far from their category's mean
    embedding are outliers ("other")."""
    if len(vectors) != len(tweets):
        raise ValueError(f"{len(vectors)} vectors but {len(tweets)} tweets")
    groups = np.full(len(vectors), ALL_LANGUAGES, dtype=object) if groups is None else np.asarray(groups)
    distinct = distinct_rows(tweets)
    if len(distinct) <= config.k_min and config.k is None:
        raise ValueError(f"too few tweets ({len(distinct)}) to cluster into at least {config.k_min} categories")
    components = min(config.pca_components, vectors.shape[1], len(distinct))
    pca = PCA(n_components=components, random_state=config.seed).fit(vectors[distinct])
    features = pca.transform(vectors).astype(np.float32)
    # Partitions are made on the smoothed vectors; k, centroids and "other" come from the tweets' own.
    reference = unit_rows(vectors[distinct[graph_sample_rows(len(distinct), config)]])
    cluster_vectors = smooth_by_neighbours(unit_rows(vectors), config.smoothing_neighbours, reference)
    cluster_features = pca.transform(cluster_vectors).astype(np.float32) if config.smoothing_neighbours else features
    group_names, group_sizes = np.unique(groups[distinct], return_counts=True)
    by_size = group_names[np.argsort(-group_sizes, kind="stable")]
    labels = np.zeros(len(vectors), dtype=np.int32)
    centroids, curve, rows_per_category = [], [], None
    for group in by_size:
        in_group = np.flatnonzero(groups == group)
        fit_on = np.intersect1d(in_group, distinct)
        k = config.k if rows_per_category is None else max(1, round(len(fit_on) / rows_per_category))
        smoothed = (cluster_features[fit_on], cluster_vectors[fit_on])
        group_centroids, group_curve = partition_group(features[fit_on], vectors[fit_on], smoothed, k, config, report)
        _, smoothed_labels = assign_to_nearest(cluster_features[fit_on], group_centroids)
        # Each category's centroid is its distinct members' own mean, and every tweet joins the nearest one, so
        # labels, centroids and representatives agree in the projection that inference uses.
        group_centroids = member_means(features[fit_on], smoothed_labels)
        group_centroids, group_labels = assign_to_nearest(features[in_group], group_centroids)
        labels[in_group] = group_labels + len(centroids)
        centroids += list(group_centroids)
        if rows_per_category is None:
            curve, rows_per_category = group_curve, len(fit_on) / len(group_centroids)
    centroids = np.asarray(centroids)
    outliers = outlier_rows(similarity_to_category(vectors, labels), config)
    members = np.setdiff1d(np.arange(len(vectors)), outliers)
    # A category that lost every member to "other" is dropped, so ids stay 0..k-1.
    kept, member_labels = np.unique(labels[members], return_inverse=True)
    centroids = centroids[kept]
    member_labels = member_labels.astype(np.int32)
    silhouette = sampled_silhouette(features[members], member_labels, config) if len(kept) > 1 else float("nan")
    categories = describe_categories(features[members], centroids, member_labels, tweets.iloc[members], groups[members])
    return CategoryModel(
        pca_mean=pca.mean_.astype(np.float32),
        pca_components=pca.components_.astype(np.float32),
        centroids=centroids.astype(np.float32),
        tweet_ids=np.asarray(tweet_ids, dtype=np.int64)[members],
        labels=member_labels,
        categories=tuple(categories),
        outlier_ids=np.asarray(tweet_ids, dtype=np.int64)[outliers],
        k_curve=tuple(curve),
        silhouette=round(silhouette, 4),
        embedding_model=embedding_model,
    )
