"""Discovering support categories in embeddings: PCA + KMeans, k chosen by silhouette, c-TF-IDF keywords."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.metrics import silhouette_score

from support_nlp.core.progress import ProgressCallback

KEYWORDS_PER_CATEGORY = 10
REPRESENTATIVES_PER_CATEGORY = 5
NAME_KEYWORDS = 3


@dataclass(frozen=True)
class ClusteringConfig:
    pca_components: int = 50
    k: int | None = None  # None: choose k in [k_min, k_max] by silhouette
    k_min: int = 6
    k_max: int = 30
    k_step: int = 2
    silhouette_sample: int = 5000
    seed: int = 0


@dataclass
class CategoryModel:
    """A fitted categorisation: projection, centroids, per-category descriptions and per-tweet assignments."""

    pca_mean: np.ndarray
    pca_components: np.ndarray
    centroids: np.ndarray
    tweet_ids: np.ndarray
    labels: np.ndarray
    categories: list[dict]
    k_curve: list[dict] = field(default_factory=list)
    silhouette: float = float("nan")
    embedding_model: str = ""

    @property
    def k(self) -> int:
        return len(self.centroids)

    @property
    def names(self) -> dict[int, str]:
        return {c["id"]: c["name"] for c in self.categories}

    def project(self, vectors: np.ndarray) -> np.ndarray:
        return (vectors - self.pca_mean) @ self.pca_components.T

    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict]:
        arrays = {
            "pca_mean": self.pca_mean,
            "pca_components": self.pca_components,
            "centroids": self.centroids,
            "tweet_ids": self.tweet_ids,
            "labels": self.labels,
        }
        meta = {
            "categories": self.categories,
            "k_curve": self.k_curve,
            "silhouette": self.silhouette,
            "embedding_model": self.embedding_model,
        }
        return arrays, meta

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], meta: dict) -> CategoryModel:
        return cls(**arrays, **meta)

    def assignments(self) -> pd.DataFrame:
        return pd.DataFrame({"tweet_id": self.tweet_ids, "category_id": self.labels})


def _top_shares(values: pd.Series, n: int = 5) -> dict[str, float]:
    return {str(k): float(v) for k, v in values.value_counts(normalize=True).head(n).round(3).items()}


def sampled_silhouette(features: np.ndarray, labels: np.ndarray, config: ClusteringConfig) -> float:
    """Silhouette on a seeded sample: the full O(n^2) score is unaffordable at twcs scale."""
    rng = np.random.default_rng(config.seed)
    sample = rng.choice(len(features), size=min(config.silhouette_sample, len(features)), replace=False)
    return float(silhouette_score(features[sample], labels[sample]))


def choose_k(features: np.ndarray, config: ClusteringConfig, report: ProgressCallback | None = None):
    """Fit KMeans for each candidate k and score it by silhouette on a fixed sample; best k and the curve."""
    k_max = min(config.k_max, len(features) - 1)
    curve = []
    for k in range(config.k_min, k_max + 1, config.k_step):
        kmeans = KMeans(n_clusters=k, n_init=3, random_state=config.seed).fit(features)
        score = sampled_silhouette(features, kmeans.labels_, config)
        curve.append({"k": k, "silhouette": round(score, 4), "inertia": round(float(kmeans.inertia_), 2)})
        if report:
            report(f"choose k: k={k} silhouette={score:.4f}")
    if not curve:
        raise ValueError(f"too few tweets ({len(features)}) to cluster into at least {config.k_min} categories")
    best = max(curve, key=lambda point: point["silhouette"])
    return best["k"], curve


def class_tfidf_keywords(texts: list[str], labels: np.ndarray, k: int, top_n: int = KEYWORDS_PER_CATEGORY):
    """Top words per category by class-based TF-IDF: frequent in the category, rare across categories."""
    documents = [" ".join(texts[i] for i in np.flatnonzero(labels == c)) for c in range(k)]
    vectorizer = CountVectorizer(stop_words="english", token_pattern=r"(?u)\b[^\W\d_]{2,}\b", min_df=1)
    counts = vectorizer.fit_transform(documents).toarray().astype(float)
    vocabulary = vectorizer.get_feature_names_out()
    term_frequency = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    average_words = counts.sum() / max(k, 1)
    idf = np.log1p(average_words / np.maximum(counts.sum(axis=0), 1))
    scores = term_frequency * idf
    keywords = []
    for c in range(k):
        top = np.argsort(-scores[c])[:top_n]
        keywords.append([(str(vocabulary[j]), round(float(scores[c, j]), 5)) for j in top if scores[c, j] > 0])
    return keywords


def describe_categories(
    features: np.ndarray,
    centroids: np.ndarray,
    labels: np.ndarray,
    tweets: pd.DataFrame,
) -> list[dict]:
    """Name, keywords, size, representative tweets (closest to the centroid), languages and brands per category."""
    k = len(centroids)
    keywords = class_tfidf_keywords(tweets["text_clean"].tolist(), labels, k)
    distances = np.linalg.norm(features - centroids[labels], axis=1)
    categories = []
    for c in range(k):
        members = np.flatnonzero(labels == c)
        closest = members[np.argsort(distances[members])[:REPRESENTATIVES_PER_CATEGORY]]
        words = [word for word, _ in keywords[c][:NAME_KEYWORDS]]
        categories.append(
            {
                "id": c,
                "name": " / ".join(words) if words else f"category {c}",
                "keywords": keywords[c],
                "size": int(len(members)),
                "share": round(len(members) / len(labels), 4),
                "representatives": tweets["text"].iloc[closest].tolist(),
                "languages": _top_shares(tweets["language"].iloc[members]),
                "brands": _top_shares(tweets["brand"].iloc[members]),
            }
        )
    return categories


def fit_categories(
    vectors: np.ndarray,
    tweet_ids: np.ndarray,
    tweets: pd.DataFrame,
    config: ClusteringConfig = ClusteringConfig(),
    embedding_model: str = "",
    report: ProgressCallback | None = None,
) -> CategoryModel:
    """Cluster embeddings into categories. `tweets` rows align with `vectors` (text, text_clean, language, brand)."""
    if len(vectors) != len(tweets):
        raise ValueError(f"{len(vectors)} vectors but {len(tweets)} tweets")
    components = min(config.pca_components, vectors.shape[1], len(vectors))
    pca = PCA(n_components=components, random_state=config.seed).fit(vectors)
    features = pca.transform(vectors).astype(np.float32)
    if config.k is None:
        k, curve = choose_k(features, config, report)
    else:
        k, curve = config.k, []
    kmeans = KMeans(n_clusters=k, n_init=5, random_state=config.seed).fit(features)
    labels = kmeans.labels_.astype(np.int32)
    silhouette = sampled_silhouette(features, labels, config)
    return CategoryModel(
        pca_mean=pca.mean_.astype(np.float32),
        pca_components=pca.components_.astype(np.float32),
        centroids=kmeans.cluster_centers_.astype(np.float32),
        tweet_ids=np.asarray(tweet_ids, dtype=np.int64),
        labels=labels,
        categories=describe_categories(features, kmeans.cluster_centers_, labels, tweets),
        k_curve=curve,
        silhouette=round(silhouette, 4),
        embedding_model=embedding_model,
    )
