"""The category schema: a discovered category and the fitted categorisation that holds them, as stored in the
cluster_labels artifact (core/artifacts.py). Clustering that produces them lives in core/categories.py."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

# The language group of categories clustered over every language at once.
ALL_LANGUAGES = "all"


@dataclass(frozen=True)
class Category:
    """One discovered category: what it is called, what it holds, and who named it."""

    id: int  # stable across refits (core/identity.py); the key of the category map
    name: str  # the category map's name where it gives one, else `generated_name`
    generated_name: str  # from the category's keyphrases (core/naming.py)
    keywords: tuple[tuple[str, float], ...]  # keyphrases with their scores, best first
    size: int  # training tweets in the category
    share: float  # of the training tweets in any category (those in "other" not counted)
    representatives: tuple[str, ...]  # texts closest to the centroid, closest first
    languages: dict[str, float]  # most frequent languages and their shares among the members
    brands: dict[str, float]  # most frequent brands and their shares among the members
    language_group: str  # the group the category was clustered in (core/categories.language_groups)
    named_by: Literal["keywords", "seed", "category map"] = "keywords"
    merged_into: int | None = None  # the id the category map merges this one into
    seed: str | None = None  # the name of the team's seed category (core/seeds.py) it holds; None when discovered
    # On a discovered category: the seed the most of its tweets (as discovered, before the seeds took theirs) were
    # close to, and their share; None and 0 when none was close (core/seeds.py).
    overlapping_seed: str | None = None
    overlapping_seed_share: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, fields: dict) -> Category:
        # Models stored before the category map (generated_name) and per-language clustering lack those fields.
        earlier = {"generated_name": fields["name"], "language_group": ALL_LANGUAGES}
        return cls(
            **{
                **earlier,
                **fields,
                "keywords": tuple((phrase, score) for phrase, score in fields["keywords"]),
                "representatives": tuple(fields["representatives"]),
            }
        )


@dataclass(frozen=True)
class KCandidate:
    """One point of the curve k was chosen from: a candidate k and the partition's scores."""

    k: int
    silhouette: float  # on a fixed sample of the tweets
    inertia: float  # sum of squared distances to the nearest centroid

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CategoryModel:
    """A fitted categorisation: projection, centroids, per-category descriptions and per-tweet assignments.

    `tweet_ids`/`labels` hold the tweets in a category; `outlier_ids` the tweets that fit none ("other")."""

    pca_mean: np.ndarray
    pca_components: np.ndarray
    centroids: np.ndarray
    tweet_ids: np.ndarray
    labels: np.ndarray
    categories: tuple[Category, ...]
    outlier_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    k_curve: tuple[KCandidate, ...] = ()  # empty when k was fixed
    silhouette: float = float("nan")
    embedding_model: str = ""
    # Share of each message kind (core/conversation.py) among all the tweets the categories were trained from.
    message_kinds: dict[str, float] = field(default_factory=dict)

    @property
    def k(self) -> int:
        return len(self.centroids)

    @property
    def names(self) -> dict[int, str]:
        return {c.id: c.name for c in self.categories}

    def by_size(self) -> list[Category]:
        """Largest category first."""
        return sorted(self.categories, key=lambda c: -c.size)

    def project(self, vectors: np.ndarray) -> np.ndarray:
        return (vectors - self.pca_mean) @ self.pca_components.T

    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict]:
        arrays = {
            "pca_mean": self.pca_mean,
            "pca_components": self.pca_components,
            "centroids": self.centroids,
            "tweet_ids": self.tweet_ids,
            "labels": self.labels,
            "outlier_ids": self.outlier_ids,
        }
        meta = {
            "categories": [c.to_json() for c in self.categories],
            "k_curve": [point.to_json() for point in self.k_curve],
            "silhouette": self.silhouette,
            "embedding_model": self.embedding_model,
            "message_kinds": self.message_kinds,
        }
        return arrays, meta

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], meta: dict) -> CategoryModel:
        categories = tuple(Category.from_json(c) for c in meta["categories"])
        k_curve = tuple(KCandidate(**point) for point in meta.get("k_curve", []))
        return cls(**arrays, **{**meta, "categories": categories, "k_curve": k_curve})

    def assignments(self) -> pd.DataFrame:
        return pd.DataFrame({"tweet_id": self.tweet_ids, "category_id": self.labels})

    @property
    def outlier_share(self) -> float:
        return len(self.outlier_ids) / max(len(self.outlier_ids) + len(self.tweet_ids), 1)
